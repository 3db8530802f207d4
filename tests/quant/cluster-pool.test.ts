// Clustering on worker threads (src/quant/cluster-pool.ts): the same bits as clustering on the
// calling thread, for every kind of plan and any worker count; errors come back as errors.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { clusterAll, clusterThreads, openClusterPool, startClustering, type ClusterJob } from "../../src/quant/cluster-pool.js";
import type { Palettized } from "../../src/quant/kmeans.js";
import { clusterGroups, clusteringClock, clusterPlan, correctedBias, weightForClustering } from "../../src/quant/layer.js";
import { presetConfig } from "../../src/model/config.js";
import { specsForWidth } from "../../src/model/params.js";
import { weightReadClock } from "../../src/model/read-clock.js";
import { widthConstant, type WeightSource } from "../../src/model/weights.js";
import { SliceStore } from "../../src/model/slice-store.js";
import { packU4 } from "../../src/io/encode.js";
import { decodeF16, encodeF16 } from "../../src/kernels/fp16.js";
import { randomTensor } from "../helpers.js";
import { engineSpinMicros, SHARED_SPIN_MS, SPIN_MS } from "../../src/kernels/simd/engine.js";
import { asFloat } from "../../src/kernels/tensor.js";

function jobs(): ClusterJob[] {
  const stats = (channels: number, seed: number) => {
    const m = randomTensor([channels], seed).data;
    return { mean: Float64Array.from(m), meanSq: Float64Array.from(m, (x) => x * x + 0.1) };
  };
  const specs: [string, number[], 4 | 8, number, boolean][] = [
    ["plain", [48, 40], 4, 0, false],
    ["groups", [64, 24], 4, 16, false],
    ["groups of odd size", [6, 5], 4, 3, false],
    ["weighted", [32, 56], 4, 0, true],
    ["weighted groups 8 bit", [64, 30], 8, 32, true],
    ["conv", [16, 8, 3, 3], 4, 0, true],
  ];
  return specs.map(([source, shape, bits, groupSize, weighted], i) => {
    const w = randomTensor(shape, 100 + i);
    const plan = clusterPlan(shape, 1, bits, { groupSize, weighted }, weighted ? stats(shape[1]!, 200 + i) : undefined);
    return { source, plan, load: () => w.data.slice() };
  });
}

test("clustering on 1 or 2 workers gives every weight exactly what clusterGroups gives on this thread", () => {
  const want = new Map(jobs().map((j) => [j.source, clusterGroups(j.load(), j.plan)]));
  for (const workers of [1, 2]) {
    const got = new Map<string, Palettized>();
    clusterAll(jobs(), got, workers);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, p] of want) {
      expect(got.get(name)!.indices, `${name} on ${workers}`).toEqual(p.indices);
      expect(got.get(name)!.lut, `${name} on ${workers}`).toEqual(p.lut);
      // what the targets write: 4-bit indices packed on the worker, remembered for the indices array
      const idx = got.get(name)!.indices;
      expect(packU4(idx), `${name} packed`).toEqual(packU4(Array.from(idx)));
    }
  }
});

test("a weight handed over as fp16 patterns clusters exactly as its float32 values do, on workers and here", () => {
  const want = new Map(jobs().map((j) => [j.source, clusterGroups(j.load(), j.plan)]));
  const asBits = jobs().map((j) => ({ ...j, load: () => encodeF16(j.load() as Float32Array) }));
  const got = new Map<string, Palettized>();
  clusterAll(asBits, got, 2);
  for (const j of asBits) {
    const here = clusterGroups(j.load(), j.plan);
    for (const p of [got.get(j.source)!, here]) {
      expect(p.indices, j.source).toEqual(want.get(j.source)!.indices);
      expect(p.lut, j.source).toEqual(want.get(j.source)!.lut);
      expect(p.sse, j.source).toBe(want.get(j.source)!.sse);
    }
  }
});

test("biases corrected on the worker that has the weight equal correctedBias on this thread, with and without an old bias", () => {
  const all = jobs(); // linears (one element per channel) and a conv (nine)
  const want = new Map<string, Float32Array>(), got = new Map<string, Float32Array>();
  const withFixes = all.map((j, i) => {
    const rows = j.plan.layout.rowBase.length, channels = j.plan.layout.rowBase[rows - 1]! + j.plan.layout.inPerRow;
    const mean = Float64Array.from(randomTensor([channels], 300 + i).data);
    const old = randomTensor([rows], 400 + i).data;
    const p = clusterGroups(j.load(), j.plan);
    want.set(`${j.source} corrected`, correctedBias(j.load(), p, j.plan, mean, old));
    want.set(`${j.source} bias correction`, correctedBias(j.load(), p, j.plan, mean, undefined));
    return { ...j, corrections: [{ source: `${j.source} corrected`, mean, old: () => old, into: got }, { source: `${j.source} bias correction`, mean, into: got }] };
  });
  clusterAll(withFixes, new Map(), 2);
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, b] of want) expect(got.get(k), k).toEqual(b);
});

