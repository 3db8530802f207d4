import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { f16BitsToF32, f32ToF16Bits } from "../../src/kernels/fp16.js";
import { packU4, tensorBytes } from "../../src/io/encode.js";
import { fp16Histogram, kmeans1d, NonFiniteWeight, palettize, palettizeBits, penalizedSuffix } from "../../src/quant/kmeans.js";

/** Exhaustive optimum: every way to cut n sorted points into at most k contiguous groups. */
function bruteForce(values: number[], counts: number[], k: number): number {
  const n = values.length;
  let best = Infinity;
  const cost = (a: number, b: number) => {
    let w = 0, s = 0;
    for (let i = a; i <= b; i++) (w += counts[i]!), (s += counts[i]! * values[i]!);
    const m = s / w;
    let e = 0;
    for (let i = a; i <= b; i++) e += counts[i]! * (values[i]! - m) ** 2;
    return e;
  };
  const rec = (start: number, groups: number, acc: number) => {
    if (start === n) return void (best = Math.min(best, acc));
    if (groups === 0) return;
    for (let end = start; end < n; end++) rec(end + 1, groups - 1, acc + cost(start, end));
  };
  rec(0, k, 0);
  return best;
}

/** Lloyd's algorithm from quantile seeds: a local optimum the exact DP may never be worse than. */
function lloyd(values: number[], counts: number[], k: number): number {
  let c = Array.from({ length: k }, (_, i) => values[Math.min(values.length - 1, Math.floor(((i + 0.5) * values.length) / k))]!);
  let cost = Infinity;
  for (let it = 0; it < 100; it++) {
    const s = new Array(k).fill(0), w = new Array(k).fill(0);
    cost = 0;
    values.forEach((v, i) => {
      let bi = 0;
      for (let j = 1; j < k; j++) if (Math.abs(v - c[j]!) < Math.abs(v - c[bi]!)) bi = j;
      s[bi] += counts[i]! * v;
      w[bi] += counts[i]!;
      cost += counts[i]! * (v - c[bi]!) ** 2;
    });
    c = c.map((x, j) => (w[j] ? s[j] / w[j] : x));
  }
  return cost;
}

const pointsArb = fc
  .uniqueArray(fc.integer({ min: -500, max: 500 }), { minLength: 1, maxLength: 9 })
  .chain((xs) => fc.tuple(fc.constant(xs.sort((a, b) => a - b).map((x) => x / 64)), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: xs.length, maxLength: xs.length })));

describe("exact 1-D k-means", () => {
  test("cost equals the exhaustive optimum and is never worse than Lloyd's", () => {
    fc.assert(
      fc.property(pointsArb, fc.integer({ min: 1, max: 4 }), ([values, counts], k) => {
        const r = kmeans1d(Float64Array.from(values), Float64Array.from(counts), k);
        const exact = bruteForce(values, counts, k);
        expect(r.cost).toBeCloseTo(exact, 9);
        expect(r.cost).toBeLessThanOrEqual(lloyd(values, counts, Math.min(k, values.length)) + 1e-9);
        for (let i = 1; i < k; i++) expect(r.centroids[i]!).toBeGreaterThanOrEqual(r.centroids[i - 1]!);
        for (const a of r.assignment) expect(a).toBeLessThan(k);
      }),
      { numRuns: 300 },
    );
  });

  test("the fp16 histogram counts patterns in value order and merges ±0", () => {
    const h = fp16Histogram(Float32Array.of(0.5, -0, 0, -2, 0.5, 1e-8));
    expect([...h.values]).toEqual([-2, 0, 0.5]);
    expect([...h.counts]).toEqual([1, 3, 2]); // 1e-8 rounds to 0 in fp16
    expect(h.patternIndex[f32ToF16Bits(0.5)]).toBe(2);
  });

  for (const bits of [4, 8] as const)
    test(`${bits}-bit palettization: indices in range, sorted fp16 LUT of ${1 << bits}, error matches the clustering`, () => {
      fc.assert(
        fc.property(fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: 1, maxLength: 3000 }), (xs) => {
          const data = Float32Array.from(xs);
          const p = palettize(data, bits);
          expect(p.lut.length).toBe(1 << bits);
          for (let i = 1; i < p.lut.length; i++) expect(p.lut[i]!).toBeGreaterThanOrEqual(p.lut[i - 1]!);
          for (const v of p.lut) expect(f16BitsToF32(f32ToF16Bits(v))).toBe(v);
          expect(Math.max(...p.indices)).toBeLessThan(1 << bits);
          let sse = 0;
          data.forEach((x, i) => (sse += (f16BitsToF32(f32ToF16Bits(x)) - p.lut[p.indices[i]!]!) ** 2));
          expect(p.sse).toBeCloseTo(sse, 6);
          const h = fp16Histogram(data);
          if (h.values.length <= 1 << bits) expect(p.sse).toBeLessThan(1e-6 * (1 + sse)); // few enough values: lossless up to fp16 rounding of centroids
        }),
        { numRuns: 60 },
      );
    });

  test("k-means on a realistic tensor: 8-bit beats 4-bit, both far better than uniform rounding", () => {
    const n = 20000;
    let s = 1;
    const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
    const data = Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd()) * 0.02);
    const e4 = palettize(data, 4).sse, e8 = palettize(data, 8).sse;
    expect(e8).toBeLessThan(e4 / 50);
  });
});

