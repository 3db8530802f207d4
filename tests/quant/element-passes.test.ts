// The per-element passes of a clustering in WebAssembly against their JavaScript oracles: the
// same bits for any layout (linear rows, convs with spatial positions, grouped convs), odd
// lengths and LUT groups.
import fc from "fast-check";
import { expect, test } from "vitest";
import { biasSums, lookupIndices, weightedCounts } from "../../src/quant/element-passes.js";
import { channelLayout } from "../../src/quant/kmeans.js";

/** A weight's shape (rows, inputs per group, kh, kw), its conv groups, seeded fp16 patterns and per-channel floats. */
const weightCase = fc
  .record({
    groups: fc.constantFrom(1, 2, 3),
    rowsPerGroup: fc.integer({ min: 1, max: 9 }),
    inPerRow: fc.integer({ min: 1, max: 40 }),
    k: fc.constantFrom(1, 3),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    // few distinct patterns make neighbouring equal patterns (and repeated sums) common
    spread: fc.constantFrom(8, 4096, 65536),
  })
  .map(({ groups, rowsPerGroup, inPerRow, k, seed, spread }) => {
    let s = seed;
    const next = () => (s = (s * 1103515245 + 12345) >>> 0);
    const shape = [groups * rowsPerGroup, inPerRow, k, k];
    const layout = channelLayout(k === 1 ? shape.slice(0, 2) : shape, groups);
    const n = shape[0]! * inPerRow * k * k;
    // finite fp16 patterns only (exponent 31 is inf/NaN)
    const bits = Uint16Array.from({ length: n }, () => {
      const p = next() % spread;
      return (p & 0x7c00) === 0x7c00 ? p & 0x83ff : p;
    });
    const channels = groups * inPerRow;
    const perChannel = Float64Array.from({ length: channels }, () => (next() % 100000) / 777 - 40);
    return { layout, bits, perChannel, rows: shape[0]!, next };
  });

/** The first element whose bits differ, or -1 (65,536 sums are too many for a deep comparison each run). */
function firstDifference(a: Float64Array, b: Float64Array): number {
  const x = new BigUint64Array(a.buffer, a.byteOffset, a.length), y = new BigUint64Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

test("weighted counts: WebAssembly equals the oracle bit for bit", () =>
  fc.assert(
    fc.property(weightCase, ({ layout, bits, perChannel }) => {
      expect(firstDifference(weightedCounts(bits, perChannel, layout, "wasm"), weightedCounts(bits, perChannel, layout, "js"))).toBe(-1);
    }),
    { numRuns: 150 },
  ));

test("index lookup: WebAssembly equals the oracle, with and without nibbles, odd lengths too", () =>
  fc.assert(
    fc.property(weightCase, fc.boolean(), ({ bits, next }, drop) => {
      // an odd length where the case's is even
      const data = drop && bits.length > 1 ? bits.subarray(0, bits.length - 1) : bits;
      const byPattern = Uint8Array.from({ length: 65536 }, () => next() & 15);
      for (const nibbles of [false, true]) {
        const out = (engine: "wasm" | "js") => {
          const o = { indices: new Uint8Array(data.length).fill(0xee), ...(nibbles ? { nibbles: new Uint8Array((data.length + 1) >> 1).fill(0xee) } : {}) };
          lookupIndices(data, byPattern, o, engine);
          return o;
        };
        const w = out("wasm"), j = out("js");
        expect(w.indices).toEqual(j.indices);
        expect(w.nibbles).toEqual(j.nibbles);
        expect(j.indices[data.length - 1]).toBe(byPattern[data[data.length - 1]!]);
      }
    }),
    { numRuns: 150 },
  ));

test("bias sums: WebAssembly equals the oracle for every LUT grouping, with and without an old bias", () =>
  fc.assert(
    fc.property(weightCase, fc.constantFrom(1, 2, 3), fc.boolean(), ({ layout, bits, perChannel, rows, next }, lutGroups, withBias) => {
      const groups = rows % lutGroups === 0 ? lutGroups : 1;
      const tables = Array.from({ length: groups }, () => Float64Array.from({ length: 65536 }, () => ((next() % 20001) - 10000) / 3e5));
      const asked: number[] = [];
      const errOf = (g: number) => (asked.push(g), tables[g]!);
      const bias = withBias ? Float32Array.from({ length: rows }, () => (next() % 1000) / 100 - 5) : undefined;
      const w = biasSums(bits, errOf, groups, layout, perChannel, bias, "wasm");
      expect(asked).toEqual([...Array(groups).keys()]); // each group's table once, in order
      expect(w).toEqual(biasSums(bits, (g) => tables[g]!, groups, layout, perChannel, bias, "js"));
    }),
    { numRuns: 150 },
  ));

test("the oracles compute what they say: a hand-checked count and bias", () => {
  // a linear (2, 3): rows read channels 0..2; patterns 1, 2, 1 / 2, 2, 3
  const bits = Uint16Array.of(1, 2, 1, 2, 2, 3), w = Float64Array.of(0.5, 2, 8), layout = channelLayout([2, 3]);
  for (const engine of ["wasm", "js"] as const) {
    const sums = weightedCounts(bits, w, layout, engine);
    expect([sums[1], sums[2], sums[3]]).toEqual([0.5 + 8, 2 + 0.5 + 2, 8]);
    const err = new Float64Array(65536);
    err[1] = 1;
    err[2] = -2;
    err[3] = 4;
    expect([...biasSums(bits, () => err, 1, layout, w, Float32Array.of(10, 20), engine)]).toEqual([10 + 0.5 - 4 + 8, 20 - 1 - 4 + 32]);
  }
  expect(() => weightedCounts(bits.subarray(0, 5), w, layout)).toThrow(/covers 6 elements, the weight has 5/);
});
