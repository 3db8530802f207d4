// Arithmetic ops: elementwise, matmul / linear / conv2d / einsum, reductions, normalizations.
import type { TensorType } from "../ir/graph.js";
import { convOutSize } from "../kernels/conv.js";
import { einsumSizes, parseEinsum } from "../kernels/einsum.js";
import { binary as binaryKernel, layerNorm as layerNormFast, reduce, softmax as softmaxFast, conv2dNchw, conv2dNhwc, einsum as einsumKernel, linear as linearKernel, matmul as matmulKernel, unary as unaryKernel } from "../kernels/fast.js";
import { broadcastShapes, type BinaryKind, type UnaryKind } from "../kernels/elementwise.js";
import { transpose } from "../kernels/layout.js";
import type { ReduceKind } from "../kernels/reduce.js";
import { asFloat, normAxis, type Tensor } from "../kernels/tensor.js";
import { check, defineOp, isPositiveInt, requireFloat, requireRank, sameShape, type OpDef } from "./define.js";

const f = (t: Tensor, what?: string) => asFloat(t, what);
type NoAttrs = Record<string, never>;

function binaryOp(kind: BinaryKind): OpDef<NoAttrs> {
  return defineOp<NoAttrs>({
    operands: ["a", "b"],
    infer: ([a, b]) => {
      requireFloat(a!, "a");
      check(a!.dtype === b!.dtype, () => `operand dtypes differ: ${a!.dtype} and ${b!.dtype}`);
      const shape = broadcastShapes(a!.shape, b!.shape);
      check(shape, () => `shapes (${a!.shape.join(", ")}) and (${b!.shape.join(", ")}) do not broadcast`);
      return [{ dtype: a!.dtype, shape }];
    },
    kernel: ([a, b]) => [binaryKernel(kind, f(a!), f(b!))],
  });
}

function unaryOp(kind: UnaryKind): OpDef<NoAttrs> {
  return defineOp<NoAttrs>({
    operands: ["x"],
    infer: ([x]) => {
      requireFloat(x!, "x");
      return [x!];
    },
    kernel: ([x]) => [unaryKernel(kind, f(x!))],
  });
}

export const elementwiseOps = {
  add: binaryOp("add"),
  sub: binaryOp("sub"),
  mul: binaryOp("mul"),
  div: binaryOp("div"),
  maximum: binaryOp("maximum"),
  pow: binaryOp("pow"),
  gelu_tanh: unaryOp("gelu_tanh"),
  silu: unaryOp("silu"),
  sigmoid: unaryOp("sigmoid"),
  tanh: unaryOp("tanh"),
  exp: unaryOp("exp"),
  sqrt: unaryOp("sqrt"),
  rsqrt: unaryOp("rsqrt"),
  neg: unaryOp("neg"),
  sin: unaryOp("sin"),
  cos: unaryOp("cos"),
};

export interface MatmulAttrs {
  /** use aᵀ (swap a's last two axes), as ANE/BATCH_MATMUL adj_x do without moving data */
  transposeA: boolean;
  transposeB: boolean;
}

/** Batched matmul: op(a) (..., M, K) · op(b) (..., K, N) with broadcast batch axes. */
const matmul = defineOp<MatmulAttrs>({
  operands: ["a", "b"],
  infer: ([a, b], at) => {
    requireFloat(a!, "a");
    check(b!.dtype === a!.dtype, () => `operand dtypes differ: ${a!.dtype} and ${b!.dtype}`);
    check(a!.shape.length >= 2 && b!.shape.length >= 2, "matmul operands need rank >= 2");
    const [a0, a1] = a!.shape.slice(-2) as [number, number];
    const [b0, b1] = b!.shape.slice(-2) as [number, number];
    const [M, K] = at.transposeA ? [a1, a0] : [a0, a1];
    const [K2, N] = at.transposeB ? [b1, b0] : [b0, b1];
    check(K === K2, () => `inner dimensions differ: a gives K=${K}, b gives K=${K2}`);
    const batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
    check(batch, "batch axes do not broadcast");
    return [{ dtype: a!.dtype, shape: [...batch, M, N] }];
  },
  kernel: ([a, b], at) => [matmulKernel(f(a!), f(b!), at.transposeA, at.transposeB, broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2))!)],
  printAttrs: (a) => [a.transposeA ? "transposeA" : "", a.transposeB ? "transposeB" : ""].filter(Boolean).join(" "),
});

