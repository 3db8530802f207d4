// ditc calibrate and compile --calibration end to end on the trained fixture: trajectories
// recorded at every step, any number of records run in chunks, the model probe with its overlap,
// weighted k-means + bias correction + per-group LUTs on every target, and verify rebuilding the
// same weights from the statistics file; bad calibration files are clear errors.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ditcSync } from "../helpers.js";
import { afterAll, expect, test } from "vitest";
import { SafetensorsFile } from "../../src/checkpoint/safetensors.js";
import { writeTensorFile } from "../../src/checkpoint/tensors.js";
import { kernelBuild } from "../../src/kernels/fast.js";
import { floatTensor } from "../../src/kernels/tensor.js";

const FIXTURE = new URL("../../fixtures/shapes-micro/", import.meta.url).pathname;
const CK = join(FIXTURE, "model.safetensors"), VOCAB = join(FIXTURE, "vocab.safetensors");
const dir = mkdtempSync(join(tmpdir(), "ditc-calibrate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ditc = ditcSync;

const cal = join(dir, "cal.safetensors");

test("calibrate records (latent, timestep, context) at every step of every trajectory", () => {
  const r = ditc("calibrate", "--checkpoint", CK, "--vocab", VOCAB, "--prompt", "circle large top", "--prompt", "cross small center", "--steps", "5", "--out", cal, "--json");
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ records: 10, steps: 5, seeds: [1000, 1001] });
  const f = SafetensorsFile.open(cal);
  try {
    expect(f.entry("latent").shape).toEqual([10, 4, 16, 16]);
    expect(f.entry("context").shape).toEqual([10, 8, 32]);
    // two trajectories in one batch: steps t = 1, 0.8, …, 0.2, each for both prompts
    expect([...f.readFloat("timestep")].map((t) => +t.toFixed(4))).toEqual([1, 1, 0.8, 0.8, 0.6, 0.6, 0.4, 0.4, 0.2, 0.2]);
  } finally {
    f.close();
  }
  const two = ditc("calibrate", "--checkpoint", CK, "--vocab", VOCAB, "--prompt", "square small top", "--steps", "3", "--samples", "2", "--out", join(dir, "two.safetensors"), "--json");
  expect(JSON.parse(two.stdout)).toMatchObject({ records: 6, seeds: [1000, 1001] });
});

test("compile --calibration: model probe, weighted k-means, bias correction and LUT groups on every target; verify passes", () => {
  const out = join(dir, "all");
  const r = ditc("compile", "--checkpoint", CK, "--target", "onnx,tflite,coreml", "--deployment", "iOS18", "--width", "0.375", "--quantize", "mixed:4.3", "--calibration", cal,
    "--probe", "model", "--kmeans", "weighted", "--bias-correction", "on", "--lut-group-size", "32", "--out", out);
  expect(r.code, r.stderr).toBe(0);
  const q = JSON.parse(readFileSync(join(out, "report.json"), "utf8")).quantization;
  expect(q.techniques).toEqual({ probe: "model", kmeans: "weighted", biasCorrection: true, lutGroupSize: 32 });
  expect(q.calibration).toEqual({ file: cal, samples: 10, kernels: kernelBuild() });
  expect(existsSync(join(out, q.statistics))).toBe(true);
  expect(q.widths[0].overlap.layer8).toBeGreaterThan(0);
  expect(q.widths[0].overlap.jaccard).toBeGreaterThanOrEqual(0);
  expect(q.averageBits).toBeGreaterThan(4.2);
  const v = ditc("verify", out, "--json");
  expect(v.code, v.stderr).toBe(0);
  const results = JSON.parse(v.stdout).results as { pass: boolean; engine: string }[];
  expect(results.map((x) => x.engine).sort()).toEqual(["coremltools", "ditc", "ditc", "ditc", "litert", "onnxruntime"]);
  expect(results.every((x) => x.pass)).toBe(true);
});

