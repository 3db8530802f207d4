// Runtime tensors as the kernels see them: a flat typed array plus a row-major shape.
// Floats are always computed in float32 (f16 values are stored widened); integers keep their width.
import type { DType } from "../ir/dtype.js";

export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface FloatTensor extends Tensor {
  readonly dtype: "f32" | "f16";
  readonly data: Float32Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function floatTensor(shape: readonly number[], data?: Float32Array, dtype: "f32" | "f16" = "f32"): FloatTensor {
  const n = numel(shape);
  const d = data ?? new Float32Array(n);
  if (d.length !== n) throw new Error(`internal: tensor data has ${d.length} elements, shape ${shapeStr(shape)} needs ${n}`);
  return { dtype, shape: [...shape], data: d };
}

export function intTensor(shape: readonly number[], data: Int32Array): Tensor {
  return { dtype: "i32", shape: [...shape], data };
}

export function asFloat(t: Tensor, what = "operand"): FloatTensor {
  if (!(t.data instanceof Float32Array)) throw new Error(`internal: ${what} must be a float tensor, got ${t.dtype}`);
  return t as FloatTensor;
}

export function shapeStr(shape: readonly number[]): string {
  return `(${shape.join(", ")})`;
}

/** Normalizes a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
