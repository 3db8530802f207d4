// Runtime tensors as the kernels see them: a flat typed array plus a row-major shape.
// Floats are always computed in float32 (f16 values are stored widened); integers keep their width.
import type { DType } from "../ir/dtype.js";
import { decodeF16 } from "./fp16.js";

export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface FloatTensor extends Tensor {
  readonly dtype: "f32" | "f16";
  readonly data: Float32Array;
  /** set on a palettized weight: the values are lut[group·entries + index] */
  readonly palette?: PaletteForm;
  /** set on a weight stored as fp16: its bit patterns (`data` widens them once, on demand) */
  readonly half?: Uint16Array;
}

/** A palettized tensor's compact form; groups split axis 0 into equal runs, one LUT each. */
export interface PaletteForm {
  indices: Uint8Array;
  lut: Float32Array;
  entries: number;
  groups: number;
}

/**
 * A palettized weight that stays compact: kernels that understand palettes (the fast gemm's
 * packing) read `palette`; anything that reads `data` gets the widened values, computed once.
 */
export function paletteTensor(shape: readonly number[], form: PaletteForm, dtype: "f32" | "f16"): FloatTensor {
  let widened: Float32Array | undefined;
  const { indices, lut, entries, groups } = form;
  return {
    dtype,
    shape: [...shape],
    palette: form,
    get data(): Float32Array {
      if (!widened) {
        widened = new Float32Array(indices.length);
        const perGroup = indices.length / groups; // axis 0 is outermost, so each group is one run
        for (let g = 0, e = 0; g < groups; g++) {
          const base = g * entries;
          for (const end = e + perGroup; e < end; e++) widened[e] = lut[base + indices[e]!]!;
        }
      }
      return widened;
    },
  };
}

/**
 * A weight an f16 checkpoint stores, kept in its stored form: the fast gemm's packing widens the
 * patterns as it packs (src/kernels/fast.ts); anything that reads `data` gets them widened once.
 */
export function halfTensor(shape: readonly number[], bits: Uint16Array, dtype: "f32" | "f16" = "f32"): FloatTensor {
  let widened: Float32Array | undefined;
  return {
    dtype,
    shape: [...shape],
    half: bits,
    get data(): Float32Array {
      return (widened ??= decodeF16(bits));
    },
  };
}

/** The same elements in another shape (of as many elements), compact forms kept compact. */
export function withShape<T extends Tensor>(t: T, shape: readonly number[]): T {
  const f = t as unknown as FloatTensor;
  if (f.half) return halfTensor(shape, f.half, f.dtype) as unknown as T;
  if (f.palette) return paletteTensor(shape, f.palette, f.dtype) as unknown as T;
  return { ...t, shape: [...shape] };
}

/** Palettized and fp16-stored tensors: their `data` is a widened copy made on demand. */
export const isCompact = (t: Tensor): boolean => !!((t as FloatTensor).palette || (t as FloatTensor).half);

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]!; // indexed: called per inferred node, an iterator each was garbage
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

/**
 * The same walk over fewer axes: unit axes dropped, and an axis merged into the next inner one
 * wherever every operand's strides step through the two as one (so the innermost run is as long
 * as it can be). `strides` holds one list per operand, aligned with `dims`.
 */
export function mergeAxes(dims: readonly number[], strides: readonly (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const keep = dims.map((d) => d !== 1);
  const d = dims.filter((_, i) => keep[i]);
  const s = strides.map((st) => st.filter((_, i) => keep[i]));
  for (let i = d.length - 2; i >= 0; i--)
    if (s.every((st) => st[i] === st[i + 1]! * d[i + 1]!)) {
      d.splice(i, 2, d[i]! * d[i + 1]!);
      for (const st of s) st.splice(i, 1);
    }
  return { dims: d, strides: s };
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

/**
 * Integer data as int32 (values wrap as Int32Array stores them). A typed-array copy converts
 * natively; a mapping callback (`Int32Array.from(d, Number)`) cost ~100 ns an element.
 */
export function int32Of(data: TensorData): Int32Array {
  if (data instanceof Int32Array) return data;
  const out = new Int32Array(data.length);
  if (data instanceof BigInt64Array) for (let i = 0; i < data.length; i++) out[i] = Number(BigInt.asIntN(32, data[i]!));
  else out.set(data);
  return out;
}

export function asFloat(t: Tensor, what = "operand"): FloatTensor {
  // a palettized or fp16-stored tensor is float without asking for its data (which would widen it whole)
  if (isCompact(t)) return t as FloatTensor;
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
