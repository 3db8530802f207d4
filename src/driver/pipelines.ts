// The named pipelines `--pipeline` accepts, each with the legality table of its target.
import { PASSES } from "../../passes/index.js";
import { coremlLegality } from "../../targets/coreml/legality.js";
import { coremlPipeline } from "../../targets/coreml/pipeline.js";
import { onnxTarget } from "../../targets/onnx/index.js";
import { coremlTarget } from "../../targets/coreml/index.js";
import { tfliteTarget } from "../../targets/tflite/index.js";
import { tfliteLegality } from "../../targets/tflite/legality.js";
import { tfliteFp16, tflitePipeline } from "../../targets/tflite/pipeline.js";
import type { TargetBackend } from "../pipeline/target.js";
import { fail, oneOf } from "../diagnostics.js";
import type { Graph } from "../ir/graph.js";
import type { Legality } from "../pipeline/legality.js";
import { buildPipeline, type Pipeline, type PipelineEntry } from "../pipeline/pass.js";
import { runPipeline, type PipelineRunOptions } from "../pipeline/run.js";

/** Each target's pipeline, legality table, and what fp16 means there (the pass appended for it). */
export const TARGET_PIPELINES: Record<string, { pipeline: Pipeline; legality: Legality; fp16: PipelineEntry }> = {
  coreml: { pipeline: coremlPipeline, legality: coremlLegality, fp16: { pass: "precision-fp16" } },
  tflite: { pipeline: tflitePipeline, legality: tfliteLegality, fp16: tfliteFp16 },
  onnx: { pipeline: onnxTarget.pipeline, legality: onnxTarget.legality, fp16: { pass: "precision-fp16" } },
};

/** Backends that emit files. */
export const BACKENDS: Record<string, TargetBackend> = { coreml: coremlTarget, tflite: tfliteTarget, onnx: onnxTarget };

export const PIPELINE_NAMES = ["none", ...Object.keys(TARGET_PIPELINES)];

/**
 * Every pipeline ends with these, after the precision pass: equal constants become one (passes
 * that fold a reshape into a constant make a new one per use), then CSE merges what they feed,
 * so emitters meet each distinct array, and each computation on it, once.
 */
const FINAL: PipelineEntry[] = [{ pass: "dedupe-constants" }, { pass: "cse" }];

export function pipelinePasses(name: string, fp16 = false): string[] {
  const t = TARGET_PIPELINES[name];
  return name === "none" || !t ? [] : [...t.pipeline.entries.map((e) => e.pass), ...(fp16 ? [t.fp16.pass] : []), ...FINAL.map((e) => e.pass)];
}

/** Runs the named pipeline ("none" returns the graph as built) with its legality check. */
export function applyPipeline(g: Graph, name: string, opts: Omit<PipelineRunOptions, "legality"> & { fp16?: boolean; before?: PipelineEntry[] } = {}): Graph {
  if (name === "none") return g;
  const t = TARGET_PIPELINES[name];
  if (!t) throw fail("badOption", { option: "pipeline", value: name, expected: oneOf(name, PIPELINE_NAMES) });
  const entries = [...(opts.before ?? []), ...t.pipeline.entries, ...(opts.fp16 ? [t.fp16] : []), ...FINAL];
  return runPipeline(g, buildPipeline({ name, entries }, PASSES), { ...opts, legality: { target: name, table: t.legality } });
}
