// The closed set of element types a value in the IR can have.
// u4 holds palettization indices: one per byte in memory, two per byte in files; i8 holds
// per-channel quantized weights.
export const DTYPES = ["f32", "f16", "i32", "i64", "u8", "u4", "i8", "bool"] as const;
export type DType = (typeof DTYPES)[number];
export type FloatDType = Extract<DType, "f32" | "f16">;

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, i32: 4, i64: 8, u8: 1, u4: 0.5, i8: 1, bool: 1 };

/** Bytes a tensor of this type takes in a file (u4 two per byte, rounded up). */
export function storedBytes(t: { readonly dtype: DType; readonly shape: readonly number[] }): number {
  return Math.ceil(t.shape.reduce((a, d) => a * d, 1) * BYTES_PER_ELEMENT[t.dtype]);
}

export function isFloat(d: DType): d is FloatDType {
  return d === "f32" || d === "f16";
}

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

export function isInteger(d: DType): boolean {
  return d === "i32" || d === "i64" || d === "u8" || d === "u4" || d === "i8" || d === "bool";
}
