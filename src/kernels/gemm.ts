// Matrix multiply, the kernel most of the model's time is spent in.
//
// gemmNT computes C = A · Btᵀ with A (M, K) and Bt (N, K) both row-major, so every inner loop
// is a dot product over contiguous memory. It is blocked for the cache (K in KC-long panels,
// N in NC-wide panels, so one panel of Bt stays in L2 while all rows of A stream past it) and
// register-tiled (a 4 x 4 block of C lives in 16 local accumulators, so each loaded value is
// used four times). Plain A · B packs B transposed first: O(K N) extra work against O(M K N).

const KC = 256;
const NC = 96;

export function gemmNT(
  A: Float32Array, aOff: number,
  Bt: Float32Array, bOff: number,
  C: Float32Array, cOff: number,
  M: number, N: number, K: number,
  bias?: Float32Array,
): void {
  for (let i = 0; i < M; i++) {
    const row = cOff + i * N;
    if (bias) for (let j = 0; j < N; j++) C[row + j] = bias[j]!;
    else C.fill(0, row, row + N);
  }
  const M4 = M - (M % 4);
  const N4 = N - (N % 4);
  for (let k0 = 0; k0 < K; k0 += KC) {
    const k1 = Math.min(K, k0 + KC);
    for (let j0 = 0; j0 < N; j0 += NC) {
      const j1 = Math.min(N, j0 + NC);
      const j1v = Math.min(j1, N4);
      for (let i = 0; i < M4; i += 4) {
        const a0 = aOff + i * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
        let j = j0;
        for (; j < j1v; j += 4) {
          const b0 = bOff + j * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
          let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
          let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
          for (let k = k0; k < k1; k++) {
            const x0 = A[a0 + k]!, x1 = A[a1 + k]!, x2 = A[a2 + k]!, x3 = A[a3 + k]!;
            const y0 = Bt[b0 + k]!, y1 = Bt[b1 + k]!, y2 = Bt[b2 + k]!, y3 = Bt[b3 + k]!;
            c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
            c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
            c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
            c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
          }
          let r = cOff + i * N + j;
          C[r] += c00; C[r + 1] += c01; C[r + 2] += c02; C[r + 3] += c03; r += N;
          C[r] += c10; C[r + 1] += c11; C[r + 2] += c12; C[r + 3] += c13; r += N;
          C[r] += c20; C[r + 1] += c21; C[r + 2] += c22; C[r + 3] += c23; r += N;
          C[r] += c30; C[r + 1] += c31; C[r + 2] += c32; C[r + 3] += c33;
        }
        for (; j < j1; j++) {
          const b0 = bOff + j * K;
          let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (let k = k0; k < k1; k++) {
            const y = Bt[b0 + k]!;
            s0 += A[a0 + k]! * y; s1 += A[a1 + k]! * y; s2 += A[a2 + k]! * y; s3 += A[a3 + k]! * y;
          }
          const r = cOff + i * N + j;
          C[r] += s0; C[r + N] += s1; C[r + 2 * N] += s2; C[r + 3 * N] += s3;
        }
      }
      for (let i = M4; i < M; i++) {
        const a0 = aOff + i * K;
        for (let j = j0; j < j1; j++) {
          const b0 = bOff + j * K;
          let s = 0;
          for (let k = k0; k < k1; k++) s += A[a0 + k]! * Bt[b0 + k]!;
          C[cOff + i * N + j] += s;
        }
      }
    }
  }
}

/** Writes the transpose of the (rows, cols) matrix at src[off] into dst as (cols, rows). */
export function transpose2d(src: Float32Array, off: number, rows: number, cols: number, dst = new Float32Array(rows * cols)): Float32Array {
  const T = 32; // tile so both sides touch few cache lines at a time
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) dst[c * rows + r] = src[off + r * cols + c]!;
    }
  }
  return dst;
}

/** C = A · B with A (M, K) and B (K, N), row-major. */
export function gemmNN(
  A: Float32Array, aOff: number, B: Float32Array, bOff: number,
  C: Float32Array, cOff: number, M: number, N: number, K: number,
): void {
  gemmNT(A, aOff, transpose2d(B, bOff, K, N), 0, C, cOff, M, N, K);
}

/** The textbook triple loop; the baseline the benchmark compares gemmNT against. */
export function gemmNaive(A: Float32Array, B: Float32Array, C: Float32Array, M: number, N: number, K: number): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[i * K + k]! * B[k * N + j]!;
      C[i * N + j] = s;
    }
}