/** The plain O(k·n²) programme, to check the divide-and-conquer bounds on larger inputs. */
function naiveDp(values: number[], counts: number[], k: number): number {
  const n = values.length;
  const W = [0], S1 = [0], S2 = [0];
  values.forEach((v, i) => (W.push(W[i]! + counts[i]!), S1.push(S1[i]! + counts[i]! * v), S2.push(S2[i]! + counts[i]! * v * v)));
  const sse = (j: number, i: number) => S2[i + 1]! - S2[j]! - (S1[i + 1]! - S1[j]!) ** 2 / (W[i + 1]! - W[j]!);
  let prev = values.map((_, i) => sse(0, i));
  for (let c = 1; c < Math.min(k, n); c++) {
    const cur = values.map(() => Infinity);
    for (let i = c; i < n; i++) for (let j = c; j <= i; j++) cur[i] = Math.min(cur[i]!, prev[j - 1]! + sse(j, i));
    prev = cur;
  }
  return prev[n - 1]!;
}

test("the divide-and-conquer programme equals the plain O(k·n²) one on a few hundred values", () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: -4000, max: 4000 }), { minLength: 20, maxLength: 300 }), fc.integer({ min: 2, max: 20 }), fc.nat(1000), (xs, k, seed) => {
      const values = xs.sort((a, b) => a - b).map((x) => x / 1000);
      const counts = values.map((_, i) => 1 + ((i * 7919 + seed) % 13));
      const r = kmeans1d(Float64Array.from(values), Float64Array.from(counts), k);
      expect(r.cost).toBeCloseTo(naiveDp(values, counts, k), 6);
    }),
    { numRuns: 40 },
  );
});

test("packed 4-bit indices equal the unpacked ones two per byte, low nibble first, at any length and alignment", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 1e6 }), (len, offset, seed) => {
      let s = seed;
      const store = new Uint16Array(len + offset);
      for (let i = 0; i < store.length; i++) store[i] = f32ToF16Bits(((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.1);
      const data = store.subarray(offset); // byteOffset 0, 2, 4, 6: the 32-bit path and the pairwise one
      const plain = palettizeBits(data, 4).indices, packed = palettizeBits(data, 4, undefined, true).indices;
      expect(packed.length).toBe(Math.ceil(len / 2));
      for (let i = 0; i < len; i++) expect((packed[i >> 1]! >> ((i & 1) * 4)) & 15).toBe(plain[i]);
      if (len & 1) expect(packed[packed.length - 1]! >> 4).toBe(0);
      // the layout every emitter writes u4 tensors in
      expect([...packed]).toEqual([...tensorBytes({ dtype: "u4", shape: [len], data: plain }, "u4")]);
    }),
    { numRuns: 200 },
  );
});

