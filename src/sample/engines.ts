// What computes the velocity at each sampling step: ditc's IR interpreter on the float model,
// ditc's reader-interpreter on an artifact, or the real runtime for the artifact's format
// (onnxruntime-node for .onnx, LiteRT for .tflite). Each is opened once and called per step.
import { fail } from "../diagnostics.js";
import { BACKENDS } from "../driver/pipelines.js";
import type { Graph } from "../ir/graph.js";
import { runGraph, type Precision } from "../interp/interpreter.js";
import type { FloatTensor } from "../kernels/tensor.js";
import { buildModel } from "../model/build.js";
import type { Width } from "../model/config.js";
import { paramSpecs } from "../model/params.js";
import type { WeightSource } from "../model/weights.js";
import { openOrtSession } from "../../targets/onnx/ort.js";
import { LiteRtProcess } from "../../targets/tflite/litert.js";
import type { VelocityFn } from "./sampler.js";

export type EngineName = "ditc" | "onnxruntime" | "litert";
export const ENGINES: readonly EngineName[] = ["ditc", "onnxruntime", "litert"];

export interface SampleEngine {
  readonly name: EngineName;
  /** what runs: "IR interpreter, width 0.5" or the artifact's path */
  readonly what: string;
  /** the batch one call takes: 0 = any (the IR interpreter builds the graph it needs) */
  readonly batch: number;
  /** latent (C, H, W), context (S, Dctx) the model takes */
  readonly latent: [number, number, number];
  readonly context: [number, number];
  velocity: VelocityFn;
  close(): Promise<void> | void;
}

/** Keeps every weight once read (float32), when the model's weights fit in `limitBytes`. */
function cacheWeights(src: WeightSource, limitBytes = 2 ** 30): WeightSource {
  const bytes = paramSpecs(src.config).reduce((s, p) => s + 4 * p.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes > limitBytes) return src;
  const cache = new Map<string, Float32Array>();
  return { ...src, read: (s) => cache.get(s.name) ?? (cache.set(s.name, src.read(s)), cache.get(s.name)!) };
}

/** The float model (or fp16 mode) in ditc's IR interpreter, at any batch. */
export function irEngine(source: WeightSource, width: Width, latentSize: [number, number], precision: Precision = "fp32"): SampleEngine {
  const c = source.config;
  const cached = cacheWeights(source);
  const graphs = new Map<number, Graph>();
  return {
    name: "ditc",
    what: `${source.origin}, width ${width}, IR interpreter${precision === "fp16" ? " (fp16)" : ""}`,
    batch: 0,
    latent: [c.latentChannels, latentSize[0], latentSize[1]],
    context: [c.contextTokens, c.contextDim],
    velocity: (latent, timestep, context) => {
      const B = latent.shape[0]!;
      let g = graphs.get(B);
      if (!g) graphs.set(B, (g = buildModel(cached, { width, batch: B, latentSize, contextTokens: c.contextTokens }).graph));
      return runGraph(g, { latent, timestep, context }, { precision }).velocity as FloatTensor;
    },
    close: () => {},
  };
}

/** Which format an artifact path is, by its ending. */
export function artifactTarget(path: string): string {
  const p = path.replace(/[\\/]+$/, "");
  const t = Object.entries(BACKENDS).find(([, b]) => p.endsWith(b.artifact.slice(b.artifact.lastIndexOf("."))));
  if (!t) throw fail("usage", { detail: `cannot sample ${path}: ditc samples .onnx, .tflite and .mlpackage artifacts.` });
  return t[0];
}

/** An artifact run by ditc's reader-interpreter or by its format's real runtime. */
export async function artifactEngine(path: string, engine: EngineName): Promise<SampleEngine> {
  const target = artifactTarget(path);
  const backend = BACKENDS[target]!;
  const read = backend.read(path);
  const input = (name: string) => read.graph.inputs.find((v) => v.name === name)?.type.shape;
  const latent = input("latent"), context = input("context");
  if (!latent || latent.length !== 4 || !context || context.length !== 3) {
    read.close();
    throw fail("modelInvalid", { file: path, where: "the model's inputs", problem: "are not latent (B, C, H, W), timestep (B) and context (B, S, Dctx)" });
  }
  const shape = { batch: latent[0]!, latent: [latent[1]!, latent[2]!, latent[3]!] as [number, number, number], context: [context[1]!, context[2]!] as [number, number] };
  if (engine === "ditc") {
    // the file's constants are read once for all steps when they fit in memory comfortably
    const constBytes = read.graph.nodes.reduce((n, x) => n + (x.kind === "const" ? 4 * x.outputs[0]!.type.shape.reduce((a, d) => a * d, 1) : 0), 0);
    const constants = constBytes <= 2 ** 30 ? new Map() : undefined;
    return {
      name: "ditc", what: `${path} (ditc reader-interpreter)`, ...shape,
      velocity: (l, t, c) => runGraph(read.graph, { latent: l, timestep: t, context: c }, constants ? { constants } : {}).velocity as FloatTensor,
      close: () => (constants?.clear(), read.close()),
    };
  }
  read.close();
  if (engine === "onnxruntime") {
    if (target !== "onnx") throw fail("badOption", { option: "engine", value: engine, expected: `ditc for a ${target} artifact (onnxruntime runs .onnx files)` });
    const s = await openOrtSession(path);
    return { name: engine, what: `${path} (onnxruntime-node)`, ...shape, velocity: async (l, t, c) => (await s.run({ latent: l, timestep: t, context: c })).velocity!, close: () => s.release() };
  }
  if (target !== "tflite") throw fail("badOption", { option: "engine", value: engine, expected: `ditc for a ${target} artifact (LiteRT runs .tflite files)` });
  const p = new LiteRtProcess();
  return {
    name: engine, what: `${path} (LiteRT)`, ...shape,
    velocity: async (l, t, c) => {
      const r = await p.run(path, { latent: l, timestep: t, context: c }, 0, true);
      if (r.errors.length) throw new Error(`LiteRT reported: ${r.errors[0]}`);
      return r.outputs.velocity ?? Object.values(r.outputs)[0]!;
    },
    close: () => p.close(),
  };
}
