// The fast engine's kernels against their scalar oracles (fast-check over shapes, strides, odd
// sizes and tails), and bit-identical results for one and two threads.
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { assaAttention as assaDense, bnaAttention as bnaDense, multiHeadAttention as mhaDense, qkNorm as qkNormOracle, rope2d as ropeOracle, type BnaAttrs, type BnaEdge, type BnaPartition } from "../../src/kernels/attention.js";
import { conv2d as convOracle } from "../../src/kernels/conv.js";
import { binary as binaryOracle, binaryFns, unary as unaryOracle, unaryFns } from "../../src/kernels/elementwise.js";
import { einsum as einsumOracle, parseEinsum, type EinsumSpec } from "../../src/kernels/einsum.js";
import { assaAttention as assaFast, conv2dNchw, conv2dNhwc, einsum as einsumFast, linear, matmul, qkNorm, setKernelMode } from "../../src/kernels/fast.js";
import { encodeF16 } from "../../src/kernels/fp16.js";
import { gemmNT } from "../../src/kernels/gemm.js";
import { concat as concatOracle, slice as sliceOracle, transpose } from "../../src/kernels/layout.js";
import { layerNorm as lnOracle, reduce as reduceOracle, softmax as softmaxOracle } from "../../src/kernels/reduce.js";
import { bnaAttentionTiled, multiHeadAttentionTiled } from "../../src/kernels/simd/attention.js";
import { binarySimd, layerNormSimd, rope2dSimd, softmaxSimd, unarySimd, type SimdBinary, type SimdUnary } from "../../src/kernels/simd/elementwise.js";
import { engineInfo, setThreads } from "../../src/kernels/simd/engine.js";
import { gemmFast, type BOperand, type MatrixView } from "../../src/kernels/simd/gemm.js";
import { concatSimd, depthwiseSimd, reduceSimd, sliceSimd, transposeSimd } from "../../src/kernels/simd/layout.js";
import { floatTensor, halfTensor, paletteTensor, type FloatTensor } from "../../src/kernels/tensor.js";
import { randomTensor, relErr } from "../helpers.js";
import { opDef } from "../../src/ops/index.js";

afterAll(() => setThreads(engineInfo().threads));
const defaultThreads = engineInfo().threads;

/** Runs f with 1 and with 2 threads; the two results must be the same bits. */
function bothThreadCounts(f: () => Float32Array): Float32Array {
  setThreads(1);
  const one = f();
  setThreads(2);
  const two = f();
  setThreads(defaultThreads);
  expect(Buffer.from(two.buffer, two.byteOffset, two.byteLength).equals(Buffer.from(one.buffer, one.byteOffset, one.byteLength))).toBe(true);
  return one;
}

/** |a − b| ≤ tol · (Σ_k |A_ik||B_kj| + |bias|), the error bound a float32 dot product can reach. */
function expectDotClose(got: Float32Array, want: Float32Array, scale: Float32Array, tol = 1e-5): void {
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(tol * (scale[i]! + 1e-30));
}

const dims = fc.integer({ min: 1, max: 45 });

