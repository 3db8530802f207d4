// `ditc run` on the float model: build the width-w graph and interpret it.
import { fail } from "../diagnostics.js";
import { runGraph, type Precision } from "../interp/interpreter.js";
import type { FloatTensor } from "../kernels/tensor.js";
import { buildModel } from "../model/build.js";
import type { Width } from "../model/config.js";
import type { WeightSource } from "../model/weights.js";
import { verifyGraph } from "../ir/verify.js";
import { BACKENDS } from "./pipelines.js";
import { nodeProgress, type ProgressFn } from "./progress.js";

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

/** Runs the IR interpreter on inputs whose shapes set the batch, resolution and text length. */
export function runFloatModel(src: WeightSource, width: Width, inputs: Record<string, FloatTensor>, precision: Precision = "fp32", onProgress?: ProgressFn): FloatTensor {
  const latent = inputs.latent, context = inputs.context;
  if (!latent || latent.shape.length !== 4) throw fail("inputTensor", { file: "inputs", tensor: "latent", problem: `must be (B, C, H, W), got ${latent ? `(${latent.shape.join(", ")})` : "nothing"}` });
  if (!context || context.shape.length !== 3) throw fail("inputTensor", { file: "inputs", tensor: "context", problem: `must be (B, S, Dctx), got ${context ? `(${context.shape.join(", ")})` : "nothing"}` });
  const model = buildModel(src, { width, batch: latent.shape[0]!, latentSize: [latent.shape[2]!, latent.shape[3]!], contextTokens: context.shape[1]! });
  verifyGraph(model.graph);
  const onNode = nodeProgress(`forward, width ${width}`, model.graph.nodes.length, onProgress);
  return runGraph(model.graph, inputs, { precision, ...(onNode ? { onNode } : {}) }).velocity as FloatTensor;
}

/** Runs an emitted artifact with ditc's own reader-interpreter for its format. */
export function runArtifact(path: string, inputs: Record<string, FloatTensor>, precision: Precision = "fp32", onProgress?: ProgressFn): FloatTensor {
  const backend = Object.values(BACKENDS).find((b) => path.replace(/[\\/]+$/, "").endsWith(extensionOf(b.artifact)));
  if (!backend) throw fail("usage", { detail: `cannot run ${path}: ditc reads ${Object.values(BACKENDS).map((b) => extensionOf(b.artifact)).join(", ")} files.` });
  const { graph, close } = backend.read(path);
  try {
    const onNode = nodeProgress(`forward, ${path}`, graph.nodes.length, onProgress);
    const out = runGraph(graph, inputs, { precision, ...(onNode ? { onNode } : {}) });
    const v = out.velocity ?? Object.values(out)[0];
    return v as FloatTensor;
  } finally {
    close();
  }
}

function extensionOf(artifact: string): string {
  return artifact.slice(artifact.lastIndexOf("."));
}
