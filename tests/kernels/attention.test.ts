import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  assaAttention, bnaAttention, bnaMask, bnaWindow, multiHeadAttention, qkNorm, rope2d,
  type BnaAttrs, type BnaEdge, type BnaPartition,
} from "../../src/kernels/attention.js";
import { layerNorm } from "../../src/kernels/reduce.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { at, randomTensor, relErr } from "../helpers.js";

const H = 2, Hkv = 1, dh = 4;
const heads = { heads: H, kvHeads: Hkv, scale: 0.5 };

function qkv(L: number, seed: number) {
  return [randomTensor([1, L, H * dh], seed), randomTensor([1, L, Hkv * dh], seed + 1), randomTensor([1, L, Hkv * dh], seed + 2)] as const;
}

/** A random valid BNA configuration on a small grid. */
const bnaArb = fc
  .record({
    side: fc.constantFrom(2, 4),
    gh: fc.integer({ min: 1, max: 2 }),
    gw: fc.integer({ min: 1, max: 2 }),
    radius: fc.integer({ min: 0, max: 3 }),
    partition: fc.constantFrom<BnaPartition>("raster", "tiles"),
    edge: fc.constantFrom<BnaEdge>("clamp", "shift"),
    seed: fc.nat(1000),
  })
  .map(({ side, gh, gw, radius, partition, edge, seed }) => {
    const grid: [number, number] = [side * gh, side * gw];
    const blocks = side * side; // a square count that divides the grid in both partitions
    return { a: { grid, blocks, radius, partition, edge } as BnaAttrs, seed };
  });

describe("BNA reference", () => {
  test("one block, or a radius covering every block, is full attention", () => {
    const [q, k, v] = qkv(16, 3);
    const full = multiHeadAttention(q, k, v, heads);
    for (const a of [
      { grid: [4, 4], blocks: 1, radius: 0, partition: "raster", edge: "clamp" },
      { grid: [4, 4], blocks: 16, radius: 16, partition: "raster", edge: "clamp" },
      { grid: [4, 4], blocks: 16, radius: 8, partition: "raster", edge: "shift" },
      { grid: [4, 4], blocks: 4, radius: 1, partition: "tiles", edge: "clamp" }, // 2r+1 >= 2 tiles per axis
      { grid: [4, 4], blocks: 1, radius: 0, partition: "tiles", edge: "shift" },
    ] as BnaAttrs[])
      expect(relErr(bnaAttention(q, k, v, { ...heads, ...a }).data, full.data)).toBeLessThan(1e-6);
  });

  test("a key outside a query's window never changes that query's output; one inside does", () => {
    fc.assert(
      fc.property(bnaArb, fc.nat(10_000), ({ a, seed }, pick) => {
        const L = a.grid[0] * a.grid[1];
        const [q, k, v] = qkv(L, seed);
        const mask = bnaMask(a);
        const base = bnaAttention(q, k, v, { ...heads, ...a });
        const key = pick % L;
        const k2 = floatTensor(k.shape, k.data.slice()), v2 = floatTensor(v.shape, v.data.slice());
        for (let c = 0; c < Hkv * dh; c++) {
          k2.data[key * Hkv * dh + c]! += 3;
          v2.data[key * Hkv * dh + c]! += 3;
        }
        const moved = bnaAttention(q, k2, v2, { ...heads, ...a });
        for (let qi = 0; qi < L; qi++) {
          const row = (t: Float32Array) => t.slice(qi * H * dh, (qi + 1) * H * dh);
          const same = row(base.data).every((x, i) => x === row(moved.data)[i]);
          expect(same).toBe(!mask(qi, key));
        }
      }),
      { numRuns: 60 },
    );
  });

  test("shift gives every query the same window size; clamp shrinks windows at the ends", () => {
    fc.assert(
      fc.property(bnaArb, ({ a }) => {
        const L = a.grid[0] * a.grid[1];
        const mask = bnaMask(a);
        const sizes = Array.from({ length: L }, (_, qi) => Array.from({ length: L }, (_, ki) => mask(qi, ki)).filter(Boolean).length);
        const perAxis = a.partition === "raster" ? a.blocks : Math.sqrt(a.blocks);
        const span = Math.min(2 * a.radius + 1, perAxis);
        const blockTokens = L / a.blocks;
        const expected = (a.partition === "raster" ? span : span * span) * blockTokens;
        if (a.edge === "shift") expect(new Set(sizes)).toEqual(new Set([expected]));
        else {
          expect(Math.max(...sizes)).toBe(expected);
          if (a.radius > 0 && span < perAxis) expect(sizes[0]).toBeLessThan(expected); // the first block is at an edge
        }
      }),
      { numRuns: 60 },
    );
  });

  test("window ranges by hand: 16 blocks, radius 1", () => {
    expect(bnaWindow(0, 16, 1, "clamp")).toEqual([0, 1]);
    expect(bnaWindow(0, 16, 1, "shift")).toEqual([0, 2]);
    expect(bnaWindow(15, 16, 1, "shift")).toEqual([13, 15]);
    expect(bnaWindow(7, 16, 1, "clamp")).toEqual([6, 8]);
    expect(bnaWindow(1, 3, 1, "clamp")).toEqual([0, 2]);
  });
});

