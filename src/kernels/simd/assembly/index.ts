// The WebAssembly module of ditc's fast kernels: what JavaScript calls (src/kernels/simd/).
export { gemm, packed_bytes, pack_f32, pack_f16, pack_lut } from "./gemm";
export { attention, attention_pack, attention_pack_bytes, attention_scratch_bytes } from "./attention";
export { copy_strided, depthwise, reduce } from "./layout";
export { binary, layer_norm, rope, softmax, softmax_scratch_bytes, unary } from "./elementwise";

/** First byte past the module's own static data; the blocks JavaScript hands out start above it. */
export function heap_base(): usize {
  return __heap_base;
}
