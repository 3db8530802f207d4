// Matrix multiply on 128-bit SIMD: C (M x N) = bias + A (M x K) · B (K x N), the bias one value
// per column (a linear layer) or per row (an NCHW convolution's output channels).
//
// B is packed first into panels of 8 columns (panel p holds, for each k, B(k, 8p..8p+7)), so the
// inner loop loads two vectors of B and broadcasts one element of A per row: a 4 x 8 block of C
// lives in eight vector accumulators (the BLIS/XNNPACK shape that fits 16 registers). A is read
// in place through two strides, so a transposed or strided A costs nothing. K is cut into
// KC-long slices so a panel slice stays in L1 while MC rows of A stream past it.
//
// Determinism: every element of C is bias, then + the sum of each K slice in order, each sum
// accumulated k by k in one lane. Which thread computes it, and whether its block is a full or
// an edge block, changes nothing, so any thread count gives the same bits.
import { madd, shareLo, halfToFloat } from "./common";

const KC: i32 = 256;
const MC_TILES: i32 = 32; // 128 rows of A per pass over the panels

/**
 * Adds A's rows a0..a3 (element k at a_r + k·ks) times kn rows of the panel slice at b to the
 * 4 x 8 block at c, or with `init` stores them plus the bias instead (what the block held is not
 * read: bias then the sum, the same single rounding as adding the sum onto a block set to the
 * bias). `bias`: the block's 8 column values, or with rowBias its 4 row values, or 0 for none. An
 * edge block (rows < 4 or cols < 8) repeats row pointers for the missing rows and goes through
 * `edge`, so its kept elements see exactly the arithmetic of a full block.
 */
function tile4x8(a0: usize, a1: usize, a2: usize, a3: usize, ks: usize, b: usize, kn: i32, c: usize, ldc: usize, rows: i32, cols: i32, edge: usize, init: bool, bias: usize, rowBias: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kn; k++) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let x = v128.load32_splat(a0);
    c00 = madd(x, b0, c00); c01 = madd(x, b1, c01);
    x = v128.load32_splat(a1);
    c10 = madd(x, b0, c10); c11 = madd(x, b1, c11);
    x = v128.load32_splat(a2);
    c20 = madd(x, b0, c20); c21 = madd(x, b1, c21);
    x = v128.load32_splat(a3);
    c30 = madd(x, b0, c30); c31 = madd(x, b1, c31);
    a0 += ks; a1 += ks; a2 += ks; a3 += ks; b += 32;
  }
  if (rows == 4 && cols == 8) {
    if (init) {
      if (bias && rowBias) {
        let x = v128.load32_splat(bias);
        v128.store(c, f32x4.add(x, c00)); v128.store(c, f32x4.add(x, c01), 16); c += ldc;
        x = v128.load32_splat(bias, 4);
        v128.store(c, f32x4.add(x, c10)); v128.store(c, f32x4.add(x, c11), 16); c += ldc;
        x = v128.load32_splat(bias, 8);
        v128.store(c, f32x4.add(x, c20)); v128.store(c, f32x4.add(x, c21), 16); c += ldc;
        x = v128.load32_splat(bias, 12);
        v128.store(c, f32x4.add(x, c30)); v128.store(c, f32x4.add(x, c31), 16);
      } else {
        // no bias adds zeros: a sum of -0 comes out +0, as from a block set to 0
        const b0 = bias ? v128.load(bias) : f32x4.splat(0), b1 = bias ? v128.load(bias, 16) : f32x4.splat(0);
        v128.store(c, f32x4.add(b0, c00)); v128.store(c, f32x4.add(b1, c01), 16); c += ldc;
        v128.store(c, f32x4.add(b0, c10)); v128.store(c, f32x4.add(b1, c11), 16); c += ldc;
        v128.store(c, f32x4.add(b0, c20)); v128.store(c, f32x4.add(b1, c21), 16); c += ldc;
        v128.store(c, f32x4.add(b0, c30)); v128.store(c, f32x4.add(b1, c31), 16);
      }
      return;
    }
    v128.store(c, f32x4.add(v128.load(c), c00)); v128.store(c, f32x4.add(v128.load(c, 16), c01), 16); c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c10)); v128.store(c, f32x4.add(v128.load(c, 16), c11), 16); c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c20)); v128.store(c, f32x4.add(v128.load(c, 16), c21), 16); c += ldc;
    v128.store(c, f32x4.add(v128.load(c), c30)); v128.store(c, f32x4.add(v128.load(c, 16), c31), 16);
    return;
  }
  v128.store(edge, c00); v128.store(edge, c01, 16); v128.store(edge, c10, 32); v128.store(edge, c11, 48);
  v128.store(edge, c20, 64); v128.store(edge, c21, 80); v128.store(edge, c30, 96); v128.store(edge, c31, 112);
  for (let r = 0; r < rows; r++) {
    const row = c + <usize>r * ldc, src = edge + (<usize>r << 5);
    for (let j = 0; j < cols; j++) {
      const held: f32 = !init ? load<f32>(row + (<usize>j << 2)) : !bias ? 0 : load<f32>(bias + (<usize>(rowBias ? r : j) << 2));
      store<f32>(row + (<usize>j << 2), held + load<f32>(src + (<usize>j << 2)));
    }
  }
}

