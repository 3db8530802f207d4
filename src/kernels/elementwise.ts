// Elementwise kernels: numpy-style broadcasting binary ops and pointwise unary functions.
import { floatTensor, numel, type FloatTensor } from "./tensor.js";

export type BinaryFn = (a: number, b: number) => number;

/** numpy broadcasting of two shapes; returns undefined when they are incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` seen through the broadcast `outShape` (0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const s = new Array<number>(rank).fill(0);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const o = rank - shape.length + i;
    s[o] = shape[i] === 1 ? 0 : acc;
    acc *= shape[i]!;
  }
  return s;
}

export function binary(a: FloatTensor, b: FloatTensor, f: BinaryFn): FloatTensor {
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) throw new Error(`internal: shapes (${a.shape}) and (${b.shape}) do not broadcast`);
  const n = numel(shape);
  const out = new Float32Array(n);
  const A = a.data, B = b.data;
  if (A.length === n && B.length === n) {
    for (let i = 0; i < n; i++) out[i] = f(A[i]!, B[i]!);
  } else if (A.length === n && n % B.length === 0 && isSuffix(b.shape, shape)) {
    const m = B.length;
    for (let i = 0; i < n; i++) out[i] = f(A[i]!, B[i % m]!);
  } else if (B.length === n && n % A.length === 0 && isSuffix(a.shape, shape)) {
    const m = A.length;
    for (let i = 0; i < n; i++) out[i] = f(A[i % m]!, B[i]!);
  } else {
    const sa = broadcastStrides(a.shape, shape), sb = broadcastStrides(b.shape, shape);
    const rank = shape.length, idx = new Array<number>(rank).fill(0);
    let ia = 0, ib = 0;
    for (let i = 0; i < n; i++) {
      out[i] = f(A[ia]!, B[ib]!);
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]!++;
        ia += sa[d]!; ib += sb[d]!;
        if (idx[d]! < shape[d]!) break;
        ia -= sa[d]! * shape[d]!; ib -= sb[d]! * shape[d]!;
        idx[d] = 0;
      }
    }
  }
  return floatTensor(shape, out);
}

/** True when `s`, ignoring leading 1s, equals the trailing axes of `full` (so a flat modulo indexes it). */
function isSuffix(s: readonly number[], full: readonly number[]): boolean {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  const tail = s.slice(i);
  const fullTail = full.slice(full.length - tail.length);
  return tail.every((d, k) => d === fullTail[k]);
}

export function unary(x: FloatTensor, f: (v: number) => number): FloatTensor {
  const out = new Float32Array(x.data.length);
  const X = x.data;
  for (let i = 0; i < X.length; i++) out[i] = f(X[i]!);
  return floatTensor(x.shape, out);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export const unaryFns = {
  gelu_tanh: (v: number) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v))),
  silu: (v: number) => v / (1 + Math.exp(-v)),
  sigmoid: (v: number) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
  exp: Math.exp,
  sqrt: Math.sqrt,
  rsqrt: (v: number) => 1 / Math.sqrt(v),
  neg: (v: number) => -v,
  sin: Math.sin,
  cos: Math.cos,
} satisfies Record<string, (v: number) => number>;

export const binaryFns = {
  add: (a: number, b: number) => a + b,
  sub: (a: number, b: number) => a - b,
  mul: (a: number, b: number) => a * b,
  div: (a: number, b: number) => a / b,
  maximum: (a: number, b: number) => (a > b ? a : b),
  pow: (a: number, b: number) => a ** b,
} satisfies Record<string, BinaryFn>;

export type BinaryKind = keyof typeof binaryFns;
export type UnaryKind = keyof typeof unaryFns;