test("a bias corrected through a per-pattern error table (the clustering's, or one read off its indices) equals the per-element sum over the decoded weight bit for bit", () => {
  jobs().forEach((j, i) => {
    const bits = encodeF16(j.load() as Float32Array), decoded = decodeF16(bits);
    const rows = j.plan.layout.rowBase.length, channels = j.plan.layout.rowBase[rows - 1]! + j.plan.layout.inPerRow;
    const mean = Float64Array.from(randomTensor([channels], 500 + i).data);
    const old = randomTensor([rows], 600 + i).data;
    const p = clusterGroups(bits, j.plan);
    expect(p.clusterOf?.length, j.source).toBe(j.plan.groups * 65536);
    const { clusterOf: _, ...fromIndices } = p; // as the pool hands it back: no table
    for (const b of [old, undefined]) {
      const perElement = correctedBias(decoded, p, j.plan, mean, b); // float32 weight: decode, index and LUT per element
      expect(correctedBias(bits, p, j.plan, mean, b), j.source).toEqual(perElement);
      expect(correctedBias(bits, fromIndices, j.plan, mean, b), j.source).toEqual(perElement);
    }
    // and a wrong table shows (the check can fail)
    const shifted = { ...p, clusterOf: p.clusterOf!.map((c) => (c + 1) % (1 << j.plan.bits)) };
    expect(correctedBias(bits, shifted, j.plan, mean, old), j.source).not.toEqual(correctedBias(decoded, p, j.plan, mean, old));
  });
});

test("in the background, clustering runs while this thread works; finish stores exactly what clusterAll does", () => {
  const want = new Map<string, Palettized>();
  clusterAll(jobs(), want, 2);
  const into = new Map<string, Palettized>();
  const progress: number[] = [];
  const run = startClustering(jobs(), into, 2, (done) => progress.push(done));
  expect(into.size).toBe(0); // handed over, not waited for
  const until = performance.now() + 200;
  while (performance.now() < until); // this thread's own work
  run.finish();
  expect(progress).toEqual([...Array(want.size).keys()].map((k) => k + 1));
  for (const [name, p] of want) {
    expect(into.get(name)!.indices, name).toEqual(p.indices);
    expect(into.get(name)!.lut, name).toEqual(p.lut);
  }
  run.cancel(); // nothing once finished
  // a worker's error surfaces at finish; a cancelled run cannot be finished
  const weighted = jobs()[3]!;
  const wrongLayout = { ...weighted, source: "broken", plan: { ...weighted.plan, layout: { ...weighted.plan.layout, inPerRow: weighted.plan.layout.inPerRow + 1 } } };
  const broken = startClustering([weighted, wrongLayout], new Map(), 2);
  expect(() => broken.finish()).toThrow(/channel layout covers/);
  const dropped = startClustering(jobs(), new Map(), 2);
  dropped.cancel();
  expect(() => dropped.finish()).toThrow(/used after it stopped/);
});