/**
 * Thread `tid` of `nt`'s share of C = bias + A · Bp. A element (i, k) at a + i·rsA + k·ksA; Bp
 * packed by a pack_* export for this K; C row-major with row stride ldc; bias: N floats (one per
 * column), M floats when rowBias (one per row), or 0; scratch: 128 bytes per thread, then an i32
 * the caller zeroed.
 *
 * The threads take blocks of C as they come free (one shared counter), so a thread that starts
 * late or runs slower takes fewer: runs of row tiles when C is tall, else runs of panels.
 */
export function gemm(tid: i32, nt: i32, M: i32, N: i32, K: i32, a: usize, rsA: usize, ksA: usize, bp: usize, c: usize, ldc: usize, bias: usize, rowBias: bool, scratch: usize): void {
  const edge = scratch + (<usize>tid << 7), counter = scratch + (<usize>nt << 7);
  const rowTiles = (M + 3) >> 2, panels = (N + 7) >> 3;
  // share the longer side: each block then streams the other operand's whole extent once (a
  // wide B, like an NCHW 1x1 convolution's activations, is read once instead of per row block)
  const byRows = rowTiles >= panels;
  // at least four blocks a thread where C allows, at most MC_TILES rows or PANEL_RUN panels each
  const run = byRows ? clampRun(rowTiles, nt, MC_TILES) : clampRun(panels, nt, PANEL_RUN);
  const items = ((byRows ? rowTiles : panels) + run - 1) / run;
  for (let item = atomic.add<i32>(counter, 1); item < items; item = atomic.add<i32>(counter, 1)) {
    if (byRows) gemmBlock(M, N, K, a, rsA, ksA, bp, <usize>K << 5, c, ldc, bias, rowBias, edge, true, item * run, min(rowTiles, (item + 1) * run), 0, panels);
    else gemmBlock(M, N, K, a, rsA, ksA, bp, <usize>K << 5, c, ldc, bias, rowBias, edge, true, 0, rowTiles, item * run, min(panels, (item + 1) * run));
  }
}

/** Panels a thread takes at once when C is too short to share by rows. */
const PANEL_RUN: i32 = 16;

@inline function clampRun(units: i32, nt: i32, most: i32): i32 {
  return max(1, min(most, units / (4 * nt)));
}

/**
 * Row tiles [r0, r1) (4 rows each) by panels [p0, p1) (8 columns each) of C = bias + A · Bp, or,
 * with init false, C += A · Bp onto what C holds. Panel p starts at bp + p·panelBytes (K·32 for
 * a matrix packed on its own; more when Bp is the first K rows of a taller packed matrix).
 */
export function gemmBlock(M: i32, N: i32, K: i32, a: usize, rsA: usize, ksA: usize, bp: usize, panelBytes: usize, c: usize, ldc: usize, bias: usize, rowBias: bool, edge: usize, init: bool, r0: i32, r1: i32, p0: i32, p1: i32): void {
  if (r0 >= r1 || p0 >= p1) return;
  // the first K slice's tiles store bias + their sums; only an empty K leaves C to set here
  if (init && K == 0) {
    const i0 = r0 << 2, i1 = min(M, r1 << 2), j0 = p0 << 3, j1 = min(N, p1 << 3);
    for (let i = i0; i < i1; i++) {
      const row = c + <usize>i * ldc;
      if (rowBias) {
        const v = load<f32>(bias + (<usize>i << 2));
        for (let j = j0; j < j1; j++) store<f32>(row + (<usize>j << 2), v);
      } else for (let j = j0; j < j1; j++) store<f32>(row + (<usize>j << 2), bias ? load<f32>(bias + (<usize>j << 2)) : 0);
    }
  }
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kn = min(KC, K - k0);
    for (let m0 = r0; m0 < r1; m0 += MC_TILES) {
      const m1 = min(r1, m0 + MC_TILES);
      for (let p = p0; p < p1; p++) {
        const b = bp + <usize>p * panelBytes + (<usize>k0 << 5);
        const cols = min(8, N - (p << 3));
        for (let t = m0; t < m1; t++) {
          const i = t << 2, rows = min(4, M - i);
          const x0 = a + <usize>i * rsA + <usize>k0 * ksA;
          const x1 = rows > 1 ? x0 + rsA : x0, x2 = rows > 2 ? x1 + rsA : x1, x3 = rows > 3 ? x2 + rsA : x2;
          const tileBias = !bias ? 0 : rowBias ? bias + (<usize>i << 2) : bias + (<usize>p << 5);
          tile4x8(x0, x1, x2, x3, ksA, b, kn, c + <usize>i * ldc + (<usize>p << 5), ldc, rows, cols, edge, init && k0 == 0, tileBias, rowBias);
        }
      }
    }
  }
}