describe("gemm", () => {
  test("every operand layout, with and without bias, matches gemmNT, identically on 1 and 2 threads", () => {
    fc.assert(
      fc.property(dims, dims, fc.integer({ min: 1, max: 300 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(1000), (M, N, K, aT, bKN, withBias, seed) => {
        const A = randomTensor([M * K], seed).data, B = randomTensor([N * K], seed + 1).data, bias = withBias ? randomTensor([N], seed + 2).data : undefined;
        // oracle operands: A (M, K) and Bt (N, K) row-major
        const At = aT ? transpose(floatTensor([K, M], A), [1, 0]).data : A;
        const Bt = bKN ? transpose(floatTensor([K, N], B), [1, 0]).data : B;
        const want = new Float32Array(M * N);
        gemmNT(At, 0, Bt, 0, want, 0, M, N, K, bias);
        const absA = At.map(Math.abs), absB = Bt.map(Math.abs), scale = new Float32Array(M * N);
        gemmNT(absA, 0, absB, 0, scale, 0, M, N, K, bias?.map(Math.abs));
        const av: MatrixView = aT ? { data: A, off: 0, rs: 1, cs: M } : { data: A, off: 0, rs: K, cs: 1 };
        const bv: BOperand = bKN ? { kind: "f32", data: B, off: 0, sK: N, sN: 1 } : { kind: "f32", data: B, off: 0, sK: 1, sN: K };
        const got = bothThreadCounts(() => {
          const C = new Float32Array(M * N);
          gemmFast(M, N, K, av, bv, { data: C, off: 0, rs: N, cs: 1 }, bias);
          return C;
        });
        expectDotClose(got, want, scale);
      }),
      { numRuns: 80 },
    );
  });

  test("offsets and a strided C address sub-matrices", () => {
    const A = Float32Array.of(9, 9, 1, 2, 3, 4); // rows [1,2],[3,4] at offset 2
    const B = Float32Array.of(1, 0, 0, 1, 1, 1); // W rows (1,0), (0,1), (1,1)
    const C = new Float32Array(12).fill(-1);
    gemmFast(2, 3, 2, { data: A, off: 2, rs: 2, cs: 1 }, { kind: "f32", data: B, off: 0, sK: 1, sN: 2 }, { data: C, off: 1, rs: 6, cs: 1 }, Float32Array.of(10, 20, 30));
    expect([...C]).toEqual([-1, 11, 22, 33, -1, -1, -1, 13, 24, 37, -1, -1]);
  });

  test("float16 weights widen while packing: equal to the float32 path on the same values", () => {
    fc.assert(
      fc.property(dims, dims, fc.integer({ min: 1, max: 90 }), fc.nat(1000), (M, N, K, seed) => {
        const A = randomTensor([M * K], seed).data;
        const W = randomTensor([N * K], seed + 1).data;
        W[0] = 1e-6; // a subnormal half
        if (W.length > 1) W[1] = -0;
        const bits = encodeF16(W);
        const widened = new Float32Array(N * K);
        for (let i = 0; i < bits.length; i++) widened[i] = halfToFloat(bits[i]!);
        const viaF32 = new Float32Array(M * N), viaF16 = new Float32Array(M * N);
        gemmFast(M, N, K, { data: A, off: 0, rs: K, cs: 1 }, { kind: "f32", data: widened, off: 0, sK: 1, sN: K }, { data: viaF32, off: 0, rs: N, cs: 1 });
        const got = bothThreadCounts(() => {
          gemmFast(M, N, K, { data: A, off: 0, rs: K, cs: 1 }, { kind: "f16", bits, off: 0, sK: 1, sN: K }, { data: viaF16, off: 0, rs: N, cs: 1 });
          return viaF16.slice();
        });
        expect([...got]).toEqual([...viaF32]);
      }),
      { numRuns: 40 },
    );
  });

  test("an f16 checkpoint's weight reaches the op table's linear as fp16 patterns: packed from them, never widened whole, same result as float32", () => {
    fc.assert(
      fc.property(dims, dims, fc.integer({ min: 1, max: 90 }), fc.nat(1000), (M, N, K, seed) => {
        const A = randomTensor([1, M, K], seed);
        const bits = encodeF16(randomTensor([N * K], seed + 1).data);
        const w = halfTensor([N, K], bits);
        const widenings = { n: 0 };
        const watched = Object.defineProperty({ dtype: w.dtype, shape: w.shape, half: w.half }, "data", { get: () => (widenings.n++, w.data) }) as FloatTensor;
        const bias = randomTensor([N], seed + 2);
        const got = opDef("linear").kernel([A, watched, bias], {} as never)[0]!.data;
        expect(widenings.n).toBe(0);
        const widened = floatTensor([N, K], Float32Array.from(bits, (b) => halfToFloat(b)));
        expect(got).toEqual(opDef("linear").kernel([A, widened, bias], {} as never)[0]!.data);
        // moved by a layout kernel, it is plain float data: no stale patterns ride along
        const t = transpose(w, [1, 0]);
        expect((t as FloatTensor).half).toBeUndefined();
        expect(t.data).toEqual(transpose(widened, [1, 0]).data);
      }),
      { numRuns: 30 },
    );
  });

  test("palettized weights (per tensor and per group of rows) widen while packing, without the widened copy", () => {
    fc.assert(
      fc.property(dims, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 70 }), fc.constantFrom(16, 256), fc.nat(1000), (M, rowsPerGroup, groups, K, entries, seed) => {
        const N = rowsPerGroup * groups;
        const A = randomTensor([1, M, K], seed);
        const lut = randomTensor([groups * entries], seed + 1).data;
        const indices = Uint8Array.from({ length: N * K }, (_, i) => (i * 7919 + seed) % entries);
        const w = paletteTensor([N, K], { indices, lut, entries, groups }, "f32");
        const bias = randomTensor([N], seed + 2);
        // through the op table, as the interpreter calls it: the palette is never widened whole
        const widenings = { n: 0 };
        const watched = Object.defineProperty({ ...w, palette: w.palette }, "data", { get: () => (widenings.n++, w.data) }) as FloatTensor;
        const viaOp = opDef("linear").kernel([A, watched, bias], {} as never)[0]!.data as Float32Array;
        expect(widenings.n).toBe(0);
        const got = bothThreadCounts(() => linear(A, w, bias).data);
        expect(viaOp).toEqual(got);
        // the oracle sees the widened weight
        const want = new Float32Array(M * N);
        gemmNT(A.data, 0, w.data, 0, want, 0, M, N, K, bias.data);
        expect(relErr(got, want)).toBeLessThan(1e-5);
      }),
      { numRuns: 40 },
    );
  });
});

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

