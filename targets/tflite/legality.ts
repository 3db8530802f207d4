// Ops the TFLite emitter accepts after the tflite pipeline: rank ≤ 4 (most LiteRT kernels'
// limit), NHWC convolutions and depth-to-space, no einsum.
import type { Legality } from "../../src/pipeline/legality.js";

const r4 = { maxRank: 4 };
export const tfliteLegality: Legality = {
  const: r4, add: r4, sub: r4, mul: r4, div: r4, maximum: r4, pow: r4,
  gelu_tanh: r4, silu: r4, sigmoid: r4, tanh: r4, exp: r4, sqrt: r4, rsqrt: r4, neg: r4, sin: r4, cos: r4,
  matmul: r4, linear: r4, softmax: r4, layer_norm: r4, reduce_sum: r4, reduce_mean: r4, reduce_max: r4,
  reshape: r4, transpose: r4, slice: r4, concat: r4, split: r4, gather: r4, cast: r4, lut_to_dense: { maxRank: 4, check: (n) => n.inputs[1]!.type.shape.length === 1 || "per-grouped-channel LUTs are a CoreML iOS18 form" },
  conv2d: { maxRank: 4, check: (n) => (n.kind === "conv2d" && n.attrs.layout === "NHWC") || "TFLite CONV_2D is NHWC" },
  pixel_shuffle: { maxRank: 4, check: (n) => (n.kind === "pixel_shuffle" && n.attrs.layout === "NHWC") || "TFLite DEPTH_TO_SPACE is NHWC" },
};
