// The fast matrix multiply as JavaScript calls it: operands described as strided views, copied
// into the engine's memory, B packed (widened from float16 bits or a palette on the way, so a
// compressed weight never exists as a float32 copy), C = bias + A · B on every thread. Operands
// that already live in the engine's memory (results of earlier kernels) are used in place.
import { simdEngine } from "./engine.js";

/** A (M x K) operand: element (i, k) at off + i·rs + k·cs of data. */
export interface MatrixView {
  data: Float32Array;
  off: number;
  rs: number;
  cs: number;
}

/** The B (K x N) operand: element (k, n) at off + k·sK + n·sN of its data, in one of three forms. */
export type BOperand =
  | { kind: "f32"; data: Float32Array; off: number; sK: number; sN: number }
  | { kind: "f16"; bits: Uint16Array; off: number; sK: number; sN: number }
  /** palette: value = lut[floor(n / nPerGroup)·entries + indices[...]] */
  | { kind: "lut"; indices: Uint8Array; off: number; sK: number; sN: number; lut: Float32Array; entries: number; nPerGroup: number };

/** Below this many multiply-adds a job stays on the calling thread (waking the pool costs ~10 µs). */
export const PARALLEL_MIN_MACS = 1 << 18;

/** The elements a strided view touches: [first, last] of the index range. */
function span(off: number, rows: number, rs: number, cols: number, cs: number): [number, number] {
  let lo = off, hi = off;
  if (rows > 1) (rs >= 0 ? (hi += (rows - 1) * rs) : (lo += (rows - 1) * rs));
  if (cols > 1) (cs >= 0 ? (hi += (cols - 1) * cs) : (lo += (cols - 1) * cs));
  return [lo, hi];
}

/** Packs B into working memory (copying it in first unless it lives there); returns the packed pointer. */
function packB(B: BOperand, K: number, N: number, threads: number): number {
  const e = simdEngine();
  const [lo, hi] = span(B.off, K, B.sK, N, B.sN);
  const bp = e.alloc(e.kernels.packed_bytes(N, K));
  const count = hi - lo + 1;
  if (B.kind === "f32") {
    const src = e.holds(B.data) ? B.data.byteOffset + lo * 4 : e.put(B.data.subarray(lo, hi + 1));
    e.parallel("pack_f32", [N, K, src + (B.off - lo) * 4, B.sN * 4, B.sK * 4, bp], threads);
  } else if (B.kind === "f16") {
    const src = e.alloc(count * 2);
    e.u16(src, count).set(B.bits.subarray(lo, hi + 1));
    e.parallel("pack_f16", [N, K, src + (B.off - lo) * 2, B.sN * 2, B.sK * 2, bp], threads);
  } else {
    const src = e.alloc(count);
    e.u8(src, count).set(B.indices.subarray(lo, hi + 1));
    const lut = e.put(B.lut);
    e.parallel("pack_lut", [N, K, src + (B.off - lo), B.sN, B.sK, lut, B.entries, B.nPerGroup, bp], threads);
  }
  return bp;
}

/**
 * C(i, n) = bias[n] + Σ_k A(i, k) · B(k, n) for i < M, n < N, C a view like A (bias[i] when
 * `biasPerRow`). The same bits for every thread count.
 */
export function gemmFast(M: number, N: number, K: number, A: MatrixView, B: BOperand, C: MatrixView, bias?: Float32Array, biasPerRow = false): void {
  if (M === 0 || N === 0) return;
  const e = simdEngine();
  const threads = M * N * K >= PARALLEL_MIN_MACS ? e.info().threads : 1;
  const mark = e.mark();
  try {
    const [lo, hi] = span(A.off, M, A.rs, K, A.cs);
    const a = e.holds(A.data) ? A.data.byteOffset + lo * 4 : e.put(A.data.subarray(lo, hi + 1));
    const bp = packB(B, K, N, threads);
    const b = bias ? e.input(bias) : 0;
    // 128 bytes of edge-block scratch per thread, then the counter the threads take blocks by
    const scratch = e.alloc(128 * threads + 4);
    e.i32(scratch, 32 * threads + 1).fill(0);
    // C in place when it is a dense block of the memory; otherwise computed in working memory and copied
    const inPlace = e.holds(C.data) && C.cs === 1 && C.rs >= N;
    const c = inPlace ? C.data.byteOffset + C.off * 4 : e.alloc(M * N * 4);
    const ldc = inPlace ? C.rs : N;
    e.parallel("gemm", [M, N, K, a + (A.off - lo) * 4, A.rs * 4, A.cs * 4, bp, c, ldc * 4, b, biasPerRow ? 1 : 0, scratch], threads);
    if (inPlace) return;
    const result = e.f32(c, M * N);
    if (C.cs === 1 && C.rs === N) C.data.set(result, C.off);
    else if (C.cs === 1) for (let i = 0; i < M; i++) C.data.set(result.subarray(i * N, (i + 1) * N), C.off + i * C.rs);
    else for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) C.data[C.off + i * C.rs + n * C.cs] = result[i * N + n]!;
  } finally {
    e.release(mark);
  }
}
