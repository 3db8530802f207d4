// The rewrite driver every pass is built on. A rule names the op kinds it roots at, a pure
// `match` (true, or a short reason it does not apply) and a `rewrite` that builds replacement
// values with a builder; only the driver edits the graph. It walks the graph in order, rebuilding
// it into a fresh node list, remaps uses, checks that every replacement keeps its value's type,
// removes dead nodes, and (greedy mode) walks again until no rule fires. In greedy mode the nodes
// a rewrite builds are matched again at once (as MLIR's greedy driver puts them back on its
// worklist), so a chain of rewrites finishes in one walk.
import { fail } from "../diagnostics.js";
import { GraphBuilder } from "./builder.js";
import { sameType, typeStr, withOperands, type Graph, type Node, type Value } from "./graph.js";
import type { OpKind } from "../ops/index.js";

export interface RewriteContext {
  /** appends to the graph being built, in the scope of the node being rewritten */
  readonly b: GraphBuilder;
  /** the node producing a value in the graph being built (undefined for graph inputs) */
  producer(v: Value): Node | undefined;
  /**
   * how many nodes of the *input* graph read a value (before this walk); -1 (unknown) while the
   * walk matches nodes a rewrite just built: a rule that needs the count waits for the next walk
   */
  useCount(v: Value): number;
}

/** The node union narrowed to some kinds (distributes over K, unlike NodeOf<K>). */
export type NodeOfKind<K extends OpKind> = Extract<Node, { kind: K }>;

export interface Rule<K extends OpKind = OpKind> {
  readonly name: string;
  readonly kinds: readonly K[];
  match(node: NodeOfKind<K>, ctx: RewriteContext): true | string | false;
  rewrite(node: NodeOfKind<K>, ctx: RewriteContext): Value | readonly Value[];
}

export function rule<K extends OpKind>(name: string, kinds: K | readonly K[], body: Omit<Rule<K>, "name" | "kinds">): Rule {
  return { name, kinds: typeof kinds === "string" ? [kinds] : kinds, ...body } as unknown as Rule;
}

export interface RewriteOptions {
  /** the pass name, for messages */
  pass: string;
  /** "greedy": walk until nothing fires; "once": one walk */
  mode?: "greedy" | "once";
  maxWalks?: number;
  /** receives every rule application and, with debug, every refusal reason */
  log?: (line: string) => void;
}

export interface RewriteResult {
  graph: Graph;
  fired: Record<string, number>;
  /** walks over the graph, the last one finding nothing to rewrite (greedy mode) */
  walks: number;
}

/** The largest value id in `g` (-1 when it has none); a pass numbers its new values above it. */
export function maxValueId(g: Graph): number {
  let m = -1;
  for (const v of g.inputs) m = Math.max(m, v.id);
  const nodes = g.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const outs = nodes[i]!.outputs;
    for (let j = 0; j < outs.length; j++) m = Math.max(m, outs[j]!.id);
  }
  return m;
}

// Per-value tables of a walk are indexed by value id, not keyed by the value: the verifier, run
// after every pass, holds ids to distinct non-negative integers, and on 60k-node graphs an array
// lookup is several times faster than a Map's (these tables were a third of lowering's time).

/** The rules rooted at each op kind, in their given order. */
function rulesByKind(rules: readonly Rule[]): Map<string, Rule[]> {
  const m = new Map<string, Rule[]>();
  for (const r of rules) for (const k of r.kinds) m.set(k, [...(m.get(k) ?? []), r]);
  return m;
}

/**
 * A bound on each graph's value ids, once known (a walk's builder knows it for the graph it built;
 * others are scanned once): the next walk over the graph need not scan for its largest id.
 * Graphs are immutable, so the bound stays true.
 */
const idBounds = new WeakMap<Graph, number>();
function idBound(g: Graph): number {
  let b = idBounds.get(g);
  if (b === undefined) idBounds.set(g, (b = maxValueId(g) + 1));
  return b;
}

/**
 * In one scan (each a chain of loads per node on a 60k-node graph): how many nodes (and graph
 * outputs) read each value, and the node producing it (a sparse array: graph inputs and unused ids
 * have none), by id; `size` exceeds every id.
 */
function useTables(g: Graph, size: number): { uses: Int32Array; producer: (Node | undefined)[] } {
  const uses = new Int32Array(size), producer = new Array<Node | undefined>(size);
  const nodes = g.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!, ins = n.inputs, outs = n.outputs;
    for (let j = 0; j < ins.length; j++) uses[ins[j]!.id]++;
    for (let j = 0; j < outs.length; j++) producer[outs[j]!.id] = n;
  }
  for (const o of g.outputs) uses[o.id]++;
  return { uses, producer };
}

