// `ditc sample`: images from a model or an artifact. Context from prompts and a vocabulary or from
// a context file, seeded (or given) noise, the Euler sampler of docs/sampling.md with the chosen
// engine, decoding, and DIR/samples.png, DIR/latents.safetensors, DIR/sample.json.
import { join } from "node:path";
import { readTensorFile, writeTensorFile } from "../checkpoint/tensors.js";
import { fail } from "../diagnostics.js";
import { makeOutputFolder, writeAll, writeFileAtomic } from "../io/atomic.js";
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";
import type { ProgressFn } from "./progress.js";
import type { SampleEngine } from "../sample/engines.js";
import type { ModelConfig } from "../model/config.js";
import { gridPng, onnxDecode, pixelShuffleDecode, type Images } from "../sample/images.js";
import { checkContext, loadVocab, promptContext } from "../sample/prompts.js";
import { eulerSample, seededNoise } from "../sample/sampler.js";

export type DecodeChoice = { kind: "pixel-shuffle"; factor: number } | { kind: "onnx"; path: string };

export interface SampleSpec {
  /** prompts with a vocabulary, or a context file */
  prompts?: string[];
  vocab?: string;
  context?: string;
  steps: number;
  shift: number;
  /** seed of the first sample; sample i uses seed + i */
  seed: number;
  /** a file with the initial noise, `noise` (N, C, H, W), instead of seeds */
  noise?: string;
  /** default: pixel shuffle by sqrt(latent channels) */
  decode?: DecodeChoice;
}

export interface SampleOutcome {
  latents: FloatTensor;
  images: Images;
  /** what sample.json holds */
  record: SampleRecord;
}

export interface SampleRecord {
  model: string;
  engine: string;
  prompts: string[] | null;
  vocab: string | null;
  context: string | null;
  seeds: number[] | null;
  noise: string | null;
  steps: number;
  shift: number;
  latent: number[];
  decode: string;
  image: { width: number; height: number; channels: number };
  timings: { seconds: number; secondsPerStep: number; calls: number };
}

/** Parses --decode: "pixel-shuffle:R". */
export function parseDecode(v: string): DecodeChoice {
  const m = /^pixel-shuffle:(\d+)$/.exec(v);
  if (!m || Number(m[1]) < 1) throw fail("badOption", { option: "decode", value: v, expected: "pixel-shuffle:R (R a positive integer); a VAE goes in --decoder FILE.onnx" });
  return { kind: "pixel-shuffle", factor: Number(m[1]) };
}

/** The contexts (N, S, Dctx) a spec asks for, checked against what the engine's model reads. */
export function sampleContext(spec: SampleSpec, engine: SampleEngine): { context: FloatTensor; prompts: string[] | null } {
  const [S, D] = engine.context;
  if (spec.context !== undefined) {
    if (spec.prompts?.length || spec.vocab !== undefined) throw fail("usage", { detail: "give either --context FILE or --prompt with --vocab, not both." });
    return { context: checkContext(spec.context, readTensorFile(spec.context).context, S, D), prompts: null };
  }
  if (!spec.prompts?.length || spec.vocab === undefined) throw fail("usage", { detail: "say what to draw: --prompt \"...\" (one or more) with --vocab VOCAB.safetensors, or --context CTX.safetensors." });
  return { context: promptContext(loadVocab(spec.vocab), spec.prompts, S, D), prompts: spec.prompts };
}

/** Checks prompts, vocabulary or context against a model's config before anything is compiled. */
export function checkSampleSpec(spec: SampleSpec, config: ModelConfig): void {
  const probe = { context: [config.contextTokens, config.contextDim] } as unknown as SampleEngine;
  sampleContext(spec, probe);
}

/** Initial noise (N, C, H, W): seeded per sample, or from the spec's file. */
export function sampleNoise(spec: SampleSpec, engine: SampleEngine, count: number): { noise: FloatTensor; seeds: number[] | null } {
  const [C, H, W] = engine.latent;
  if (spec.noise !== undefined) {
    const t = readTensorFile(spec.noise).noise;
    if (!t) throw fail("samplingInput", { file: spec.noise, what: "tensor \"noise\"", problem: "is missing; a noise file holds noise (N, C, H, W)" });
    if (t.shape.length !== 4 || t.shape[1] !== C || t.shape[2] !== H || t.shape[3] !== W)
      throw fail("samplingInput", { file: spec.noise, what: "tensor \"noise\"", problem: `has shape (${t.shape.join(", ")}), but ${engine.what} takes latents of (${C}, ${H}, ${W}): it was compiled for another resolution` });
    if (t.shape[0] !== count) throw fail("samplingInput", { file: spec.noise, what: "tensor \"noise\"", problem: `holds ${t.shape[0]} samples for ${count} prompts or contexts` });
    return { noise: t, seeds: null };
  }
  const seeds = Array.from({ length: count }, (_, i) => spec.seed + i);
  const data = new Float32Array(count * C * H * W);
  seeds.forEach((s, i) => data.set(seededNoise(s, [C, H, W]), i * C * H * W));
  return { noise: floatTensor([count, C, H, W], data), seeds };
}

