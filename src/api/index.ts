// ditc's programmatic API: the same steps as the CLI, as typed functions (README, "Programmatic
// API", has examples a test runs).
//
//   import { compile } from "ditc";
//   const { report } = await compile({ preset: "mini", targets: ["onnx", "tflite", "coreml"], out: "out/" });
import { resolve } from "node:path";
import { compile as compileArtifacts, parseQuantize, type CompileReport, type ModelRef, type Precision, type QuantizationTimings, type CompilePhases } from "../driver/compile.js";
import { applyPipeline, BACKENDS } from "../driver/pipelines.js";
import { openSource } from "../driver/source.js";
import type { Techniques } from "../driver/quantize-plan.js";
import { interpret, runArtifact } from "../driver/run.js";
import { syntheticInputs } from "../driver/init.js";
import { verify as verifyDir, type VerifyResult } from "../driver/verify.js";
import { fail, oneOf } from "../diagnostics.js";
import type { ProgressEvent, ProgressFn } from "../driver/progress.js";
import { MAX_THREADS, setThreads as setEngineThreads } from "../kernels/simd/engine.js";
import { checkSampleSpec, parseDecode, runSample, type SampleOutcome, type SampleSpec } from "../driver/sample.js";
import { addSamplesToReport } from "../driver/sample-report.js";
import { artifactEngine, irEngine, type EngineName, type SampleEngine } from "../sample/engines.js";
import type { Graph } from "../ir/graph.js";
import type { RunProfile } from "../interp/profile.js";
import type { FloatTensor, Tensor } from "../kernels/tensor.js";
import { buildModel as build, buildSupernetwork as buildSuper, latentForResolution, type BuiltModel } from "../model/build.js";
import { sliceWidth as sliceWidthPass } from "../../passes/slice-width.js";
import { presetConfig, type ModelConfig, type Width } from "../model/config.js";
import { openCheckpoint, syntheticSource, type Checkpoint, type WeightSource } from "../model/weights.js";
import type { CheckpointOptions } from "../checkpoint/open.js";

export type { ProgressEvent, ProgressFn, CheckpointOptions, Techniques };
export type { CompileReport, VerifyResult, Graph, ModelConfig, Width, WeightSource, Checkpoint, FloatTensor, Tensor, BuiltModel, SampleOutcome, EngineName };
export { DitcError } from "../diagnostics.js";
/** Reads every float tensor of a .safetensors file (inputs, calibration sets). */
export { readTensorFile } from "../checkpoint/tensors.js";
export type { QuantizationTimings, CompilePhases };
export type { RunProfile, KindProfile, NodeTime } from "../interp/profile.js";

export interface CompileOptions {
  /** a built-in preset with seeded synthetic weights ... */
  preset?: "full" | "mini" | "micro";
  seed?: number;
  /** ... or a supernetwork checkpoint: a .safetensors, a shard index, or a folder holding one */
  checkpoint?: string;
  /** a rename table for the checkpoint's tensor names (docs/checkpoints.md) */
  rename?: string;
  /** the config JSON, when the checkpoint carries none (or to override it) */
  config?: string;
  /** leave out stored tensors that are not parameters of the model */
  allowUnused?: boolean;
  targets: ("coreml" | "tflite" | "onnx")[];
  widths?: Width[];
  /** image resolution in pixels (latent R/8) */
  resolution?: number;
  precision?: Precision | "auto";
  /** "none", "k4", "k8", "mixed", "mixed:BITS" or "int8" */
  quantize?: string;
  /** palettes: probe scope, k-means weighting, bias correction, LUT groups (default: DEFAULT_TECHNIQUES) */
  techniques?: Partial<Techniques>;
  /** calibration inputs (latent, timestep, context; N samples), e.g. readTensorFile of ditc calibrate's output */
  calibration?: Record<string, FloatTensor>;
  out: string;
  externalData?: "auto" | "always" | "never";
  /** every step of the compile: probe layers, weights written per artifact */
  onProgress?: ProgressFn;
  /** checked between artifacts; every artifact already written is whole (atomic writes) */
  signal?: AbortSignal;
  /** threads for ditc's own kernels (the probe's forwards) and the k-means; default: the machine's cores */
  threads?: number;
  /** add the float model's and every artifact's samples, and their image PSNR, to the report */
  sample?: SampleOptions;
}

/** What to draw and how: prompts with a vocabulary (or a context file), steps, seed, decoder. */
export interface SampleOptions {
  prompts?: string[];
  vocab?: string;
  context?: string;
  /** default 20 */
  steps?: number;
  /** time shift s (default 1: none) */
  shift?: number;
  /** noise seed of the first sample; sample i uses seed + i (default 0) */
  seed?: number;
  /** a file with the initial noise (N, C, H, W) instead of seeds */
  noise?: string;
  /** "pixel-shuffle:R" (default: by sqrt(latent channels)) or a VAE decoder .onnx */
  decode?: string;
  decoder?: string;
}

