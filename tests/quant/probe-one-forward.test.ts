// Statistics, 4-bit clustering and the layer probe in one forward (probeLayersWithStatistics), and
// the probe of a larger set with its clusterings on the pool beside it (probeLayersClustering),
// give exactly what the three steps give one after another: the same statistics, clusterings,
// corrected biases and layer errors, whether layers wait for their clusterings or run ahead.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { SafetensorsFile, writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { DEFAULT_TECHNIQUES, planWidth } from "../../src/driver/quantize-plan.js";
import { buildModel } from "../../src/model/build.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { activationStats, statsSite, storedStats, type CalibrationSet } from "../../src/quant/calibration.js";
import { clusterAll } from "../../src/quant/cluster-pool.js";
import type { Palettized } from "../../src/quant/kmeans.js";
import type { QuantizeTechniques } from "../../src/quant/layer.js";
import { layerClusterJobs, oneForwardProbe, probeLayers, probeLayersClustering, probeLayersWithStatistics, probeRowStep, techniqueQuantizer, type AheadClustering } from "../../src/quant/probe.js";
import { producers, type Graph } from "../../src/ir/graph.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { asFloat, numel } from "../../src/kernels/tensor.js";
import { opDef } from "../../src/ops/index.js";
import type { ChannelStats } from "../../src/quant/calibration.js";

const TRAINED = new URL("../../fixtures/shapes-micro/model.safetensors", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-probe-one-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The three steps one after another: every layer clustered on the pool before the probe's forwards. */
function clusteredFirst(g: Graph, t: QuantizeTechniques, stats: Map<string, ChannelStats>): Map<string, AheadClustering> {
  const biases = new Map<string, Float32Array>(), clusterings = new Map<string, Palettized>();
  const { jobs, biasSource } = layerClusterJobs(g, t, stats, () => 4, biases);
  clusterAll(jobs, clusterings, 2);
  return new Map([...clusterings].map(([name, clustering]) => {
    const source = biasSource.get(name);
    return [name, { clustering, ...(source ? { bias: { source, value: biases.get(source)! } } : {}) }];
  }));
}

function expectSameClusterings(got: Map<string, AheadClustering>, want: Map<string, AheadClustering>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, a] of want) {
    const b = got.get(k)!;
    expect(b.clustering.indices, k).toEqual(a.clustering.indices);
    expect(b.clustering.lut, k).toEqual(a.clustering.lut);
    expect(b.bias, k).toEqual(a.bias);
  }
}

function f16Copy(): string {
  const path = join(dir, "trained-f16.safetensors");
  const f = SafetensorsFile.open(TRAINED);
  writeSafetensors(path, f.names().map((n) => ({ name: n, dtype: "F16", shape: f.entry(n).shape, produce: (emit) => emit(f.readFloat(n)) })), f.metadata);
  f.close();
  return path;
}

test("one forward gives the statistics, clusterings, corrected biases and errors of the three passes, bit for bit", () => {
  const t = { groupSize: 0, weighted: true, biasCorrection: true };
  for (const [file, width, batch] of [[TRAINED, 1, 3], [f16Copy(), 0.5, 1]] as const) {
    const source = openCheckpoint(file);
    const latentSize = source.config.latentSize;
    const graph = buildModel(source, { width }).graph;
    const graphFor = (b: number) => buildModel(source, { width, batch: b, latentSize, contextTokens: source.config.contextTokens }).graph;
    const cal = syntheticInputs(source.config, 7, { batch, latentSize, contextTokens: source.config.contextTokens }) as CalibrationSet;
    const stats = new Map([...activationStats(graphFor, cal)].map(([k, s]) => [k, storedStats(s)]));
    const ahead = clusteredFirst(graph, t, stats);
    const layers = probeLayers(graphFor, cal, techniqueQuantizer(t, stats, ahead));
    // 0 bytes: every layer waits for its clustering at once; 2^29: layers run ahead of the workers
    for (const limit of [0, 2 ** 29]) {
      const one = probeLayersWithStatistics(graphFor, graph, cal, t, 2, undefined, limit);
      expect([...one.stats.keys()], file).toEqual([...stats.keys()]);
      for (const [k, s] of stats) expect(one.stats.get(k), k).toEqual(s);
      expectSameClusterings(one.ahead, ahead);
      expect(one.layers).toEqual(layers);
    }
    source.close();
  }
});

test("a set of several chunks: the probe with its clusterings on the pool beside it gives the errors and clusterings of clustering first", () => {
  const t = { groupSize: 0, weighted: true, biasCorrection: true };
  const source = openCheckpoint(TRAINED);
  const latentSize = source.config.latentSize, width = 0.5;
  const graph = buildModel(source, { width }).graph;
  const graphFor = (b: number) => buildModel(source, { width, batch: b, latentSize, contextTokens: source.config.contextTokens }).graph;
  const cal = syntheticInputs(source.config, 4, { batch: 10, latentSize, contextTokens: source.config.contextTokens }) as CalibrationSet;
  const stats = new Map([...activationStats(graphFor, cal)].map(([k, s]) => [k, storedStats(s)]));
  const ahead = clusteredFirst(graph, t, stats);
  const along = probeLayersClustering(graphFor, graph, cal, t, stats, 2);
  expectSameClusterings(along.ahead, ahead);
  expect(along.layers).toEqual(probeLayers(graphFor, cal, techniqueQuantizer(t, stats, ahead)));
  source.close();
});

