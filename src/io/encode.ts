// Tensor data to little-endian bytes in a target dtype (float32, float16 or int32), shared by
// the emitters; weights are encoded one tensor at a time as they are written.
import type { DType } from "../ir/dtype.js";
import { encodeF16 } from "../kernels/fp16.js";
import { int32Of, type FloatTensor, type Tensor } from "../kernels/tensor.js";

export function tensorBytes(t: Tensor, dtype: DType): Uint8Array {
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  // values stored as fp16 patterns (an f16 checkpoint's weight) written in fp16 are those
  // patterns exactly; reading `data` would widen them whole
  const half = (t as FloatTensor).half;
  if (dtype === "f16" && half) return view(half);
  const d = t.data;
  switch (dtype) {
    case "f32":
      return view(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>));
    case "f16":
      return view(encodeF16(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>)));
    case "i32":
      return view(int32Of(d));
    case "i64":
      return view(d instanceof BigInt64Array ? d : BigInt64Array.from(Array.from(d as ArrayLike<number | bigint>, (x) => BigInt(x))));
    case "i8":
      return view(d instanceof Int8Array ? d : Int8Array.from(d as ArrayLike<number>));
    case "u8":
    case "bool":
      return view(d instanceof Uint8Array ? d : Uint8Array.from(d as ArrayLike<number>));
    case "u4":
      return packU4(d as ArrayLike<number>);
  }
}

/**
 * Palette indices packed for each target that writes them (three targets of one width share one
 * clustering): the packing of an indices array is kept as long as the array lives. Index arrays
 * are never written to after clustering, so a kept packing cannot go stale.
 */
const packedU4 = new WeakMap<object, Uint8Array>();

/** Records `packed` as the packing of `indices` (packed elsewhere, on a worker thread say). */
export function rememberPackedU4(indices: Uint8Array, packed: Uint8Array): void {
  if (packed.length !== Math.ceil(indices.length / 2)) throw new Error(`internal: ${packed.length} packed bytes for ${indices.length} indices`);
  packedU4.set(indices, packed);
}

/** Two indices per byte, the lower index in the low nibble (ONNX's and CoreML's packing). */
export function packU4(src: ArrayLike<number>): Uint8Array {
  const kept = packedU4.get(src);
  if (kept) return kept;
  const out = packU4Into(src, new Uint8Array(Math.ceil(src.length / 2)));
  if (src.length >= 1 << 16) packedU4.set(src, out);
  return out;
}

/** packU4 into `out` (zeroed, ceil(n / 2) bytes). */
export function packU4Into(src: ArrayLike<number>, out: Uint8Array): Uint8Array {
  let i = 0;
  if (src instanceof Uint8Array && src.byteOffset % 4 === 0 && out.byteOffset % 4 === 0) {
    // eight indices (two words) to one word: each word's bytes i0..i3 become nibble pairs i0|i1<<4, i2|i3<<4
    const words = src.length >> 3;
    const in32 = new Uint32Array(src.buffer, src.byteOffset, 2 * words), out32 = new Uint32Array(out.buffer, out.byteOffset, words);
    const pairs = (x: number) => {
      const y = (x & 0x000f000f) | ((x >>> 4) & 0x00f000f0);
      return (y & 0xff) | ((y >>> 8) & 0xff00);
    };
    for (let q = 0; q < words; q++) out32[q] = (pairs(in32[2 * q]!) | (pairs(in32[2 * q + 1]!) << 16)) >>> 0;
    i = 8 * words;
  }
  for (; i < src.length; i++) out[i >> 1]! |= (src[i]! & 15) << ((i & 1) * 4);
  return out;
}

/** The inverse of the u4 packing: n indices from two-per-byte storage, low nibble first. */
export function unpackU4(packed: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (packed[i >> 1]! >> ((i & 1) * 4)) & 15;
  return out;
}
