import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { einsum, parseEinsum, type EinsumSpec } from "../../src/kernels/einsum.js";
import { gemmNaive } from "../../src/kernels/gemm.js";
import { concat, gather, pixelShuffle, slice, split, transpose } from "../../src/kernels/layout.js";
import { layerNorm, reduce, softmax } from "../../src/kernels/reduce.js";
import { floatTensor, intTensor, stridesOf } from "../../src/kernels/tensor.js";
import { at, randomTensor, relErr } from "../helpers.js";

const shapeArb = (minRank: number, maxRank: number) => fc.array(fc.integer({ min: 1, max: 5 }), { minLength: minRank, maxLength: maxRank });

describe("layout kernels", () => {
  test("transpose puts x[idx] at out[perm(idx)] for any permutation", () => {
    fc.assert(
      fc.property(shapeArb(1, 5), fc.nat(100), fc.nat(1000), (shape, seed, permSeed) => {
        const perm = shape.map((_, i) => i).sort((a, b) => ((a * 7919 + permSeed) % 13) - ((b * 7919 + permSeed) % 13));
        const x = randomTensor(shape, seed);
        const y = transpose(x, perm);
        expect(y.shape).toEqual(perm.map((p) => shape[p]));
        const xs = stridesOf(shape), ys = stridesOf(y.shape);
        for (let flat = 0; flat < x.data.length; flat++) {
          const idx = shape.map((_, d) => Math.floor(flat / xs[d]!) % shape[d]!);
          const o = perm.reduce((s, p, d) => s + idx[p]! * ys[d]!, 0);
          expect(y.data[o]).toBe(x.data[flat]);
        }
      }),
      { numRuns: 60 },
    );
  });

  test("transpose of planes of 32 and more (tiled, with tails) is the same permutation", () => {
    const dim = fc.constantFrom(1, 2, 31, 32, 33, 45, 70);
    fc.assert(
      fc.property(fc.array(dim, { minLength: 2, maxLength: 4 }).filter((s) => s.reduce((a, b) => a * b, 1) <= 40_000), fc.nat(100), fc.nat(1000), (shape, seed, permSeed) => {
        const perm = shape.map((_, i) => i).sort((a, b) => ((a * 7919 + permSeed) % 13) - ((b * 7919 + permSeed) % 13));
        const x = randomTensor(shape, seed);
        const y = transpose(x, perm);
        const xs = stridesOf(shape), ys = stridesOf(y.shape);
        const want = new Float32Array(x.data.length);
        for (let flat = 0; flat < x.data.length; flat++) want[perm.reduce((s, p, d) => s + (Math.floor(flat / xs[p]!) % shape[p]!) * ys[d]!, 0)] = x.data[flat]!;
        expect(y.data).toEqual(want);
      }),
      { numRuns: 60 },
    );
  });

  test("split then concat along any axis is the identity; slice takes the stated window", () => {
    fc.assert(
      fc.property(shapeArb(1, 4), fc.nat(3), fc.nat(100), (shape, axisSeed, seed) => {
        const axis = axisSeed % shape.length;
        const x = randomTensor(shape, seed);
        const first = Math.floor(shape[axis]! / 2);
        const parts = split(x, axis, [first, shape[axis]! - first]);
        expect([...concat(parts, axis).data]).toEqual([...x.data]);
        const begin = shape.map((d, i) => (i === axis ? first : 0));
        expect([...slice(x, begin, parts[1]!.shape).data]).toEqual([...parts[1]!.data]);
      }),
      { numRuns: 60 },
    );
  });

  test("gather picks rows, negative indices count from the end, out-of-range throws", () => {
    const x = floatTensor([3, 2], Float32Array.of(1, 2, 3, 4, 5, 6));
    expect([...gather(x, intTensor([3], Int32Array.of(2, 0, -1)), 0).data]).toEqual([5, 6, 1, 2, 5, 6]);
    expect([...gather(x, intTensor([1], Int32Array.of(1)), 1).data]).toEqual([2, 4, 6]);
    expect(() => gather(x, intTensor([1], Int32Array.of(3)), 0)).toThrow(RangeError);
  });

  test("gather along any axis, with int32, int64 and byte indices and rows of any length, is the definition", () => {
    fc.assert(
      fc.property(shapeArb(1, 4), fc.nat(3), fc.array(fc.integer({ min: -5, max: 4 }), { minLength: 1, maxLength: 7 }), fc.constantFrom("i32", "i64", "u8"), (shape, a, raw, kind) => {
        const axis = a % shape.length, n = shape[axis]!;
        const picks = raw.map((i) => (kind === "u8" ? Math.abs(i) % n : ((i % n) + n) % n - (i < 0 ? n : 0)));
        const indices = kind === "i32" ? intTensor([picks.length], Int32Array.from(picks))
          : kind === "i64" ? { dtype: "i64" as const, shape: [picks.length], data: BigInt64Array.from(picks, (i) => BigInt(i)) }
            : { dtype: "u8" as const, shape: [picks.length], data: Uint8Array.from(picks) };
        const x = randomTensor(shape, 1);
        const out = gather(x, indices, axis);
        expect(out.shape).toEqual([...shape.slice(0, axis), picks.length, ...shape.slice(axis + 1)]);
        // element by element from the definition: out[o, j, i] = x[o, picks[j] (from the end when negative), i]
        const outer = shape.slice(0, axis).reduce((p, d) => p * d, 1), inner = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
        const want: number[] = [];
        for (let o = 0; o < outer; o++) for (const p of picks) for (let i = 0; i < inner; i++) want.push(x.data[(o * n + (p < 0 ? p + n : p)) * inner + i]!);
        expect([...out.data]).toEqual(want);
      }),
    );
    const x = floatTensor([3, 2], Float32Array.of(1, 2, 3, 4, 5, 6));
    expect(() => gather(x, { dtype: "i64", shape: [1], data: BigInt64Array.of(-4n) }, 0)).toThrow(/gather index -4 out of range for axis of size 3/);
    expect(() => gather(x, { dtype: "u8", shape: [1], data: Uint8Array.of(3) }, 0)).toThrow(RangeError);
  });

  test("pixel shuffle sends channel c·4 + i·2 + j to offset (i, j) of channel c", () => {
    const x = floatTensor([1, 8, 1, 1], Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7));
    const y = pixelShuffle(x, 2);
    expect(y.shape).toEqual([1, 2, 2, 2]);
    expect([...y.data]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const x2 = randomTensor([2, 12, 3, 2], 5);
    const y2 = pixelShuffle(x2, 2);
    for (const [b, c, i, j, h, w] of [[1, 2, 1, 0, 2, 1], [0, 0, 0, 1, 1, 0]] as const)
      expect(y2.data[at(y2.shape, b, c, h * 2 + i, w * 2 + j)]).toBe(x2.data[at(x2.shape, b, c * 4 + i * 2 + j, h, w)]);
  });
});

