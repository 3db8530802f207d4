// The TFLite pipeline: token-major (B, N, C) = NHWC activations, CONV_2D in NHWC with OHWI
// filters and DEPTHWISE_CONV_2D with 1HWC ones, DEPTH_TO_SPACE in TensorFlow's channel order,
// attention as per-head BATCH_MATMULs (adj_y for kᵀ), BNA unrolled on static slices, LayerNorm
// decomposed (TFLite has none), palettized weights as an in-graph lookup.
import type { Pipeline, PipelineEntry } from "../../src/pipeline/pass.js";

export const tflitePipeline: Pipeline = {
  name: "tflite",
  entries: [
    { pass: "split-lut-groups" },
    { pass: "lower-assa" },
    { pass: "unroll-bna", options: { layout: "tokens" } },
    { pass: "lower-rope", options: { layout: "tokens" } },
    { pass: "lower-qk-norm", options: { layout: "tokens" } },
    { pass: "split-einsum-attention", options: { layout: "tokens", form: "matmul", scoreBytes: 4 } },
    { pass: "relayout-nhwc" },
    { pass: "conv-to-depthwise" },
    { pass: "decompose-layer-norm" },
    { pass: "transpose-elimination" },
    { pass: "depth-to-space-dcr" },
    { pass: "lut-to-gather" },
  ],
};

/** TFLite's fp16 is float16 weights widened by DEQUANTIZE; kernels compute in float32. */
export const tfliteFp16: PipelineEntry = { pass: "fp16-weights" };