/** y = x · Wᵀ + b, W (out, in) as PyTorch stores it. */
const linear = defineOp<NoAttrs>({
  operands: ["x", "weight", "bias?"],
  infer: ([x, w, b]) => {
    requireFloat(x!, "x");
    requireRank(w!, 2, "weight");
    check(w!.dtype === x!.dtype && (!b || b.dtype === x!.dtype), () => `weight and bias must be ${x!.dtype} like x (dequantize quantized weights first)`);
    const inF = x!.shape[x!.shape.length - 1];
    check(w!.shape[1] === inF, () => `weight (${w!.shape.join(", ")}) expects ${w!.shape[1]} input features, x has ${inF}`);
    if (b) check(sameShape(b.shape, [w!.shape[0]!]), () => `bias must be (${w!.shape[0]}), got (${b.shape.join(", ")})`);
    return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -1), w!.shape[0]!] }];
  },
  kernel: ([x, w, b]) => [linearKernel(f(x!), f(w!), b ? f(b) : undefined)],
});

export interface Conv2dAttrs {
  stride: [number, number];
  pads: [number, number, number, number];
  groups: number;
  /** NCHW with OIHW weights, or NHWC with OHWI weights (TFLite's CONV_2D) */
  layout: "NCHW" | "NHWC";
}

const NHWC_TO_NCHW = [0, 3, 1, 2], NCHW_TO_NHWC = [0, 2, 3, 1];

/** What every convolution needs of its operands: a float rank-4 input, a rank-4 filter and a bias of the same type. */
function checkConvOperands(x: TensorType, w: TensorType, b: TensorType | undefined): void {
  requireFloat(x, "x");
  requireRank(x, 4, "x");
  requireRank(w, 4, "weight");
  check(w.dtype === x.dtype && (!b || b.dtype === x.dtype), () => `weight and bias must be ${x.dtype} like x (dequantize quantized weights first)`);
}

/** 2-D convolution; the NHWC form is the NCHW one seen through transposes. */
const conv2d = defineOp<Conv2dAttrs>({
  operands: ["x", "weight", "bias?"],
  infer: ([x, w, b], a) => {
    checkConvOperands(x!, w!, b);
    const nhwc = a.layout === "NHWC";
    const [B, C, H, W] = (nhwc ? NHWC_TO_NCHW.map((p) => x!.shape[p]!) : x!.shape) as [number, number, number, number];
    const [O, I, KH, KW] = (nhwc ? NHWC_TO_NCHW.map((p) => w!.shape[p]!) : w!.shape) as [number, number, number, number];
    check(isPositiveInt(a.groups) && C % a.groups === 0 && O % a.groups === 0, () => `groups ${a.groups} must divide ${C} input and ${O} output channels`);
    check(I * a.groups === C, () => `weight has ${I} input channels per group, x has ${C} channels in ${a.groups} groups`);
    check(a.stride.every(isPositiveInt), () => `stride must be positive, got [${a.stride}]`);
    if (b) check(sameShape(b.shape, [O]), () => `bias must be (${O}), got (${b.shape.join(", ")})`);
    const Ho = convOutSize(H, KH, a.stride[0], a.pads[0], a.pads[2]), Wo = convOutSize(W, KW, a.stride[1], a.pads[1], a.pads[3]);
    check(Ho > 0 && Wo > 0, () => `kernel ${KH}x${KW} does not fit the ${H}x${W} input`);
    return [{ dtype: x!.dtype, shape: nhwc ? [B, Ho, Wo, O] : [B, O, Ho, Wo] }];
  },
  kernel: ([x, w, b], a) => [(a.layout === "NCHW" ? conv2dNchw : conv2dNhwc)(f(x!), f(w!), b ? f(b) : undefined, a)],
});

/**
 * TFLite's DEPTHWISE_CONV_2D: x NHWC (B, H, W, C), filter (1, KH, KW, C·M), output channel c·M + m
 * reads input channel c. The grouped NCHW conv (groups = C) with the filter moved to OIHW.
 */
