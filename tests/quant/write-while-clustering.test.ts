// compile writes a width's targets while the worker pool still clusters its weights: each
// palettized constant (and each bias corrected with it) waits for its own clustering through
// SharedQuantization.ready, and the files come out byte for byte as when every clustering was
// stored before writing.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { syntheticInputs } from "../../src/driver/init.js";
import { applyPipeline, BACKENDS } from "../../src/driver/pipelines.js";
import { buildModel } from "../../src/model/build.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { activationStats, storedStats, type CalibrationSet } from "../../src/quant/calibration.js";
import { clusterAll, startClustering } from "../../src/quant/cluster-pool.js";
import { layerClusterJobs } from "../../src/quant/probe.js";
import type { SharedQuantization } from "../../passes/palettize.js";

const TRAINED = new URL("../../fixtures/shapes-micro/model.safetensors", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-write-clustering-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every file of an artifact (a .mlpackage is a folder), name and bytes, in name order. */
function filesOf(path: string): Buffer {
  if (!statSync(path).isDirectory()) return readFileSync(path);
  const names = readdirSync(path, { recursive: true, encoding: "utf8" }).filter((n) => statSync(join(path, n)).isFile()).sort();
  return Buffer.concat(names.flatMap((n) => [Buffer.from(`${n}\n`), readFileSync(join(path, n))]));
}

test("targets written while the pool clusters wait for each weight and equal the files written after it finished", () => {
  const source = openCheckpoint(TRAINED);
  const width = 0.5, latentSize = source.config.latentSize;
  const graph = buildModel(source, { width }).graph;
  const graphFor = (b: number) => buildModel(source, { width, batch: b, latentSize, contextTokens: source.config.contextTokens }).graph;
  const cal = syntheticInputs(source.config, 3, { batch: 1, latentSize, contextTokens: source.config.contextTokens }) as CalibrationSet;
  const stats = new Map([...activationStats(graphFor, cal)].map(([k, s]) => [k, storedStats(s)]));
  const t = { groupSize: 0, weighted: true, biasCorrection: true };
  // half the weights at 8 bits, the rest at 4
  const names = layerClusterJobs(graph, t, stats, () => 4, new Map()).jobs.map((j) => j.source);
  const bits = Object.fromEntries(names.map((n, i) => [n, (i % 2 ? 4 : 8) as 4 | 8]));
  const write = (shared: SharedQuantization, tag: string) =>
    (["onnx", "tflite", "coreml"] as const).map((target) => {
      const lowered = applyPipeline(graph, target, { fp16: target === "coreml", before: [{ pass: "palettize", options: { ...t, bits, stats, shared } }] });
      const path = join(dir, `${tag}-${BACKENDS[target]!.artifact}`);
      BACKENDS[target]!.emit(lowered, path, { metadata: {} });
      return filesOf(path);
    });

  const first: SharedQuantization = { clusterings: new Map(), biases: new Map() };
  clusterAll(layerClusterJobs(graph, t, stats, (s) => bits[s], first.biases).jobs, first.clusterings, 2);
  const want = write(first, "first");

  const waiting: SharedQuantization = { clusterings: new Map(), biases: new Map() };
  const { jobs } = layerClusterJobs(graph, t, stats, (s) => bits[s], waiting.biases);
  const run = startClustering(jobs, waiting.clusterings, 2);
  const asked = new Set<string>();
  waiting.ready = (s) => {
    asked.add(s);
    run.waitFor(s);
    expect(waiting.clusterings.has(s), s).toBe(true);
  };
  const got = write(waiting, "waiting");
  run.finish();
  expect([...asked].sort()).toEqual([...names].sort());
  got.forEach((bytes, i) => expect(bytes.equals(want[i]!), ["onnx", "tflite", "coreml"][i]).toBe(true));
  source.close();
});
