// Arithmetic ops: elementwise, matmul / linear / conv2d / einsum, reductions, normalizations.
import type { TensorType } from "../ir/graph.js";
import { conv2d as convKernel, convOutSize } from "../kernels/conv.js";
import { einsum as einsumKernel, einsumSizes, parseEinsum } from "../kernels/einsum.js";
import { binary, binaryFns, broadcastShapes, unary, unaryFns } from "../kernels/elementwise.js";
import { gemmNN, gemmNT } from "../kernels/gemm.js";
import { layerNorm as lnKernel, reduce, softmax as softmaxKernel, type ReduceKind } from "../kernels/reduce.js";
import { asFloat, floatTensor, normAxis, numel, type FloatTensor, type Tensor } from "../kernels/tensor.js";
import { check, defineOp, isPositiveInt, requireFloat, requireRank, sameShape, type OpDef } from "./define.js";

const f = (t: Tensor, what?: string) => asFloat(t, what);
type NoAttrs = Record<string, never>;

function binaryOp(fn: (a: number, b: number) => number): OpDef<NoAttrs> {
  return defineOp<NoAttrs>({
    operands: ["a", "b"],
    infer: ([a, b]) => {
      requireFloat(a!, "a");
      check(a!.dtype === b!.dtype, `operand dtypes differ: ${a!.dtype} and ${b!.dtype}`);
      const shape = broadcastShapes(a!.shape, b!.shape);
      check(shape, `shapes (${a!.shape.join(", ")}) and (${b!.shape.join(", ")}) do not broadcast`);
      return [{ dtype: a!.dtype, shape }];
    },
    kernel: ([a, b]) => [binary(f(a!), f(b!), fn)],
  });
}

function unaryOp(fn: (v: number) => number): OpDef<NoAttrs> {
  return defineOp<NoAttrs>({
    operands: ["x"],
    infer: ([x]) => {
      requireFloat(x!, "x");
      return [x!];
    },
    kernel: ([x]) => [unary(f(x!), fn)],
  });
}

export const elementwiseOps = {
  add: binaryOp(binaryFns.add),
  sub: binaryOp(binaryFns.sub),
  mul: binaryOp(binaryFns.mul),
  div: binaryOp(binaryFns.div),
  maximum: binaryOp(binaryFns.maximum),
  pow: binaryOp(binaryFns.pow),
  gelu_tanh: unaryOp(unaryFns.gelu_tanh),
  silu: unaryOp(unaryFns.silu),
  sigmoid: unaryOp(unaryFns.sigmoid),
  tanh: unaryOp(unaryFns.tanh),
  exp: unaryOp(unaryFns.exp),
  sqrt: unaryOp(unaryFns.sqrt),
  rsqrt: unaryOp(unaryFns.rsqrt),
  neg: unaryOp(unaryFns.neg),
  sin: unaryOp(unaryFns.sin),
  cos: unaryOp(unaryFns.cos),
};

/** Batched matmul: a (..., M, K) · b (..., K, N) with broadcast batch axes. */
const matmul = defineOp<NoAttrs>({
  operands: ["a", "b"],
  infer: ([a, b]) => {
    requireFloat(a!, "a");
    check(a!.shape.length >= 2 && b!.shape.length >= 2, "matmul operands need rank >= 2");
    const [M, K] = a!.shape.slice(-2) as [number, number];
    const [K2, N] = b!.shape.slice(-2) as [number, number];
    check(K === K2, `inner dimensions differ: a has K=${K}, b has K=${K2}`);
    const batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
    check(batch, "batch axes do not broadcast");
    return [{ dtype: a!.dtype, shape: [...batch, M, N] }];
  },
  kernel: ([a, b]) => {
    const A = f(a!), Bm = f(b!);
    const [M, K] = A.shape.slice(-2) as [number, number];
    const N = Bm.shape[Bm.shape.length - 1]!;
    const batch = broadcastShapes(A.shape.slice(0, -2), Bm.shape.slice(0, -2))!;
    const nb = numel(batch), na = numel(A.shape.slice(0, -2)), nbb = numel(Bm.shape.slice(0, -2));
    const out = new Float32Array(nb * M * N);
    // batch broadcasting restricted to "one side has a single batch" or equal batches,
    // which covers every use in the model; anything else is expanded first.
    const Ae = na === nb ? A : expandBatch(A, batch), Be = nbb === nb ? Bm : expandBatch(Bm, batch);
    for (let i = 0; i < nb; i++) gemmNN(Ae.data, i * M * K, Be.data, i * K * N, out, i * M * N, M, N, K);
    return [floatTensor([...batch, M, N], out)];
  },
});

