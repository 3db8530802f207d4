// Images in the compile report: after a compile, the float model's samples at each width and
// every artifact's samples with ditc's reader-interpreter and the format's real runtime, the
// grids written to DIR/samples/ and the image PSNR of each against the float model's in
// report.json (and report.html). `verify` re-samples and holds each artifact to a PSNR threshold.
import { join } from "node:path";
import { makeOutputFolder, writeAll, writeFileAtomic } from "../io/atomic.js";
import type { Graph } from "../ir/graph.js";
import { runGraph } from "../interp/interpreter.js";
import type { FloatTensor } from "../kernels/tensor.js";
import { widthTag, type Width } from "../model/config.js";
import type { WeightSource } from "../model/weights.js";
import { artifactEngine, irEngine, type EngineName, type SampleEngine } from "../sample/engines.js";
import { gridPng, psnr, type Images } from "../sample/images.js";
import type { CompileReport } from "./compile.js";
import { BACKENDS } from "./pipelines.js";
import type { ProgressFn } from "./progress.js";
import { renderReportHtml } from "./report-html.js";
import { decodeLatents, sampleContext, sampleLatents, sampleNoise, type SampleSpec } from "./sample.js";

/** Image PSNR an artifact must reach against the reference images in `verify` (dB). */
export const IMAGE_PSNR_THRESHOLDS = { fp32: 40, fp16: 30 } as const;

export interface SamplingReport {
  prompts: string[] | null;
  vocab: string | null;
  context: string | null;
  steps: number;
  shift: number;
  seeds: number[] | null;
  decode: string;
  thresholds: { fp32: number; fp16: number };
  /** the float model's grid per width (paths relative to DIR) */
  float: { width: number; image: string }[];
  /** every artifact and engine: its grid and its PSNR against the float model's images */
  results: { path: string; target: string; width: number; engine: string; psnr: number; image: string }[];
}

/** The engines that sample an artifact: ditc's reader-interpreter and the format's runtime, if usable. */
export function artifactEngines(target: string): EngineName[] {
  const rt = BACKENDS[target]?.runtime;
  const runtime = rt && !rt.unavailable?.() ? (rt.engine as EngineName) : undefined;
  return runtime ? ["ditc", runtime] : ["ditc"];
}

/** Samples with one engine: latents, then images. */
export async function sampleImages(engine: SampleEngine, spec: SampleSpec, step: string, onProgress?: ProgressFn): Promise<{ images: Images; latents: FloatTensor; seeds: number[] | null; prompts: string[] | null; decode: string }> {
  const { context, prompts } = sampleContext(spec, engine);
  const { noise, seeds } = sampleNoise(spec, engine, context.shape[0]!);
  const { latents } = await sampleLatents(engine, noise, context, spec, onProgress ? (e) => onProgress({ ...e, step: `${step}: ${e.step}` }) : undefined);
  const { images, how } = await decodeLatents(latents, spec.decode);
  return { images, latents, seeds, prompts, decode: how };
}

/** A graph (e.g. the float model with palettized weights) as a sampling engine at its compiled batch. */
export function graphEngine(g: Graph, what: string): SampleEngine {
  const shape = (name: string) => g.inputs.find((v) => v.name === name)!.type.shape;
  const latent = shape("latent"), context = shape("context");
  const constants = new Map();
  return {
    name: "ditc", what, batch: latent[0]!, latent: [latent[1]!, latent[2]!, latent[3]!], context: [context[1]!, context[2]!],
    velocity: (l, t, c) => runGraph(g, { latent: l, timestep: t, context: c }, { constants }).velocity as FloatTensor,
    close: () => constants.clear(),
  };
}

/** Samples the float model and every artifact of `report`, writes the grids, adds `sampling` to the report. */
export async function addSamplesToReport(out: string, report: CompileReport, source: WeightSource, spec: SampleSpec, onProgress?: ProgressFn): Promise<CompileReport> {
  makeOutputFolder(join(out, "samples"));
  const writePng = (name: string, im: Images) => {
    const png = gridPng(im);
    writeFileAtomic(join(out, "samples", name), (fd) => writeAll(fd, png));
    return `samples/${name}`;
  };
  const float: SamplingReport["float"] = [];
  const results: SamplingReport["results"] = [];
  let meta: Pick<SamplingReport, "seeds" | "prompts" | "decode"> | undefined;
  const widths = [...new Set(report.artifacts.map((a) => a.width))];
  for (const width of widths) {
    const ref = await sampleImages(irEngine(source, width as Width, report.latentSize), spec, `float w${width}`, onProgress);
    meta ??= { seeds: ref.seeds, prompts: ref.prompts, decode: ref.decode };
    float.push({ width, image: writePng(`float-${widthTag(width as Width)}.png`, ref.images) });
    for (const a of report.artifacts.filter((x) => x.width === width))
      for (const name of artifactEngines(a.target)) {
        const engine = await artifactEngine(join(out, a.path), name);
        try {
          const s = await sampleImages(engine, spec, `${a.path} ${name}`, onProgress);
          const image = writePng(`${a.target}-${widthTag(width as Width)}-${name}.png`, s.images);
          results.push({ path: a.path, target: a.target, width, engine: name, psnr: +psnr(s.images, ref.images).toFixed(2), image });
        } finally {
          await engine.close();
        }
      }
  }
  const sampling: SamplingReport = {
    prompts: meta?.prompts ?? null, vocab: spec.vocab ?? null, context: spec.context ?? null, steps: spec.steps, shift: spec.shift,
    seeds: meta?.seeds ?? null, decode: meta?.decode ?? "", thresholds: { ...IMAGE_PSNR_THRESHOLDS }, float, results,
  };
  const updated = { ...report, sampling };
  writeFileAtomic(join(out, "report.json"), (fd) => writeAll(fd, Buffer.from(JSON.stringify(updated, null, 2) + "\n")));
  writeFileAtomic(join(out, "report.html"), (fd) => writeAll(fd, Buffer.from(renderReportHtml(updated, undefined, out))));
  return updated;
}
