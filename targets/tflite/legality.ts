// Ops the TFLite emitter accepts after the tflite pipeline: rank <= 4 (most LiteRT kernels'
// limit), NHWC convolutions without padding, softmax over the last axis, int32 gather indices,
// constants in the types LiteRT kernels read.
import type { Legality } from "../../src/pipeline/legality.js";
import type { Node } from "../../src/ir/graph.js";

const r4 = { maxRank: 4 };
const unpadded = (n: Node) => (n.kind === "conv2d" || n.kind === "depthwise_conv2d") && n.attrs.pads.every((p) => p === 0);

export const tfliteLegality: Legality = {
  const: { maxRank: 4, check: (n) => ["f32", "f16", "i32", "u8", "i8"].includes(n.outputs[0]!.type.dtype) || `constants are FLOAT32, FLOAT16, INT32, UINT8 or INT8, not ${n.outputs[0]!.type.dtype}` },
  dequantize: r4,
  add: r4, sub: r4, mul: r4, div: r4, maximum: r4, pow: r4,
  gelu_tanh: r4, silu: r4, sigmoid: r4, tanh: r4, exp: r4, sqrt: r4, rsqrt: r4, neg: r4, sin: r4, cos: r4,
  matmul: r4, linear: r4, reduce_sum: r4, reduce_mean: r4, reduce_max: r4,
  softmax: { maxRank: 4, check: (n) => (n.kind === "softmax" && (n.attrs.axis === -1 || n.attrs.axis === n.inputs[0]!.type.shape.length - 1)) || "TFLite SOFTMAX runs over the last axis" },
  reshape: r4, transpose: r4, slice: r4, concat: r4, split: r4,
  gather: { maxRank: 4, check: (n) => n.inputs[1]!.type.dtype === "i32" || "TFLite GATHER takes int32 indices (cast them first)" },
  cast: { maxRank: 4, check: (n) => (n.kind === "cast" && ((n.inputs[0]!.type.dtype === "f16" && n.attrs.to === "f32") || (n.inputs[0]!.type.dtype === "u8" && n.attrs.to === "i32"))) || "TFLite casts here are f16 -> f32 (DEQUANTIZE) or u8 -> i32" },
  conv2d: { maxRank: 4, check: (n) => (n.kind === "conv2d" && n.attrs.layout === "NHWC" && n.attrs.groups === 1 && unpadded(n)) || "TFLite CONV_2D is NHWC, ungrouped, unpadded here" },
  depthwise_conv2d: { maxRank: 4, check: (n) => unpadded(n) || "DEPTHWISE_CONV_2D is unpadded here" },
  pixel_shuffle: { maxRank: 4, check: (n) => (n.kind === "pixel_shuffle" && n.attrs.layout === "NHWC" && n.attrs.order === "DCR") || "TFLite DEPTH_TO_SPACE is NHWC in DCR order" },
};