test("a caller that waits clusters queued jobs itself (the one it waits for first), with the same results", () => {
  // 8-bit clusterings over many distinct values: each takes the one worker a while
  const big = Array.from({ length: 8 }, (_, i): ClusterJob => {
    const w = randomTensor([128, 512], 700 + i);
    return { source: `big ${i}`, plan: clusterPlan([128, 512], 1, 8, { groupSize: 0 }, undefined), load: () => w.data.slice() };
  });
  const want = new Map(big.map((j) => [j.source, clusterGroups(j.load(), j.plan)]));
  const check = (got: Map<string, Palettized>) => {
    for (const [name, p] of want) {
      expect(got.get(name)!.indices, name).toEqual(p.indices);
      expect(got.get(name)!.lut, name).toEqual(p.lut);
      expect(got.get(name)!.sse, name).toBe(p.sse);
    }
  };
  // a job waited for while the worker is still on the first: this thread takes that one, and only it
  // (no more than one either way: a worker that got far ahead would leave it none)
  const into = new Map<string, Palettized>();
  const pool = openClusterPool(into, 1);
  try {
    pool.add(big);
    pool.waitFor("big 3");
    expect(into.has("big 3")).toBe(true);
    expect(pool.takenOver).toBeLessThanOrEqual(1); // big 3 itself (taking the tail first would take 5)
    pool.finish();
  } finally {
    pool.cancel(); // nothing once finished; a failed check leaves no pool running
  }
  check(into);
  // finish takes the queue's tail while the worker works from its head
  const all = new Map<string, Palettized>(), before = clusteringClock();
  const run = startClustering(big, all, 1);
  run.finish();
  expect(run.takenOver).toBeGreaterThan(0);
  check(all);
  expect(clusteringClock() - before).toBeGreaterThan(0);
  // an error in a job run here surfaces as the worker's would
  const m = randomTensor([512], 800).data;
  const weighted = clusterPlan([128, 512], 1, 8, { groupSize: 0, weighted: true }, { mean: Float64Array.from(m), meanSq: Float64Array.from(m, (x) => x * x + 0.1) });
  const bad = startClustering([...big.slice(0, 3), { ...big[3]!, source: "bad", plan: { ...weighted, layout: { ...weighted.layout, inPerRow: 511 } } }], new Map(), 1);
  expect(() => bad.finish()).toThrow(/channel layout covers/);
  expect(bad.takenOver).toBeGreaterThanOrEqual(1);
});

test("a pool takes jobs as they come: poll stores what is done, waitFor blocks for one, finish for the rest", () => {
  const all = jobs();
  const want = new Map<string, Palettized>();
  clusterAll(all, want, 2);
  const into = new Map<string, Palettized>();
  const pool = openClusterPool(into, 2);
  pool.add(all.slice(0, 2));
  pool.waitFor(all[1]!.source);
  expect(into.has(all[1]!.source)).toBe(true);
  pool.add(all.slice(2));
  pool.poll(); // never blocks; stores only finished jobs
  expect(() => pool.waitFor("never added")).toThrow(/no clustering job/);
  const again = openClusterPool(into, 1);
  again.add(all.slice(2, 3));
  again.finish();
  pool.cancel();
  const rest = openClusterPool(into, 2);
  rest.add(all.filter((j) => !into.has(j.source)));
  rest.finish();
  expect([...into.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, p] of want) {
    expect(into.get(name)!.indices, name).toEqual(p.indices);
    expect(into.get(name)!.lut, name).toEqual(p.lut);
  }
});

test("the loader's arrays stay intact (a cache may hand out its own)", () => {
  const all = jobs().map((j) => ({ ...j, data: j.load() }));
  clusterAll(all.map((j) => ({ ...j, load: () => j.data })), new Map(), 2);
  for (const j of all) expect(j.data.length, j.source).toBe(j.load().length);
});

test("weights already in shared memory (the read cache's) are lent to the workers, never reused for another weight", () => {
  const all = jobs().map((j) => ({ ...j, bits: encodeF16(j.load() as Float32Array) }));
  // the largest weights lent, the rest copied: a copied weight would land in a lent buffer were it recycled
  const byLength = [...all].sort((a, b) => b.bits.length - a.bits.length);
  const lent = new Map(byLength.slice(0, 2).map((j) => {
    const shared = new Uint16Array(new SharedArrayBuffer(j.bits.byteLength));
    shared.set(j.bits);
    return [j.source, shared];
  }));
  const order = [...byLength.slice(0, 2), ...byLength.slice(2), ...byLength.slice(2).map((j) => ({ ...j, source: `${j.source} again` }))];
  const got = new Map<string, Palettized>();
  clusterAll(order.map((j) => ({ source: j.source, plan: j.plan, load: () => lent.get(j.source) ?? j.bits.slice() })), got, 2);
  for (const j of order) {
    if (lent.has(j.source)) expect(lent.get(j.source), `${j.source} untouched`).toEqual(j.bits);
    const here = clusterGroups(j.bits, j.plan);
    expect(got.get(j.source)!.indices, j.source).toEqual(here.indices);
    expect(got.get(j.source)!.lut, j.source).toEqual(here.lut);
  }
});

test("weights already clustered are not read again", () => {
  const all = jobs();
  const into = new Map<string, Palettized>([[all[0]!.source, clusterGroups(all[0]!.load(), all[0]!.plan)]]);
  let reads = 0;
  clusterAll(all.map((j) => ({ ...j, load: () => (j.source === all[0]!.source && reads++, j.load()) })), into, 2);
  expect(reads).toBe(0);
  expect(into.size).toBe(all.length);
});