describe("packU4", () => {
  const plainPack = (xs: ArrayLike<number>) => {
    const out = new Uint8Array(Math.ceil(xs.length / 2));
    for (let i = 0; i < xs.length; i++) out[i >> 1]! |= (xs[i]! & 15) << ((i & 1) * 4);
    return out;
  };
  test("word-wise packing equals the pair-by-pair one, aligned or not, any tail", () =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 0, max: 3 }), (xs, offset) => {
        const backing = new Uint8Array(xs.length + offset);
        backing.set(xs, offset);
        const view = backing.subarray(offset);
        // high nibbles are ignored, as the pair-by-pair packing ignores them
        expect([...packU4(view)]).toEqual([...plainPack(xs)]);
        expect([...packU4(Array.from(xs))]).toEqual([...plainPack(xs)]);
      }),
      { numRuns: 300 },
    ));

  test("a large indices array is packed once for every target that writes it", () => {
    const idx = Uint8Array.from({ length: 1 << 16 }, (_, i) => (i * 7) & 15);
    const a = packU4(idx);
    expect(packU4(idx)).toBe(a);
    expect([...a]).toEqual([...plainPack(idx)]);
  });
});

test("the programme's WebAssembly layers give the JavaScript oracle's clustering bit for bit", () =>
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: -30000, max: 30000 }), { minLength: 1, maxLength: 400 }),
      fc.integer({ min: 1, max: 300 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (raw, k, seed) => {
        const values = Float64Array.from(raw.sort((a, b) => a - b), (v) => v / 1024);
        let s = seed;
        const counts = Float64Array.from(values, () => ((s = (s * 1103515245 + 12345) >>> 0) % 1000) / 7 + 0.5);
        const js = kmeans1d(values, counts, k, "js"), wasm = kmeans1d(values, counts, k, "wasm");
        expect(wasm.cost).toBe(js.cost);
        expect([...wasm.centroids]).toEqual([...js.centroids]);
        expect([...wasm.assignment]).toEqual([...js.assignment]);
      },
    ),
    { numRuns: 200 },
  ));

test("the bounded programme (many clusters over many distinct values) gives the unbounded clustering bit for bit, in both engines", () => {
  /** Sorted distinct values drawn from a mixture of scales (like weights in fp16), with counts. */
  const histogram = (n: number, seed: number, tied: boolean) => {
    let s = seed;
    const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
    // n distinct fp16 values below 16 in magnitude: a seeded partial shuffle of their bit patterns
    const patterns = Array.from({ length: 2 * 0x4bff }, (_, i) => (i < 0x4bff ? i + 1 : 0x8000 + i - 0x4bff + 1));
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(rnd() * (patterns.length - i));
      [patterns[i], patterns[j]] = [patterns[j]!, patterns[i]!];
    }
    const values = Float64Array.from(patterns.slice(0, n).map(f16BitsToF32).sort((a, b) => a - b));
    // tied: many equal counts (and so equal-cost alternatives); else heavy near zero, sparse in the tails
    const counts = Float64Array.from(values, (v) => (tied ? 1 + (Math.round(rnd() * 3) % 2) : Math.max(1, Math.round(2000 * Math.exp(-Math.abs(v) * 40) * rnd()))));
    return { values, counts };
  };
  /** The same from a dense core and a few hundred values spread far out (a run there spans what the optimum splits). */
  const farTails = (n: number, seed: number) => {
    const { values, counts } = histogram(n - 300, seed, false);
    let s = seed;
    const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const tails = Array.from({ length: 300 }, () => f16BitsToF32(f32ToF16Bits((rnd() < 0.5 ? -1 : 1) * (20 + rnd() * 2000))));
    const all = [...new Set([...values, ...tails])].sort((a, b) => a - b);
    const count = new Map([...values].map((v, i) => [v, counts[i]!]));
    return { values: Float64Array.from(all), counts: Float64Array.from(all, (v) => count.get(v) ?? 1) };
  };
  const tails = farTails(16000, 5);
  for (const engine of ["wasm", "js"] as const) {
    const plain = kmeans1d(tails.values, tails.counts, 256, engine, false), bounded = kmeans1d(tails.values, tails.counts, 256, engine);
    expect(bounded.cost, `far tails, ${engine}`).toBe(plain.cost);
    expect([...bounded.assignment], `far tails, ${engine}`).toEqual([...plain.assignment]);
  }
  const cases: [number, number, boolean, "wasm" | "js"][] = [
    [4096, 64, false, "js"],
    [6000, 256, true, "js"],
    [9000, 256, false, "wasm"],
    [12000, 256, true, "wasm"],
    [20000, 256, false, "wasm"],
    [20000, 100, false, "wasm"],
  ];
  cases.forEach(([n, k, tied, engine], i) => {
    const { values, counts } = histogram(n, 17 + i, tied);
    const plain = kmeans1d(values, counts, k, engine, false), bounded = kmeans1d(values, counts, k, engine);
    expect(bounded.cost, `case ${i}`).toBe(plain.cost);
    expect([...bounded.centroids], `case ${i}`).toEqual([...plain.centroids]);
    expect([...bounded.assignment], `case ${i}`).toEqual([...plain.assignment]);
  });
});

