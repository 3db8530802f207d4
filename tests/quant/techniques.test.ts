// Compression techniques fed by calibration: activation-weighted k-means (exact, and today's
// result when unweighted), bias correction (mean output error zero; a zero bias created and
// emitted by every target where a layer had none), and per-group LUTs split into lookups.
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { applyPipeline, BACKENDS } from "../../src/driver/pipelines.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph } from "../../src/ir/graph.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { floatTensor, type FloatTensor } from "../../src/kernels/tensor.js";
import { f16BitsToF32, f32ToF16Bits } from "../../src/kernels/fp16.js";
import { activationStats } from "../../src/quant/calibration.js";
import { channelLayout, kmeans1d, palettize, palettizeWeighted, weightedHistogramOfBits } from "../../src/quant/kmeans.js";
import { encodeF16 } from "../../src/kernels/fp16.js";
import { opCount, runPasses } from "../passes/helpers.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { buildModel } from "../../src/model/build.js";
import { presetConfig } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { clusteringClock } from "../../src/quant/layer.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-techniques-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every assignment of n elements to at most k clusters, each cluster at its weighted mean. */
function exhaustiveWeighted(values: number[], weights: number[], k: number): number {
  const n = values.length;
  let best = Infinity;
  const a = new Array<number>(n).fill(0);
  const visit = (i: number) => {
    if (i === n) {
      let cost = 0;
      for (let c = 0; c < k; c++) {
        let w = 0, s = 0;
        for (let j = 0; j < n; j++) if (a[j] === c) (w += weights[j]!), (s += weights[j]! * values[j]!);
        if (!w) continue;
        for (let j = 0; j < n; j++) if (a[j] === c) cost += weights[j]! * (values[j]! - s / w) ** 2;
      }
      best = Math.min(best, cost);
      return;
    }
    for (let c = 0; c < k; c++) (a[i] = c), visit(i + 1);
  };
  visit(0);
  return best;
}

describe("activation-weighted k-means", () => {
  test("equals the exhaustive weighted optimum on small weights", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.nat(1_000_000), (rows, cols, k, seed) => {
        let s = seed + 1;
        const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
        // fp16-exact values with repeats, importance per input channel
        const w = Float32Array.from({ length: rows * cols }, () => Math.round((rnd() - 0.5) * 16) / 8);
        const imp = Float64Array.from({ length: cols }, () => 0.25 + Math.round(rnd() * 12) / 4);
        const h = weightedHistogramOfBits(encodeF16(w), imp, channelLayout([rows, cols]));
        const cost = kmeans1d(h.values, h.counts, k).cost;
        const exact = exhaustiveWeighted([...w], [...w].map((_, i) => imp[i % cols]!), k);
        expect(cost).toBeCloseTo(exact, 9);
      }),
      { numRuns: 200 },
    );
  });

  test("conv layouts: element (o, c, kh, kw) of a grouped conv is weighted by its group's input channel", () => {
    const l = channelLayout([4, 2, 1, 3], 2); // 4 outputs in 2 groups, 2 inputs per group
    expect([...l.rowBase]).toEqual([0, 0, 2, 2]);
    expect(l.inPerRow).toBe(2);
    expect(l.spatial).toBe(3);
    const bits = new Uint16Array(24).fill(f32ToF16Bits(1));
    bits[23] = f32ToF16Bits(2); // output 3, input channel 2 + 1 = 3
    const h = weightedHistogramOfBits(bits, Float64Array.of(1, 10, 100, 1000), l);
    expect([...h.values]).toEqual([1, 2]);
    expect([...h.counts]).toEqual([2 * 3 * (1 + 10) + 3 * (100 + 1000) + 3 * 100 + 2 * 1000, 1000]);
  });

  test("with equal importance it is today's clustering, bit for bit", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom(4 as const, 8 as const), fc.nat(10_000), (rows, cols, bits, seed) => {
        let s = seed + 7;
        const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
        const w = Float32Array.from({ length: rows * cols }, () => (rnd() - 0.5) * 0.2);
        const plain = palettize(w, bits), weighted = palettizeWeighted(w, bits, new Float64Array(cols).fill(1), channelLayout([rows, cols]));
        expect(weighted.lut).toEqual(plain.lut);
        expect(weighted.indices).toEqual(plain.indices);
      }),
      { numRuns: 60 },
    );
  });

  test("large-activation channels get the precision: their weighted error drops below plain k-means'", () => {
    let s = 3;
    const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
    const rows = 64, cols = 64;
    // the hot channels' weights are small: plain k-means spends few of its 16 entries on them
    const w = Float32Array.from({ length: rows * cols }, (_, i) => (rnd() - 0.5) * (i % cols < 4 ? 0.01 : 0.1));
    const imp = Float64Array.from({ length: cols }, (_, c) => (c < 4 ? 100 : 0.01));
    const err = (lut: Float32Array, idx: Uint8Array) => w.reduce((e, x, i) => e + imp[i % cols]! * (f16BitsToF32(f32ToF16Bits(x)) - lut[idx[i]!]!) ** 2, 0);
    const p = palettize(w, 4), q = palettizeWeighted(w, 4, imp, channelLayout([rows, cols]));
    expect(err(q.lut, q.indices)).toBeLessThan(0.5 * err(p.lut, p.indices));
  });
});