test("k4 with the defaults writes statistics; plain k4 without correction writes none and removes a stale file", () => {
  const out = join(dir, "k4");
  expect(ditc("compile", "--checkpoint", CK, "--target", "onnx", "--width", "0.375", "--quantize", "k4", "--calibration", cal, "--out", out).code).toBe(0);
  const q = JSON.parse(readFileSync(join(out, "report.json"), "utf8")).quantization;
  expect(q.techniques).toMatchObject({ kmeans: "weighted", biasCorrection: true });
  expect(existsSync(join(out, "calibration-stats.safetensors"))).toBe(true);
  expect(ditc("verify", out).code).toBe(0);
  expect(ditc("compile", "--checkpoint", CK, "--target", "onnx", "--width", "0.375", "--quantize", "k4", "--kmeans", "plain", "--bias-correction", "off", "--out", out).code).toBe(0);
  expect(existsSync(join(out, "calibration-stats.safetensors"))).toBe(false);
  expect(ditc("verify", out).code).toBe(0);
});

test("bad calibration input: exit 2 naming the file and tensor", () => {
  const bad = join(dir, "bad.safetensors");
  writeTensorFile(bad, { latent: floatTensor([2, 4, 8, 8], new Float32Array(512)), timestep: floatTensor([2], new Float32Array(2)), context: floatTensor([2, 8, 32], new Float32Array(512)) });
  const r = ditc("compile", "--checkpoint", CK, "--target", "onnx", "--width", "0.375", "--quantize", "mixed", "--calibration", bad, "--out", join(dir, "x"));
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/bad\.safetensors/);
  expect(r.stderr).toMatch(/latent/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  const missing = join(dir, "missing.safetensors");
  writeTensorFile(missing, { latent: floatTensor([1, 4, 16, 16], new Float32Array(1024)) });
  expect(ditc("compile", "--checkpoint", CK, "--target", "onnx", "--quantize", "k4", "--calibration", missing, "--out", join(dir, "y")).stderr).toMatch(/timestep.*missing/);
  const unused = ditc("compile", "--checkpoint", CK, "--target", "onnx", "--calibration", cal, "--out", join(dir, "z"));
  expect(unused.code).toBe(2);
  expect(unused.stderr).toMatch(/--calibration/);
  expect(ditc("compile", "--checkpoint", CK, "--target", "onnx", "--quantize", "k4", "--probe", "model", "--out", join(dir, "z")).code).toBe(2);
});

test("the API takes calibration and techniques and returns the timings", async () => {
  const { compile, readTensorFile } = await import("../../src/api/index.js");
  const { report, timings, phases } = await compile({ checkpoint: CK, targets: ["onnx"], widths: [0.375], quantize: "k8", calibration: readTensorFile(cal), techniques: { kmeans: "plain", biasCorrection: true }, out: join(dir, "api") });
  expect(report.quantization!.techniques).toEqual({ probe: "layer", kmeans: "plain", biasCorrection: true, lutGroupSize: 0 });
  expect(report.quantization!.calibration).toEqual({ file: null, samples: 10, kernels: kernelBuild() });
  expect(timings).toHaveLength(1);
  expect(timings[0]!.statisticsSeconds).toBeGreaterThan(0);
  // where the time went: the phases in sequence fit in the total; reads and clustering happened inside them
  expect(phases.statisticsSeconds).toBe(timings[0]!.statisticsSeconds);
  for (const k of ["loweringSeconds", "writingSeconds", "readSeconds", "kmeansSeconds"] as const) expect(phases[k], k).toBeGreaterThan(0);
  expect(phases.statisticsSeconds + phases.probeSeconds + phases.loweringSeconds + phases.writingSeconds).toBeLessThanOrEqual(phases.totalSeconds + 0.01);
  // the forwards are what statistics and probe spent beyond reading and clustering
  expect(phases.forwardSeconds).toBeGreaterThan(0);
  expect(phases.forwardSeconds).toBeLessThanOrEqual(phases.statisticsSeconds + phases.probeSeconds);
  // the process's CPU: some in the statistics (they run the model), more over the whole compile
  expect(phases.cpuSeconds.statisticsAndProbe).toBeGreaterThan(0);
  expect(phases.cpuSeconds.total).toBeGreaterThan(phases.cpuSeconds.statisticsAndProbe);
  expect(ditc("verify", join(dir, "api")).code).toBe(0);
});