/**
 * The index of the first node some rule matches, or -1: a walk rewrites nothing before it (the
 * graph it builds is this one until its first rewrite, so the answers are the walk's own), and
 * greedy rewriting always ends with a walk that rewrites nothing. The refusal reasons of the nodes
 * before it go to the log here.
 */
function firstMatch(g: Graph, byKind: Map<string, Rule[]>, ctx: Omit<RewriteContext, "b">, opts: RewriteOptions): number {
  const matchCtx: RewriteContext = {
    get b(): GraphBuilder {
      throw new Error(`internal: pass ${opts.pass}: a rule's match used the builder`);
    },
    producer: ctx.producer,
    useCount: ctx.useCount,
  };
  for (let i = 0; i < g.nodes.length; i++) {
    const node = g.nodes[i]!, rules = byKind.get(node.kind);
    if (!rules) continue;
    const refusals: string[] | undefined = opts.log ? [] : undefined;
    for (const r of rules) {
      const m = r.match(node as never, matchCtx);
      if (m === true) return i; // the walk matches this node again, and logs its refusals then
      if (typeof m === "string") refusals?.push(`${r.name}: skip ${node.kind}${node.scope ? ` in ${node.scope}` : ""}: ${m}`);
    }
    if (refusals) for (const line of refusals) opts.log?.(line);
  }
  return -1;
}

/** How deep a walk follows rewrites of what rewrites built (a chain of up to nine rewrites a walk); deeper ones wait for the next walk. */
const REVISIT_DEPTH = 8;

/** One walk; `deadFree`: the graph has no dead nodes (it came out of a walk). */
function walk(g: Graph, byKind: Map<string, Rule[]>, opts: RewriteOptions, fired: Record<string, number>, deadFree: boolean): { graph: Graph; changed: boolean } {
  const size = idBound(g);
  // the producers of the graph as it stands are those of the graph built, up to the first rewrite
  const { uses, producer } = useTables(g, size);
  const lookups = { producer: (v: Value) => producer[v.id], useCount: (v: Value) => (v.id < size ? uses[v.id]! : 0) };
  const first = firstMatch(g, byKind, lookups, opts);
  if (first < 0) return { graph: deadFree ? g : removeDeadNodes(g, size), changed: false };
  const b = new GraphBuilder(size);
  const map = new Map<Value, Value>();
  const ctx: RewriteContext = { b, ...lookups };
  // what a rewrite built is visited again at once (greedy mode), so a chain of rewrites (a gather
  // sinking through a reshape into a weight's rows) completes in this walk, not one walk a step;
  // counts of uses then are unknown (-1): the input graph's no longer hold there
  const revisitCtx: RewriteContext = { b, producer: lookups.producer, useCount: () => -1 };
  const revisits = opts.mode !== "once";
  // a replaced value's replacement, itself replaced when a revisit rewrote its producer
  const remap = (v: Value) => {
    let to = map.get(v);
    if (to === undefined) return v;
    for (let next = map.get(to), steps = 0; next !== undefined; next = map.get(to)) {
      if (++steps > map.size) throw new Error(`internal: pass ${opts.pass}: replacements of %${v.id} form a cycle`);
      to = next;
    }
    return to;
  };
  // a node none of whose operands was replaced keeps its own operand array, and a rule's
  // candidate it did not rewrite is kept itself, not a copy (nodes are immutable)
  const remapAll = (vs: readonly Value[]) => {
    for (let i = 0; i < vs.length; i++) if (map.has(vs[i]!)) return vs.map(remap);
    return vs;
  };
  for (const v of g.inputs) b.adoptInput(v);
  // nothing before the first match changes: those nodes are kept as they are
  for (let at = 0; at < first; at++) b.adoptNode(g.nodes[at]!, g.nodes[at]!.inputs);
  let changed = false;
  let built = first;
  const flushNew = () => {
    const nodes = b.addedNodes;
    for (; built < nodes.length; built++) {
      const n = nodes[built]!;
      for (let j = 0; j < n.outputs.length; j++) producer[n.outputs[j]!.id] = n;
    }
  };
  /** Adds `node` (of the input graph, or built by a rewrite when `depth` > 0), rewritten if a rule matches it. */
  const visit = (node: Node, depth: number): void => {
    const inputs = remapAll(node.inputs);
    const candidates = byKind.get(node.kind);
    if (candidates) {
      const cand = inputs === node.inputs ? node : withOperands(node, inputs);
      const c = depth ? revisitCtx : ctx;
      for (const r of candidates) {
        const m = r.match(cand as never, c);
        if (m !== true) {
          if (typeof m === "string") opts.log?.(`${r.name}: skip ${cand.kind}${cand.scope ? ` in ${cand.scope}` : ""}: ${m}`);
          continue;
        }
        const from = b.addedNodes.length;
        const out = b.inScope(cand.scope, () => r.rewrite(cand as never, c));
        const outs = Array.isArray(out) ? (out as Value[]) : [out as Value];
        if (outs.length !== node.outputs.length) throw fail("irInvalid", { where: `pass ${opts.pass}, rule ${r.name}`, problem: `replaced ${node.outputs.length} results with ${outs.length}` });
        node.outputs.forEach((o, i) => {
          if (!sameType(o.type, outs[i]!.type))
            throw fail("irInvalid", { where: `pass ${opts.pass}, rule ${r.name}`, problem: `replaced %${o.id} ${typeStr(o.type)} (${node.kind}${node.scope ? ` in ${node.scope}` : ""}) with a ${typeStr(outs[i]!.type)} value` });
          if (outs[i] !== o) map.set(o, outs[i]!);
        });
        fired[r.name] = (fired[r.name] ?? 0) + 1;
        opts.log?.(`${r.name}: rewrote ${node.kind}${node.scope ? ` in ${node.scope}` : ""}`);
        changed = true;
        if (revisits && depth < REVISIT_DEPTH) for (const n of b.takeFrom(from)) visit(n, depth + 1);
        else flushNew();
        return;
      }
    }
    b.adoptNode(node, inputs);
    flushNew();
  };
  for (let at = first; at < g.nodes.length; at++) visit(g.nodes[at]!, 0);
  const outputs = g.outputs.map((o) => {
    const v = remap(o);
    if (v !== o && o.name !== undefined) v.name = o.name;
    return v;
  });
  const graph = removeDeadNodes(b.finish(outputs), b.nextValueId);
  idBounds.set(graph, b.nextValueId);
  return { graph, changed };
}

