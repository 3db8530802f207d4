// The TFLite pipeline: token-major (B, N, C) = NHWC activations, CONV_2D in NHWC with OHWI
// filters, attention as per-head BATCH_MATMULs (adj_y for kᵀ), BNA unrolled on static slices.
import type { Pipeline } from "../../src/pipeline/pass.js";

export const tflitePipeline: Pipeline = {
  name: "tflite",
  entries: [
    { pass: "lower-assa" },
    { pass: "unroll-bna", options: { layout: "tokens" } },
    { pass: "lower-rope", options: { layout: "tokens" } },
    { pass: "lower-qk-norm", options: { layout: "tokens" } },
    { pass: "split-einsum-attention", options: { layout: "tokens", form: "matmul" } },
    { pass: "relayout-nhwc" },
    { pass: "transpose-elimination" },
    { pass: "cse" },
  ],
};