test("an error while clustering (in a worker) or reading (here) fails the call with that error instead of hanging", () => {
  const [job] = jobs();
  const broken: ClusterJob = { ...job!, source: "broken", plan: { ...job!.plan, layout: undefined as never } };
  expect(() => clusterAll([job!, broken], new Map(), 2)).toThrow(/rowBase/);
  const unreadable: ClusterJob = { ...job!, source: "unreadable", load: () => { throw new RangeError("checkpoint truncated"); } };
  expect(() => clusterAll([job!, unreadable], new Map(), 1)).toThrow(/checkpoint truncated/);
});

test("a pool's threads serve the next pool, with the same bits; a pool that fails or is cancelled ends its own", () => {
  const want = new Map(jobs().map((j) => [j.source, clusterGroups(j.load(), j.plan)]));
  const same = (got: Map<string, Palettized>, what: string) => {
    for (const [name, p] of want) {
      expect(got.get(name)!.indices, `${name}, ${what}`).toEqual(p.indices);
      expect(got.get(name)!.lut, `${name}, ${what}`).toEqual(p.lut);
    }
  };
  clusterAll(jobs(), new Map(), 2);
  const warm = clusterThreads();
  expect(warm.idle).toBeGreaterThanOrEqual(2);
  for (const workers of [2, 1, 2]) {
    const got = new Map<string, Palettized>();
    clusterAll(jobs(), got, workers);
    same(got, `${workers} reused`);
  }
  expect(clusterThreads()).toEqual(warm); // no thread started, none lost
  // cancelled with jobs in flight: its threads end (a stale job of its own may still be queued for them)
  startClustering(jobs(), new Map(), 2).cancel();
  expect(clusterThreads().idle).toBe(warm.idle - 2);
  const [job] = jobs();
  const broken: ClusterJob = { ...job!, source: "broken", plan: { ...job!.plan, layout: undefined as never } };
  expect(() => clusterAll([job!, broken], new Map(), 1)).toThrow(/rowBase/);
  expect(clusterThreads().idle).toBe(Math.max(0, warm.idle - 3));
  const got = new Map<string, Palettized>();
  clusterAll(jobs(), got, 2);
  same(got, "after the failures");
  expect(clusterThreads().started).toBeGreaterThan(warm.started);
});

test("a clustering thread that ends in the middle of a job fails the wait with an error instead of hanging", async () => {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const dir = mkdtempSync(join(tmpdir(), "ditc-dying-thread-"));
  try {
    const quant = new URL("../../dist/src/quant/", import.meta.url).href;
    const thread = join(dir, "dying-thread.mjs");
    writeFileSync(thread, `
      import { parentPort, workerData } from "node:worker_threads";
      const { announceClusterThread, claimJob } = await import("${quant}cluster-pool.js");
      announceClusterThread(workerData);
      // takes its first job and ends with an error nobody catches
      parentPort.on("message", (m) => { if (claimJob(m)) throw new Error("a clustering thread's uncaught error"); });
    `);
    // in a child process: were the wait to hang, the timeout ends it and the test fails
    const script = `
      const { openClusterPool } = await import("${quant}cluster-pool.js");
      const { clusterPlan } = await import("${quant}layer.js");
      const data = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i));
      const job = (source) => ({ source, plan: clusterPlan([64, 64], 1, 4, { groupSize: 0, weighted: false }, undefined), load: () => data.slice() });
      const pool = openClusterPool(new Map(), 1, undefined, { background: false, thread: ${JSON.stringify(thread)} });
      pool.add([job("first"), job("second")]);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000); // the thread takes the first job meanwhile
      try { pool.finish(); console.log("finished"); } catch (e) { console.log(e.message); }
    `;
    const r = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 30_000 });
    expect(r.stdout).toMatch(/a clustering thread stopped while it had first/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("threads waiting for a pool do not keep the process alive", async () => {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const dist = new URL("../../dist/src/quant/", import.meta.url).href;
  const script = `
    const { clusterAll, clusterThreads } = await import("${dist}cluster-pool.js");
    const { clusterPlan } = await import("${dist}layer.js");
    const data = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i));
    const into = new Map();
    clusterAll([0, 1, 2].map((i) => ({ source: "w" + i, plan: clusterPlan([64, 64], 1, 4, { groupSize: 0, weighted: false }, undefined), load: () => data.slice() })), into, 2);
    console.log(JSON.stringify({ clustered: into.size, ...clusterThreads() }));
  `;
  const r = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 30_000 });
  expect(JSON.parse(r.stdout)).toEqual({ clustered: 3, started: 2, idle: 2 });
});