/** Compiles the model for each target and width; returns the artifacts and the report. */
export async function compile(o: CompileOptions): Promise<{ artifacts: { target: string; width: number; path: string; bytes: number }[]; report: CompileReport; reportPath: string; timings: QuantizationTimings[]; phases: CompilePhases }> {
  useThreads(o.threads);
  const ckOpts = { ...(o.rename !== undefined ? { rename: o.rename } : {}), ...(o.config !== undefined ? { config: o.config } : {}), ...(o.allowUnused ? { allowUnused: true } : {}) };
  const { source, close } = openSource({ ...(o.preset ? { preset: o.preset } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.checkpoint ? { checkpoint: o.checkpoint, ...ckOpts } : {}) });
  try {
    // absolute paths: verify reopens the checkpoint from wherever it runs
    const ref: ModelRef = o.checkpoint ? { checkpoint: resolve(o.checkpoint), ...(o.rename !== undefined ? { rename: resolve(o.rename) } : {}), ...(o.config !== undefined ? { configFile: resolve(o.config) } : {}), ...(o.allowUnused ? { allowUnused: true } : {}) } : { preset: o.preset!, seed: o.seed ?? 0 };
    const spec = o.sample ? sampleSpec(o.sample) : undefined;
    if (spec) checkSampleSpec(spec, source.config);
    const progress: ProgressFn = (m) => {
      if (o.signal?.aborted) throw fail("usage", { detail: "compile aborted" });
      o.onProgress?.(m);
    };
    const compiled = compileArtifacts({
      source, ref, targets: o.targets, widths: o.widths ?? source.config.widths, precision: o.precision ?? "auto", out: o.out,
      quantize: parseQuantize(o.quantize ?? "none"),
      ...(o.resolution !== undefined ? { latentSize: latentForResolution(o.resolution) } : {}),
      ...(o.calibration ? { calibration: o.calibration } : {}),
      ...(o.techniques ? { techniques: o.techniques } : {}),
      ...(o.externalData ? { externalData: o.externalData } : {}),
      onProgress: progress,
    });
    const report = spec ? await addSamplesToReport(o.out, compiled.report, source, spec, progress) : compiled.report;
    return { artifacts: report.artifacts.map((a) => ({ target: a.target, width: a.width, path: `${o.out}/${a.path}`, bytes: a.bytes })), report, reportPath: compiled.reportPath, timings: compiled.timings, phases: compiled.phases };
  } finally {
    close();
  }
}

/**
 * Opens and validates a supernetwork checkpoint — a .safetensors, a shard index or a folder, names
 * mapped by an optional rename table — (config, names, shapes, dtypes); tensors are read lazily.
 */
export function loadCheckpoint(path: string, options: CheckpointOptions = {}): Checkpoint {
  return openCheckpoint(path, options);
}

/** Weights of a built-in preset, generated from a seed on demand. */
export function presetWeights(preset: "full" | "mini" | "micro", seed = 0): WeightSource {
  return syntheticSource(presetConfig(preset), seed, `preset ${preset}, seed ${seed}`);
}

/** Seeded inputs for a model: latent ~ N(0,1), timestep ~ U(0,1), context ~ N(0,1) (as `ditc inputs`). */
export function makeInputs(source: WeightSource, options: { seed?: number; batch?: number; resolution?: number } = {}): Record<string, FloatTensor> {
  const latentSize = options.resolution ? latentForResolution(options.resolution) : source.config.latentSize;
  return syntheticInputs(source.config, options.seed ?? 0, { batch: options.batch ?? 1, latentSize, contextTokens: source.config.contextTokens });
}

/**
 * The supernetwork's IR (docs/model.md at full width); `sliceWidth(graph, w)` narrows it to the
 * width-w sub-network, which is what `buildModel` returns.
 */
export function buildSupernetwork(source: WeightSource, options: { batch?: number; resolution?: number } = {}): BuiltModel {
  return buildSuper(source, { ...(options.batch ? { batch: options.batch } : {}), ...(options.resolution ? { latentSize: latentForResolution(options.resolution) } : {}) });
}

/** Narrows a supernetwork graph to width w (the slice-width pass). */
export function sliceWidth(supernetwork: Graph, width: Width): Graph {
  return sliceWidthPass.run(supernetwork, { width });
}

/** The IR of the width-w sub-network (docs/model.md). */
export function buildModel(source: WeightSource, options: { width: Width; batch?: number; resolution?: number }): BuiltModel {
  return build(source, { width: options.width, ...(options.batch ? { batch: options.batch } : {}), ...(options.resolution ? { latentSize: latentForResolution(options.resolution) } : {}) });
}

/** Runs a target's pass pipeline ("coreml", "tflite", "onnx"); the result is legal for that target. */
export function runPipeline(graph: Graph, pipeline: string, options: { fp16?: boolean } = {}): Graph {
  return applyPipeline(graph, pipeline, options);
}

