import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { buildModel, buildSupernetwork, compile, emit, presetWeights, run, runPipeline, setThreads, sliceWidth, verify } from "../../src/api/index.js";
import { printGraph } from "../../src/ir/print.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { presetConfig } from "../../src/model/config.js";
import { relErr } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-api-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the API compiles, runs and verifies like the CLI", async () => {
  const { artifacts, report } = await compile({ preset: "micro", targets: ["onnx"], widths: [0.5], quantize: "k4", out: join(dir, "a") });
  expect(artifacts).toHaveLength(1);
  expect(report.quantization?.mode).toBe("k4");
  const c = presetConfig("micro");
  const inputs = syntheticInputs(c, 1, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
  expect(run(artifacts[0]!.path, inputs).velocity!.shape).toEqual([1, 4, 16, 16]);
  expect((await verify(join(dir, "a"))).every((r) => r.pass)).toBe(true);

  const g = runPipeline(buildModel(presetWeights("micro"), { width: 1 }).graph, "onnx");
  emit(g, "onnx", join(dir, "b.onnx"));
  expect(relErr(run(join(dir, "b.onnx"), inputs).velocity!.data as Float32Array, run(g, inputs).velocity!.data as Float32Array)).toBeLessThan(1e-6);
});

test("the supernetwork narrowed by sliceWidth is buildModel's sub-network", () => {
  const w = presetWeights("micro", 3);
  const sup = buildSupernetwork(w).graph;
  expect(sup.inputs.find((v) => v.name === "latent")!.type.shape).toEqual([1, 4, 16, 16]);
  expect(printGraph(sliceWidth(sup, 0.375))).toBe(printGraph(buildModel(w, { width: 0.375 }).graph));
});

test("an aborted compile stops and leaves only whole files", async () => {
  const ac = new AbortController();
  ac.abort();
  await expect(compile({ preset: "micro", targets: ["onnx"], out: join(dir, "c"), signal: ac.signal })).rejects.toThrow(/aborted/);
  const leftovers = (() => {
    try {
      return readdirSync(join(dir, "c"), { recursive: true }).map(String);
    } catch {
      return [];
    }
  })();
  expect(leftovers.filter((f) => f.includes(".tmp-"))).toEqual([]);
});

test("aborting in the middle of writing an artifact leaves the finished ones whole and no temp files", async () => {
  for (const [target, layout] of [["tflite", "always"], ["onnx", "always"], ["coreml", "auto"]] as const) {
    const out = join(dir, `mid-${target}`);
    const ac = new AbortController();
    let writes = 0;
    const onProgress = (e: { step: string }) => {
      // the second artifact's tenth weight
      if (e.step.includes("w1: writing") && ++writes === 10) ac.abort();
    };
    await expect(compile({ preset: "micro", targets: [target], widths: [0.5, 1], out, externalData: layout, signal: ac.signal, onProgress })).rejects.toThrow(/aborted/);
    const files = readdirSync(out, { recursive: true }).map(String);
    expect(files.filter((f) => f.includes(".tmp-") || f.includes(".old-")), target).toEqual([]);
    expect(files.some((f) => f.startsWith("w1000/model")), target).toBe(false);
    const c = presetConfig("micro");
    const inputs = syntheticInputs(c, 1, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
    const artifact = join(out, "w500", target === "coreml" ? "model.mlpackage" : `model.${target}`);
    expect(run(artifact, inputs).velocity!.data.every(Number.isFinite), target).toBe(true);
  }
});

test("setThreads refuses counts it could not start, with the option named", () => {
  for (const n of [0, 1.5, 257, 1e9]) expect(() => setThreads(n), String(n)).toThrow(/--threads .* is not valid: expected an integer from 1 to 256/);
});