const depthwise_conv2d = defineOp<{ stride: [number, number]; pads: [number, number, number, number] }>({
  operands: ["x", "weight", "bias?"],
  infer: ([x, w, b], a) => {
    checkConvOperands(x!, w!, b);
    const [B, H, W, C] = x!.shape as [number, number, number, number];
    const [one, KH, KW, CM] = w!.shape as [number, number, number, number];
    check(one === 1 && CM % C === 0, () => `filter (${w!.shape.join(", ")}) must be (1, KH, KW, ${C}·M) for ${C} input channels`);
    check(a.stride.every(isPositiveInt), () => `stride must be positive, got [${a.stride}]`);
    if (b) check(sameShape(b.shape, [CM]), () => `bias must be (${CM}), got (${b.shape.join(", ")})`);
    const Ho = convOutSize(H, KH, a.stride[0], a.pads[0], a.pads[2]), Wo = convOutSize(W, KW, a.stride[1], a.pads[1], a.pads[3]);
    check(Ho > 0 && Wo > 0, () => `kernel ${KH}x${KW} does not fit the ${H}x${W} input`);
    return [{ dtype: x!.dtype, shape: [B, Ho, Wo, CM] }];
  },
  kernel: ([x, w, b], a) => {
    const C = x!.shape[3]!;
    const y = conv2dNchw(transpose(f(x!), NHWC_TO_NCHW), transpose(f(w!), [3, 0, 1, 2]), b ? f(b) : undefined, { ...a, groups: C });
    return [transpose(y, NCHW_TO_NHWC)];
  },
});

const einsum = defineOp<{ equation: string }>({
  operands: ["...operands"],
  infer: (xs, a) => {
    const spec = parseEinsum(a.equation);
    check(typeof spec !== "string", spec as string);
    xs.forEach((x, i) => requireFloat(x, `operand ${i}`));
    const sizes = einsumSizes(spec, xs.map((x) => x.shape));
    check(typeof sizes !== "string", sizes as string);
    return [{ dtype: xs[0]!.dtype, shape: [...spec.output].map((l) => sizes.get(l)!) }];
  },
  kernel: (xs, a) => [einsumKernel(parseEinsum(a.equation) as Exclude<ReturnType<typeof parseEinsum>, string>, xs.map((x) => f(x)))],
  printAttrs: (a) => `"${a.equation}"`,
});

function checkAxis(axis: number, t: TensorType): number {
  const r = t.shape.length;
  check(Number.isInteger(axis) && axis >= -r && axis < r, () => `axis ${axis} is out of range for rank ${r}`);
  return normAxis(axis, r);
}

const softmax = defineOp<{ axis: number }>({
  operands: ["x"],
  infer: ([x], a) => {
    requireFloat(x!, "x");
    checkAxis(a.axis, x!);
    return [x!];
  },
  kernel: ([x], a) => [softmaxFast(f(x!), normAxis(a.axis, x!.shape.length))],
});

/** LayerNorm over one axis (biased variance); optional affine of that axis's length. */
const layer_norm = defineOp<{ axis: number; eps: number }>({
  operands: ["x", "weight?", "bias?"],
  infer: ([x, w, b], a) => {
    requireFloat(x!, "x");
    const axis = checkAxis(a.axis, x!);
    check((w === undefined) === (b === undefined), "weight and bias come together");
    if (w) check(sameShape(w.shape, [x!.shape[axis]!]) && sameShape(b!.shape, w.shape), () => `affine must be (${x!.shape[axis]})`);
    check(a.eps > 0, () => `eps must be positive, got ${a.eps}`);
    return [x!];
  },
  kernel: ([x, w, b], a) => [layerNormFast(f(x!), normAxis(a.axis, x!.shape.length), a.eps, w ? f(w).data : undefined, b ? f(b).data : undefined)],
});

export interface ReduceAttrs {
  axes: number[];
  keepDims: boolean;
}

function reduceOp(kind: ReduceKind): OpDef<ReduceAttrs> {
  return defineOp<ReduceAttrs>({
    operands: ["x"],
    infer: ([x], a) => {
      requireFloat(x!, "x");
      const axes = a.axes.map((ax) => checkAxis(ax, x!));
      check(new Set(axes).size === axes.length, () => `axes [${a.axes}] repeat an axis`);
      const shape = a.keepDims ? x!.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x!.shape.filter((_, i) => !axes.includes(i));
      return [{ dtype: x!.dtype, shape }];
    },
    kernel: ([x], a) => [reduce(f(x!), a.axes.map((ax) => normAxis(ax, x!.shape.length)), kind, a.keepDims)],
  });
}

export const mathOps = {
  ...elementwiseOps,
  matmul,
  linear,
  conv2d,
  depthwise_conv2d,
  einsum,
  softmax,
  layer_norm,
  reduce_sum: reduceOp("sum"),
  reduce_mean: reduceOp("mean"),
  reduce_max: reduceOp("max"),
};
