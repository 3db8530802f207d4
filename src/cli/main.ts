// The `ditc` command line (docs/toolchain.md (CLI contract)). Each command parses flags, calls the driver, and prints
// either a short human summary or, with --json, exactly one JSON document on stdout.
// Exit codes: 0 ok, 1 a check failed, 2 bad input or usage; stack traces only with --debug.
import yargs, { type Argv } from "yargs";
import { allocationFailure, closest, DitcError, fail, oneOf } from "../diagnostics.js";
import { readTensorFile, writeTensorFile } from "../checkpoint/tensors.js";
import { openSource } from "../driver/source.js";
import { parseSize, syntheticInputs, writeInputs, writeShardedSyntheticCheckpoint, writeSyntheticCheckpoint } from "../driver/init.js";
import { inspectReport } from "../driver/inspect.js";
import { runFloatModel, summarize } from "../driver/run.js";
import { formatProfile, type RunProfile } from "../interp/profile.js";
import { printGraph } from "../ir/print.js";
import { verifyGraph } from "../ir/verify.js";
import { buildModel, latentForResolution } from "../model/build.js";
import { applyPipeline, BACKENDS, PIPELINE_NAMES, pipelinePasses } from "../driver/pipelines.js";
import { compile, parseQuantize, type ModelRef } from "../driver/compile.js";
import { recordTrajectories, writeCalibration } from "../driver/calibrate.js";
import { verify } from "../driver/verify.js";
import { renderReportHtml } from "../driver/report-html.js";
import { readReport } from "../driver/verify.js";
import { runArtifact } from "../driver/run.js";
import { writeAll, writeFileAtomic } from "../io/atomic.js";
import { join, resolve } from "node:path";
import { progressView } from "./progress.js";
import { checkSampleSpec, MAX_STEPS, parseDecode, runSample } from "../driver/sample.js";
import { addSamplesToReport } from "../driver/sample-report.js";
import { artifactEngine, irEngine, type SampleEngine } from "../sample/engines.js";
import { engineInfo, MAX_THREADS, setThreads } from "../kernels/simd/engine.js";
import { kernelBuild, type KernelBuild } from "../kernels/fast.js";
import { parseWidth, presetConfig, PRESET_NAMES, WIDTHS, type Width } from "../model/config.js";
import { paramCounts } from "../model/params.js";
import { mapCheckpoint, mappingError } from "../checkpoint/open.js";
import { DITC_VERSION } from "../version.js";

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s + "\n"), err: (s) => process.stderr.write(s + "\n") };


function widthArg(v: unknown): Width {
  const w = parseWidth(String(v));
  if (w === undefined) throw fail("badOption", { option: "width", value: String(v), expected: oneOf(String(v), WIDTHS) });
  return w;
}

/** What computed a forward, beside its time: the kernels' build and, on the engine, its threads. */
function kernelsUsed(): { kernels: KernelBuild; threads: number } {
  const kernels = kernelBuild();
  return { kernels, threads: kernels === "scalar" ? 1 : engineInfo().threads };
}
const onKernels = () => {
  const k = kernelsUsed();
  return ` (${k.kernels}, ${k.threads} thread${k.threads === 1 ? "" : "s"})`;
};

function intArg(name: string, v: unknown, min: number, max?: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max))
    throw fail("badOption", { option: name, value: String(v), expected: max !== undefined ? `an integer from ${min} to ${max}` : `an integer >= ${min}` });
  return n;
}

/** The float model a sampler runs (sample, calibrate) and what it draws. */
const samplerOptions = (y: Argv) =>
  y
          .option("preset", { type: "string", describe: `built-in model with synthetic weights (${PRESET_NAMES.join(", ")})` })
          .option("weights-seed", { type: "number", default: 0, describe: "seed of a preset's synthetic weights" })
          .option("checkpoint", { type: "string", describe: "supernetwork checkpoint (file, shard index or folder)" })
          .option("rename", { type: "string", describe: "--checkpoint: a rename table for its tensor names" })
          .option("config", { type: "string", describe: "--checkpoint: the config JSON" })
          .option("allow-unused", { type: "boolean", describe: "--checkpoint: leave out tensors that are not parameters" })
          .option("width", { type: "string", default: "1", describe: "width of the float model" })
          .option("resolution", { type: "number", describe: "float model: image resolution in pixels (latent = R/8); default: the config's" })
          .option("prompt", { type: "string", array: true, describe: "a prompt (repeat for several); its words index --vocab" })
          .option("vocab", { type: "string", describe: "the prompts' embedding table (.safetensors: embedding (V, Dctx), words in __metadata__.vocab)" })
          .option("context", { type: "string", describe: "instead of prompts: context (N, S, Dctx) from your text encoder" })
          .option("steps", { type: "number", default: 20, describe: "Euler steps from t = 1 to 0 (1 to 1,000)" })
          .option("shift", { type: "number", default: 1, describe: "time shift s: t' = s·t / (1 + (s − 1)·t)" });