test("the penalized suffix programme (the bounded programme's bound from the right) is the exhaustive minimum", () =>
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: -2000, max: 2000 }), fc.integer({ min: 1, max: 50 })), { minLength: 1, maxLength: 40 }),
      fc.double({ min: 1e-4, max: 1e3, noNaN: true }),
      (points, lambda) => {
        const byValue = new Map<number, number>();
        for (const [v, c] of points) byValue.set(v / 100, (byValue.get(v / 100) ?? 0) + c);
        const values = [...byValue.keys()].sort((a, b) => a - b), counts = values.map((v) => byValue.get(v)!);
        const n = values.length;
        const W = new Float64Array(n + 1), S1 = new Float64Array(n + 1), S2 = new Float64Array(n + 1);
        values.forEach((v, i) => ((W[i + 1] = W[i]! + counts[i]!), (S1[i + 1] = S1[i]! + counts[i]! * v), (S2[i + 1] = S2[i]! + counts[i]! * v * v)));
        const sse = (j: number, i: number) => {
          const m = (S1[i + 1]! - S1[j]!) / (W[i + 1]! - W[j]!);
          let e = 0;
          for (let t = j; t <= i; t++) e += counts[t]! * (values[t]! - m) ** 2;
          return e;
        };
        // exhaustive: G[j] = min over the first cluster j..t of its cost + λ + G[t + 1]
        const want = new Float64Array(n + 1);
        for (let j = n - 1; j >= 0; j--) {
          want[j] = Infinity;
          for (let t = j; t < n; t++) want[j] = Math.min(want[j]!, sse(j, t) + lambda + want[t + 1]!);
        }
        const got = penalizedSuffix(W, S1, S2, n, lambda);
        for (let j = 0; j <= n; j++) expect(Math.abs(got[j]! - want[j]!)).toBeLessThanOrEqual(1e-9 * (want[0]! + 1));
        // the WebAssembly form (the one kmeans1d runs) does the oracle's operations: the same bits
        expect([...penalizedSuffix(W, S1, S2, n, lambda, "wasm")]).toEqual([...got]);
      },
    ),
    { numRuns: 300 },
  ));

test("a weight with NaN or an infinity in half precision is refused, not clustered without those elements; 65504 is still a value", () => {
  const weight = (bad: number) => {
    const d = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i));
    d[123] = bad;
    return d;
  };
  for (const [bad, message] of [[NaN, "holds NaN"], [Infinity, "holds Infinity in half precision"], [-Infinity, "holds -Infinity in half precision"], [1e6, "holds Infinity in half precision"], [-65520, "holds -Infinity in half precision"]] as const)
    for (const bits of [4, 8] as const) expect(() => palettize(weight(bad), bits), `${bad} at ${bits} bits`).toThrow(new NonFiniteWeight(message + (message.includes("Infinity") ? " (it holds magnitudes up to 65504)" : "")));
  const r = palettize(weight(65504), 4);
  expect(r.lut[r.indices[123]!]).toBe(65504);
});
