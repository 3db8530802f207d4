import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { gemmNaive, gemmNN, gemmNT, transpose2d } from "../../src/kernels/gemm.js";
import { randomTensor, relErr } from "../helpers.js";

describe("gemm", () => {
  test("gemmNN and gemmNT match the naive triple loop on random shapes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 37 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 140 }), fc.nat(1000), (M, K, N, seed) => {
        const A = randomTensor([M, K], seed).data, B = randomTensor([K, N], seed + 1).data;
        const want = new Float32Array(M * N);
        gemmNaive(A, B, want, M, N, K);
        const got = new Float32Array(M * N);
        gemmNN(A, 0, B, 0, got, 0, M, N, K);
        expect(relErr(got, want)).toBeLessThan(1e-5);
        const viaNT = new Float32Array(M * N);
        gemmNT(A, 0, transpose2d(B, 0, K, N), 0, viaNT, 0, M, N, K);
        expect(relErr(viaNT, want)).toBeLessThan(1e-5);
      }),
      { numRuns: 60 },
    );
  });

  test("bias is added per output column and offsets address sub-matrices", () => {
    const A = Float32Array.of(0, 0, 1, 2, 3, 4); // second row block at offset 2: [[1,2],[3,4]]
    const Bt = Float32Array.of(1, 0, 0, 1, 1, 1); // rows (1,0), (0,1), (1,1)
    const C = new Float32Array(6);
    gemmNT(A, 2, Bt, 0, C, 0, 2, 3, 2, Float32Array.of(10, 20, 30));
    expect([...C]).toEqual([11, 22, 33, 13, 24, 37]);
  });
});