/** x (B, N, C) with per-channel offsets -> linear (O, C), with or without bias. */
function linearGraph(O: number, C: number, bias: boolean, seed: number): Graph {
  let s = seed + 11;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [2, 16, C] });
  const w = b.tensorConstant("layer.weight", floatTensor([O, C], Float32Array.from({ length: O * C }, () => (rnd() - 0.5) * 0.5)), "weight");
  const ins = [x, w];
  if (bias) ins.push(b.tensorConstant("layer.bias", floatTensor([O], Float32Array.from({ length: O }, () => rnd() - 0.5)), "weight"));
  const y = b.op("linear", ins, {});
  y.name = "y";
  return b.finish([y]);
}

/** 1×1 conv (grouped or not) on NCHW input, no bias. */
function convGraph(O: number, C: number, groups: number, seed: number): Graph {
  let s = seed + 5;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [2, C, 4, 4] });
  const w = b.tensorConstant("conv.weight", floatTensor([O, C / groups, 1, 1], Float32Array.from({ length: (O * C) / groups }, () => (rnd() - 0.5) * 0.5)), "weight");
  const y = b.op("conv2d", [x, w], { stride: [1, 1], pads: [0, 0, 0, 0], groups, layout: "NCHW" });
  y.name = "y";
  return b.finish([y]);
}

function inputsWithMean(shape: number[], channelAxis: number, seed: number): FloatTensor {
  let s = seed + 1;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const n = shape.reduce((a, b) => a * b, 1), C = shape[channelAxis]!, inner = shape.slice(channelAxis + 1).reduce((a, b) => a * b, 1);
  return floatTensor(shape, Float32Array.from({ length: n }, (_, i) => 2 * Math.sin(Math.floor(i / inner) % C) + 1 + (rnd() - 0.5)));
}

/** Mean over everything but the channel axis of (after − before), per channel. */
function meanError(before: FloatTensor, after: FloatTensor, channelAxis: number): number[] {
  const C = before.shape[channelAxis]!, inner = before.shape.slice(channelAxis + 1).reduce((a, b) => a * b, 1);
  const sum = new Float64Array(C), count = before.data.length / C;
  before.data.forEach((v, i) => (sum[Math.floor(i / inner) % C] += after.data[i]! - v));
  return [...sum].map((v) => v / count);
}

describe("bias correction", () => {
  const cases = [
    { name: "a linear with a bias", g: linearGraph(24, 32, true, 1), x: inputsWithMean([2, 16, 32], 2, 1), axis: 2 },
    { name: "a linear without one", g: linearGraph(24, 32, false, 2), x: inputsWithMean([2, 16, 32], 2, 2), axis: 2 },
    { name: "a 1x1 conv without one", g: convGraph(16, 8, 1, 3), x: inputsWithMean([2, 8, 4, 4], 1, 3), axis: 1 },
    { name: "a grouped 1x1 conv", g: convGraph(16, 8, 4, 4), x: inputsWithMean([2, 8, 4, 4], 1, 4), axis: 1 },
  ];
  for (const c of cases)
    test(`${c.name}: the mean output error on the calibration input is zero to rounding`, () => {
      const name = c.g.nodes.find((n) => n.kind === "const")!.attrs.value.source as string;
      const stats = activationStats(() => c.g, { x: c.x });
      // activationStats runs the graph on the whole set as one chunk: here a graph with input x
      expect(stats.get(name)!.mean.length).toBe(c.x.shape[c.axis]);
      const run = (g: Graph) => runGraph(g, { x: c.x }).y as FloatTensor;
      const ref = run(c.g);
      const plain = runPasses(c.g, [{ pass: "palettize", options: { bits: { [name]: 4 } } }]);
      const corrected = runPasses(c.g, [{ pass: "palettize", options: { bits: { [name]: 4 }, stats, biasCorrection: true } }]);
      const scale = Math.max(...ref.data.map(Math.abs));
      const before = meanError(ref, run(plain), c.axis), after = meanError(ref, run(corrected), c.axis);
      expect(Math.max(...before.map(Math.abs))).toBeGreaterThan(1e-4 * scale);
      for (const e of after) expect(Math.abs(e)).toBeLessThan(2e-6 * scale);
      const layer = corrected.nodes.find((n) => n.kind === "linear" || n.kind === "conv2d")!;
      expect(layer.inputs).toHaveLength(3);
    });

  test("a created bias is emitted by every target and read back with the same outputs", () => {
    const g0 = linearGraph(24, 32, false, 9);
    const x = inputsWithMean([2, 16, 32], 2, 9);
    const stats = activationStats(() => g0, { x });
    const g = runPasses(g0, [{ pass: "palettize", options: { bits: { "layer.weight": 8 }, stats, biasCorrection: true, weighted: true } }]);
    const want = runGraph(g, { x }).y as FloatTensor;
    for (const target of ["onnx", "tflite", "coreml"]) {
      const lowered = applyPipeline(g, target);
      const path = join(dir, `bias.${BACKENDS[target]!.artifact.split(".").pop()}`);
      BACKENDS[target]!.emit(lowered, path, {});
      const read = BACKENDS[target]!.read(path);
      try {
        expect(read.graph.nodes.some((n) => n.kind === "const" && n.attrs.value.type.shape.join() === "24"), target).toBe(true);
        const got = Object.values(runGraph(read.graph, { x }))[0] as FloatTensor;
        let err = 0;
        want.data.forEach((v, i) => (err = Math.max(err, Math.abs(v - got.data[i]!))));
        expect(err, target).toBeLessThan(1e-5);
      } finally {
        read.close();
      }
    }
  });
});