/** Opens --preset (with --weights-seed) or --checkpoint (with its mapping options). */
function openSamplerModel(a: { preset?: string; weightsSeed?: number; checkpoint?: string; rename?: string; config?: string; allowUnused?: boolean }) {
  return openSource({
    ...(a.preset !== undefined ? { preset: a.preset, seed: intArg("weights-seed", a.weightsSeed, 0) } : {}), ...(a.checkpoint !== undefined ? { checkpoint: a.checkpoint } : {}),
    ...(a.rename !== undefined ? { rename: a.rename } : {}), ...(a.config !== undefined ? { config: a.config } : {}), ...(a.allowUnused ? { allowUnused: true } : {}),
  });
}

const modelOptions = (y: Argv) =>
  y
    .option("preset", { type: "string", describe: `built-in model with synthetic weights (${PRESET_NAMES.join(", ")})` })
    .option("seed", { type: "number", default: 0, describe: "seed of the synthetic weights" })
    .option("checkpoint", { type: "string", describe: "supernetwork checkpoint: a .safetensors, a shard index (*.safetensors.index.json), or a folder holding one" })
    .option("rename", { type: "string", describe: "--checkpoint: a rename table (JSON rules) mapping its tensor names onto ditc's" })
    .option("config", { type: "string", describe: "--checkpoint: the config JSON (default: __metadata__.config, else config.json beside it)" })
    .option("allow-unused", { type: "boolean", describe: "--checkpoint: leave out stored tensors that are not parameters of the model (they are listed)" });