describe("GQA, ASSA, RoPE and QK-norm references", () => {
  test("GQA equals multi-head attention with each kv head repeated for its query group", () => {
    const L = 6, Hq = 4, Hk = 2, d = 3;
    const q = randomTensor([2, L, Hq * d], 1), k = randomTensor([2, L, Hk * d], 2), v = randomTensor([2, L, Hk * d], 3);
    const repeat = (t: typeof k) => {
      const out = new Float32Array(2 * L * Hq * d);
      for (let b = 0; b < 2; b++) for (let i = 0; i < L; i++) for (let h = 0; h < Hq; h++) for (let c = 0; c < d; c++)
        out[at([2, L, Hq, d], b, i, h, c)] = t.data[at([2, L, Hk, d], b, i, Math.floor(h / 2), c)]!;
      return floatTensor([2, L, Hq * d], out);
    };
    const a = multiHeadAttention(q, k, v, { heads: Hq, kvHeads: Hk, scale: 0.3 });
    const b = multiHeadAttention(q, repeat(k), repeat(v), { heads: Hq, kvHeads: Hq, scale: 0.3 });
    expect(relErr(a.data, b.data)).toBeLessThan(1e-6);
  });

  test("ASSA with gate 1 is attention over average-pooled keys; with gate 0 it is BNA", () => {
    const grid: [number, number] = [4, 4], L = 16, C = Hkv * dh;
    const [q, k, v] = qkv(L, 9);
    const bna = { grid, blocks: 4, radius: 0, partition: "raster", edge: "clamp" } as const;
    const avg = floatTensor([C, 1, 2, 2], new Float32Array(C * 4).fill(0.25)), zero = floatTensor([C]);
    const gate = (g: number) => floatTensor([1, L, H], new Float32Array(L * H).fill(g));
    const w = (g: number) => ({ kCompressW: avg, kCompressB: zero, vCompressW: avg, vCompressB: zero, gate: gate(g) });
    const pool = (x: typeof k) => {
      const out = new Float32Array(4 * C);
      for (let r = 0; r < 2; r++) for (let c = 0; c < 2; c++) for (let ch = 0; ch < C; ch++) {
        let s = 0;
        for (const [dr, dc] of [[0, 0], [0, 1], [1, 0], [1, 1]]) s += x.data[((2 * r + dr!) * 4 + 2 * c + dc!) * C + ch]!;
        out[(r * 2 + c) * C + ch] = s / 4;
      }
      return floatTensor([1, 4, C], out);
    };
    const global = multiHeadAttention(q, pool(k), pool(v), heads);
    expect(relErr(assaAttention(q, k, v, w(1), { ...heads, ...bna }).data, global.data)).toBeLessThan(1e-6);
    expect(relErr(assaAttention(q, k, v, w(0), { ...heads, ...bna }).data, bnaAttention(q, k, v, { ...heads, ...bna }).data)).toBeLessThan(1e-6);
  });

  test("2-D RoPE: token (0,0) unchanged, pair norms kept, rows turn the first half and columns the second", () => {
    const grid: [number, number] = [2, 3], heads1 = 1, d = 8;
    const x = randomTensor([1, 6, d], 4);
    const y = rope2d(x, heads1, grid);
    expect([...y.data.slice(0, d)]).toEqual([...x.data.slice(0, d)]);
    for (let i = 0; i < 6 * d; i += 2) expect(Math.hypot(y.data[i]!, y.data[i + 1]!)).toBeCloseTo(Math.hypot(x.data[i]!, x.data[i + 1]!), 5);
    // token 4 is row 1, column 1; pair 1 of each half has theta = pos · 10000^(-2/4) = pos / 100
    const t = 4 * d, th = 1 / 100;
    for (const off of [2, 6]) {
      const [a, b] = [x.data[t + off]!, x.data[t + off + 1]!];
      expect(y.data[t + off]).toBeCloseTo(a * Math.cos(th) - b * Math.sin(th), 6);
      expect(y.data[t + off + 1]).toBeCloseTo(a * Math.sin(th) + b * Math.cos(th), 6);
    }
    // token 3 is row 1, column 0: the column half (channels 4..7) is untouched
    expect([...y.data.slice(3 * d + 4, 4 * d)]).toEqual([...x.data.slice(3 * d + 4, 4 * d)]);
  });

  test("QK-norm normalizes each head separately with the shared affine", () => {
    const x = randomTensor([1, 3, 8], 5, 3), w = randomTensor([4], 6), b = randomTensor([4], 7);
    const y = qkNorm(x, w, b, 2, 1e-6);
    const ref = layerNorm(floatTensor([6, 4], x.data), 1, 1e-6, w.data, b.data);
    expect(relErr(y.data, ref.data)).toBeLessThan(1e-6);
  });
});
