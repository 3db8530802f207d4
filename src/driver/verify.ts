// `ditc verify DIR`: parity of every artifact a compile wrote. The IR interpreter runs the float
// model (rebuilt from the report's model reference) as the reference; each artifact is run by
// ditc's own reader-interpreter and by the target's real runtime where one exists.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../diagnostics.js";
import type { FloatTensor } from "../kernels/tensor.js";
import { presetConfig } from "../model/config.js";
import { float32Bytes, openCheckpoint, syntheticSource, withSynthesisCache, type WeightSource } from "../model/weights.js";
import { specsForWidth } from "../model/params.js";
import { engineInfo } from "../kernels/simd/engine.js";
import { readCacheBudget, type CompileReport } from "./compile.js";
import { checkReport } from "./report-check.js";
import { syntheticInputs } from "./init.js";
import { BACKENDS } from "./pipelines.js";
import type { ProgressFn } from "./progress.js";
import { interpret, runFloatModel } from "./run.js";
import { PASSES } from "../../passes/index.js";
import { buildModel } from "../model/build.js";
import type { Width } from "../model/config.js";
import { buildPipeline } from "../pipeline/pass.js";
import { runPipeline } from "../pipeline/run.js";
import { KMEANS_REVISION } from "../quant/kmeans.js";
import type { Graph } from "../ir/graph.js";
import { artifactEngine, type EngineName } from "../sample/engines.js";
import { psnr, type Images } from "../sample/images.js";
import { graphEngine, sampleImages } from "./sample-report.js";
import { parseDecode, type SampleSpec } from "./sample.js";
import { needsStatistics, PAPER_TECHNIQUES, palettizeEntry, readStatistics } from "./quantize-plan.js";

export interface VerifyResult {
  path: string;
  target: string;
  width: number;
  engine: string;
  /** null for engines that check a file without running it (coremltools) */
  maxAbsErr: number | null;
  maxRelErr: number | null;
  relL2: number | null;
  finite: boolean | null;
  pass: boolean;
  error?: string;
  detail?: string;
  /** "images": a sampling check (psnr against the reference's images); absent: the one-forward parity check */
  check?: "images";
  psnr?: number;
}

export function compareOutputs(got: Float32Array, want: Float32Array): { maxAbsErr: number; maxRelErr: number; relL2: number; finite: boolean } {
  let maxAbs = 0, maxRef = 0, num = 0, den = 0, finite = got.length === want.length;
  for (let i = 0; i < want.length; i++) {
    const g = got[i] ?? NaN, w = want[i]!;
    if (!Number.isFinite(g)) finite = false;
    maxAbs = Math.max(maxAbs, Math.abs(g - w));
    maxRef = Math.max(maxRef, Math.abs(w));
    num += (g - w) ** 2;
    den += w * w;
  }
  return { maxAbsErr: finite ? maxAbs : Infinity, maxRelErr: finite ? maxAbs / (maxRef || 1) : Infinity, relL2: finite ? Math.sqrt(num / (den || 1)) : Infinity, finite };
}

export function readReport(dir: string): CompileReport {
  let text: string;
  try {
    text = readFileSync(join(dir, "report.json"), "utf8");
  } catch {
    throw fail("fileUnreadable", { file: join(dir, "report.json"), problem: "no compile report there; run ditc compile --out DIR first" });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail("fileUnreadable", { file: join(dir, "report.json"), problem: `not valid JSON (${(e as Error).message})` });
  }
  return checkReport(json, join(dir, "report.json"));
}

/** The weights a report was compiled from: its checkpoint opened again, or its preset (its artifacts' widths kept once drawn, when they fit). */
export function sourceOf(r: Pick<CompileReport, "model" | "artifacts">): { source: WeightSource; close(): void } {
  if ("checkpoint" in r.model) {
    const { checkpoint, rename, configFile, allowUnused } = r.model;
    const ck = openCheckpoint(checkpoint, { ...(rename !== undefined ? { rename } : {}), ...(configFile !== undefined ? { config: configFile } : {}), ...(allowUnused ? { allowUnused } : {}) });
    return { source: ck, close: () => ck.close() };
  }
  // each width's reference draws every weight again (its forward, its palettes): kept once drawn,
  // all of them drawn up front on two threads, when they fit compile's read-cache budget
  const preset = syntheticSource(presetConfig(r.model.preset), r.model.seed);
  if (float32Bytes(preset.config) > readCacheBudget()) return { source: preset, close: () => {} };
  const cached = withSynthesisCache(preset);
  const widths = new Set(r.artifacts.map((a) => a.width));
  cached.prefetch([...widths].flatMap((w) => specsForWidth(preset.config, w).map((s) => s.name)), engineInfo().threads);
  return { source: cached, close: () => {} };
}