function expandBatch(x: FloatTensor, batch: readonly number[]): FloatTensor {
  const mat = x.shape.slice(-2);
  const target = [...batch, ...mat];
  return binary(floatTensor(target), x, binaryFns.add);
}

/** y = x · Wᵀ + b, W (out, in) as PyTorch stores it. */
const linear = defineOp<NoAttrs>({
  operands: ["x", "weight", "bias?"],
  infer: ([x, w, b]) => {
    requireFloat(x!, "x");
    requireRank(w!, 2, "weight");
    const inF = x!.shape[x!.shape.length - 1];
    check(w!.shape[1] === inF, `weight (${w!.shape.join(", ")}) expects ${w!.shape[1]} input features, x has ${inF}`);
    if (b) check(sameShape(b.shape, [w!.shape[0]!]), `bias must be (${w!.shape[0]}), got (${b.shape.join(", ")})`);
    return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -1), w!.shape[0]!] }];
  },
  kernel: ([x, w, b]) => {
    const X = f(x!), W = f(w!);
    const [N, K] = W.shape as [number, number];
    const M = X.data.length / K;
    const out = new Float32Array(M * N);
    gemmNT(X.data, 0, W.data, 0, out, 0, M, N, K, b ? f(b).data : undefined);
    return [floatTensor([...X.shape.slice(0, -1), N], out)];
  },
});

export interface Conv2dAttrs {
  stride: [number, number];
  pads: [number, number, number, number];
  groups: number;
}

/** NCHW convolution with OIHW weights. */
const conv2d = defineOp<Conv2dAttrs>({
  operands: ["x", "weight", "bias?"],
  infer: ([x, w, b], a) => {
    requireFloat(x!, "x");
    requireRank(x!, 4, "x");
    requireRank(w!, 4, "weight");
    const [B, C, H, W] = x!.shape as [number, number, number, number];
    const [O, I, KH, KW] = w!.shape as [number, number, number, number];
    check(isPositiveInt(a.groups) && C % a.groups === 0 && O % a.groups === 0, `groups ${a.groups} must divide ${C} input and ${O} output channels`);
    check(I * a.groups === C, `weight has ${I} input channels per group, x has ${C} channels in ${a.groups} groups`);
    check(a.stride.every(isPositiveInt), `stride must be positive, got [${a.stride}]`);
    if (b) check(sameShape(b.shape, [O]), `bias must be (${O}), got (${b.shape.join(", ")})`);
    const Ho = convOutSize(H, KH, a.stride[0], a.pads[0], a.pads[2]), Wo = convOutSize(W, KW, a.stride[1], a.pads[1], a.pads[3]);
    check(Ho > 0 && Wo > 0, `kernel ${KH}x${KW} does not fit the ${H}x${W} input`);
    return [{ dtype: x!.dtype, shape: [B, O, Ho, Wo] }];
  },
  kernel: ([x, w, b], a) => [convKernel(f(x!), f(w!), b ? f(b) : undefined, a)],
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
  check(Number.isInteger(axis) && axis >= -r && axis < r, `axis ${axis} is out of range for rank ${r}`);
  return normAxis(axis, r);
}

const softmax = defineOp<{ axis: number }>({
  operands: ["x"],
  infer: ([x], a) => {
    requireFloat(x!, "x");
    checkAxis(a.axis, x!);
    return [x!];
  },
  kernel: ([x], a) => [softmaxKernel(f(x!), normAxis(a.axis, x!.shape.length))],
});

/** LayerNorm over one axis (biased variance); optional affine of that axis's length. */
const layer_norm = defineOp<{ axis: number; eps: number }>({
  operands: ["x", "weight?", "bias?"],
  infer: ([x, w, b], a) => {
    requireFloat(x!, "x");
    const axis = checkAxis(a.axis, x!);
    check((w === undefined) === (b === undefined), "weight and bias come together");
    if (w) check(sameShape(w.shape, [x!.shape[axis]!]) && sameShape(b!.shape, w.shape), `affine must be (${x!.shape[axis]})`);
    check(a.eps > 0, `eps must be positive, got ${a.eps}`);
    return [x!];
  },
  kernel: ([x, w, b], a) => [lnKernel(f(x!), normAxis(a.axis, x!.shape.length), a.eps, w ? f(w).data : undefined, b ? f(b).data : undefined)],
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
      check(new Set(axes).size === axes.length, `axes [${a.axes}] repeat an axis`);
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
  einsum,
  softmax,
  layer_norm,
  reduce_sum: reduceOp("sum"),
  reduce_mean: reduceOp("mean"),
  reduce_max: reduceOp("max"),
};
