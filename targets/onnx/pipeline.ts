// The ONNX pipeline: token-major activations (ORT's MatMul/Gemm and its fusions expect them),
// attention as MatMul -> Softmax(-1) -> MatMul per head (ORT runs einsum attention 30-40x slower,
// docs/formats/onnx.md), BNA unrolled on static slices, convolutions NCHW as ONNX defines them.
import type { Pipeline } from "../../src/pipeline/pass.js";

export const onnxPipeline: Pipeline = {
  name: "onnx",
  entries: [
    { pass: "split-lut-groups" },
    { pass: "lower-assa" },
    { pass: "unroll-bna", options: { layout: "tokens" } },
    { pass: "lower-rope", options: { layout: "tokens" } },
    { pass: "lower-qk-norm", options: { layout: "tokens" } },
    { pass: "split-einsum-attention", options: { layout: "tokens", form: "matmul", scoreBytes: 4 } },
    { pass: "transpose-elimination" },
  ],
};

/**
 * The same model with no optimizing passes, for benchmarks: each high-level op replaced by its
 * reference formulation (BNA as dense masked attention), nothing unrolled, fused or cleaned up.
 */
export const onnxBaselinePipeline: Pipeline = {
  name: "onnx-baseline",
  entries: [
    { pass: "lower-assa" },
    { pass: "mask-bna" },
    { pass: "lower-rope", options: { layout: "tokens" } },
    { pass: "lower-qk-norm", options: { layout: "tokens" } },
    { pass: "split-einsum-attention", options: { layout: "tokens", form: "matmul", maxScoreBytes: 2 ** 40 } },
  ],
};
