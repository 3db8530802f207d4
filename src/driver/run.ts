// `ditc run` on the float model: build the width-w graph and interpret it.
import { fail } from "../diagnostics.js";
import { runGraph, type Precision } from "../interp/interpreter.js";
import type { FloatTensor, Tensor } from "../kernels/tensor.js";
import { buildModel } from "../model/build.js";
import type { Width } from "../model/config.js";
import type { WeightSource } from "../model/weights.js";
import { verifyGraph } from "../ir/verify.js";
import type { Graph } from "../ir/graph.js";
import { BACKENDS } from "./pipelines.js";
import { nodeProgress, type ProgressFn } from "./progress.js";
import { bothOnNode, nodeProfiler, type RunProfile } from "../interp/profile.js";

export interface TensorSummary {
  shape: number[];
  min: number;
  max: number;
  mean: number;
  rms: number;
  nonFinite: number;
}

export function summarize(t: FloatTensor): TensorSummary {
  let min = Infinity, max = -Infinity, sum = 0, sq = 0, nonFinite = 0;
  for (const v of t.data) {
    if (!Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    sq += v * v;
  }
  const n = t.data.length - nonFinite;
  return { shape: [...t.shape], min, max, mean: n ? sum / n : NaN, rms: n ? Math.sqrt(sq / n) : NaN, nonFinite };
}

/** `profile`: receives where the forward's time went, node by node (src/interp/profile.ts). */
export type ProfileFn = (p: RunProfile) => void;

/** Interprets `g`, reporting progress node by node as `step` and, when asked, a profile. */
export function interpret(g: Graph, inputs: Record<string, Tensor>, step: string, o: { precision?: Precision; onProgress?: ProgressFn; profile?: ProfileFn } = {}): Record<string, Tensor> {
  const profiler = o.profile ? nodeProfiler(g) : undefined;
  const onNode = bothOnNode(nodeProgress(step, g.nodes.length, o.onProgress), profiler?.onNode);
  const out = runGraph(g, inputs, { ...(o.precision ? { precision: o.precision } : {}), ...(onNode ? { onNode } : {}), ...(profiler ? { onConstant: profiler.onConstant } : {}) });
  if (profiler) o.profile!(profiler.profile());
  return out;
}

/** Runs the IR interpreter on inputs whose shapes set the batch, resolution and text length. */
export function runFloatModel(src: WeightSource, width: Width, inputs: Record<string, FloatTensor>, precision: Precision = "fp32", onProgress?: ProgressFn, profile?: ProfileFn): FloatTensor {
  const latent = inputs.latent, context = inputs.context;
  if (!latent || latent.shape.length !== 4) throw fail("inputTensor", { file: "inputs", tensor: "latent", problem: `must be (B, C, H, W), got ${latent ? `(${latent.shape.join(", ")})` : "nothing"}` });
  if (!context || context.shape.length !== 3) throw fail("inputTensor", { file: "inputs", tensor: "context", problem: `must be (B, S, Dctx), got ${context ? `(${context.shape.join(", ")})` : "nothing"}` });
  const model = buildModel(src, { width, batch: latent.shape[0]!, latentSize: [latent.shape[2]!, latent.shape[3]!], contextTokens: context.shape[1]! });
  verifyGraph(model.graph);
  return interpret(model.graph, inputs, `forward, width ${width}`, { precision, onProgress, profile }).velocity as FloatTensor;
}

/** Runs an emitted artifact with ditc's own reader-interpreter for its format. */
export function runArtifact(path: string, inputs: Record<string, FloatTensor>, precision: Precision = "fp32", onProgress?: ProgressFn, profile?: ProfileFn): FloatTensor {
  const backend = Object.values(BACKENDS).find((b) => path.replace(/[\\/]+$/, "").endsWith(extensionOf(b.artifact)));
  if (!backend) throw fail("usage", { detail: `cannot run ${path}: ditc reads ${Object.values(BACKENDS).map((b) => extensionOf(b.artifact)).join(", ")} files.` });
  const { graph, close } = backend.read(path);
  try {
    const out = interpret(graph, inputs, `forward, ${path}`, { precision, onProgress, profile });
    const v = out.velocity ?? Object.values(out)[0];
    return v as FloatTensor;
  } finally {
    close();
  }
}

function extensionOf(artifact: string): string {
  return artifact.slice(artifact.lastIndexOf("."));
}