export async function verify(dir: string, inputs?: Record<string, FloatTensor>, onProgress?: ProgressFn): Promise<VerifyResult[]> {
  const report = readReport(dir);
  const { source, close } = sourceOf(report);
  try {
    const feeds = inputs ?? syntheticInputs(source.config, 0, { batch: 1, latentSize: report.latentSize, contextTokens: report.contextTokens });
    const results: VerifyResult[] = [];
    const checks = report.artifacts.reduce((n, a) => n + 1 + (BACKENDS[a.target]?.checker ? 1 : 0) + (BACKENDS[a.target]?.runtime ? 1 : 0), 0);
    let done = 0;
    const log = (step: string) => onProgress?.({ step, done: done++, total: checks, unit: "checks" });
    /** per width, the float reference and, when it is not finite, why every artifact fails (rather than only "Infinity") */
    const refs = new Map<number, { ref: FloatTensor; broken?: string }>();
    const referenceOf = (width: number) => {
      const ref = referenceOutput(dir, source, report, width, feeds, onProgress);
      let bad = 0;
      for (const x of ref.data) if (!Number.isFinite(x)) bad++;
      return { ref, ...(bad ? { broken: `the float reference itself holds ${bad} non-finite of ${ref.data.length} values: the weights or inputs hold NaN or an infinity` } : {}) };
    };
    for (const a of report.artifacts) {
      const backend = BACKENDS[a.target];
      if (!backend) throw fail("usage", { detail: `${dir}: artifact ${a.path} has target "${a.target}", which this ditc cannot run.` });
      let reference = refs.get(a.width);
      if (!reference) refs.set(a.width, (reference = referenceOf(a.width)));
      const { ref, broken } = reference;
      const path = join(dir, a.path);
      const judge = (engine: string, out: FloatTensor | undefined, runError?: string): VerifyResult => {
        const error = runError ?? broken;
        const c = out ? compareOutputs(out.data, ref.data) : { maxAbsErr: Infinity, maxRelErr: Infinity, relL2: Infinity, finite: false };
        const pass = !error && c.finite && (a.precision === "fp32" ? c.maxRelErr <= report.tolerances.fp32.maxRelErr : c.relL2 <= report.tolerances.fp16.relL2);
        return { path: a.path, target: a.target, width: a.width, engine, ...c, pass, ...(error ? { error } : {}) };
      };
      log(`${a.path}: ditc reader-interpreter`);
      const read = backend.read(path);
      try {
        results.push(judge("ditc", interpret(read.graph, feeds, `${a.path}: ditc reader-interpreter`, { onProgress }).velocity as FloatTensor));
      } finally {
        read.close();
      }
      if (backend.checker) {
        log(`${a.path}: ${backend.checker.engine}`);
        const why = backend.checker.unavailable?.();
        const base = { path: a.path, target: a.target, width: a.width, engine: backend.checker.engine, maxAbsErr: null, maxRelErr: null, relL2: null, finite: null };
        if (why) results.push({ ...base, pass: false, error: `unavailable: ${why}` });
        else {
          try {
            const c = await backend.checker.check(path);
            results.push({ ...base, pass: c.ok, ...(c.ok ? { detail: c.detail } : { error: c.detail }) });
          } catch (e) {
            results.push({ ...base, pass: false, error: (e as Error).message.split("\n")[0] });
          }
        }
      }
      if (backend.runtime) {
        log(`${a.path}: ${backend.runtime.engine}`);
        const why = backend.runtime.unavailable?.();
        if (why) results.push(judge(backend.runtime.engine, undefined, `unavailable: ${why}`));
        else {
          try {
            results.push(judge(backend.runtime.engine, (await backend.runtime.run(path, feeds)).velocity));
          } catch (e) {
            results.push(judge(backend.runtime.engine, undefined, (e as Error).message.split("\n")[0]));
          }
        }
      }
    }
    if (report.sampling) results.push(...(await verifyImages(dir, report, source, onProgress)));
    return results;
  } finally {
    close();
  }
}

/**
 * Image checks: the reference (the IR interpreter on the same weights, palettized when the compile
 * quantized) samples the report's prompts and noise; every artifact, with each engine the compile
 * sampled it with, must reach the report's PSNR threshold for its precision against those images.
 */
