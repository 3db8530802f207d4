// The CoreML pipeline: channels-first (B, C, 1, S) everywhere, attention as per-head products
// whose second half is MIL's single einsum form, BNA unrolled on static slices.
import type { Pipeline } from "../../src/pipeline/pass.js";

export const coremlPipeline: Pipeline = {
  name: "coreml",
  entries: [
    { pass: "lower-assa" },
    { pass: "unroll-bna", options: { layout: "nchw" } },
    { pass: "lower-rope", options: { layout: "nchw" } },
    { pass: "lower-qk-norm", options: { layout: "nchw" } },
    { pass: "split-einsum-attention", options: { layout: "nchw", form: "einsum" } },
    { pass: "relayout-nchw" },
    { pass: "transpose-elimination" },
  ],
};