describe("reductions and normalizations", () => {
  test("reduce sum/mean/max over any axes agrees with a direct sum", () => {
    fc.assert(
      fc.property(shapeArb(1, 4), fc.nat(15), fc.nat(100), (shape, mask, seed) => {
        const axes = shape.map((_, i) => i).filter((i) => mask & (1 << i));
        const x = randomTensor(shape, seed);
        const s = reduce(x, axes, "sum", true), m = reduce(x, axes, "mean", false), mx = reduce(x, axes, "max", true);
        const count = axes.reduce((n, a) => n * shape[a]!, 1);
        const xs = stridesOf(shape), os = stridesOf(s.shape);
        const want = new Float64Array(s.data.length), wantMax = new Float64Array(s.data.length).fill(-Infinity);
        const magnitude = new Float64Array(s.data.length);
        for (let flat = 0; flat < x.data.length; flat++) {
          const o = shape.reduce((acc, d, k) => acc + (axes.includes(k) ? 0 : (Math.floor(flat / xs[k]!) % d) * os[k]!), 0);
          want[o] += x.data[flat]!;
          magnitude[o] += Math.abs(x.data[flat]!);
          wantMax[o] = Math.max(wantMax[o]!, x.data[flat]!);
        }
        // float32 summation error scales with Σ|x|, not with the sum (which may cancel to ~0)
        s.data.forEach((v, o) => expect(Math.abs(v - want[o]!), `sum ${o}`).toBeLessThanOrEqual(1e-6 * magnitude[o]! * Math.max(1, Math.log2(count))));
        m.data.forEach((v, o) => expect(Math.abs(v - want[o]! / count), `mean ${o}`).toBeLessThanOrEqual((1e-6 * magnitude[o]! * Math.max(1, Math.log2(count))) / count));
        expect([...mx.data]).toEqual([...Float32Array.from(wantMax)]);
      }),
      { numRuns: 60 },
    );
  });

  test("softmax rows sum to one, ignore a constant shift and survive huge logits", () => {
    const x = randomTensor([3, 7], 1, 5);
    const y = softmax(x, 1);
    for (let r = 0; r < 3; r++) expect(y.data.slice(r * 7, r * 7 + 7).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const shifted = softmax(floatTensor([3, 7], x.data.map((v) => v + 1000)), 1);
    expect(relErr(shifted.data, y.data)).toBeLessThan(1e-5);
    const col = softmax(x, 0);
    for (let c = 0; c < 7; c++) expect(col.data[c]! + col.data[7 + c]! + col.data[14 + c]!).toBeCloseTo(1, 6);
  });

  test("layer norm gives zero mean, unit biased variance, then the affine", () => {
    const x = floatTensor([2, 4], Float32Array.of(1, 2, 3, 4, -2, 0, 2, 4));
    const y = layerNorm(x, 1, 0);
    const inv = 1 / Math.sqrt(1.25); // variance of (1,2,3,4) is 1.25
    expect(y.data[0]).toBeCloseTo(-1.5 * inv, 6);
    const z = layerNorm(x, 1, 1e-6, Float32Array.of(2, 2, 2, 2), Float32Array.of(1, 1, 1, 1));
    expect(z.data[3]).toBeCloseTo(1 + 2 * 1.5 / Math.sqrt(1.25 + 1e-6), 5);
    const onAxis0 = layerNorm(x, 0, 1e-6);
    expect(onAxis0.data[0]).toBeCloseTo(1.5 / Math.sqrt(2.25 + 1e-6), 5); // column (1, -2): mean -0.5, variance 2.25
  });
});

describe("einsum", () => {
  const spec = (eq: string) => parseEinsum(eq) as EinsumSpec;

  test("a matmul equation equals gemm, and a batched attention equation matches per-batch products", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.nat(100), (M, K, N, seed) => {
        const a = randomTensor([M, K], seed), b = randomTensor([K, N], seed + 1);
        const want = new Float32Array(M * N);
        gemmNaive(a.data, b.data, want, M, N, K);
        // float32 sums in different orders differ by up to ~K·eps·Σ|terms| (cancelling sums make a
        // relative error unbounded), so each entry is held to that bound
        const got = einsum(spec("ik,kj->ij"), [a, b]).data;
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let absSum = 0;
            for (let d = 0; d < K; d++) absSum += Math.abs(a.data[i * K + d]! * b.data[d * N + j]!);
            expect(Math.abs(got[i * N + j]! - want[i * N + j]!)).toBeLessThanOrEqual(2 * K * 2 ** -23 * absSum + 1e-30);
          }
        const q = randomTensor([2, M, K], seed + 2), k = randomTensor([2, N, K], seed + 3);
        const s = einsum(spec("bqd,bkd->bqk"), [q, k]);
        for (let bb = 0; bb < 2; bb++)
          for (let i = 0; i < M; i++)
            for (let j = 0; j < N; j++) {
              let dot = 0;
              for (let d = 0; d < K; d++) dot += q.data[at(q.shape, bb, i, d)]! * k.data[at(k.shape, bb, j, d)]!;
              expect(s.data[at(s.shape, bb, i, j)]).toBeCloseTo(dot, 4);
            }
      }),
      { numRuns: 30 },
    );
  });

  test("trace, diagonal, outer product and transpose by hand", () => {
    const m = floatTensor([2, 2], Float32Array.of(1, 2, 3, 4));
    expect([...einsum(spec("ii->"), [m]).data]).toEqual([5]);
    expect([...einsum(spec("ii->i"), [m]).data]).toEqual([1, 4]);
    expect([...einsum(spec("ij->ji"), [m]).data]).toEqual([1, 3, 2, 4]);
    const u = floatTensor([2], Float32Array.of(1, 2)), v = floatTensor([3], Float32Array.of(1, 10, 100));
    expect([...einsum(spec("i,j->ij"), [u, v]).data]).toEqual([1, 10, 100, 2, 20, 200]);
  });

  test("malformed equations are explained", () => {
    expect(parseEinsum("ij,jk")).toMatch(/form/);
    expect(parseEinsum("ij->iij")).toMatch(/repeats/);
    expect(parseEinsum("ij->k")).toMatch(/appears in no operand/);
  });
});