async function verifyImages(dir: string, report: CompileReport, source: WeightSource, onProgress?: ProgressFn): Promise<VerifyResult[]> {
  const s = report.sampling!;
  const decode = s.decode.startsWith("onnx:") ? { kind: "onnx" as const, path: s.decode.slice(5) } : parseDecode(s.decode);
  const spec: SampleSpec = { steps: s.steps, shift: s.shift, seed: s.seeds?.[0] ?? 0, decode, ...(s.prompts ? { prompts: s.prompts, vocab: s.vocab! } : { context: s.context! }) };
  const out: VerifyResult[] = [];
  const refs = new Map<number, Images>();
  for (const x of s.results) {
    const a = report.artifacts.find((y) => y.path === x.path)!;
    let ref = refs.get(x.width);
    if (!ref) {
      const g = referenceGraph(dir, source, report, x.width, 1, report.latentSize, report.contextTokens);
      refs.set(x.width, (ref = (await sampleImages(graphEngine(g, `w${x.width} reference`), spec, `w${x.width} reference`, onProgress)).images));
    }
    const base = { path: x.path, target: x.target, width: x.width, engine: x.engine, maxAbsErr: null, maxRelErr: null, relL2: null, finite: null, check: "images" as const };
    try {
      const engine = await artifactEngine(join(dir, x.path), x.engine as EngineName);
      try {
        const im = (await sampleImages(engine, spec, `${x.path} ${x.engine}`, onProgress)).images;
        const p = +psnr(im, ref).toFixed(2);
        const threshold = s.thresholds[a.precision];
        out.push({ ...base, psnr: p, pass: p >= threshold, detail: `image PSNR ${p} dB (threshold ${threshold} dB)` });
      } finally {
        await engine.close();
      }
    } catch (e) {
      out.push({ ...base, pass: false, error: (e as Error).message.split("\n")[0] });
    }
  }
  return out;
}

/** The width-w model for a batch and shapes, with the same palettized (or int8) weights as the compile's. */
function referenceGraph(dir: string, source: WeightSource, report: CompileReport, width: number, batch: number, latentSize: [number, number], contextTokens: number): Graph {
  const model = buildModel(source, { width: width as Width, batch, latentSize, contextTokens });
  const q = report.quantization;
  const layers = q?.layers.filter((l) => l.width === width) ?? [];
  if (!q || !layers.length) return model.graph;
  const revision = q.kmeansRevision ?? 1;
  if (q.mode !== "int8" && revision !== KMEANS_REVISION)
    throw fail("usage", { detail: `the palettes in this folder come from k-means revision ${revision}, this ditc clusters with revision ${KMEANS_REVISION} and would compare against other palettes; recompile the folder with this ditc to verify it.` });
  const bits = Object.fromEntries(layers.map((l) => [l.name, l.bits]));
  // reports from before the techniques existed: plain k-means, no correction
  const t = q.techniques ?? { ...PAPER_TECHNIQUES, lutGroupSize: q.lutGroupSize };
  const stats = q.statistics ? readStatistics(join(dir, q.statistics), width) : undefined;
  if (q.mode !== "int8" && needsStatistics(q as never, t) && !stats)
    throw fail("usage", { detail: `${dir}: the report uses ${t.kmeans === "weighted" ? "weighted k-means" : "bias correction"} but names no statistics file; recompile the folder.` });
  const entry = q.mode === "int8" ? { pass: "quantize-int8", options: { names: layers.map((l) => l.name) } } : palettizeEntry(bits, t, stats);
  return runPipeline(model.graph, buildPipeline({ name: "reference", entries: [entry] }, PASSES));
}

/** The IR interpreter's output for one width, with the same palettized weights when the compile quantized. */
function referenceOutput(dir: string, source: WeightSource, report: CompileReport, width: number, feeds: Record<string, FloatTensor>, onProgress?: ProgressFn): FloatTensor {
  if (!report.quantization?.layers.some((l) => l.width === width)) return runFloatModel(source, width as Width, feeds, "fp32", onProgress);
  const latent = feeds.latent!, context = feeds.context!;
  const g = referenceGraph(dir, source, report, width, latent.shape[0]!, [latent.shape[2]!, latent.shape[3]!], context.shape[1]!);
  return interpret(g, feeds, `w${width}: IR interpreter`, { onProgress }).velocity as FloatTensor;
}