describe("matmul, convolution and einsum on the gemm", () => {
  test("batched matmul with broadcast batch axes and both transpose flags matches the scalar path", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 40 }), fc.boolean(), fc.boolean(), fc.nat(1000),
        (batch, broadcastB, M, N, K, tA, tB, seed) => {
          const a = randomTensor([batch, 2, ...(tA ? [K, M] : [M, K])], seed);
          const b = randomTensor([...(broadcastB ? [1, 1] : [batch, 2]), ...(tB ? [N, K] : [K, N])], seed + 1);
          setKernelMode("scalar");
          const want = matmul(a, b, tA, tB, [batch, 2]);
          setKernelMode("simd");
          const got = bothThreadCounts(() => matmul(a, b, tA, tB, [batch, 2]).data);
          expect(relErr(got, want.data)).toBeLessThan(1e-5);
        }),
      { numRuns: 40 },
    );
  });

  test("NCHW and NHWC convolutions (kernel, stride, padding, groups, depthwise) match the scalar conv", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 3, max: 9 }), fc.boolean(), fc.boolean(), fc.nat(1000),
        (B, groups, cinG, coutG, k, stride, pad, size, depthwise, withBias, seed) => {
          const G = depthwise ? cinG * 2 : groups, CinG = depthwise ? 1 : cinG, Cin = G * CinG, Cout = G * coutG;
          const x = randomTensor([B, Cin, size, size + 1], seed), w = randomTensor([Cout, CinG, k, k], seed + 1);
          const bias = withBias ? randomTensor([Cout], seed + 2) : undefined;
          const attrs = { stride: [stride, stride] as [number, number], pads: [pad, pad, pad, 0] as [number, number, number, number], groups: G };
          const want = convOracle(x, w, bias, attrs);
          const got = bothThreadCounts(() => conv2dNchw(x, w, bias, attrs).data);
          expect(relErr(got, want.data)).toBeLessThan(1e-5);
          const nhwc = bothThreadCounts(() => conv2dNhwc(transpose(x, [0, 2, 3, 1]), transpose(w, [0, 2, 3, 1]), bias, attrs).data);
          expect(relErr(transpose(floatTensor([B, want.shape[2]!, want.shape[3]!, Cout], nhwc), [0, 3, 1, 2]).data, want.data)).toBeLessThan(1e-5);
        }),
      { numRuns: 50 },
    );
  });

  test("an unpadded depthwise convolution on the engine, NCHW, NHWC or token rows, gives the float64 loop's bits", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 }), fc.boolean(), fc.nat(1000),
        (B, Cin, mult, KH, KW, stride, extraH, extraW, withBias, seed) => {
          const H = KH + extraH, W = KW + extraW, Cout = Cin * mult;
          const Ho = Math.floor((H - KH) / stride) + 1, Wo = Math.floor((W - KW) / stride) + 1;
          const x = randomTensor([B, Cin, H, W], seed), w = randomTensor([Cout, 1, KH, KW], seed + 1);
          const bias = withBias ? randomTensor([Cout], seed + 2) : undefined;
          // the reference: every output a float64 sum, tap by tap, rounded once
          const want = new Float32Array(B * Cout * Ho * Wo);
          for (let b = 0; b < B; b++)
            for (let co = 0; co < Cout; co++)
              for (let oh = 0; oh < Ho; oh++)
                for (let ow = 0; ow < Wo; ow++) {
                  let s = 0;
                  for (let kh = 0; kh < KH; kh++)
                    for (let kw = 0; kw < KW; kw++) s += x.data[((b * Cin + Math.floor(co / mult)) * H + oh * stride + kh) * W + ow * stride + kw]! * w.data[(co * KH + kh) * KW + kw]!;
                  want[((b * Cout + co) * Ho + oh) * Wo + ow] = s + (bias ? bias.data[co]! : 0);
                }
          const attrs = { stride: [stride, stride] as [number, number], pads: [0, 0, 0, 0] as [number, number, number, number], groups: Cin };
          const got = bothThreadCounts(() => conv2dNchw(x, w, bias, attrs).data);
          expect(got.every((v, i) => Object.is(v, want[i]))).toBe(true);
          // NHWC (TFLite's depthwise): the same sums in the other layout
          const nhwc = bothThreadCounts(() => conv2dNhwc(transpose(x, [0, 2, 3, 1]), transpose(w, [0, 2, 3, 1]), bias, attrs).data);
          const wantNhwc = transpose(floatTensor([B, Cout, Ho, Wo], want), [0, 2, 3, 1]).data;
          expect(nhwc.every((v, i) => Object.is(v, wantNhwc[i]))).toBe(true);
          if (mult !== 1) return;
          // token rows (B, H·W, C), channels adjacent: the IR's ASSA compression
          const tokens = transpose(x, [0, 2, 3, 1]).data;
          const rows = bothThreadCounts(() => depthwiseSimd(tokens, w.data, bias?.data, {
            B, C: Cin, mult: 1, Ho, Wo, KH, KW, sh: stride, sw: stride, xStrides: [H * W * Cin, 1, W * Cin, Cin], outStrides: [Ho * Wo * Cin, 1, Wo * Cin, Cin],
          }));
          const wantRows = transpose(floatTensor([B, Cin, Ho, Wo], want), [0, 2, 3, 1]).data;
          expect(rows.every((v, i) => Object.is(v, wantRows[i]))).toBe(true);
        }),
      { numRuns: 60 },
    );
  });

  test("einsum forms that are batched products run on the gemm; the rest stay exact", () => {
    const cases: [string, number[][]][] = [
      ["bchk,bkhq->bchq", [[2, 5, 3, 7], [2, 7, 3, 4]]],
      ["bchq,bchk->bkhq", [[1, 6, 2, 5], [1, 6, 2, 3]]],
      ["ij,jk->ik", [[4, 9], [9, 3]]],
      ["bij,bkj->bik", [[3, 4, 5], [3, 6, 5]]],
      ["ii->i", [[4, 4]]],
      ["ij,ij->i", [[3, 4], [3, 4]]],
    ];
    for (const [eq, shapes] of cases) {
      const spec = parseEinsum(eq) as EinsumSpec;
      const xs = shapes.map((s, i) => randomTensor(s, 10 + i));
      const got = bothThreadCounts(() => einsumFast(spec, xs).data);
      expect(relErr(got, einsumOracle(spec, xs).data)).toBeLessThan(1e-5);
    }
  });
});