/** Writes a lowered graph as the target's artifact. */
export function emit(graph: Graph, target: "coreml" | "tflite" | "onnx", path: string): { files: string[]; bytes: number } {
  const b = BACKENDS[target];
  if (!b) throw fail("badOption", { option: "target", value: target, expected: oneOf(target, Object.keys(BACKENDS)) });
  return b.emit(graph, path, { metadata: {} });
}

/**
 * Interprets a graph, or an emitted .onnx / .tflite / .mlpackage with ditc's reader-interpreter.
 * `threads`: for ditc's kernels from now on (default: the machine's cores); `onProgress`: node by
 * node; `profile`: receives, after the run, where its time went (per op kind, slowest nodes).
 */
export function run(model: Graph | string, inputs: Record<string, Tensor>, options: { precision?: Precision; threads?: number; onProgress?: ProgressFn; profile?: (p: RunProfile) => void } = {}): Record<string, Tensor> {
  useThreads(options.threads);
  if (typeof model === "string") return { velocity: runArtifact(model, inputs as Record<string, FloatTensor>, options.precision, options.onProgress, options.profile) };
  return interpret(model, inputs, "forward", options);
}

/** Parity of every artifact of a compile output folder (see `ditc verify`). */
export function verify(dir: string, inputs?: Record<string, FloatTensor>, options: { threads?: number; onProgress?: ProgressFn } = {}): Promise<VerifyResult[]> {
  useThreads(options.threads);
  return verifyDir(dir, inputs, options.onProgress);
}

/** Threads for ditc's own kernels from now on; results are the same bits for any count. */
export function setThreads(n: number): void {
  useThreads(n);
}

function useThreads(n: number | undefined): void {
  if (n === undefined) return;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_THREADS) throw fail("badOption", { option: "threads", value: String(n), expected: `an integer from 1 to ${MAX_THREADS}` });
  setEngineThreads(n);
}

function sampleSpec(o: SampleOptions): SampleSpec {
  if (o.decode !== undefined && o.decoder !== undefined) throw fail("usage", { detail: "give either decode or decoder, not both." });
  return {
    ...(o.prompts ? { prompts: o.prompts } : {}), ...(o.vocab !== undefined ? { vocab: o.vocab } : {}), ...(o.context !== undefined ? { context: o.context } : {}),
    steps: o.steps ?? 20, shift: o.shift ?? 1, seed: o.seed ?? 0, ...(o.noise !== undefined ? { noise: o.noise } : {}),
    ...(o.decoder !== undefined ? { decode: { kind: "onnx" as const, path: o.decoder } } : o.decode !== undefined ? { decode: parseDecode(o.decode) } : {}),
  };
}

/** Where `sample` gets its velocities: an artifact (with an engine), or the float model. */
export interface SampleRequest extends SampleOptions {
  /** an emitted .onnx, .tflite or .mlpackage ... */
  artifact?: string;
  /** "ditc" (default), or the artifact format's runtime: "onnxruntime", "litert" */
  engine?: EngineName;
  /** ... or the float model: a preset (with its weights' seed) or a checkpoint, at a width */
  preset?: "full" | "mini" | "micro";
  weightsSeed?: number;
  checkpoint?: string;
  rename?: string;
  config?: string;
  allowUnused?: boolean;
  width?: Width;
  resolution?: number;
  precision?: Precision;
  /** write samples.png, latents.safetensors and sample.json here */
  out?: string;
  /** one event per sampling step */
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  threads?: number;
}

/**
 * Samples images (docs/sampling.md): the Euler sampler with the chosen engine, decoded; returns
 * the final latents (N, C, H, W), the 8-bit images and the record sample.json holds.
 */
export async function sample(o: SampleRequest): Promise<SampleOutcome> {
  useThreads(o.threads);
  const spec = sampleSpec(o);
  let engine: SampleEngine, close = () => {};
  if (o.artifact !== undefined) {
    if (o.preset !== undefined || o.checkpoint !== undefined) throw fail("usage", { detail: "give either an artifact or preset/checkpoint, not both." });
    engine = await artifactEngine(o.artifact, o.engine ?? "ditc");
  } else {
    if ((o.engine ?? "ditc") !== "ditc") throw fail("badOption", { option: "engine", value: String(o.engine), expected: "ditc for the float model (the runtimes run artifacts)" });
    const opened = openSource({
      ...(o.preset ? { preset: o.preset, seed: o.weightsSeed ?? 0 } : {}),
      ...(o.checkpoint ? { checkpoint: o.checkpoint, ...(o.rename !== undefined ? { rename: o.rename } : {}), ...(o.config !== undefined ? { config: o.config } : {}), ...(o.allowUnused ? { allowUnused: true } : {}) } : {}),
    });
    close = opened.close;
    engine = irEngine(opened.source, o.width ?? 1, o.resolution !== undefined ? latentForResolution(o.resolution) : opened.source.config.latentSize, o.precision ?? "fp32");
  }
  try {
    return await runSample(engine, spec, o.out, o.onProgress, o.signal);
  } finally {
    await engine.close();
    close();
  }
}