test("compile plans take the one forward for a set of one chunk, the three passes for more", () => {
  const source = openCheckpoint(TRAINED);
  const latentSize = source.config.latentSize, width = 1;
  const graph = buildModel(source, { width }).graph;
  const inputs = (batch: number) => syntheticInputs(source.config, 2, { batch, latentSize, contextTokens: source.config.contextTokens }) as CalibrationSet;
  expect(oneForwardProbe(graph, inputs(8))).toBe(true);
  expect(oneForwardProbe(graph, inputs(9))).toBe(false);
  const one = planWidth(source, graph, width, latentSize, { mode: "mixed", target: 4.5 }, DEFAULT_TECHNIQUES, inputs(2));
  expect(one.seconds.statistics).toBe(0);
  const two = planWidth(source, graph, width, latentSize, { mode: "mixed", target: 4.5 }, DEFAULT_TECHNIQUES, inputs(9));
  expect(two.seconds.statistics).toBeGreaterThan(0);
  expect(Object.values(two.bits)).toContain(8);
  source.close();
});

test("the probe's row stride is odd past maxRows, so over a power-of-two token grid its rows reach every column", () => {
  expect(probeRowStep(4096, 1024)).toBe(5);
  expect(probeRowStep(1024, 1024)).toBe(1);
  expect(probeRowStep(1025, 1024)).toBe(3);
  expect(probeRowStep(4096, 0)).toBe(1);
  for (const [records, width] of [[1, 64], [8, 64], [3, 32], [8, 16]] as const) {
    const rows = records * width * width, step = probeRowStep(rows, 1024), columns = new Set<number>();
    for (let r = 0; r < rows; r += step) columns.add(r % width);
    expect(Math.ceil(rows / step)).toBeLessThanOrEqual(1024);
    expect(columns.size, `${records} records on a ${width}-wide grid`).toBe(width);
  }
});

test("past maxRows rows a linear reruns on every step-th row: those rows' error exactly, the same in one forward", () => {
  const t = { groupSize: 0, weighted: true, biasCorrection: true };
  const source = openCheckpoint(TRAINED);
  const latentSize = source.config.latentSize, width = 1, batch = 3, maxRows = 50;
  const graph = buildModel(source, { width }).graph;
  const graphFor = (b: number) => buildModel(source, { width, batch: b, latentSize, contextTokens: source.config.contextTokens }).graph;
  const cal = syntheticInputs(source.config, 5, { batch, latentSize, contextTokens: source.config.contextTokens }) as CalibrationSet;
  const stats = new Map([...activationStats(graphFor, cal)].map(([k, s]) => [k, storedStats(s)]));
  const quantize = techniqueQuantizer(t, stats, clusteredFirst(graph, t, stats));
  // the oracle: every row rerun, then the rows i·step kept (step = ⌈rows / maxRows⌉)
  const run = graphFor(batch), prod = producers(run);
  const want = new Map<string, { num: number; den: number; sampled: boolean }>();
  runGraph(run, cal, {
    observe: (n, ins, outs) => {
      const name = statsSite(n, prod);
      if (!name) return;
      const q = quantize(name, n, asFloat(ins[1]!), ins[2] ? asFloat(ins[2]) : undefined);
      const yq = asFloat(opDef(n.kind).kernel([ins[0]!, q.w, ...(q.bias ?? ins[2] ? [(q.bias ?? ins[2])!] : [])], n.attrs as never)[0]!).data;
      const y = asFloat(outs[0]!).data, cols = ins[0]!.shape[ins[0]!.shape.length - 1]!, rows = numel(ins[0]!.shape) / cols;
      const need = Math.ceil(rows / maxRows), step = n.kind === "linear" && need > 1 ? need | 1 : 1, width = y.length / rows;
      let num = 0, den = 0;
      for (let r = 0; r < rows; r += step) for (let j = r * width; j < (r + 1) * width; j++) (num += (yq[j]! - y[j]!) ** 2), (den += y[j]! ** 2);
      want.set(name, { num, den, sampled: step > 1 });
    },
  });
  const sampled = [...want.values()].filter((w) => w.sampled).length;
  expect(sampled).toBeGreaterThan(0);
  expect(sampled).toBeLessThan(want.size); // the middle stage's 48 rows rerun whole
  const layers = probeLayers(graphFor, cal, quantize, undefined, undefined, maxRows);
  for (const l of layers) expect(l.mse, l.name).toBe(want.get(l.name)!.num / want.get(l.name)!.den);
  // every row, as before: the sampled layers' errors differ
  const whole = new Map(probeLayers(graphFor, cal, quantize, undefined, undefined, 0).map((l) => [l.name, l.mse]));
  for (const l of layers) if (want.get(l.name)!.sampled) expect(l.mse, l.name).not.toBe(whole.get(l.name));
  for (const limit of [0, 2 ** 29]) expect(probeLayersWithStatistics(graphFor, graph, cal, t, 2, undefined, limit, maxRows).layers).toEqual(layers);
  source.close();
});