/** A random BNA configuration (as in attention.test.ts), sized so tiles get several queries and keys. */
const bnaArb = fc
  .record({
    side: fc.constantFrom(1, 2, 4),
    gh: fc.integer({ min: 1, max: 3 }),
    gw: fc.integer({ min: 1, max: 3 }),
    radius: fc.integer({ min: 0, max: 3 }),
    partition: fc.constantFrom<BnaPartition>("raster", "tiles"),
    edge: fc.constantFrom<BnaEdge>("clamp", "shift"),
    seed: fc.nat(1000),
  })
  .map(({ side, gh, gw, radius, partition, edge, seed }) => ({ a: { grid: [side * gh * 3, side * gw * 5], blocks: side * side, radius, partition, edge } as BnaAttrs, seed }));

describe("tiled attention", () => {
  const headsArb = fc.record({ kvHeads: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 3 }), dh: fc.integer({ min: 1, max: 20 }), dv: fc.integer({ min: 1, max: 20 }) });

  test("dense attention (GQA, any head dims, query and key counts past the tile sizes) matches the masked oracle", () => {
    fc.assert(
      fc.property(headsArb, fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 150 }), fc.integer({ min: 1, max: 300 }), fc.nat(1000), ({ kvHeads, group, dh, dv }, B, Lq, Lk, seed) => {
        const H = kvHeads * group, a = { heads: H, kvHeads, scale: 1 / Math.sqrt(dh) };
        const q = randomTensor([B, Lq, H * dh], seed, 2), k = randomTensor([B, Lk, kvHeads * dh], seed + 1, 2), v = randomTensor([B, Lk, kvHeads * dv], seed + 2);
        const got = bothThreadCounts(() => multiHeadAttentionTiled(q, k, v, a).data);
        expect(relErr(got, mhaDense(q, k, v, a).data)).toBeLessThan(2e-5);
      }),
      { numRuns: 40 },
    );
  });

  test("BNA window by window (raster and tiles, clamp and shift, any radius) matches the masked oracle", () => {
    fc.assert(
      fc.property(bnaArb, headsArb, ({ a, seed }, { kvHeads, group, dh, dv }) => {
        const L = a.grid[0] * a.grid[1], H = kvHeads * group;
        const at = { ...a, heads: H, kvHeads, scale: 0.3 };
        const q = randomTensor([1, L, H * dh], seed, 2), k = randomTensor([1, L, kvHeads * dh], seed + 1, 2), v = randomTensor([1, L, kvHeads * dv], seed + 2);
        const got = bothThreadCounts(() => bnaAttentionTiled(q, k, v, at).data);
        expect(relErr(got, bnaDense(q, k, v, at).data)).toBeLessThan(2e-5);
      }),
      { numRuns: 40 },
    );
  });

  test("ASSA (depthwise and dense key/value compression, batch 2) matches the dense oracle", () => {
    const even = bnaArb.filter(({ a }) => a.grid[0] % 2 === 0 && a.grid[1] % 2 === 0 && a.grid[0] * a.grid[1] <= 720);
    fc.assert(
      fc.property(even, headsArb, fc.boolean(), ({ a, seed }, { kvHeads, group, dh }, depthwise) => {
        const L = a.grid[0] * a.grid[1], H = kvHeads * group, C = kvHeads * dh, B = 2;
        const at = { ...a, heads: H, kvHeads, scale: 0.3 };
        const q = randomTensor([B, L, H * dh], seed, 2), k = randomTensor([B, L, C], seed + 1, 2), v = randomTensor([B, L, C], seed + 2);
        const cw = (s: number) => randomTensor(depthwise ? [C, 1, 2, 2] : [C, C, 2, 2], s);
        const gate = floatTensor([B, L, H], Float32Array.from(randomTensor([B, L, H], seed + 5).data, (x) => 1 / (1 + Math.exp(-4 * x))));
        const w = { kCompressW: cw(seed + 3), kCompressB: randomTensor([C], seed + 4), vCompressW: cw(seed + 6), vCompressB: randomTensor([C], seed + 7), gate };
        const got = bothThreadCounts(() => assaFast(q, k, v, w, at).data);
        // two float32 reductions in series (the 2x2 compression over 4C terms, then attention over
        // up to L/4 compressed keys) summed in another order than the oracle's: 2e-5 was met by all
        // but one case fast-check found (2.2e-5: 540 tokens, one value channel)
        expect(relErr(got, assaDense(q, k, v, w, at).data)).toBeLessThan(5e-5);
      }),
      { numRuns: 30 },
    );
  });

  test("scores far apart (a large max) and equal scores stay exact through the online softmax", () => {
    const a = { heads: 1, kvHeads: 1, scale: 1 };
    const q = floatTensor([1, 1, 1], Float32Array.of(60)), k = floatTensor([1, 300, 1], Float32Array.from({ length: 300 }, (_, i) => (i === 250 ? 2 : 0)));
    const v = floatTensor([1, 300, 1], Float32Array.from({ length: 300 }, (_, i) => i));
    expect(multiHeadAttentionTiled(q, k, v, a).data[0]).toBeCloseTo(250, 3); // e^120 dominates after 128-key chunks of e^0
    const flat = multiHeadAttentionTiled(floatTensor([1, 1, 1], Float32Array.of(0)), k, v, a).data[0]!;
    expect(flat).toBeCloseTo(149.5, 3);
  });
});