test("the pool's clustering time leaves out this thread's reads of the weights (the caller times those as reads)", () => {
  const all = jobs().slice(0, 3);
  const slowRead = (j: ClusterJob): ClusterJob => ({ ...j, load: () => {
    const until = performance.now() + 150;
    while (performance.now() < until); // a slow disk
    return j.load();
  } });
  const before = clusteringClock(), t0 = performance.now();
  clusterAll(all.map(slowRead), new Map(), 2);
  const wall = (performance.now() - t0) / 1000, clustering = clusteringClock() - before;
  expect(clustering).toBeGreaterThan(0);
  expect(clustering).toBeLessThanOrEqual(wall - 3 * 0.15 + 0.01);
});

test("an fp16 weight sliced to a width (a source that keeps no slices) is read on the weight-read clock and clusters as its sliced copy does", () => {
  const cfg = presetConfig("mini");
  const spec = specsForWidth(cfg, 1).find((s) => s.shape.length === 2 && s.slice?.some((a) => a.kind !== "full"))!;
  const full = encodeF16(randomTensor(spec.shape, 7).data);
  const src: WeightSource = { config: cfg, origin: "test", read: () => decodeF16(full), readF16: () => full };
  const c = widthConstant(src, spec, 0.5);
  const sliced = asFloat(c.load()).half!;
  expect(sliced.length).toBeLessThan(full.length);
  const plan = clusterPlan(c.type.shape, 1, 8, { groupSize: 0, weighted: false }, undefined);
  const got = new Map<string, Palettized>(), reads = weightReadClock();
  clusterAll([{ source: "w", plan, load: () => weightForClustering(c) }], got, 1);
  expect(weightReadClock()).toBeGreaterThan(reads);
  const want = clusterGroups(sliced, plan);
  expect(got.get("w")!.indices).toEqual(want.indices);
  expect(got.get("w")!.lut).toEqual(want.lut);
});

test("a source that keeps slices makes each width's fp16 slice once, in shared memory, for every constant of that weight and width", () => {
  const cfg = presetConfig("mini");
  const spec = specsForWidth(cfg, 1).find((s) => s.shape.length === 2 && s.slice?.some((a) => a.kind !== "full"))!;
  const full = encodeF16(randomTensor(spec.shape, 8).data);
  let reads = 0;
  const src: WeightSource = { config: cfg, origin: "test", read: () => decodeF16(full), readF16: () => (reads++, full), slices: new SliceStore() };
  const first = asFloat(widthConstant(src, spec, 0.5).load()).half!;
  expect(first.buffer).toBeInstanceOf(SharedArrayBuffer); // the cluster pool lends it, no copy
  expect(first).toEqual(asFloat(widthConstant({ ...src, slices: undefined }, spec, 0.5).load()).half!);
  // another graph's constant of the same weight and width (the probe's)
  const again = widthConstant(src, spec, 0.5);
  expect(asFloat(again.load()).half!).toBe(first);
  expect(again.load().data).toEqual(decodeF16(first));
  expect(asFloat(widthConstant(src, spec, 0.75).load()).half!).not.toBe(first);
  expect(src.slices!.size).toBe(2);
  expect(reads).toBeGreaterThan(0);
  // the next width's slices reuse the memory: made again after a reset, with the same values
  src.slices!.reset();
  const made = asFloat(widthConstant(src, spec, 0.5).load()).half!;
  expect(made.buffer).toBe(first.buffer);
  expect(made).toEqual(asFloat(widthConstant({ ...src, slices: undefined }, spec, 0.5).load()).half!);
});

test("while a pool runs, the engine's threads poll only briefly before sleeping; after it, as before", () => {
  const alone = engineSpinMicros();
  expect(alone).toBe(SPIN_MS * 1000);
  const run = startClustering(jobs(), new Map(), 2);
  expect(engineSpinMicros()).toBe(SHARED_SPIN_MS * 1000);
  run.finish();
  expect(engineSpinMicros()).toBe(alone);
  const a = openClusterPool(new Map(), 1), b = openClusterPool(new Map(), 1);
  a.cancel();
  expect(engineSpinMicros()).toBe(SHARED_SPIN_MS * 1000); // b still runs
  b.cancel();
  b.cancel(); // a second stop changes nothing
  expect(engineSpinMicros()).toBe(alone);
  // a failed pool stops as well
  const bad = jobs().map((j, i) => (i === 1 ? { ...j, load: () => { throw new Error("unreadable weight"); } } : j));
  expect(() => startClustering(bad, new Map(), 2).finish()).toThrow(/unreadable weight/);
  expect(engineSpinMicros()).toBe(alone);
});