export async function decodeLatents(latents: FloatTensor, decode: DecodeChoice | undefined): Promise<{ images: Images; how: string }> {
  if (decode?.kind === "onnx") return { images: await onnxDecode(decode.path, latents), how: `onnx:${decode.path}` };
  const C = latents.shape[1]!;
  const r = decode?.factor ?? Math.round(Math.sqrt(C));
  if (decode === undefined && r * r !== C) throw fail("usage", { detail: `the latents have ${C} channels, so they are not a pixel-shuffled image; give --decoder VAE.onnx (or --decode pixel-shuffle:R).` });
  return { images: pixelShuffleDecode(latents, r), how: `pixel-shuffle:${r}` };
}

/** The most Euler steps a sampler takes: a training schedule's 1,000 timesteps (more only repeats them). */
export const MAX_STEPS = 1000;

/** Refuses a step count outside 1..MAX_STEPS, naming --steps. */
export function checkSteps(steps: number): void {
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > MAX_STEPS) throw fail("badOption", { option: "steps", value: String(steps), expected: `an integer from 1 to ${MAX_STEPS}` });
}

/** Runs the sampler for every sample, in batches the engine takes. */
export async function sampleLatents(engine: SampleEngine, noise: FloatTensor, context: FloatTensor, spec: Pick<SampleSpec, "steps" | "shift">, onProgress?: ProgressFn, signal?: AbortSignal): Promise<{ latents: FloatTensor; calls: number }> {
  checkSteps(spec.steps);
  const N = noise.shape[0]!;
  if (context.shape[0] !== N) throw fail("usage", { detail: `${context.shape[0]} contexts for ${N} noise samples.` });
  const per = engine.batch === 0 ? N : engine.batch;
  const [C, H, W] = engine.latent, [S, D] = engine.context;
  const out = new Float32Array(noise.data.length);
  let calls = 0;
  for (let first = 0; first < N; first += per) {
    // a static batch larger than what is left is filled with copies of the last sample
    const idx = Array.from({ length: per }, (_, j) => Math.min(first + j, N - 1));
    const chunk = (t: FloatTensor, size: number, shape: number[]) => {
      const data = new Float32Array(per * size);
      idx.forEach((i, j) => data.set(t.data.subarray(i * size, (i + 1) * size), j * size));
      return floatTensor([per, ...shape], data);
    };
    const step = N > per ? `sampling ${first + 1}-${Math.min(N, first + per)} of ${N}` : "sampling";
    const x = await eulerSample(engine.velocity, chunk(noise, C * H * W, [C, H, W]), chunk(context, S * D, [S, D]), {
      steps: spec.steps, shift: spec.shift, ...(signal ? { signal } : {}),
      onStep: (done, total) => {
        calls++;
        onProgress?.({ step, done, total, unit: "steps" });
      },
    });
    for (let j = 0; j < per && first + j < N; j++) out.set(x.data.subarray(j * C * H * W, (j + 1) * C * H * W), (first + j) * C * H * W);
  }
  return { latents: floatTensor(noise.shape, out), calls };
}

/** The whole command: context, noise, sampling, decoding, and the three files in `out` (if given). */
export async function runSample(engine: SampleEngine, spec: SampleSpec, out: string | undefined, onProgress?: ProgressFn, signal?: AbortSignal): Promise<SampleOutcome> {
  checkSteps(spec.steps);
  if (!(spec.shift > 0)) throw fail("badOption", { option: "shift", value: String(spec.shift), expected: "a number > 0 (1: no shift)" });
  const { context, prompts } = sampleContext(spec, engine);
  const { noise, seeds } = sampleNoise(spec, engine, context.shape[0]!);
  // a path that cannot be a folder fails now, not after minutes of sampling
  if (out !== undefined) makeOutputFolder(out);
  const t0 = performance.now();
  const { latents, calls } = await sampleLatents(engine, noise, context, spec, onProgress, signal);
  const seconds = (performance.now() - t0) / 1000;
  const { images, how } = await decodeLatents(latents, spec.decode);
  const record: SampleRecord = {
    model: engine.what, engine: engine.name, prompts, vocab: spec.vocab ?? null, context: spec.context ?? null,
    seeds, noise: spec.noise ?? null, steps: spec.steps, shift: spec.shift, latent: [...latents.shape], decode: how,
    image: { width: images.width, height: images.height, channels: images.channels },
    timings: { seconds: +seconds.toFixed(3), secondsPerStep: +(seconds / Math.max(calls, 1)).toFixed(4), calls },
  };
  if (out !== undefined) {
    const png = gridPng(images);
    writeFileAtomic(join(out, "samples.png"), (fd) => writeAll(fd, png));
    writeTensorFile(join(out, "latents.safetensors"), { latent: latents });
    writeFileAtomic(join(out, "sample.json"), (fd) => writeAll(fd, Buffer.from(JSON.stringify(record, null, 2) + "\n")));
  }
  return { latents, images, record };
}