/**
 * Layer norm in float32 against the float64 oracle: x − mean carries an error of about one ulp of
 * the row's largest |x|, which the normalization magnifies by 1/σ (ill-conditioned when a row is
 * nearly constant), so each row's tolerance scales with max|x|/σ.
 */
function expectNormClose(got: Float32Array, want: Float32Array, x: FloatTensor, axis: number, w?: Float32Array): void {
  const n = x.shape[axis]!, inner = x.shape.slice(axis + 1).reduce((p, d) => p * d, 1), outer = x.data.length / (n * inner);
  const wmax = w ? Math.max(...w.map(Math.abs)) : 1;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (k: number) => (o * n + k) * inner + i;
      let mean = 0, big = 0;
      for (let k = 0; k < n; k++) (mean += x.data[at(k)]!), (big = Math.max(big, Math.abs(x.data[at(k)]!)));
      mean /= n;
      let v = 0;
      for (let k = 0; k < n; k++) v += (x.data[at(k)]! - mean) ** 2;
      const sigma = Math.sqrt(v / n + 1e-6);
      const tol = 1e-5 * Math.max(1, Math.abs(want[at(0)]!)) + 16 * 2 ** -24 * (big / sigma) * wmax;
      for (let k = 0; k < n; k++) expect(Math.abs(got[at(k)]! - want[at(k)]!)).toBeLessThanOrEqual(tol + 1e-5 * Math.abs(want[at(k)]!));
    }
}

