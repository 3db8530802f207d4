// Data-movement ops (no arithmetic), constants and casts.
import type { ConstValue } from "../ir/graph.js";
import { isFloat, isInteger, type DType } from "../ir/dtype.js";
import { concat as concatK, roundToF16, slice as sliceK, transpose as transposeK } from "../kernels/fast.js";
import { gather as gatherK, pixelShuffle, split as splitK } from "../kernels/layout.js";
import { asFloat, floatTensor, int32Of, normAxis, numel, paletteTensor, type Tensor } from "../kernels/tensor.js";
import { check, defineOp, isPositiveInt, requireFloat, requireRank, sameShape } from "./define.js";

const f = (t: Tensor) => asFloat(t);

/** `perm` holds each of 0..r-1 once. */
function isPermutation(perm: readonly number[], r: number): boolean {
  if (perm.length !== r) return false;
  if (r > 30) return [...perm].sort((p, q) => p - q).every((p, i) => p === i);
  let seen = 0;
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= r || seen & (1 << p)) return false;
    seen |= 1 << p;
  }
  return true;
}

const constant = defineOp<{ value: ConstValue }>({
  operands: [],
  infer: (_, a) => [a.value.type],
  kernel: (_, a) => {
    // an f16 checkpoint's weight loads as its fp16 patterns (halfTensor), widened only by what
    // reads its values: the gemm's packing does as it goes
    const t = a.value.load();
    check(sameShape(t.shape, a.value.type.shape), () => `constant ${a.value.source} loaded as (${t.shape}), declared (${a.value.type.shape})`);
    return [t];
  },
  printAttrs: (a) => `"${a.value.source}"`,
});

const reshape = defineOp<{ shape: number[] }>({
  operands: ["x"],
  infer: ([x], a) => {
    check(a.shape.every((d) => Number.isInteger(d) && d >= 0), () => `target shape [${a.shape}] must be explicit non-negative sizes`);
    check(numel(a.shape) === numel(x!.shape), () => `cannot reshape (${x!.shape.join(", ")}) to (${a.shape.join(", ")}): element counts differ`);
    return [{ dtype: x!.dtype, shape: a.shape }];
  },
  kernel: ([x], a) => [{ dtype: x!.dtype, shape: a.shape, data: x!.data }],
  printAttrs: (a) => `[${a.shape}]`,
});

const transpose = defineOp<{ perm: number[] }>({
  operands: ["x"],
  infer: ([x], a) => {
    const r = x!.shape.length;
    check(isPermutation(a.perm, r), () => `perm [${a.perm}] is not a permutation of ${r} axes`);
    return [{ dtype: x!.dtype, shape: a.perm.map((p) => x!.shape[p]!) }];
  },
  kernel: ([x], a) => [transposeK(x!, a.perm)],
  printAttrs: (a) => `[${a.perm}]`,
});

const slice = defineOp<{ begin: number[]; size: number[] }>({
  operands: ["x"],
  infer: ([x], a) => {
    const r = x!.shape.length;
    check(a.begin.length === r && a.size.length === r, () => `begin and size need ${r} entries`);
    for (let d = 0; d < r; d++)
      check(a.begin[d]! >= 0 && a.size[d]! >= 0 && a.begin[d]! + a.size[d]! <= x!.shape[d]!, () => `axis ${d}: [${a.begin[d]}, ${a.begin[d]! + a.size[d]!}) is outside 0..${x!.shape[d]}`);
    return [{ dtype: x!.dtype, shape: a.size }];
  },
  kernel: ([x], a) => [sliceK(f(x!), a.begin, a.size)],
  printAttrs: (a) => `begin=[${a.begin}] size=[${a.size}]`,
});

const concat = defineOp<{ axis: number }>({
  operands: ["...xs"],
  infer: (xs, a) => {
    const r = xs[0]!.shape.length, axis = normAxis(a.axis, r);
    check(axis >= 0 && axis < r, () => `axis ${a.axis} out of range for rank ${r}`);
    for (const x of xs) {
      check(x.dtype === xs[0]!.dtype, "operand dtypes differ");
      check(x.shape.length === r && x.shape.every((d, i) => i === axis || d === xs[0]!.shape[i]), () => `shapes (${xs.map((t) => t.shape.join("x")).join("), (")}) differ off axis ${axis}`);
    }
    const shape = [...xs[0]!.shape];
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
    return [{ dtype: xs[0]!.dtype, shape }];
  },
  kernel: (xs, a) => [concatK(xs.map(f), normAxis(a.axis, xs[0]!.shape.length))],
});

const split = defineOp<{ axis: number; sizes: number[] }>({
  operands: ["x"],
  infer: ([x], a) => {
    const r = x!.shape.length, axis = normAxis(a.axis, r);
    check(axis >= 0 && axis < r, () => `axis ${a.axis} out of range for rank ${r}`);
    check(a.sizes.reduce((s, n) => s + n, 0) === x!.shape[axis], () => `sizes [${a.sizes}] do not add up to ${x!.shape[axis]}`);
    return a.sizes.map((s) => ({ dtype: x!.dtype, shape: x!.shape.map((d, i) => (i === axis ? s : d)) }));
  },
  kernel: ([x], a) => splitK(f(x!), normAxis(a.axis, x!.shape.length), a.sizes),
});

const gather = defineOp<{ axis: number }>({
  operands: ["x", "indices"],
  infer: ([x, i], a) => {
    const r = x!.shape.length, axis = normAxis(a.axis, r);
    check(axis >= 0 && axis < r, () => `axis ${a.axis} out of range for rank ${r}`);
    check(isInteger(i!.dtype) && i!.dtype !== "bool", () => `indices must be integers, got ${i!.dtype}`);
    return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, axis), ...i!.shape, ...x!.shape.slice(axis + 1)] }];
  },
  kernel: ([x, i], a) => [gatherK(x!, i!, normAxis(a.axis, x!.shape.length))],
});