test("each weight is clustered (and its bias corrected) once for all targets of a width, and never while lowering", () => {
  const c = presetConfig("micro");
  const reads = new Map<string, number>();
  const synthetic = syntheticSource(c, 0);
  const g0 = buildModel({ ...synthetic, read: (spec) => (reads.set(spec.name, (reads.get(spec.name) ?? 0) + 1), synthetic.read(spec)) }, { width: 1 }).graph;
  const stats = activationStats(() => g0, syntheticInputs(c, 0, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens }));
  const bits = Object.fromEntries([...stats.keys()].map((k) => [k, 4 as const]));
  const options = { bits, stats, weighted: true, biasCorrection: true, shared: { clusterings: new Map(), biases: new Map() } };
  const clustered: number[] = [], palettizedReads: number[] = [];
  for (const target of ["coreml", "tflite", "onnx"]) {
    const before = clusteringClock();
    reads.clear();
    const g = applyPipeline(g0, target, { before: [{ pass: "palettize", options }] });
    // deduplication hashes biases but not the ones a palettized weight owns (that would cluster it)
    expect(clusteringClock(), `${target}: clustered while lowering`).toBe(before);
    BACKENDS[target]!.emit(g, join(dir, `once-${BACKENDS[target]!.artifact}`), {});
    clustered.push(clusteringClock() - before);
    palettizedReads.push(Object.keys(bits).reduce((n, k) => n + (reads.get(k) ?? 0), 0));
  }
  expect(clustered[0]).toBeGreaterThan(0);
  expect(clustered.slice(1)).toEqual([0, 0]);
  expect(options.shared.clusterings.size).toBe(Object.keys(bits).length);
  // the later targets take clusterings and corrected biases as they are: no palettized weight is read again
  expect(palettizedReads[0]).toBeGreaterThan(0);
  expect(palettizedReads.slice(1)).toEqual([0, 0]);
  expect(options.shared.biases.size).toBe(Object.keys(bits).length);
});

test("split-lut-groups: one lookup per group, exactly the grouped lut_to_dense", () => {
  fc.assert(
    fc.property(fc.constantFrom(4, 8), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 6 }), fc.nat(1000), (bits, groups, rowsPer, cols, seed) => {
      const k = 1 << bits, rows = groups * rowsPer;
      const idx = Uint8Array.from({ length: rows * cols }, (_, i) => (i * 5 + seed) % k);
      const lut = Float32Array.from({ length: groups * k }, (_, i) => Math.cos(i + seed));
      const b = new GraphBuilder();
      const x = b.input("x", { dtype: "f32", shape: [1] });
      const dtype = bits === 4 ? "u4" : "u8";
      const i = b.constant({ type: { dtype, shape: [rows, cols] }, source: "w indices", load: () => ({ dtype, shape: [rows, cols], data: idx }) });
      const l = b.tensorConstant("w lut", floatTensor([groups, k], lut));
      const y = b.op("mul", [b.op("lut_to_dense", [i, l], {}), x], {});
      y.name = "y";
      const g = b.finish([y]);
      const out = runPasses(g, [{ pass: "split-lut-groups" }, { pass: "lut-to-gather" }], { x: floatTensor([1], Float32Array.of(1)) }, 0);
      expect(opCount(out, "lut_to_dense")).toBe(0);
      expect(opCount(out, "gather")).toBe(groups);
    }),
    { numRuns: 40 },
  );
});