describe("elementwise, normalizations and RoPE", () => {
  const shapePair = fc.tuple(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), fc.nat(1000));

  test("broadcast binary ops are bit-identical to the scalar ones", () => {
    fc.assert(
      fc.property(shapePair, fc.constantFrom<SimdBinary>("add", "sub", "mul", "div", "maximum"), fc.boolean(), ([shape, ones, seed], kind, swap) => {
        const other = shape.map((d, i) => (ones[i] ? 1 : d)).slice(shape.length > 1 && ones[3] ? 1 : 0);
        const [sa, sb] = swap ? [other, shape] : [shape, other];
        const a = randomTensor(sa, seed), b = randomTensor(sb, seed + 1);
        const want = binaryOracle(a, b, binaryFns[kind]);
        const got = bothThreadCounts(() => binarySimd(kind, a, b)?.data ?? binaryOracle(a, b, binaryFns[kind]).data);
        expect([...got]).toEqual([...want.data]);
      }),
      { numRuns: 150 },
    );
    // past the thread threshold, with a row broadcast like modulate's
    const x = randomTensor([2, 300, 256], 1), s = randomTensor([2, 1, 256], 2);
    expect([...bothThreadCounts(() => binarySimd("mul", x, s)!.data)]).toEqual([...binaryOracle(x, s, binaryFns.mul).data]);
  });

  test("transcendental unary functions are within a few float32 ulps of Math's", () => {
    const values = Float32Array.from([...Array.from({ length: 4001 }, (_, i) => (i - 2000) / 100), 0, -0, 1e-8, -1e-8, 88, -88, 200, -200, 1e30, -1e30]);
    const x = floatTensor([values.length], values);
    for (const kind of ["gelu_tanh", "silu", "sigmoid", "tanh", "exp", "sqrt", "rsqrt", "neg"] as SimdUnary[]) {
      const got = unarySimd(kind, kind === "sqrt" || kind === "rsqrt" ? floatTensor(x.shape, x.data.map(Math.abs)) : x).data;
      const want = unaryOracle(kind === "sqrt" || kind === "rsqrt" ? floatTensor(x.shape, x.data.map(Math.abs)) : x, unaryFns[kind]).data;
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(want[i]!)) {
          expect(got[i]).toBe(want[i]);
          continue;
        }
        expect(Math.abs(got[i]! - want[i]!), `${kind}(${values[i]})`).toBeLessThanOrEqual(4e-7 * Math.abs(want[i]!) + 1e-7);
      }
    }
    const big = randomTensor([300, 1000], 3);
    bothThreadCounts(() => unarySimd("gelu_tanh", big).data);
  });

  test("layer norm and softmax over any axis, and q/k norm per head, match the scalar ones", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }), fc.nat(3), fc.boolean(), fc.nat(1000), (shape, ax, affine, seed) => {
        const axis = ax % shape.length;
        const x = randomTensor(shape, seed, 3);
        const w = affine ? randomTensor([shape[axis]!], seed + 1).data : undefined, b = affine ? randomTensor([shape[axis]!], seed + 2).data : undefined;
        expectNormClose(bothThreadCounts(() => layerNormSimd(x, axis, 1e-6, w, b).data), lnOracle(x, axis, 1e-6, w, b).data, x, axis, w);
        expect(relErr(bothThreadCounts(() => softmaxSimd(x, axis).data), softmaxOracle(x, axis).data)).toBeLessThan(1e-6);
      }),
      { numRuns: 80 },
    );
    const x = randomTensor([2, 50, 4 * 12], 5), w = randomTensor([12], 6), b = randomTensor([12], 7);
    expect(relErr(qkNorm(x, w, b, 4, 1e-6).data, qkNormOracle(x, w, b, 4, 1e-6).data)).toBeLessThan(1e-5);
    const wide = randomTensor([1, 4096, 256], 8);
    expect(relErr(bothThreadCounts(() => layerNormSimd(wide, 2, 1e-6).data), lnOracle(wide, 2, 1e-6).data)).toBeLessThan(1e-5);
    // a strided axis over wide rows, shared by two threads: several blocks of positions a row,
    // a partial last block and the inner % 4 tail (long sums in float32: a looser bound)
    for (const [shape, axis] of [[[2, 37, 1030], 1], [[1, 300, 1, 4100], 1], [[3, 5, 70, 63], 2]] as const) {
      const s = randomTensor(shape, 9, 4);
      expect(relErr(bothThreadCounts(() => softmaxSimd(s, axis).data), softmaxOracle(s, axis).data), `${shape} axis ${axis}`).toBeLessThan(1e-5);
    }
  });

  test("2-D RoPE matches the scalar rotation", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.nat(1000), (heads, quarter, gh, gw, seed) => {
        const x = randomTensor([2, gh * gw, heads * quarter * 4], seed, 2);
        expect(relErr(bothThreadCounts(() => rope2dSimd(x, heads, [gh, gw]).data), ropeOracle(x, heads, [gh, gw]).data)).toBeLessThan(1e-5);
      }),
      { numRuns: 40 },
    );
  });
});

