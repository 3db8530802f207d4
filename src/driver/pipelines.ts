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
import { buildPipeline, type Pipeline, type PipelineEntry, type ResolvedStep } from "../pipeline/pass.js";
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
 * so emitters meet each distinct array, and each computation on it, once. The target pipelines
 * have no CSE of their own before the precision pass: over the full preset's CoreML graph one
 * merged only ~250 of 45k nodes, and cost a walk and a verification per target and width.
 */
const FINAL: PipelineEntry[] = [{ pass: "dedupe-constants" }, { pass: "cse" }];

export function pipelinePasses(name: string, fp16 = false): string[] {
  const t = TARGET_PIPELINES[name];
  return name === "none" || !t ? [] : [...t.pipeline.entries.map((e) => e.pass), ...(fp16 ? [t.fp16.pass] : []), ...FINAL.map((e) => e.pass)];
}

type LoweringOptions = Omit<PipelineRunOptions, "legality"> & { fp16?: boolean; before?: PipelineEntry[] };

function targetPipeline(name: string): (typeof TARGET_PIPELINES)[string] {
  const t = TARGET_PIPELINES[name];
  if (!t) throw fail("badOption", { option: "pipeline", value: name, expected: oneOf(name, PIPELINE_NAMES) });
  return t;
}

function resolvedSteps(name: string, opts: LoweringOptions): ResolvedStep[] {
  const t = targetPipeline(name);
  return buildPipeline({ name, entries: [...(opts.before ?? []), ...t.pipeline.entries, ...(opts.fp16 ? [t.fp16] : []), ...FINAL] }, PASSES);
}

/** Runs the named pipeline ("none" returns the graph as built) with its legality check. */
export function applyPipeline(g: Graph, name: string, opts: LoweringOptions = {}): Graph {
  if (name === "none") return g;
  return runPipeline(g, resolvedSteps(name, opts), { ...opts, legality: { target: name, table: targetPipeline(name).legality } });
}

/**
 * Lowers one graph for several targets, running the passes their pipelines begin with once: the
 * palettize pass for all three, and with it TFLite's and ONNX's attention lowering. Two steps are
 * the same when their pass and options are: plain values compared by value, anything else (the
 * palettize pass' shared clusterings, statistics) by identity. Graphs are immutable, so the later
 * pipelines continue from the graph the first left after the shared steps, which is kept only
 * while a target still to be lowered begins with them. `lower(name)` takes the targets in any order.
 */
export function sharedPrefixLowering(g: Graph, requests: Record<string, LoweringOptions>): { lower(name: string): Graph } {
  const steps = new Map(Object.entries(requests).map(([name, o]) => [name, resolvedSteps(name, o)]));
  const ids = new Map<object, number>();
  const stepKey = (s: ResolvedStep) =>
    `${s.pass.name} ${JSON.stringify(s.options, (_, v: unknown) => {
      if (typeof v !== "object" || v === null || Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype) return v;
      if (!ids.has(v)) ids.set(v, ids.size);
      return `#object ${ids.get(v)}`;
    })}`;
  // a prefix's key: its steps' numbers (a step's own key can be long: the palettize pass'
  // options name every layer's bits, and each later prefix would repeat them)
  const stepNumbers = new Map<string, number>();
  const prefixKeys = new Map([...steps].map(([name, list]) => {
    let key = "";
    return [name, list.map((s) => {
      const k = stepKey(s);
      if (!stepNumbers.has(k)) stepNumbers.set(k, stepNumbers.size);
      return (key += ` ${stepNumbers.get(k)}`);
    })];
  }));
  const pending = new Set(steps.keys());
  const kept = new Map<string, Graph>();
  return {
    lower(name) {
      const list = steps.get(name), keys = prefixKeys.get(name);
      if (!list || !keys || !pending.delete(name)) throw new Error(`sharedPrefixLowering: ${name} was not requested, or is lowered already`);
      const wanted = new Set([...pending].flatMap((other) => prefixKeys.get(other)!));
      let start = keys.length;
      while (start > 0 && !kept.has(keys[start - 1]!)) start--;
      let at = start;
      const from = start > 0 ? kept.get(keys[start - 1]!)! : g;
      const onPass = requests[name]!.onPass;
      const out = runPipeline(from, list.slice(start), {
        ...requests[name],
        legality: { target: name, table: targetPipeline(name).legality },
        onPass: (pass, seconds, graph) => {
          if (wanted.has(keys[at]!)) kept.set(keys[at]!, graph);
          at++;
          onPass?.(pass, seconds, graph);
        },
      });
      // what is left to lower continues from its longest kept prefix; nothing shorter is needed
      const longest = new Set([...pending].map((other) => [...prefixKeys.get(other)!].reverse().find((k) => kept.has(k))));
      for (const k of [...kept.keys()]) if (!longest.has(k)) kept.delete(k);
      return out;
    },
  };
}
