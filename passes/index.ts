// Every pass, by the name pipelines use.
import type { Pass } from "../src/pipeline/pass.js";
import { convToDepthwise } from "./conv-to-depthwise.js";
import { cse } from "./cse.js";
import { dedupeConstants } from "./dedupe-constants.js";
import { decomposeLayerNorm } from "./decompose-layer-norm.js";
import { depthToSpaceDcr } from "./depth-to-space-dcr.js";
import { fp16Weights } from "./fp16-weights.js";
import { lowerAssa } from "./lower-assa.js";
import { lowerQkNorm } from "./lower-qk-norm.js";
import { lowerRope } from "./lower-rope.js";
import { lutToGather } from "./lut-to-gather.js";
import { maskBna } from "./mask-bna.js";
import { palettizeWeights } from "./palettize.js";
import { precisionFp16 } from "./precision-fp16.js";
import { quantizeInt8 } from "./quantize-int8.js";
import { relayoutNchw } from "./relayout-nchw.js";
import { relayoutNhwc } from "./relayout-nhwc.js";
import { sliceWidth } from "./slice-width.js";
import { splitEinsumAttention } from "./split-einsum-attention.js";
import { splitLutGroups } from "./split-lut-groups.js";
import { transposeElimination } from "./transpose-elimination.js";
import { unrollBna } from "./unroll-bna.js";

const ALL = [sliceWidth, lowerAssa, unrollBna, lowerRope, lowerQkNorm, splitEinsumAttention, relayoutNchw, relayoutNhwc, transposeElimination, cse, precisionFp16, maskBna, palettizeWeights, dedupeConstants, convToDepthwise, depthToSpaceDcr, decomposeLayerNorm, lutToGather, splitLutGroups, fp16Weights, quantizeInt8] as Pass<any>[];

export const PASSES: ReadonlyMap<string, Pass<any>> = new Map(ALL.map((p) => [p.name, p]));