describe("slices, concats, transposes and reductions", () => {
  const same = (got: Float32Array, want: Float32Array) => expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
  // shapes up to 4 axes; `big` scales one axis so that some jobs are shared by both threads
  const shapes = fc.tuple(fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 4 }), fc.nat(3), fc.boolean()).map(([shape, at, big]) => shape.map((d, i) => (big && i === at % shape.length ? d * 3000 : d)));

  test("slices and transposes are the scalar kernels' element moves, bit for bit, on 1 and 2 threads", () => {
    fc.assert(
      fc.property(shapes, fc.array(fc.nat(1000), { minLength: 8, maxLength: 8 }), fc.nat(1000), (shape, r, seed) => {
        const x = randomTensor(shape, seed);
        const begin = shape.map((d, i) => r[i]! % d), size = shape.map((d, i) => 1 + (r[i + 4]! % (d - begin[i]!)));
        const sliced = bothThreadCounts(() => sliceSimd(x, begin, size).data);
        same(sliced, sliceOracle(x, begin, size).data);
        const perm = shape.map((_, i) => i).sort((a, b) => ((r[a]! * 7 + seed) % 5) - ((r[b]! * 7 + seed) % 5));
        const t = transposeSimd(x, perm);
        expect(t.shape).toEqual(perm.map((p) => shape[p]));
        same(bothThreadCounts(() => transposeSimd(x, perm).data), transpose(x, perm).data);
      }),
      { numRuns: 60 },
    );
  });

  test("concats along any axis are bit for bit the scalar kernel's", () => {
    fc.assert(
      fc.property(shapes, fc.nat(3), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }), fc.nat(1000), (shape, ax, widths, seed) => {
        const axis = ax % shape.length;
        const xs = widths.map((w, i) => randomTensor(shape.map((d, j) => (j === axis ? w : d)), seed + i));
        same(bothThreadCounts(() => concatSimd(xs, axis).data), concatOracle(xs, axis).data);
      }),
      { numRuns: 60 },
    );
  });

  test("sum, mean and max over any axes accumulate as the scalar kernel does: the same bits", () => {
    fc.assert(
      fc.property(shapes, fc.array(fc.nat(3), { minLength: 1, maxLength: 3 }), fc.constantFrom("sum", "mean", "max") as fc.Arbitrary<"sum" | "mean" | "max">, fc.boolean(), fc.nat(1000), (shape, picks, kind, keepDims, seed) => {
        const axes = [...new Set(picks.map((p) => p % shape.length))];
        const x = randomTensor(shape, seed, 100);
        const got = reduceSimd(x, axes, kind, keepDims), want = reduceOracle(x, axes, kind, keepDims);
        expect(got.shape).toEqual(want.shape);
        same(bothThreadCounts(() => reduceSimd(x, axes, kind, keepDims).data), want.data);
      }),
      { numRuns: 60 },
    );
    // rows of a last-axis mean four at a time, with rows left over, on both threads
    const rows = randomTensor([1, 4099, 256], 3, 10);
    same(bothThreadCounts(() => reduceSimd(rows, [2], "mean", true).data), reduceOracle(rows, [2], "mean", true).data);
  });
});

describe("the op table's kernels in both modes", () => {
  test("setKernelMode switches between the oracle and the fast path, which agree", () => {
    const x = randomTensor([1, 70, 48], 1), w = randomTensor([33, 48], 2), b = randomTensor([33], 3);
    setKernelMode("scalar");
    const oracle = linear(x, w, b);
    setKernelMode("simd");
    const fast = linear(x, w, b);
    expect(relErr(fast.data, oracle.data)).toBeLessThan(1e-5);
    expect(fast.data).not.toBe(oracle.data);
  });
});



describe("relaxed SIMD", () => {
  // each build in a process of its own: the choice is made once, when the engine starts
  const gemmIn = async (env: Record<string, string>) => {
    const { execFileSync } = await import("node:child_process");
    const dist = new URL("../../dist/src/kernels/", import.meta.url).href;
    const script = `
      const { engineInfo, setThreads } = await import("${dist}simd/engine.js");
      const { gemmFast } = await import("${dist}simd/gemm.js");
      const { gemmNT } = await import("${dist}gemm.js");
      const M = 37, N = 29, K = 301;
      const A = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)), W = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i));
      const run = (t) => { setThreads(t); const C = new Float32Array(M * N); gemmFast(M, N, K, { data: A, off: 0, rs: K, cs: 1 }, { kind: "f32", data: W, off: 0, sK: 1, sN: K }, { data: C, off: 0, rs: N, cs: 1 }); return C; };
      const one = run(1), two = run(2), want = new Float32Array(M * N);
      gemmNT(A, 0, W, 0, want, 0, M, N, K);
      let err = 0; for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(one[i] - want[i]));
      console.log(JSON.stringify({ relaxed: engineInfo().relaxedSimd, same: one.every((v, i) => Object.is(v, two[i])), err, c: Array.from(one) }));
    `;
    const { DITC_FMA: _, ...rest } = process.env;
    return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: { ...rest, ...env } }));
  };

  test("the fused build runs without any flag (Node 20: the engine enables V8's), DITC_FMA=0 the plain one; both agree with the oracle and are thread-count independent", async () => {
    const fused = await gemmIn({}), plain = await gemmIn({ DITC_FMA: "0" });
    expect(fused.relaxed).toBe(true);
    expect(plain.relaxed).toBe(false);
    for (const r of [fused, plain]) {
      expect(r.same).toBe(true);
      expect(r.err).toBeLessThan(1e-3);
    }
    // where the CPU fuses (arm64, x64 with FMA3), one rounding instead of two shows in the low bits
    const { readFileSync, existsSync } = await import("node:fs");
    const fuses = process.arch === "arm64" || (existsSync("/proc/cpuinfo") && /\bfma\b/.test(readFileSync("/proc/cpuinfo", "utf8")));
    if (fuses) expect(fused.c.some((v: number, i: number) => v !== plain.c[i])).toBe(true);
  });
});

