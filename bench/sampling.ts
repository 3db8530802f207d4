// Image fidelity on the trained fixture: the shapes-micro checkpoint compiled to every target and
// width with each quantization mode, sampled (16 prompts, 20 steps, the same noise) by ditc's
// reader-interpreter and each format's runtime, PSNR against the float model's images; and the
// sampling time per step of each engine.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, parseQuantize } from "../src/driver/compile.js";
import { addSamplesToReport, artifactEngines, sampleImages } from "../src/driver/sample-report.js";
import { openCheckpoint } from "../src/model/weights.js";
import { PROJECT_ROOT } from "../src/io/project.js";
import { artifactEngine, irEngine } from "../src/sample/engines.js";
import type { SampleSpec } from "../src/driver/sample.js";

export const FIXTURE = join(PROJECT_ROOT, "fixtures", "shapes-micro");

/** 16 prompts: every shape, large and small, left and right. */
export const BENCH_PROMPTS = ["circle", "square", "triangle", "cross"].flatMap((s) => ["large left", "large right", "small left", "small right"].map((p) => `${s} ${p}`));

export function fixtureSpec(prompts = BENCH_PROMPTS, steps = 20): SampleSpec {
  return { prompts, vocab: join(FIXTURE, "vocab.safetensors"), steps, shift: 1, seed: 0 };
}

export async function benchSamplingQuality(quick: boolean) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-sampling-"));
  const ck = openCheckpoint(join(FIXTURE, "model.safetensors"));
  const spec = fixtureSpec(quick ? BENCH_PROMPTS.slice(0, 4) : BENCH_PROMPTS);
  try {
    const rows = [];
    for (const mode of ["none", "k8", "k4", "mixed:4.3"]) {
      const out = join(dir, mode.replace(":", "-"));
      const { report } = compile({ source: ck, ref: { checkpoint: join(FIXTURE, "model.safetensors") }, targets: ["coreml", "tflite", "onnx"], widths: [0.375, 0.5, 1], precision: "auto", out, quantize: parseQuantize(mode) });
      const sampled = await addSamplesToReport(out, report, ck, spec);
      for (const r of sampled.sampling!.results) {
        const a = report.artifacts.find((x) => x.path === r.path)!;
        rows.push({ quantize: mode, averageBits: report.quantization?.averageBits ?? 32, target: r.target, width: r.width, precision: a.precision, engine: r.engine, psnr: r.psnr, bytes: a.bytes });
      }
      const line = (w: number) => sampled.sampling!.results.filter((r) => r.width === w).map((r) => `${r.target}/${r.engine} ${r.psnr}`).join(", ");
      for (const w of [0.375, 0.5, 1]) console.log(`sampling quality ${mode} w${w}: ${line(w)} dB`);
    }
    // seconds per step, one engine at a time, on width 1: the fp32 artifacts of the "none" compile,
    // and the palettized ones of "mixed:4.3" (their weights decompressed in the graph on every step)
    const timing: Record<string, number> = {};
    const timed = async (name: string, engine: Awaited<ReturnType<typeof artifactEngine>>) => {
      try {
        const t0 = performance.now();
        await sampleImages(engine, { ...spec, prompts: spec.prompts!.slice(0, 4), steps: 10 }, name);
        timing[name] = +((performance.now() - t0) / 1000 / (engine.batch === 0 ? 10 : 40)).toFixed(4);
      } finally {
        await engine.close();
      }
    };
    await timed("ditc IR interpreter (batch 4)", irEngine(ck, 1, ck.config.latentSize));
    for (const [mode, suffix] of [["none", ""], ["mixed-4.3", " mixed:4.3"]] as const)
      for (const target of ["onnx", "tflite", "coreml"] as const) {
        const path = join(dir, mode, "w1000", { onnx: "model.onnx", tflite: "model.tflite", coreml: "model.mlpackage" }[target]);
        for (const e of artifactEngines(target)) await timed(`${target} ${e}${suffix}`, await artifactEngine(path, e));
      }
    for (const [k, v] of Object.entries(timing)) console.log(`sampling time per step (per call), ${k}: ${(1000 * v).toFixed(1)} ms`);
    return { fixture: "shapes-micro", prompts: spec.prompts!.length, steps: spec.steps, rows, secondsPerStep: timing };
  } finally {
    ck.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