/**
 * (B, C·r², H, W) -> (B, C, H·r, W·r); the NHWC form is the same map on (B, H, W, C·r²) ->
 * (B, H·r, W·r, C). Channel order "CRD" is PyTorch's PixelShuffle (c·r² + i·r + j), "DCR"
 * TensorFlow's depth_to_space ((i·r + j)·C + c), which TFLite's DEPTH_TO_SPACE computes.
 */
const pixel_shuffle = defineOp<{ factor: number; layout: "NCHW" | "NHWC"; order: "CRD" | "DCR" }>({
  operands: ["x"],
  infer: ([x], a) => {
    requireFloat(x!, "x");
    requireRank(x!, 4, "x");
    const nhwc = a.layout === "NHWC";
    const [B, C, H, W] = (nhwc ? [0, 3, 1, 2].map((p) => x!.shape[p]!) : x!.shape) as [number, number, number, number];
    const r = a.factor;
    check(isPositiveInt(r) && C % (r * r) === 0, () => `${C} channels are not divisible by factor² = ${r * r}`);
    const Co = C / (r * r);
    return [{ dtype: x!.dtype, shape: nhwc ? [B, H * r, W * r, Co] : [B, Co, H * r, W * r] }];
  },
  kernel: ([x], a) =>
    a.layout === "NCHW" ? [pixelShuffle(f(x!), a.factor, a.order)] : [transposeK(pixelShuffle(transposeK(f(x!), [0, 3, 1, 2]), a.factor, a.order), [0, 2, 3, 1])],
});

/** Float <-> float casts (f16 rounds to half precision; values stay widened in memory), and integers to i32. */
const cast = defineOp<{ to: DType }>({
  operands: ["x"],
  infer: ([x], a) => {
    check((isFloat(x!.dtype) && isFloat(a.to)) || (isInteger(x!.dtype) && a.to === "i32"), () => `casts are float to float or integer to i32, got ${x!.dtype} -> ${a.to}`);
    return [{ dtype: a.to, shape: x!.shape }];
  },
  kernel: ([x], a) => {
    if (a.to === "i32") return [{ dtype: "i32", shape: x!.shape, data: x!.data instanceof Int32Array ? x!.data.slice() : int32Of(x!.data) }];
    const data = f(x!).data.slice();
    if (a.to === "f16") roundToF16(data);
    return [floatTensor(x!.shape, data, a.to as "f32" | "f16")];
  },
});

/**
 * A palettized weight: out[i] = lut[indices[i]], or with per-grouped-channel LUTs (G, K) the
 * LUT of the group of axis-0 rows element i is in (G groups of shape[0]/G rows). Indices are u4
 * (16 entries) or u8 (256). CoreML maps this to constexpr_lut_to_dense, ONNX to an in-graph lookup.
 */
const lut_to_dense = defineOp<Record<string, never>>({
  operands: ["indices", "lut"],
  infer: ([i, l]) => {
    check(i!.dtype === "u4" || i!.dtype === "u8", () => `indices must be u4 or u8, got ${i!.dtype}`);
    requireFloat(l!, "lut");
    const k = i!.dtype === "u4" ? 16 : 256;
    check(l!.shape.length === 1 || l!.shape.length === 2, () => `the LUT must be (K) or (groups, K), got (${l!.shape.join(", ")})`);
    check(l!.shape[l!.shape.length - 1] === k, () => `a ${i!.dtype} palette has ${k} entries, the LUT has ${l!.shape[l!.shape.length - 1]}`);
    if (l!.shape.length === 2) check(i!.shape.length >= 1 && i!.shape[0]! % l!.shape[0]! === 0, () => `${l!.shape[0]} LUT groups do not divide the ${i!.shape[0]} rows`);
    return [{ dtype: l!.dtype, shape: i!.shape }];
  },
  kernel: ([i, l]) => {
    const entries = l!.shape[l!.shape.length - 1]!, groups = l!.shape.length === 2 ? l!.shape[0]! : 1;
    return [paletteTensor(i!.shape, { indices: i!.data as Uint8Array, lut: f(l!).data, entries, groups }, l!.dtype as "f32" | "f16")];
  },
});

/**
 * A per-channel quantized weight: out = q · scale[row], one scale per index of axis 0 (symmetric
 * int8, zero point 0). TFLite maps it to an INT8 tensor with per-channel quantization feeding
 * DEQUANTIZE, ONNX to DequantizeLinear(axis 0).
 */
const dequantize = defineOp<Record<string, never>>({
  operands: ["q", "scale"],
  infer: ([q, s]) => {
    check(q!.dtype === "i8", () => `q must be i8, got ${q!.dtype}`);
    requireFloat(s!, "scale");
    check(q!.shape.length >= 1 && sameShape(s!.shape, [q!.shape[0]!]), () => `scale must be (${q!.shape[0]}), one per row of q, got (${s!.shape.join(", ")})`);
    return [{ dtype: s!.dtype, shape: q!.shape }];
  },
  kernel: ([q, s]) => {
    const data = q!.data as Int8Array, scale = f(s!).data;
    const perRow = data.length / scale.length;
    const out = new Float32Array(data.length);
    for (let e = 0; e < data.length; e++) out[e] = data[e]! * scale[Math.floor(e / perRow)]!;
    return [floatTensor(q!.shape, out, s!.dtype as "f32" | "f16")];
  },
});

export const layoutOps = { const: constant, reshape, transpose, slice, concat, split, gather, pixel_shuffle, cast, lut_to_dense, dequantize };
