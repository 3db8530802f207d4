// Tensor data to little-endian bytes in a target dtype (float32, float16 or int32), shared by
// the emitters; weights are encoded one tensor at a time as they are written.
import type { DType } from "../ir/dtype.js";
import { encodeF16 } from "../kernels/fp16.js";
import type { Tensor } from "../kernels/tensor.js";

export function tensorBytes(t: Tensor, dtype: DType): Uint8Array {
  const d = t.data;
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case "f32":
      return view(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>));
    case "f16":
      return view(encodeF16(d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>)));
    case "i32":
      return view(d instanceof Int32Array ? d : Int32Array.from(Array.from(d as ArrayLike<number | bigint>, Number)));
    case "i64":
      return view(d instanceof BigInt64Array ? d : BigInt64Array.from(Array.from(d as ArrayLike<number | bigint>, (x) => BigInt(x))));
    case "i8":
      return view(d instanceof Int8Array ? d : Int8Array.from(d as ArrayLike<number>));
    case "u8":
    case "bool":
      return view(d instanceof Uint8Array ? d : Uint8Array.from(d as ArrayLike<number>));
    case "u4": {
      // two per byte, the lower index in the low nibble (ONNX's and CoreML's packing)
      const src = d as ArrayLike<number>;
      const out = new Uint8Array(Math.ceil(src.length / 2));
      for (let i = 0; i < src.length; i++) out[i >> 1]! |= (src[i]! & 15) << ((i & 1) * 4);
      return out;
    }
  }
}

/** The inverse of the u4 packing: n indices from two-per-byte storage, low nibble first. */
export function unpackU4(packed: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (packed[i >> 1]! >> ((i & 1) * 4)) & 15;
  return out;
}