/** Bytes a packed B of N columns and K rows takes. */
export function packed_bytes(N: i32, K: i32): usize {
  return (<usize>((N + 7) >> 3) * <usize>K) << 5;
}

/** Packs B(k, n) = float32 at src + n·sN + k·sK into panels of 8 columns, zeros past N. */
export function pack_f32(tid: i32, nt: i32, N: i32, K: i32, src: usize, sN: usize, sK: usize, bp: usize): void {
  const panels = (N + 7) >> 3;
  for (let p = shareLo(panels, tid, nt), p1 = shareLo(panels, tid + 1, nt); p < p1; p++) {
    let dst = bp + ((<usize>p * <usize>K) << 5);
    const n0 = p << 3, cols = min(8, N - n0);
    const col0 = src + <usize>n0 * sN;
    if (cols == 8 && sN == 4) {
      for (let k = 0; k < K; k++, dst += 32) {
        const s = col0 + <usize>k * sK;
        v128.store(dst, v128.load(s)); v128.store(dst, v128.load(s, 16), 16);
      }
    } else {
      for (let k = 0; k < K; k++, dst += 32) {
        const s = col0 + <usize>k * sK;
        for (let j = 0; j < 8; j++) store<f32>(dst + (<usize>j << 2), j < cols ? load<f32>(s + <usize>j * sN) : 0);
      }
    }
  }
}

/** pack_f32 from IEEE half bits (u16 at src + n·sN + k·sK), widened exactly while packing. */
export function pack_f16(tid: i32, nt: i32, N: i32, K: i32, src: usize, sN: usize, sK: usize, bp: usize): void {
  const panels = (N + 7) >> 3;
  for (let p = shareLo(panels, tid, nt), p1 = shareLo(panels, tid + 1, nt); p < p1; p++) {
    let dst = bp + ((<usize>p * <usize>K) << 5);
    const n0 = p << 3, cols = min(8, N - n0);
    const col0 = src + <usize>n0 * sN;
    for (let k = 0; k < K; k++, dst += 32) {
      const s = col0 + <usize>k * sK;
      for (let j = 0; j < 8; j++) store<f32>(dst + (<usize>j << 2), j < cols ? halfToFloat(<u32>load<u16>(s + <usize>j * sN)) : 0);
    }
  }
}

/**
 * pack_f32 from a palette: B(k, n) = lut[g(n)·entries + idx] with idx the byte at
 * idxp + n·sN + k·sK and g(n) = floor(n / nPerGroup) (one palette per group of columns).
 */
export function pack_lut(tid: i32, nt: i32, N: i32, K: i32, idxp: usize, sN: usize, sK: usize, lut: usize, entries: i32, nPerGroup: i32, bp: usize): void {
  const panels = (N + 7) >> 3;
  for (let p = shareLo(panels, tid, nt), p1 = shareLo(panels, tid + 1, nt); p < p1; p++) {
    let dst = bp + ((<usize>p * <usize>K) << 5);
    const n0 = p << 3, cols = min(8, N - n0);
    const col0 = idxp + <usize>n0 * sN;
    for (let k = 0; k < K; k++, dst += 32) {
      const s = col0 + <usize>k * sK;
      for (let j = 0; j < 8; j++) {
        let v: f32 = 0;
        if (j < cols) {
          const table = lut + ((<usize>((n0 + j) / nPerGroup) * <usize>entries) << 2);
          v = load<f32>(table + (<usize>load<u8>(s + <usize>j * sN) << 2));
        }
        store<f32>(dst + (<usize>j << 2), v);
      }
    }
  }
}
