// Where a forward's time goes, node by node (`ditc run --profile`, the API's `run` with
// `profile`): the interpreter calls onNode after each node, and the time since the call before is
// that node's, less the constants it loaded (a weight's read, widening or generation at its first
// use, counted apart). It includes what the interpreter does around the kernel: rounding in fp16
// mode, freeing dead values.
import type { Graph, Node } from "../ir/graph.js";

export interface KindProfile {
  kind: string;
  /** nodes of this kind that ran */
  count: number;
  seconds: number;
  /** of the profile's `seconds` */
  share: number;
}

export interface NodeTime {
  /** position in the graph's node list */
  index: number;
  kind: string;
  scope: string | null;
  /** the node's first result's shape */
  shape: number[];
  seconds: number;
}

export interface RunProfile {
  /** the nodes' time together, constants' loading included: the run less copying the outputs out */
  seconds: number;
  nodes: number;
  /** loading constants at their first use (reading, widening or generating weights), in `seconds` but in no node's */
  constants: { count: number; seconds: number };
  /** op kinds, most time first */
  byKind: KindProfile[];
  /** the slowest nodes, slowest first */
  slowest: NodeTime[];
}

/**
 * Times a run node by node: made right before the run, its `onNode` passed to the interpreter,
 * `profile()` read after it. The clock starts here, so the first node's time includes the
 * interpreter's setup (its tables of producers and last uses: milliseconds).
 */
export function nodeProfiler(g: Graph, slowest = 10): { onNode: (node: Node, index: number) => void; onConstant: (node: Node, seconds: number) => void; profile: () => RunProfile } {
  const times = new Float64Array(g.nodes.length).fill(-1);
  const constants = { count: 0, seconds: 0 };
  let last = performance.now(), loading = 0;
  return {
    onConstant: (_node, seconds) => {
      constants.count++;
      constants.seconds += seconds;
      loading += seconds;
    },
    onNode: (_node, i) => {
      const now = performance.now();
      times[i] = Math.max(0, (now - last) / 1000 - loading);
      last = now;
      loading = 0;
    },
    profile: () => summarizeTimes(g, times, constants, slowest),
  };
}

function summarizeTimes(g: Graph, times: Float64Array, constants: RunProfile["constants"], slowestCount: number): RunProfile {
  const kinds = new Map<string, { count: number; seconds: number }>();
  const ran: NodeTime[] = [];
  let total = constants.seconds;
  g.nodes.forEach((n, i) => {
    const s = times[i]!;
    if (s < 0) return; // a constant (loaded by its first reader) or a node the run did not reach
    total += s;
    const k = kinds.get(n.kind) ?? { count: 0, seconds: 0 };
    k.count++;
    k.seconds += s;
    kinds.set(n.kind, k);
    ran.push({ index: i, kind: n.kind, scope: n.scope ?? null, shape: [...(n.outputs[0]?.type.shape ?? [])], seconds: s });
  });
  const byKind = [...kinds].map(([kind, k]) => ({ kind, count: k.count, seconds: k.seconds, share: total > 0 ? k.seconds / total : 0 })).sort((a, b) => b.seconds - a.seconds || a.kind.localeCompare(b.kind));
  const slowest = ran.sort((a, b) => b.seconds - a.seconds || a.index - b.index).slice(0, slowestCount);
  return { seconds: total, nodes: ran.length, constants: { ...constants }, byKind, slowest };
}

/** The profile as a few lines of text: the op kinds above 1 % of the time (at most `kinds`), then the slowest nodes. */
export function formatProfile(p: RunProfile, kinds = 12): string {
  const lines = [`profile: ${p.nodes} nodes in ${p.seconds.toFixed(3)} s`];
  if (p.constants.count) lines.push(`  ${"(loading constants)".padEnd(24)} ${(100 * (p.seconds > 0 ? p.constants.seconds / p.seconds : 0)).toFixed(1).padStart(5)} %  ${p.constants.seconds.toFixed(3).padStart(9)} s  ${String(p.constants.count).padStart(6)} loaded`);
  const shown = p.byKind.filter((k) => k.share >= 0.01).slice(0, kinds);
  for (const k of shown) lines.push(`  ${k.kind.padEnd(24)} ${(100 * k.share).toFixed(1).padStart(5)} %  ${k.seconds.toFixed(3).padStart(9)} s  ${String(k.count).padStart(6)} nodes`);
  const rest = p.byKind.slice(shown.length);
  if (rest.length) lines.push(`  ${`(${rest.length} other kinds)`.padEnd(24)} ${(100 * rest.reduce((a, k) => a + k.share, 0)).toFixed(1).padStart(5)} %`);
  if (p.slowest.length) lines.push("  slowest nodes:");
  for (const n of p.slowest) lines.push(`  ${n.seconds.toFixed(3).padStart(9)} s  ${n.kind} (${n.shape.join("×")})${n.scope ? ` in ${n.scope}` : ""}`);
  return lines.join("\n");
}

type OnNode = (node: Node, index: number) => void;

/** Both callbacks, either of which may be absent. */
export function bothOnNode(a: OnNode | undefined, b: OnNode | undefined): OnNode | undefined {
  if (!a || !b) return a ?? b;
  return (node, index) => {
    a(node, index);
    b(node, index);
  };
}
