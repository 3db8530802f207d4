// Compression judged by images (README, "Quantization"): on the trained fixture, calibrated on
// prompts and seeds apart from the evaluated ones, every width compiled with k4, k8, the paper's
// recipe at 4.3 bits, each technique added alone, and the defaults; image PSNR of each artifact
// in each format's runtime (and ditc's reader for CoreML) against the float model's images, with
// the artifact's bytes. Also the time of calibration, statistics and probes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, parseQuantize } from "../src/driver/compile.js";
import { recordTrajectories } from "../src/driver/calibrate.js";
import { DEFAULT_TECHNIQUES, PAPER_TECHNIQUES, type Techniques } from "../src/driver/quantize-plan.js";
import { sampleImages } from "../src/driver/sample-report.js";
import { openCheckpoint } from "../src/model/weights.js";
import { artifactEngine, irEngine, type EngineName } from "../src/sample/engines.js";
import { psnr, type Images } from "../src/sample/images.js";
import type { Width } from "../src/model/config.js";
import { FIXTURE, fixtureSpec, BENCH_PROMPTS } from "./sampling.js";

/** Calibration prompts: every shape at places the evaluation prompts (left/right) never use. */
export const CALIBRATION_PROMPTS = ["circle", "square", "triangle", "cross"].flatMap((s) => ["large top", "small bottom", "large center", "small top"].map((p) => `${s} ${p}`));

export interface Variant {
  name: string;
  quantize: string;
  techniques: Techniques;
  deployment?: "iOS18";
}

export function techniqueVariants(): Variant[] {
  const paper = PAPER_TECHNIQUES;
  return [
    { name: "k4", quantize: "k4", techniques: paper },
    { name: "k8", quantize: "k8", techniques: paper },
    { name: "paper (mixed:4.3, layer probe, plain k-means)", quantize: "mixed:4.3", techniques: paper },
    { name: "+ weighted k-means", quantize: "mixed:4.3", techniques: { ...paper, kmeans: "weighted" } },
    { name: "+ bias correction", quantize: "mixed:4.3", techniques: { ...paper, biasCorrection: true } },
    { name: "+ model probe", quantize: "mixed:4.3", techniques: { ...paper, probe: "model" } },
    { name: "+ LUT groups of 32 rows", quantize: "mixed:4.3", techniques: { ...paper, lutGroupSize: 32 }, deployment: "iOS18" },
    { name: "weighted + bias + model probe", quantize: "mixed:4.3", techniques: { ...paper, kmeans: "weighted", biasCorrection: true, probe: "model" } },
    { name: "default mixed:4.3", quantize: "mixed:4.3", techniques: DEFAULT_TECHNIQUES },
    { name: "k4 with the default techniques", quantize: "k4", techniques: { ...DEFAULT_TECHNIQUES, probe: "layer" } },
  ];
}

export async function benchTechniques(quick: boolean, targets: string[] = ["onnx", "tflite", "coreml"]) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-techniques-"));
  const ck = openCheckpoint(join(FIXTURE, "model.safetensors"));
  const spec = fixtureSpec(quick ? BENCH_PROMPTS.slice(0, 4) : BENCH_PROMPTS);
  const widths: Width[] = [0.375, 0.5, 1];
  try {
    const t0 = performance.now();
    const cal = await recordTrajectories(ck, { prompts: CALIBRATION_PROMPTS, vocab: spec.vocab!, steps: 20, shift: 1, seed: 1000, samples: 1, width: 1, latentSize: ck.config.latentSize });
    const calibrateSeconds = +((performance.now() - t0) / 1000).toFixed(2);
    const refs = new Map<number, Images>();
    for (const w of widths) refs.set(w, (await sampleImages(irEngine(ck, w, ck.config.latentSize), spec, `float w${w}`)).images);
    const rows = [];
    for (const v of techniqueVariants()) {
      const out = join(dir, v.name.replace(/[^a-z0-9]+/gi, "-"));
      const t1 = performance.now();
      const { report, timings } = compile({ source: ck, ref: { checkpoint: join(FIXTURE, "model.safetensors") }, targets, widths, precision: "auto", out, quantize: parseQuantize(v.quantize), techniques: v.techniques, calibration: cal.set, ...(v.deployment ? { deployment: v.deployment } : {}) });
      const compileSeconds = +((performance.now() - t1) / 1000).toFixed(2);
      for (const a of report.artifacts) {
        const engines: EngineName[] = a.target === "onnx" ? ["onnxruntime"] : a.target === "tflite" ? ["litert"] : ["ditc"];
        for (const e of engines) {
          const engine = await artifactEngine(join(out, a.path), e);
          try {
            const im = (await sampleImages(engine, spec, `${v.name} ${a.path}`)).images;
            rows.push({ variant: v.name, quantize: v.quantize, techniques: v.techniques, target: a.target, width: a.width, precision: a.precision, engine: e, psnr: +psnr(im, refs.get(a.width)!).toFixed(2), bytes: a.bytes, averageBits: +(report.quantization?.averageBits ?? 32).toFixed(3) });
          } finally {
            await engine.close();
          }
        }
      }
      const seconds = timings.map((x) => ({ ...x, ...(report.quantization?.widths?.find((y) => y.width === x.width)?.overlap ? { overlap: report.quantization.widths.find((y) => y.width === x.width)!.overlap } : {}) }));
      const line = rows.filter((r) => r.variant === v.name).map((r) => `${r.target} w${r.width} ${r.psnr}`).join(", ");
      console.log(`techniques ${v.name}: ${line} dB (compile ${compileSeconds} s)`);
      rows.push({ variant: v.name, compileSeconds, seconds } as never);
    }
    return { fixture: "shapes-micro", prompts: spec.prompts!.length, steps: spec.steps, calibration: { prompts: CALIBRATION_PROMPTS.length, records: cal.record.records, seconds: calibrateSeconds }, rows };
  } finally {
    ck.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
