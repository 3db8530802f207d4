// What a target accepts, as data: every op kind it can express, with the limits it imposes.
// An op missing from the table is illegal; the check runs at the end of the target's pipeline.
import { fail } from "../diagnostics.js";
import type { Graph, Node, Value } from "../ir/graph.js";
import { nodeLabel } from "../ir/verify.js";
import type { OpKind } from "../ops/index.js";

export interface OpRule {
  maxRank?: number;
  /** extra per-node condition: true, or the reason the node is illegal */
  check?: (n: Node) => true | string;
}

export type Legality = Partial<Record<OpKind, OpRule>>;

function maxRankOf(vs: readonly Value[]): number {
  let m = 0;
  for (let i = 0; i < vs.length; i++) m = Math.max(m, vs[i]!.type.shape.length);
  return m;
}

export function checkLegal(g: Graph, target: string, legality: Legality): void {
  for (let i = 0; i < g.nodes.length; i++) {
    const n = g.nodes[i]!, r = legality[n.kind];
    const problem = r === undefined
      ? `op ${n.kind} is not legal for ${target} (no lowering removed it)`
      : r.maxRank !== undefined && (maxRankOf(n.inputs) > r.maxRank || maxRankOf(n.outputs) > r.maxRank)
        ? `rank above ${r.maxRank}`
        : r.check
          ? r.check(n)
          : true;
    if (problem !== true) throw fail("irInvalid", { where: `${target} legality`, problem: `${nodeLabel(n)}: ${problem}` });
  }
}