/** Drops nodes none of whose results is read (graph outputs count as reads); the others are kept as they are. Returns `g` itself when none is dead. */
export function removeDeadNodes(g: Graph, size = idBound(g)): Graph {
  // by id (see useTables); a value read but defined nowhere may have any id: the verifier names it
  const live = new Uint8Array(size);
  const isLive = (v: Value) => v.id < size && live[v.id] === 1;
  const markLive = (v: Value) => {
    if (v.id < size) live[v.id] = 1;
  };
  g.outputs.forEach(markLive);
  const nodes = g.nodes, kept = new Uint8Array(nodes.length);
  let dead = 0;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!, outs = n.outputs, ins = n.inputs;
    let read = false;
    for (let j = 0; j < outs.length && !read; j++) read = isLive(outs[j]!);
    if (!read) {
      dead++;
      continue;
    }
    kept[i] = 1;
    for (let j = 0; j < ins.length; j++) markLive(ins[j]!);
  }
  if (!dead) return g; // the same graph (the pipeline need not verify it again)
  const keep: Node[] = [];
  for (let i = 0; i < nodes.length; i++) if (kept[i]) keep.push(nodes[i]!);
  return { inputs: g.inputs, nodes: keep, outputs: g.outputs };
}

export function applyRules(g: Graph, rules: readonly Rule[], opts: RewriteOptions): RewriteResult {
  const fired: Record<string, number> = {};
  const maxWalks = opts.mode === "once" ? 1 : (opts.maxWalks ?? 50);
  let graph = g;
  const byKind = rulesByKind(rules);
  for (let i = 0; i < maxWalks; i++) {
    const r = walk(graph, byKind, opts, fired, i > 0);
    graph = r.graph;
    if (!r.changed) return { graph, fired, walks: i + 1 };
  }
  if (opts.mode === "once") return { graph, fired, walks: 1 };
  const busiest = Object.entries(fired).sort((a, c) => c[1] - a[1])[0];
  throw fail("irInvalid", { where: `pass ${opts.pass}`, problem: `rules still firing after ${maxWalks} walks (most: ${busiest?.[0]} x${busiest?.[1]}); a rule undoes another` });
}
