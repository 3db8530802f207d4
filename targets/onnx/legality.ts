// Ops the ONNX emitter accepts after the onnx pipeline (opset 21 has them all; rank is free).
import type { Legality } from "../../src/pipeline/legality.js";

const any = {};
export const onnxLegality: Legality = {
  const: any, add: any, sub: any, mul: any, div: any, maximum: any, pow: any,
  gelu_tanh: any, silu: any, sigmoid: any, tanh: any, exp: any, sqrt: any, rsqrt: any, neg: any, sin: any, cos: any,
  matmul: any, linear: any, softmax: any,
  // LayerNormalization normalizes from its axis to the end: only the last-axis form maps one to one
  layer_norm: { check: (n) => (n.kind === "layer_norm" && (n.attrs.axis === -1 || n.attrs.axis === n.inputs[0]!.type.shape.length - 1)) || "ONNX LayerNormalization needs the normalized axis last" }, reduce_sum: any, reduce_mean: any, reduce_max: any,
  dequantize: any, reshape: any, transpose: any, slice: any, concat: any, split: any, gather: any, cast: any, einsum: any, lut_to_dense: { check: (n) => n.inputs[1]!.type.shape.length === 1 || "per-grouped-channel LUTs are a CoreML iOS18 form; ONNX takes per-tensor palettes" },
  conv2d: { check: (n) => (n.kind === "conv2d" && n.attrs.layout === "NCHW") || "ONNX Conv is NCHW" },
  pixel_shuffle: { check: (n) => (n.kind === "pixel_shuffle" && n.attrs.layout === "NCHW" && n.attrs.order === "CRD") || "ONNX DepthToSpace(CRD) is NCHW in PyTorch's channel order" },
};
