// A width's fp16 slices made on this thread and a helper (src/model/slice-jobs.ts): the same
// slices as sliceRuns gives on one thread, whichever thread makes each; arrays outside shared
// memory are sliced here; a slice the helper cannot make fails here with its own error. The
// helper runs from dist/ (npm run build).
import fc from "fast-check";
import { expect, test } from "vitest";
import { makeSlices, sliceRuns, type SliceJob } from "../../src/model/slice-jobs.js";
import { presetConfig } from "../../src/model/config.js";
import { SliceStore } from "../../src/model/slice-store.js";
import { synthesize } from "../../src/model/synthetic.js";
import { encodeF16 } from "../../src/kernels/fp16.js";
import { specsForWidth } from "../../src/model/params.js";
import { makeWidthSlices, type WeightSource } from "../../src/model/weights.js";

/** `a` copied into shared memory, or left where it is. */
const sharedCopy = (a: Uint16Array, shared: boolean) => {
  if (!shared) return a;
  const s = new Uint16Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
};

const jobArb = fc
  .array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 })
  .chain((shape) => fc.tuple(fc.constant(shape), fc.tuple(...shape.map((d) => fc.integer({ min: 0, max: d - 1 }).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 1, max: d - s }))))), fc.boolean(), fc.boolean()));

test("slices made on two threads equal sliceRuns' on one, shared or not", () =>
  fc.assert(
    fc.property(fc.array(jobArb, { minLength: 1, maxLength: 24 }), fc.integer({ min: 1, max: 2 }), (specs, threads) => {
      const jobs: SliceJob[] = specs.map(([shape, kept, fromShared, intoShared], j) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const from = sharedCopy(Uint16Array.from({ length: n }, (_, i) => (i * 7 + j) & 0xffff), fromShared);
        const runs = kept.map(([s, k]) => [[s, k]] as [number, number][]);
        const size = kept.reduce((a, [, k]) => a * k, 1);
        return { from, shape, runs, into: sharedCopy(new Uint16Array(size).fill(0xffff), intoShared) };
      });
      makeSlices(jobs, threads);
      for (const j of jobs) expect([...j.into]).toEqual([...sliceRuns(j.from, j.shape, j.runs)]);
    }),
    { numRuns: 25 },
  ));

test("the helper makes its share of the shared slices while this thread makes the others", () => {
  // slices outside shared memory, which only this thread can make, take it a good part of a
  // second while the helper starts and takes shared ones (a helper that only claimed jobs would
  // leave theirs unwritten)
  const n = 1 << 20;
  const ramp = Uint16Array.from({ length: 2 * n }, (_, i) => i & 0xffff);
  const from = sharedCopy(ramp, true);
  // every other element of each row: runs of one element, copied one by one
  const own = (): SliceJob => ({ from: ramp, shape: [n / 2, 4], runs: [[[0, n / 2]], [[0, 1], [2, 1]]], into: new Uint16Array(n) });
  const shared = (j: number): SliceJob => ({ from, shape: [2, n], runs: [[[j % 2, 1]], [[0, n]]], into: sharedCopy(new Uint16Array(n), true) });
  const jobs = [...Array.from({ length: 16 }, own), ...Array.from({ length: 32 }, (_, j) => shared(j))];
  makeSlices(jobs, 2);
  jobs.forEach((job, j) => {
    let bad = 0;
    for (let i = 0; i < n; i++) if (job.into[i] !== (j < 16 ? ramp[2 * i]! : ((j % 2) * n + i) & 0xffff)) bad++;
    expect(bad, `slice ${j}`).toBe(0);
  });
});

test("a slice the helper cannot make fails on this thread with its own error", () => {
  const from = sharedCopy(Uint16Array.from({ length: 64 }, (_, i) => i), true);
  const good = (): SliceJob => ({ from, shape: [8, 8], runs: [[[0, 4]], [[0, 8]]], into: sharedCopy(new Uint16Array(32), true) });
  const bad: SliceJob = { from, shape: [8, 8], runs: [[[0, 4]], [[0, 8]]], into: sharedCopy(new Uint16Array(31), true) };
  expect(() => makeSlices([good(), good(), bad, good()], 2)).toThrow(/sliceRuns into 31 elements, the slice has 32/);
});

test("makeWidthSlices on two threads makes the same slices as on one", () => {
  const cfg = presetConfig("mini");
  const source = (): WeightSource => {
    const stored = new Map<string, Uint16Array>();
    return {
      config: cfg, origin: "test", read: (spec) => synthesize(spec, 2),
      // shared memory, as the read cache's prefetched tensors are
      readF16: (spec) => stored.get(spec.name) ?? stored.set(spec.name, sharedCopy(encodeF16(synthesize(spec, 2)), true)).get(spec.name)!,
      slices: new SliceStore(1 << 20),
    };
  };
  const one = source(), two = source();
  const made = makeWidthSlices(one, 0.375, 1);
  expect(made).toBeGreaterThan(10);
  expect(makeWidthSlices(two, 0.375, 2)).toBe(made);
  let compared = 0;
  for (const spec of specsForWidth(cfg, 0.375)) {
    const a = one.slices!.get(`${spec.name}@0.375`), b = two.slices!.get(`${spec.name}@0.375`);
    expect(b && [...b], spec.name).toEqual(a && [...a]);
    if (a) compared++;
  }
  expect(compared).toBe(made);
});
