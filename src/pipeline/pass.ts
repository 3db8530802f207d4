// Passes and pipelines. A pass is a named graph transformation that states the facts it needs
// and the facts it establishes; a pipeline is an ordered list of pass names with options, and
// building one fails if a pass needs a fact no earlier pass ensures. Running a pipeline verifies
// the graph after every pass, optionally runs the interpreter before and after each pass, and
// ends with the target's legality check.
import { fail } from "../diagnostics.js";
import type { Graph } from "../ir/graph.js";

/** Facts passes establish about the graph. */
export type Fact =
  | "assa:lowered"
  | "bna:unrolled"
  | "rope:lowered"
  | "qknorm:lowered"
  | "attention:lowered"
  | "layout:nchw"
  | "layout:nhwc"
  | "transposes:eliminated";

export interface Pass<O = Record<string, unknown>> {
  readonly name: string;
  /** one sentence, shown by `ditc inspect --pipeline` and in reports */
  readonly summary: string;
  readonly requires: readonly Fact[];
  readonly ensures: readonly Fact[];
  /** default options; a pipeline entry may override any of them, and only them */
  readonly defaults: O;
  run(g: Graph, options: O, log?: (line: string) => void): Graph;
}

export function definePass<O>(p: Pass<O>): Pass<O> {
  return p;
}

export interface PipelineEntry {
  pass: string;
  options?: Record<string, unknown>;
}

export interface Pipeline {
  readonly name: string;
  readonly entries: readonly PipelineEntry[];
}

export interface ResolvedStep {
  pass: Pass<Record<string, unknown>>;
  options: Record<string, unknown>;
}

/** Resolves pass names and options and checks every pass's requirements are met in order. */
export function buildPipeline(p: Pipeline, registry: ReadonlyMap<string, Pass<any>>): ResolvedStep[] {
  const have = new Set<Fact>();
  return p.entries.map((e, i) => {
    const pass = registry.get(e.pass);
    if (!pass) throw fail("badOption", { option: "pipeline", value: `${p.name} (entry ${i}: "${e.pass}")`, expected: `known passes: ${[...registry.keys()].join(", ")}` });
    for (const k of Object.keys(e.options ?? {}))
      if (!Object.hasOwn(pass.defaults, k)) throw fail("usage", { detail: `pipeline ${p.name}: pass ${pass.name} has no option "${k}" (options: ${Object.keys(pass.defaults).join(", ") || "none"}).` });
    for (const f of pass.requires)
      if (!have.has(f)) throw fail("usage", { detail: `pipeline ${p.name}: pass ${pass.name} requires "${f}", which no earlier pass ensures.` });
    for (const f of pass.ensures) have.add(f);
    return { pass, options: { ...pass.defaults, ...(e.options ?? {}) } };
  });
}
