// A compile clusters a weight the widths keep whole once: a later width takes the clustering (and
// the biases corrected with it) when its plan and statistics are the same, and only then; the
// artifacts are those of a compile of that width alone.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { compile } from "../../src/driver/compile.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { buildModel } from "../../src/model/build.js";
import type { Width } from "../../src/model/config.js";
import { paramSpecs } from "../../src/model/params.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { activationStats, storedStats, type CalibrationSet } from "../../src/quant/calibration.js";
import { clusterAll } from "../../src/quant/cluster-pool.js";
import { planElements } from "../../src/quant/layer.js";
import { layerClusterJobs } from "../../src/quant/probe.js";
import { WholeWeightClusterings } from "../../src/quant/whole-weights.js";
import type { SharedQuantization } from "../../passes/palettize.js";

const TRAINED = new URL("../../fixtures/shapes-micro/model.safetensors", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-whole-weights-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const t = { groupSize: 0, weighted: true, biasCorrection: true };

test("a later width takes the whole weights' clusterings, equal to clustering them again, and nothing else", () => {
  const source = openCheckpoint(TRAINED);
  const c = source.config, latentSize = c.latentSize;
  const stored = new Map(paramSpecs(c).filter((s) => s.width === undefined).map((s) => [s.name, s.shape.reduce((a, b) => a * b, 1)]));
  const cal = syntheticInputs(c, 3, { batch: 1, latentSize, contextTokens: c.contextTokens }) as CalibrationSet;
  const widthJobs = (width: Width, biases: Map<string, Float32Array>) => {
    const graphFor = (b: number) => buildModel(source, { width, batch: b, latentSize, contextTokens: c.contextTokens }).graph;
    const stats = new Map([...activationStats(graphFor, cal)].map(([k, s]) => [k, storedStats(s)]));
    return layerClusterJobs(graphFor(1), t, stats, () => 8, biases).jobs;
  };
  const whole = new WholeWeightClusterings((name) => stored.get(name));
  const half: SharedQuantization = { clusterings: new Map(), biases: new Map() };
  const halfJobs = widthJobs(0.5, half.biases);
  clusterAll(halfJobs, half.clusterings, 2);
  whole.keep(halfJobs, half);

  const full: SharedQuantization = { clusterings: new Map(), biases: new Map() };
  const fullJobs = widthJobs(1, full.biases);
  const todo = whole.lend(fullJobs, full);
  const lent = fullJobs.filter((j) => !todo.includes(j)).map((j) => j.source);
  // the cross-attention's key and value projections read only the text context: whole, same statistics
  expect(lent.length).toBeGreaterThan(0);
  expect(lent.every((s) => /\.cross\.[kv]\.weight$/.test(s))).toBe(true);
  for (const j of fullJobs) if (lent.includes(j.source)) expect(planElements(j.plan)).toBe(stored.get(j.source));
  // every job left is sliced at width 0.5, or read by layers whose statistics differ there
  for (const j of todo) {
    const h = halfJobs.find((x) => x.source === j.source);
    if (h && planElements(h.plan) === stored.get(j.source)) expect(h.plan.importance).not.toEqual(j.plan.importance);
  }
  expect(full.clusterings.size).toBe(lent.length);

  // what was lent is what clustering those weights again gives, biases included
  const again: SharedQuantization = { clusterings: new Map(), biases: new Map() };
  const againJobs = widthJobs(1, again.biases).filter((j) => lent.includes(j.source));
  clusterAll(againJobs, again.clusterings, 2);
  for (const s of lent) {
    const a = full.clusterings.get(s)!, b = again.clusterings.get(s)!;
    expect(Buffer.from(a.indices).equals(Buffer.from(b.indices)), s).toBe(true);
    expect([...a.lut]).toEqual([...b.lut]);
  }
  expect([...again.biases.keys()].sort()).toEqual([...full.biases.keys()].sort());
  for (const [k, v] of again.biases) expect([...full.biases.get(k)!], k).toEqual([...v]);

  // other statistics, or other bits, and nothing is lent
  const other = widthJobs(1, new Map()).map((j) => ({ ...j, plan: { ...j.plan, importance: j.plan.importance?.map((x) => x * 2) } }));
  expect(whole.lend(other, { clusterings: new Map(), biases: new Map() })).toHaveLength(other.length);
  const k4 = widthJobs(1, new Map()).map((j) => ({ ...j, plan: { ...j.plan, bits: 4 as const } }));
  expect(whole.lend(k4, { clusterings: new Map(), biases: new Map() })).toHaveLength(k4.length);
  // another E[x] or bias before correction: the corrected bias would differ
  const corrected = widthJobs(1, new Map()).filter((j) => lent.includes(j.source) && j.corrections?.length);
  expect(corrected.length).toBeGreaterThan(0);
  const otherMean = corrected.map((j) => ({ ...j, corrections: j.corrections!.map((f) => ({ ...f, mean: f.mean.map((x) => x + 1) })) }));
  expect(whole.lend(otherMean, { clusterings: new Map(), biases: new Map() })).toHaveLength(otherMean.length);
  const otherBias = corrected.map((j) => ({ ...j, corrections: j.corrections!.map((f) => ({ ...f, old: () => new Float32Array(j.plan.layout.rowBase.length).fill(7) })) }));
  expect(whole.lend(otherBias, { clusterings: new Map(), biases: new Map() })).toHaveLength(otherBias.length);
  // a weight with fewer elements than its stored tensor is a slice: never kept, whatever its plan
  const sliced = new WholeWeightClusterings((name) => 1 + stored.get(name)!);
  sliced.keep(halfJobs, half);
  expect(sliced.lend(fullJobs, { clusterings: new Map(), biases: new Map() })).toHaveLength(fullJobs.length);
  source.close();
});

/** Every file of an artifact folder, name and bytes, in name order. */
function filesOf(path: string): Buffer {
  const names = readdirSync(path, { recursive: true, encoding: "utf8" }).filter((n) => statSync(join(path, n)).isFile()).sort();
  return Buffer.concat(names.flatMap((n) => [Buffer.from(`${n}\n`), readFileSync(join(path, n))]));
}

test("a multi-width compile clusters fewer weights at width 1 and writes the files of a width-1 compile", () => {
  const clustered = new Map<string, number>();
  const run = (widths: Width[], out: string) => {
    const source = openCheckpoint(TRAINED);
    compile({
      source, ref: { checkpoint: TRAINED }, targets: ["onnx", "tflite", "coreml"], widths, precision: "fp32", out: join(dir, out), quantize: { mode: "k8" },
      onProgress: (e) => {
        if (e.step.endsWith(": clustering")) clustered.set(`${out} ${e.step}`, e.total);
      },
    });
    source.close();
  };
  run([0.5, 1], "both");
  run([1], "alone");
  expect(clustered.get("both w1: clustering")!).toBeLessThan(clustered.get("alone w1: clustering")!);
  expect(filesOf(join(dir, "both", "w1000")).equals(filesOf(join(dir, "alone", "w1000")))).toBe(true);
});