describe("the thread pool", () => {
  test("a fresh pool's first job completes (worker start-up cannot miss the job it was started for)", async () => {
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const dist = new URL("../../dist/src/kernels/", import.meta.url).href;
    const script = `
      const { setThreads } = await import("${dist}simd/engine.js");
      const { gemmFast } = await import("${dist}simd/gemm.js");
      setThreads(2);
      const M = 300, N = 64, K = 64, A = new Float32Array(M * K).fill(1), W = new Float32Array(N * K).fill(1), C = new Float32Array(M * N);
      gemmFast(M, N, K, { data: A, off: 0, rs: K, cs: 1 }, { kind: "f32", data: W, off: 0, sK: 1, sN: K }, { data: C, off: 0, rs: N, cs: 1 });
      console.log(C[M * N - 1]);
    `;
    const runs = await Promise.all(Array.from({ length: 12 }, () => promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000 })));
    for (const r of runs) expect(r.stdout.trim()).toBe("64");
  });
});

/**
 * Runs `script` (an ES module) in a child process with a kernel thread module of its own written
 * beside it as dying-thread.mjs (`thread`: its body, with workerData's ctl, claimShare and CTL in
 * scope); returns the child's stdout lines. In a child: were a wait to hang, the timeout ends it
 * and the test fails; were a thread's error to reach the child's event loop unheard, it would exit.
 */
async function withKernelThread(thread: string, script: (threadPath: string, dist: string) => string): Promise<string[]> {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dist = new URL("../../dist/src/", import.meta.url).href;
  const dir = mkdtempSync(join(tmpdir(), "ditc-kernel-thread-"));
  try {
    const path = join(dir, "dying-thread.mjs");
    writeFileSync(path, `
      import { workerData } from "node:worker_threads";
      const { recordThreadId } = await import("${dist}io/thread-liveness.js");
      const { CTL, claimShare } = await import("${dist}kernels/simd/engine.js");
      const { ctl, threadId } = workerData;
      recordThreadId(threadId);
      const seen = Atomics.load(ctl, CTL.GEN);
      Atomics.add(ctl, CTL.READY, 1);
      Atomics.notify(ctl, CTL.READY);
      ${thread}
    `);
    const r = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script(path, dist)], { timeout: 30_000 });
    return r.stdout.trim().split("\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A child's gemm on two threads, the first with the given kernel thread module, the second with the real one. */
const twoGemms = (M: number) => (thread: string, dist: string) => `
  const { setThreads, useKernelThreadModule } = await import("${dist}kernels/simd/engine.js");
  const { gemmFast } = await import("${dist}kernels/simd/gemm.js");
  const gemm = () => {
    const M = ${M}, N = 64, K = 64, A = new Float32Array(M * K).fill(1), W = new Float32Array(N * K).fill(1), C = new Float32Array(M * N);
    gemmFast(M, N, K, { data: A, off: 0, rs: K, cs: 1 }, { kind: "f32", data: W, off: 0, sK: 1, sN: K }, { data: C, off: 0, rs: N, cs: 1 });
    return C.every((x) => x === 64) ? "all 64" : "wrong";
  };
  setThreads(2);
  useKernelThreadModule(${JSON.stringify(thread)});
  try { console.log(gemm()); } catch (e) { console.log(e.message); }
  useKernelThreadModule(undefined);
  console.log(gemm());
`;

describe("a kernel thread that ends", () => {
  test("fails the kernel whose share it took with an error instead of hanging, and the next kernel runs on new threads", async () => {
    // the thread polls, so it claims the second share while this one computes the first (a
    // gemm long enough that it cannot finish first), then ends with an error nobody catches
    const [first, second] = await withKernelThread(
      `for (;;) {
        const gen = Atomics.load(ctl, CTL.GEN);
        if (gen !== seen && claimShare(ctl, gen & 0xffff, gen >>> 16) >= 0) throw new Error("a kernel thread's uncaught error");
      }`,
      twoGemms(200_000),
    );
    expect(first).toMatch(/a kernel thread stopped while it ran \w+ \(out of memory\?\)/);
    expect(second).toBe("all 64");
  });
});

describe("a kernel thread that is not scheduled", () => {
  test("holds no job up: the caller takes the shares it has not claimed", async () => {
    // announces itself, then never looks at a job (as a thread the OS has not run yet)
    const [first, second] = await withKernelThread(`Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);`, twoGemms(300));
    expect(first).toBe("all 64");
    expect(second).toBe("all 64");
  });
});
