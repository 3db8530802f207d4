// The `ditc` command line (DESIGN §5). Each command parses flags, calls the driver, and prints
// either a short human summary or, with --json, exactly one JSON document on stdout.
// Exit codes: 0 ok, 1 a check failed, 2 bad input or usage; stack traces only with --debug.
import yargs, { type Argv } from "yargs";
import { DitcError, fail } from "../diagnostics.js";
import { readTensorFile, writeTensorFile } from "../checkpoint/tensors.js";
import { openSource } from "../driver/source.js";
import { syntheticInputs, writeInputs, writeSyntheticCheckpoint } from "../driver/init.js";
import { inspectReport } from "../driver/inspect.js";
import { runFloatModel, summarize } from "../driver/run.js";
import { printGraph } from "../ir/print.js";
import { verifyGraph } from "../ir/verify.js";
import { buildModel, latentForResolution } from "../model/build.js";
import { applyPipeline, PIPELINE_NAMES, pipelinePasses } from "../driver/pipelines.js";
import { parseWidth, presetConfig, PRESET_NAMES, WIDTHS, type Width } from "../model/config.js";

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s + "\n"), err: (s) => process.stderr.write(s + "\n") };


function widthArg(v: unknown): Width {
  const w = parseWidth(String(v));
  if (w === undefined) throw fail("badOption", { option: "width", value: String(v), expected: `one of ${WIDTHS.join(", ")}` });
  return w;
}

function intArg(name: string, v: unknown, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw fail("badOption", { option: name, value: String(v), expected: `an integer >= ${min}` });
  return n;
}

const modelOptions = (y: Argv) =>
  y
    .option("preset", { type: "string", describe: `built-in model with synthetic weights (${PRESET_NAMES.join(", ")})` })
    .option("seed", { type: "number", default: 0, describe: "seed of the synthetic weights" })
    .option("checkpoint", { type: "string", describe: "supernetwork checkpoint (.safetensors with the config in __metadata__)" });

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const json = argv.includes("--json");
  const debug = argv.includes("--debug");
  let code = 0;
  const report = (e: unknown) => {
    if (e instanceof DitcError) {
      code = e.exitCode;
      io.err(`ditc: ${e.message}`);
      if (json) io.out(JSON.stringify({ error: { code: e.code, message: e.message } }));
    } else {
      code = 70;
      io.err(`ditc: internal error: ${(e as Error)?.message ?? String(e)}${debug ? "" : " (run with --debug for a stack trace, and please report it)"}`);
    }
    if (debug && e instanceof Error && e.stack) io.err(e.stack);
  };
  const emit = (human: string, doc: unknown) => io.out(json ? JSON.stringify(doc, null, 2) : human);

  const cli = yargs(argv)
    .scriptName("ditc")
    .usage("$0 <command> [options]\n\nCompiles the SnapGen++ diffusion transformer for CoreML, TFLite and ONNX.")
    .option("json", { type: "boolean", describe: "print one JSON document on stdout and nothing else" })
    .option("debug", { type: "boolean", describe: "print stack traces on errors" })
    .command(
      "init",
      "write a seeded synthetic supernetwork checkpoint (all widths)",
      (y) =>
        y
          .option("preset", { type: "string", demandOption: true, describe: `one of ${PRESET_NAMES.join(", ")}` })
          .option("seed", { type: "number", default: 0 })
          .option("dtype", { choices: ["f32", "f16"] as const, default: "f32" as const, describe: "storage dtype of the weights" })
          .option("out", { type: "string", demandOption: true, describe: "output .safetensors path" })
          .example("$0 init --preset mini --seed 1 --out mini.safetensors", "a mini checkpoint"),
      (a) => {
        const config = presetConfig(a.preset);
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
        if (!PIPELINE_NAMES.includes(a.pipeline)) throw fail("badOption", { option: "pipeline", value: a.pipeline, expected: `one of ${PIPELINE_NAMES.join(", ")}` });
        const printAfter = a.printAfter ? String(a.printAfter).split(",") : [];
        for (const p of printAfter)
          if (!pipelinePasses(a.pipeline).includes(p)) throw fail("badOption", { option: "print-after", value: p, expected: `a pass of pipeline ${a.pipeline}: ${pipelinePasses(a.pipeline).join(", ") || "(none)"}` });
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
          const r = { ...inspectReport(source.config, graph, width, a.pipeline, model.latentSize), passes: pipelinePasses(a.pipeline) };
          const human = [
            `model: ${source.origin}, width ${width}, latent ${r.latentSize.join("x")}, pipeline ${r.pipeline}`,
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
          .example("$0 run --preset mini", "run the mini model on seeded inputs")
          .example("$0 run --checkpoint ck.safetensors --width 0.5 --inputs in.safetensors --out out.safetensors", ""),
      (a) => {
        if (a.artifact !== undefined)
          throw fail("usage", { detail: `cannot run ${a.artifact}: no reader-interpreter for that format is built in yet; run the float model with --preset or --checkpoint.` });
        const { source, close } = openSource(a);
        try {
          const width = widthArg(a.width);
          const c = source.config;
          const inputs = a.inputs !== undefined ? readTensorFile(a.inputs) : syntheticInputs(c, 0, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
          const t0 = performance.now();
          const velocity = runFloatModel(source, width, inputs, a.precision);
          const seconds = (performance.now() - t0) / 1000;
          if (a.out !== undefined) writeTensorFile(a.out, { velocity });
          const s = summarize(velocity);
          emit(
            `${source.origin}, width ${width}, ${a.precision}: velocity (${s.shape.join(", ")}) rms ${s.rms.toPrecision(4)} min ${s.min.toPrecision(4)} max ${s.max.toPrecision(4)}${s.nonFinite ? `, ${s.nonFinite} non-finite` : ""} in ${seconds.toFixed(2)} s${a.out ? `; wrote ${a.out}` : ""}`,
            { model: source.origin, width, precision: a.precision, velocity: s, seconds, out: a.out ?? null },
          );
        } finally {
          close();
        }
      },
    )
    .demandCommand(1, "name a command: init, inputs, inspect or run (see --help)")
    .strict()
    .recommendCommands()
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      throw err ?? fail("usage", { detail: `${msg} (see ditc --help)` });
    });

  try {
    await cli.parseAsync();
  } catch (e) {
    report(e);
  }
  return code;
}
