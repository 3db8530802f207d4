import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { PASSES } from "../../passes/index.js";
import { compile, parseQuantize } from "../../src/driver/compile.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { verify } from "../../src/driver/verify.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { kernelBuild } from "../../src/kernels/fast.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";
import { buildModel } from "../../src/model/build.js";
import { presetConfig } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { buildPipeline } from "../../src/pipeline/pass.js";
import { runPipeline } from "../../src/pipeline/run.js";
import { allocateBits, palettizableWeights, probeSensitivity, uniformBits } from "../../src/quant/probe.js";
import { KMEANS_REVISION } from "../../src/quant/kmeans.js";
import { Rng } from "../../src/model/synthetic.js";
import { decodeModel } from "../../targets/onnx/proto.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-quant-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = presetConfig("mini");
const source = syntheticSource(config, 4);
const inputs = syntheticInputs(config, 9, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
const graph = buildModel(source, { width: 0.5 }).graph;
const float = runGraph(graph, inputs).velocity as FloatTensor;

function snr(bits: Record<string, 4 | 8>): number {
  const g = runPipeline(graph, buildPipeline({ name: "q", entries: [{ pass: "palettize", options: { bits } }] }, PASSES));
  const y = runGraph(g, inputs).velocity!.data as Float32Array;
  let s = 0, n = 0;
  float.data.forEach((v, i) => ((s += v * v), (n += (y[i]! - v) ** 2)));
  return 10 * Math.log10(s / n);
}

describe("sensitivity probe and mixed allocation (mini, heavy-tailed synthetic weights)", () => {
  const calib = syntheticInputs(config, 1, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
  const sens = probeSensitivity(graph, calib);
  const mixed = allocateBits(sens, 4.3);

  test("every linear/conv weight is probed once; the mixed average lands within ±0.05 of the target", () => {
    expect(sens.map((s) => s.name).sort()).toEqual(palettizableWeights(graph).map((w) => w.name).sort());
    expect(Math.abs(mixed.averageBits - 4.3)).toBeLessThanOrEqual(0.05);
    for (const t of [4.5, 5, 6]) expect(Math.abs(allocateBits(sens, t).averageBits - t)).toBeLessThanOrEqual(0.05);
  });

  test("mixed 4.3 beats uniform 4 bits, and the probe's choice beats random choices of the same bit budget", () => {
    const four = snr(uniformBits(sens, 4)), mix = snr(mixed.bits), eight = snr(uniformBits(sens, 8));
    expect(mix).toBeGreaterThan(four);
    expect(eight).toBeGreaterThan(mix);
    // random orders through the same allocator: same target, same tolerance, no probe
    const rng = new Rng(123);
    const randomSnrs = [0, 1, 2, 3].map(() => {
      const shuffled = sens.map((s) => ({ ...s, absMse: rng.uniform() * s.params }));
      return snr(allocateBits(shuffled, 4.3).bits);
    });
    expect(mix).toBeGreaterThan(randomSnrs.reduce((a, b) => a + b, 0) / randomSnrs.length);
  });
});

describe("palettized ONNX artifacts", () => {
  test("--quantize parses every mode and refuses the rest", () => {
    expect(parseQuantize("mixed")).toEqual({ mode: "mixed", target: 4.3 });
    expect(parseQuantize("mixed:5.5")).toEqual({ mode: "mixed", target: 5.5 });
    expect(parseQuantize("k8")).toEqual({ mode: "k8" });
    for (const bad of ["k3", "mixed:9", "k4:5", "mixed:x"]) expect(() => parseQuantize(bad)).toThrow(/--quantize/);
  });

  test("k4 and k8 weight bytes in the file are within 2% of Σ params × bits / 8 plus LUTs", () => {
    for (const mode of ["k4", "k8"] as const) {
      const out = join(dir, mode);
      const { report } = compile({ source, ref: { preset: "mini", seed: 4 }, targets: ["onnx"], widths: [0.5], precision: "fp32", out, quantize: { mode } });
      const q = report.quantization!;
      const expected = q.layers.reduce((s, l) => s + Math.ceil((l.params * l.bits) / 8) + (1 << l.bits) * 4, 0);
      const m = decodeModel(readFileSync(join(out, "w500", "model.onnx")));
      const palettes = m.graph!.initializer!.filter((t) => /_(indices|lut)$/.test(t.name!));
      expect(palettes.length).toBe(2 * q.layers.length);
      const actual = palettes.reduce((s, t) => s + t.rawData!.length, 0);
      expect(Math.abs(actual - expected) / expected).toBeLessThan(0.02);
      // and the file as a whole is dominated by them: the dense rest is biases, tables and RoPE
      expect(statSync(join(out, "w500", "model.onnx")).size).toBeLessThan(actual * (mode === "k4" ? 2.2 : 1.6));
    }
  });

  test("micro k4 and mini mixed run in onnxruntime within fp32 parity of the IR running the same palettized weights", async () => {
    for (const [preset, quantize] of [["micro", { mode: "k4" as const }], ["mini", { mode: "mixed" as const, target: 4.3 }]] as const) {
      const out = join(dir, `parity-${preset}`);
      compile({ source: syntheticSource(presetConfig(preset), 2), ref: { preset, seed: 2 }, targets: ["onnx"], widths: [0.375, 1], precision: "fp32", out, quantize });
      const results = await verify(out);
      expect(results.length).toBe(4);
      for (const r of results) expect(r.pass, JSON.stringify(r)).toBe(true);
      const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
      expect(report.quantization.layers.length).toBeGreaterThan(0);
      expect(report.quantization.layers.every((l: { name: string; bits: number; params: number }) => l.name && (l.bits === 4 || l.bits === 8) && l.params > 0)).toBe(true);
      // the kernels that ran the calibration forwards are named where forwards ran
      const forwards = quantize.mode === "mixed" || report.quantization.statistics !== undefined;
      expect(report.quantization.calibration.kernels).toBe(forwards ? kernelBuild() : undefined);
      if (quantize.mode === "mixed") expect(kernelBuild()).toMatch(/^wasm-simd/);
    }
  });
});

test("verify refuses palettes clustered by another k-means revision instead of reporting a parity failure", async () => {
  const out = join(dir, "revision");
  compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["onnx"], widths: [0.5], precision: "fp32", out, quantize: { mode: "k4" } });
  expect((await verify(out)).every((r) => r.pass)).toBe(true);
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  expect(report.quantization.kmeansRevision).toBe(KMEANS_REVISION);
  report.quantization.kmeansRevision = KMEANS_REVISION - 1;
  writeFileSync(join(out, "report.json"), JSON.stringify(report));
  await expect(verify(out)).rejects.toThrow(new RegExp(`k-means revision ${KMEANS_REVISION - 1}, this ditc clusters with revision ${KMEANS_REVISION} .* recompile`));
});