/** "unknown flag --tagret (did you mean --target?)" for every flag the command does not take. */
function unknownFlagHints(argv: string[], y: Argv): string | undefined {
  // yargs keeps the running command's options on the instance; its typings do not show getOptions
  const known = Object.keys((y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key).filter((k) => k !== "$0" && k !== "_");
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const names = new Set([...known, ...known.map(kebab)]);
  const unknown = argv.filter((a) => a.startsWith("--")).map((a) => a.slice(2).split("=")[0]!).filter((f) => f && !names.has(f) && !names.has(f.replace(/^no-/, "")));
  if (!unknown.length) return undefined;
  return unknown.map((f) => {
    const hint = closest(f, [...names].filter((n) => !/[A-Z]/.test(n)));
    return `unknown flag --${f}${hint ? ` (did you mean --${hint}?)` : ""}`;
  }).join("; ");
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const json = argv.includes("--json");
  const debug = argv.includes("--debug");
  let code = 0;
  const report = (thrown: unknown) => {
    const e = allocationFailure(thrown) ?? thrown;
    if (e instanceof DitcError) {
      code = e.exitCode;
      io.err(`ditc: ${e.message}`);
      if (json) io.out(JSON.stringify({ error: { code: e.code, message: e.message } }));
    } else {
      code = 70;
      io.err(`ditc: internal error: ${(e as Error)?.message ?? String(e)}${debug ? "" : " (run with --debug for a stack trace, and please report it)"}`);
    }
    if (debug && thrown instanceof Error && thrown.stack) io.err(thrown.stack);
  };
  const emit = (human: string, doc: unknown) => io.out(json ? JSON.stringify(doc, null, 2) : human);

  const cli = yargs(argv)
    .scriptName("ditc")
    .usage("$0 <command> [options]\n\nCompiles the SnapGen++ diffusion transformer for CoreML, TFLite and ONNX.")
    .option("json", { type: "boolean", describe: "print one JSON document on stdout and nothing else" })
    .option("debug", { type: "boolean", describe: "print stack traces on errors" })
    .option("threads", { type: "number", describe: "threads for ditc's own kernels (run, verify, the probe), compile's k-means and its writer thread (none with 1); default: the machine's cores" })
    .middleware((a) => {
      if (a.threads !== undefined) setThreads(intArg("threads", a.threads, 1, MAX_THREADS));
    })
    .command(
      "init",
      "write a seeded synthetic supernetwork checkpoint (all widths)",
      (y) =>
        y
          .option("preset", { type: "string", demandOption: true, describe: `one of ${PRESET_NAMES.join(", ")}` })
          .option("seed", { type: "number", default: 0 })
          .option("dtype", { choices: ["f32", "f16"] as const, default: "f32" as const, describe: "storage dtype of the weights" })
          .option("shard-size", { type: "string", describe: "write shards of at most this size (e.g. 2GB, 500MiB) with model.safetensors.index.json and config.json; --out is then the folder (or the index path)" })
          .option("out", { type: "string", demandOption: true, describe: "output .safetensors path (a folder with --shard-size)" })
          .example("$0 init --preset mini --seed 1 --out mini.safetensors", "a mini checkpoint")
          .example("$0 init --preset full --dtype f16 --shard-size 2GB --out full/", "the full model as Hugging Face-style shards"),
      (a) => {
        const config = presetConfig(a.preset);
        if (a.shardSize !== undefined) {
          const size = parseSize(String(a.shardSize));
          if (size === undefined) throw fail("badOption", { option: "shard-size", value: String(a.shardSize), expected: "a size such as 2GB, 500MB, 1.5GiB or a byte count" });
          const r = writeShardedSyntheticCheckpoint(config, intArg("seed", a.seed, 0), a.out, a.dtype, size);
          emit(`wrote ${r.path} and ${r.shards.length} shards: ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB of ${a.dtype} weights`, r);
          return;
        }
        const r = writeSyntheticCheckpoint(config, intArg("seed", a.seed, 0), a.out, a.dtype);
        emit(`wrote ${r.path}: ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB of ${a.dtype} weights`, r);
      },
    )
    .command(
      "inputs",
      "write seeded model inputs (latent, timestep, context)",
      (y) =>
        modelOptions(y)
          .option("batch", { type: "number", default: 1 })
          .option("resolution", { type: "number", describe: "image resolution in pixels (latent = R/8); default: the config's latentSize" })
          .option("out", { type: "string", demandOption: true })
          .example("$0 inputs --preset micro --batch 2 --out in.safetensors", ""),
      (a) => {
        const { source, close } = openSource(a);
        try {
          const c = source.config;
          const shapes = {
            batch: intArg("batch", a.batch, 1),
            latentSize: a.resolution !== undefined ? latentForResolution(a.resolution) : c.latentSize,
            contextTokens: c.contextTokens,
          };
          const inputs = syntheticInputs(c, intArg("seed", a.seed, 0), shapes);
          writeInputs(a.out, inputs);
          const shapesOut = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.shape]));
          emit(`wrote ${a.out}: ${Object.entries(shapesOut).map(([k, s]) => `${k} (${s.join(", ")})`).join(", ")}`, { path: a.out, tensors: shapesOut });
        } finally {
          close();
        }
      },
    )
    .command(
      "inspect",
      "parameter counts, op histogram, transposes, ranks and tensor sizes of a model",
      (y) =>
        modelOptions(y)
          .option("width", { type: "string", default: "1" })
          .option("pipeline", { type: "string", default: "none", describe: `pass pipeline to apply first (${PIPELINE_NAMES.join(", ")})` })
          .option("resolution", { type: "number" })
          .option("ir", { type: "boolean", describe: "print the IR instead of the summary" })
          .option("print-after", { type: "string", describe: "dump the IR after these passes (comma-separated) to stderr" })
          .example("$0 inspect --preset full --json", "counts of the 1.6B model")
          .example("$0 inspect --preset full --pipeline coreml --resolution 1024 --json", "what the CoreML graph looks like at 1024²"),
      (a) => {
        if (!PIPELINE_NAMES.includes(a.pipeline)) throw fail("badOption", { option: "pipeline", value: a.pipeline, expected: oneOf(a.pipeline, PIPELINE_NAMES) });
        const printAfter = a.printAfter ? String(a.printAfter).split(",") : [];
        for (const p of printAfter)
          if (!pipelinePasses(a.pipeline).includes(p)) throw fail("badOption", { option: "print-after", value: p, expected: `a pass of pipeline ${a.pipeline}: ${pipelinePasses(a.pipeline).join(", ") || "(none)"}` });
        // a checkpoint is mapped first: what maps, what is unmapped or missing, before anything is built
        let mapping: Record<string, unknown> | undefined;
        if (a.checkpoint !== undefined) {
          const m = mapCheckpoint(a.checkpoint, { ...(a.rename !== undefined ? { rename: a.rename } : {}), ...(a.config !== undefined ? { config: a.config } : {}) });
          m.store.close();
          mapping = { path: m.store.path, files: m.store.files, configFrom: m.configFrom, mapped: m.mapped.length, unmapped: m.unmapped, missing: m.missing, mismatched: m.mismatched, params: paramCounts(m.config) };
          const err = mappingError(m, { ...(a.rename !== undefined ? { rename: a.rename } : {}), ...(a.allowUnused ? { allowUnused: true } : {}) });
          if (err) {
            // the lists on stdout (or with the error in the one JSON document), the error on stderr
            const show = (what: string, xs: string[]) => (xs.length ? [`${what} (${xs.length}): ${xs.join(", ")}`] : []);
            io.err(`ditc: ${err.message}`);
            io.out(json
              ? JSON.stringify({ checkpoint: mapping, error: { code: err.code, message: err.message } }, null, 2)
              : [`checkpoint ${m.store.path} (${m.store.files.length} file${m.store.files.length > 1 ? "s" : ""}; config from ${m.configFrom}): ${m.mapped.length} parameters map`, ...show("unmapped", m.unmapped), ...show("missing", m.missing), ...show("mismatched", m.mismatched), `params: ${Object.entries(paramCounts(m.config)).map(([w, n]) => `${w}x ${n.toLocaleString("en-US")}`).join(", ")}`].join("\n"));
            code = err.exitCode;
            return;
          }
        }
        const { source, close } = openSource(a);
        try {
          const width = widthArg(a.width);
          const latentSize = a.resolution !== undefined ? latentForResolution(a.resolution) : undefined;
          const model = buildModel(source, { width, ...(latentSize ? { latentSize } : {}) });
          verifyGraph(model.graph);
          const graph = applyPipeline(model.graph, a.pipeline, { printAfter, print: io.err });
          if (a.ir) {
            io.out(printGraph(graph));
            return;
          }
          const r = { ...inspectReport(source.config, graph, width, a.pipeline, model.latentSize), passes: pipelinePasses(a.pipeline), ...(mapping ? { checkpoint: mapping } : {}) };
          const human = [
            `model: ${source.origin}, width ${width}, latent ${r.latentSize.join("x")}, pipeline ${r.pipeline}`,
            ...(mapping ? [`checkpoint: ${(mapping.files as string[]).length} file(s), config from ${mapping.configFrom}, ${mapping.mapped} parameters map${(mapping.unmapped as string[]).length ? `, ${(mapping.unmapped as string[]).length} unmapped tensors left out: ${(mapping.unmapped as string[]).join(", ")}` : ""}`] : []),
            `params: ${Object.entries(r.params).map(([w, n]) => `${w}x ${n.toLocaleString("en-US")}`).join(", ")}`,
            `nodes: ${r.nodes}; transposes: ${r.transposes.total} (${r.transposes.inBlocks} inside blocks); max rank ${r.maxRank}`,
            `largest tensor: ${(r.largestTensorBytes / 2 ** 20).toFixed(2)} MiB, ${r.largestTensor}; largest attention score tensor in fp16: ${(r.largestScoreBytesFp16 / 2 ** 20).toFixed(2)} MiB`,
            ...(r.passes.length ? [`passes: ${r.passes.join(" -> ")}`] : []),
            `ops: ${Object.entries(r.ops).map(([k, n]) => `${k} ${n}`).join(", ")}`,
          ].join("\n");
          emit(human, r);
        } finally {
          close();
        }
      },
    )
    .command(
      "run [artifact]",
      "run a model: the float model through the IR interpreter (--preset/--checkpoint)",
      (y) =>
        modelOptions(y)
          .positional("artifact", { type: "string", describe: "an emitted .mlpackage, .tflite or .onnx" })
          .option("width", { type: "string", default: "1" })
          .option("inputs", { type: "string", describe: "inputs .safetensors (default: seeded inputs at the config's shapes)" })
          .option("out", { type: "string", describe: "write velocity to this .safetensors" })
          .option("precision", { choices: ["fp32", "fp16"] as const, default: "fp32" as const, describe: "fp16 rounds every intermediate to half precision" })
          .option("profile", { type: "boolean", describe: "also print where the forward's time went: per op kind, and the slowest nodes" })
          .example("$0 run --preset mini", "run the mini model on seeded inputs")
          .example("$0 run --preset full --profile", "where a full-size forward spends its time")
          .example("$0 run --checkpoint ck.safetensors --width 0.5 --inputs in.safetensors --out out.safetensors", ""),
      (a) => {
        if (a.artifact !== undefined) {
          if (a.preset !== undefined || a.checkpoint !== undefined) throw fail("usage", { detail: "give either an artifact to run or --preset/--checkpoint, not both." });
          if (a.inputs === undefined) throw fail("usage", { detail: `running ${a.artifact} needs --inputs IN.safetensors (make one with ditc inputs).` });
          const progress = progressView({ json, log: io.err, tty: io === defaultIo && process.stderr.isTTY === true });
          const t0 = performance.now();
          let profile: RunProfile | undefined;
          const velocity = runArtifact(a.artifact, readTensorFile(a.inputs), a.precision, progress.onProgress, a.profile ? (p) => (profile = p) : undefined);
          const seconds = (performance.now() - t0) / 1000;
          progress.stop();
          if (a.out !== undefined) writeTensorFile(a.out, { velocity });
          const s = summarize(velocity);
          emit(
            `${a.artifact} (ditc reader-interpreter): velocity (${s.shape.join(", ")}) rms ${s.rms.toPrecision(4)} in ${seconds.toFixed(2)} s${onKernels()}${a.out ? `; wrote ${a.out}` : ""}${profile ? `\n${formatProfile(profile)}` : ""}`,
            { artifact: a.artifact, engine: "ditc", velocity: s, seconds, ...kernelsUsed(), out: a.out ?? null, ...(profile ? { profile } : {}) },
          );
          return;
        }
        const { source, close } = openSource(a);
        try {
          const width = widthArg(a.width);
          const c = source.config;
          const inputs = a.inputs !== undefined ? readTensorFile(a.inputs) : syntheticInputs(c, 0, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
          const progress = progressView({ json, log: io.err, tty: io === defaultIo && process.stderr.isTTY === true });
          const t0 = performance.now();
          let profile: RunProfile | undefined;
          const velocity = runFloatModel(source, width, inputs, a.precision, progress.onProgress, a.profile ? (p) => (profile = p) : undefined);
          const seconds = (performance.now() - t0) / 1000;
          progress.stop();
          if (a.out !== undefined) writeTensorFile(a.out, { velocity });
          const s = summarize(velocity);
          emit(
            `${source.origin}, width ${width}, ${a.precision}: velocity (${s.shape.join(", ")}) rms ${s.rms.toPrecision(4)} min ${s.min.toPrecision(4)} max ${s.max.toPrecision(4)}${s.nonFinite ? `, ${s.nonFinite} non-finite` : ""} in ${seconds.toFixed(2)} s${onKernels()}${a.out ? `; wrote ${a.out}` : ""}${profile ? `\n${formatProfile(profile)}` : ""}`,
            { model: source.origin, width, precision: a.precision, velocity: s, seconds, ...kernelsUsed(), out: a.out ?? null, ...(profile ? { profile } : {}) },
          );
        } finally {
          close();
        }
      },
    )
    .command(
      "sample [artifact]",
      "draw images: the float model (--preset/--checkpoint) or an artifact, with the engine of your choice",
      (y) =>
        samplerOptions(y)
          .positional("artifact", { type: "string", describe: "an emitted .onnx, .tflite or .mlpackage" })
          .option("seed", { type: "number", default: 0, describe: "noise seed of the first sample (sample i uses seed + i)" })
          .option("noise", { type: "string", describe: "instead of seeds: initial noise (N, C, H, W) from a file" })
          .option("engine", { choices: ["ditc", "onnxruntime", "litert"] as const, default: "ditc" as const, describe: "ditc's interpreter, or the real runtime of the artifact's format" })
          .option("decode", { type: "string", describe: "pixel-shuffle:R (the fixtures' lossless decoder); default pixel-shuffle by sqrt(latent channels)" })
          .option("decoder", { type: "string", describe: "a VAE decoder in ONNX (input: latents (N, C, H, W); output: images in [-1, 1])" })
          .option("precision", { choices: ["fp32", "fp16"] as const, default: "fp32" as const, describe: "float model: fp16 rounds every intermediate to half precision" })
          .option("out", { type: "string", demandOption: true, describe: "output folder: samples.png, latents.safetensors, sample.json" })
          .example("$0 sample --checkpoint fixtures/shapes-micro/model.safetensors --vocab fixtures/shapes-micro/vocab.safetensors --prompt \"circle large left\" --prompt \"square small center\" --out samples/", "the float model")
          .example("$0 sample out/w500/model.onnx --engine onnxruntime --vocab vocab.safetensors --prompt \"cross large top\" --out s/", "an artifact in onnxruntime"),
      async (a) => {
        if (a.decode !== undefined && a.decoder !== undefined) throw fail("usage", { detail: "give either --decode pixel-shuffle:R or --decoder VAE.onnx, not both." });
        if (a.noise !== undefined && argv.includes("--seed")) throw fail("usage", { detail: "give either --seed (ditc draws the noise) or --noise FILE, not both." });
        const spec = {
          ...(a.prompt ? { prompts: a.prompt.map(String) } : {}), ...(a.vocab !== undefined ? { vocab: a.vocab } : {}), ...(a.context !== undefined ? { context: a.context } : {}),
          steps: intArg("steps", a.steps, 1, MAX_STEPS), shift: Number(a.shift), seed: intArg("seed", a.seed, 0), ...(a.noise !== undefined ? { noise: a.noise } : {}),
          ...(a.decoder !== undefined ? { decode: { kind: "onnx" as const, path: a.decoder } } : a.decode !== undefined ? { decode: parseDecode(a.decode) } : {}),
        };
        const progress = progressView({ json, log: io.err, tty: io === defaultIo && process.stderr.isTTY === true });
        let engine: SampleEngine;
        let close = () => {};
        if (a.artifact !== undefined) {
          if (a.preset !== undefined || a.checkpoint !== undefined) throw fail("usage", { detail: "give either an artifact to sample or --preset/--checkpoint, not both." });
          engine = await artifactEngine(a.artifact, a.engine);
        } else {
          if (a.engine !== "ditc") throw fail("badOption", { option: "engine", value: a.engine, expected: "ditc for the float model (the runtimes run artifacts)" });
          const opened = openSamplerModel(a);
          close = opened.close;
          const latentSize = a.resolution !== undefined ? latentForResolution(a.resolution) : opened.source.config.latentSize;
          engine = irEngine(opened.source, widthArg(a.width), latentSize, a.precision);
        }
        try {
          const r = await runSample(engine, spec, a.out, progress.onProgress);
          progress.stop();
          const files = ["samples.png", "latents.safetensors", "sample.json"].map((f) => join(a.out, f));
          emit(`${r.record.model}: ${r.latents.shape[0]} samples, ${spec.steps} steps, ${r.record.timings.secondsPerStep.toFixed(3)} s per step; wrote ${files.join(", ")}`, { out: a.out, files, sample: r.record });
        } finally {
          await engine.close();
          close();
        }
      },
    )
    .command(
      "calibrate",
      "record the float model's sampling trajectories (latent, timestep, context at every step) as calibration inputs for compile --calibration",
      (y) =>
        samplerOptions(y)
          .option("samples", { type: "number", default: 1, describe: "trajectories per prompt (or context row), each from its own noise seed" })
          .option("seed", { type: "number", default: 1000, describe: "noise seed of the first trajectory (keep it apart from the seeds you evaluate with)" })
          .option("out", { type: "string", demandOption: true, describe: "CAL.safetensors to write" })
          .example("$0 calibrate --checkpoint fixtures/shapes-micro/model.safetensors --vocab fixtures/shapes-micro/vocab.safetensors --prompt \"circle large top\" --prompt \"cross small center\" --out cal.safetensors", "40 records: 2 prompts x 20 steps"),
      async (a) => {
        const opened = openSamplerModel(a);
        const progress = progressView({ json, log: io.err, tty: io === defaultIo && process.stderr.isTTY === true });
        try {
          const latentSize = a.resolution !== undefined ? latentForResolution(a.resolution) : opened.source.config.latentSize;
          const { set, record } = await recordTrajectories(opened.source, {
            ...(a.prompt ? { prompts: a.prompt.map(String) } : {}), ...(a.vocab !== undefined ? { vocab: a.vocab } : {}), ...(a.context !== undefined ? { context: a.context } : {}),
            steps: intArg("steps", a.steps, 1, MAX_STEPS), shift: Number(a.shift), seed: intArg("seed", a.seed, 0), samples: intArg("samples", a.samples, 1), width: widthArg(a.width), latentSize,
          }, progress.onProgress);
          writeCalibration(a.out, set, record);
          progress.stop();
          emit(`${a.out}: ${record.records} records (${record.seeds.length} trajectories x ${record.steps} steps)`, { out: a.out, ...record });
        } finally {
          opened.close();
        }
      },
    )
    .command(
      "compile",
      "lower the model for CoreML, TFLite and ONNX: DIR/w{375,500,1000}/model.* plus report.json and report.html",
      (y) =>
        modelOptions(y)
          .option("target", { type: "string", demandOption: true, describe: `comma-separated targets (${Object.keys(BACKENDS).join(", ")})` })
          .option("width", { type: "string", describe: "comma-separated widths (default: every width the model holds)" })
          .option("resolution", { type: "number", describe: "image resolution in pixels (latent = R/8)" })
          .option("precision", { choices: ["auto", "fp32", "fp16"] as const, default: "auto" as const, describe: "auto: fp16 for CoreML (it computes in fp16 on device), fp32 for ONNX and TFLite" })
          .option("quantize", { type: "string", default: "none", describe: "weight quantization: k-means palettes k4, k8, or mixed[:BITS] (8 bits for the layers the MSE probe finds most sensitive; default 4.3); int8 (per-channel, TFLite and ONNX); none" })
          .option("calibration", { type: "string", describe: "calibration inputs (ditc calibrate's CAL.safetensors): the probe and the activation statistics run on them" })
          .option("probe", { choices: ["layer", "model"] as const, describe: "--quantize mixed: rank layers by their own output's error (layer, default) or by the model's velocity error (model)" })
          .option("kmeans", { choices: ["plain", "weighted"] as const, describe: "palettes: plain k-means, or weighted by each input channel's E[x²] from calibration (default)" })
          .option("bias-correction", { choices: ["on", "off"] as const, describe: "palettes: fold (W − Ŵ)·E[x] into each layer's bias (default on)" })
          .option("lut-group-size", { type: "number", describe: "one palette per this many output channels (CoreML: --deployment iOS18); 0 = one per tensor (default)" })
          .option("external-data", { choices: ["auto", "always", "never"] as const, default: "auto" as const, describe: "where weights go: ONNX model.onnx.data, TFLite after the flatbuffer (Buffer.offset); auto: only past the 2 GiB format limits" })
          .option("deployment", { choices: ["iOS17", "iOS18"] as const, default: "iOS17" as const, describe: "CoreML deployment target: iOS17 (CoreML7) or iOS18 (CoreML8, the newer LUT form)" })
          .option("out", { type: "string", demandOption: true, describe: "output folder" })
          .option("sample", { type: "boolean", describe: "add samples and image PSNR to the report (on by default with --vocab or --context)" })
          .option("prompt", { type: "string", array: true, describe: "--sample: a prompt (repeat for several)" })
          .option("vocab", { type: "string", describe: "--sample: the prompts' embedding table" })
          .option("context", { type: "string", describe: "--sample: context (N, S, Dctx) instead of prompts" })
          .option("sample-steps", { type: "number", default: 20, describe: "--sample: Euler steps (1 to 1,000)" })
          .option("sample-seed", { type: "number", default: 0, describe: "--sample: noise seed of the first sample" })
          .option("decoder", { type: "string", describe: "--sample: a VAE decoder in ONNX (default: pixel shuffle)" })
          .example("$0 compile --preset mini --target onnx --width 0.5,1 --out out/", "two widths of the mini model as ONNX")
          .example("$0 compile --checkpoint fixtures/shapes-micro/model.safetensors --target onnx,tflite --vocab fixtures/shapes-micro/vocab.safetensors --prompt \"circle large left\" --out out/", "with samples and image PSNR in the report")
          .example("$0 compile --preset mini --target tflite --quantize int8 --out out/", "TFLite with int8 per-channel weights (LiteRT's fast path)"),
      async (a) => {
        const quantize = parseQuantize(a.quantize);
        const techniques = {
          ...(a.probe !== undefined ? { probe: a.probe } : {}), ...(a.kmeans !== undefined ? { kmeans: a.kmeans } : {}),
          ...(a.biasCorrection !== undefined ? { biasCorrection: a.biasCorrection === "on" } : {}), ...(a.lutGroupSize !== undefined ? { lutGroupSize: intArg("lut-group-size", a.lutGroupSize, 0) } : {}),
        };
        if (Object.keys(techniques).length && (quantize.mode === "none" || quantize.mode === "int8")) throw fail("usage", { detail: "--probe, --kmeans, --bias-correction and --lut-group-size shape k-means palettes: use them with --quantize k4, k8 or mixed." });
        if (a.probe !== undefined && quantize.mode !== "mixed") throw fail("usage", { detail: "--probe ranks layers for --quantize mixed; k4 and k8 give every layer the same bits." });
        if (a.calibration !== undefined && (quantize.mode === "none" || quantize.mode === "int8")) throw fail("usage", { detail: "--calibration feeds the probe and the activation statistics of k-means palettes: use it with --quantize k4, k8 or mixed." });
        const targets = a.target.split(",").map((t) => t.trim()).filter(Boolean);
        for (const t of targets) if (!BACKENDS[t]) throw fail("badOption", { option: "target", value: t, expected: oneOf(t, Object.keys(BACKENDS)) });
        const sampleSpec = a.sample ?? (a.vocab !== undefined || a.context !== undefined)
          ? {
            ...(a.prompt ? { prompts: a.prompt.map(String) } : {}), ...(a.vocab !== undefined ? { vocab: a.vocab } : {}), ...(a.context !== undefined ? { context: a.context } : {}),
            steps: intArg("sample-steps", a.sampleSteps, 1, MAX_STEPS), shift: 1, seed: intArg("sample-seed", a.sampleSeed, 0), ...(a.decoder !== undefined ? { decode: { kind: "onnx" as const, path: a.decoder } } : {}),
          }
          : undefined;
        const { source, close } = openSource(a);
        const progress = progressView({ json, log: io.err, tty: io === defaultIo && process.stderr.isTTY === true });
        try {
          if (sampleSpec) checkSampleSpec(sampleSpec, source.config);
          const widths = a.width !== undefined ? String(a.width).split(",").map((w) => widthArg(w.trim())) : source.config.widths;
          const ref: ModelRef = a.checkpoint !== undefined
            ? { checkpoint: resolve(a.checkpoint), ...(a.rename !== undefined ? { rename: resolve(a.rename) } : {}), ...(a.config !== undefined ? { configFile: resolve(a.config) } : {}), ...(a.allowUnused ? { allowUnused: true } : {}) }
            : { preset: a.preset!, seed: intArg("seed", a.seed, 0) };
          const { report, reportPath, timings, phases } = compile({
            source, ref, targets, widths, precision: a.precision, out: a.out, externalData: a.externalData, quantize, deployment: a.deployment, techniques,
            ...(a.calibration !== undefined ? { calibration: readTensorFile(a.calibration), calibrationFile: resolve(a.calibration) } : {}),
            ...(a.resolution !== undefined ? { latentSize: latentForResolution(a.resolution) } : {}),
            ...(progress.onProgress ? { onProgress: progress.onProgress } : {}),
          });
          if (sampleSpec) await addSamplesToReport(a.out, report, source, sampleSpec, progress.onProgress);
          progress.stop();
          const artifacts = report.artifacts.map((x) => ({ target: x.target, width: x.width, path: join(a.out, x.path), bytes: x.bytes }));
          const calibration = timings.map((t) => `w${t.width}: statistics ${t.statisticsSeconds} s, probe ${t.probeSeconds} s`);
          const p = phases;
          const where = `${p.totalSeconds.toFixed(1)} s: statistics ${p.statisticsSeconds.toFixed(1)}, probe ${p.probeSeconds.toFixed(1)}, lowering ${p.loweringSeconds.toFixed(1)}, writing ${p.writingSeconds.toFixed(1)} (of all phases: reading ${p.readSeconds.toFixed(1)}, k-means ${p.kmeansSeconds.toFixed(1)}, forwards ${p.forwardSeconds.toFixed(1)})`;
          emit(artifacts.map((x) => `${x.target} w${x.width}: ${x.path} (${(x.bytes / 2 ** 20).toFixed(1)} MiB)`).concat(calibration, where, `report: ${reportPath}`).join("\n"), { artifacts, report: reportPath, phases, ...(timings.length ? { quantizationTimings: timings } : {}) });
        } finally {
          close();
        }
      },
    )
    .command(
      "verify <dir>",
      "parity of every artifact in DIR: IR interpreter vs ditc's reader-interpreter vs the real runtime",
      (y) =>
        y
          .positional("dir", { type: "string", demandOption: true })
          .option("inputs", { type: "string", describe: "inputs .safetensors (default: seeded inputs at the compiled shapes)" })
          .example("$0 verify out/ --json", ""),
      async (a) => {
        const inputs = a.inputs !== undefined ? readTensorFile(a.inputs) : undefined;
        const progress = progressView({ json, log: io.err, tty: io === defaultIo && process.stderr.isTTY === true });
        const results = await verify(a.dir, inputs, progress.onProgress);
        progress.stop();
        const report = readReport(a.dir);
        writeFileAtomic(join(a.dir, "report.html"), (fd) => writeAll(fd, Buffer.from(renderReportHtml(report, results, a.dir))));
        const failed = results.filter((r) => !r.pass);
        emit(
          results.map((r) => `${r.pass ? "ok  " : "FAIL"} ${r.path} ${r.engine}: ${r.maxRelErr === null ? r.detail ?? "" : `max rel ${r.maxRelErr.toExponential(2)}, rel L2 ${r.relL2!.toExponential(2)}`}${r.error ? ` (${r.error})` : ""}`).join("\n"),
          { results },
        );
        if (failed.length) code = 1;
      },
    )
    .demandCommand(1, "name a command: init, inputs, inspect, run, sample, compile or verify (see --help)")
    .strict()
    .recommendCommands()
    .help()
    .version("version", "show ditc's version", DITC_VERSION)
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw fail("usage", { detail: `${unknownFlagHints(argv, cli) ?? msg} (see ditc --help)` });
    });

  try {
    await cli.parseAsync();
  } catch (e) {
    report(e);
  }
  return code;
}
