// Ops the CoreML emitter accepts after the coreml pipeline: rank ≤ 4 everywhere (the ANE's
// limit), MIL's single einsum form, convolutions in NCHW.
import type { Legality } from "../../src/pipeline/legality.js";

const r4 = { maxRank: 4 };
export const coremlLegality: Legality = {
  const: r4, add: r4, sub: r4, mul: r4, div: r4, maximum: r4, pow: r4,
  gelu_tanh: r4, silu: r4, sigmoid: r4, tanh: r4, exp: r4, sqrt: r4, rsqrt: r4, neg: r4, sin: r4, cos: r4,
  matmul: r4, linear: r4, softmax: r4, layer_norm: r4, reduce_sum: r4, reduce_mean: r4, reduce_max: r4,
  reshape: r4, transpose: r4, slice: r4, concat: r4, split: r4, gather: r4, cast: r4, lut_to_dense: r4,
  conv2d: { maxRank: 4, check: (n) => (n.kind === "conv2d" && n.attrs.layout === "NCHW") || "CoreML convolutions are NCHW" },
  pixel_shuffle: { maxRank: 4, check: (n) => (n.kind === "pixel_shuffle" && n.attrs.layout === "NCHW" && n.attrs.order === "CRD") || "CoreML pixel_shuffle is NCHW in PyTorch's channel order" },
  einsum: {
    maxRank: 4,
    // MIL accepts [B,C,H,W1] x [B,W1,H,W2] -> [B,C,H,W2] only (docs/formats/coreml.md)
    check: (n) => (n.kind === "einsum" && /^(\w)(\w)(\w)(\w),\1\4\3(\w)->\1\2\3\5$/.test(n.attrs.equation)) || "MIL supports one einsum form: nchw,nwhu->nchu",
  },
};
