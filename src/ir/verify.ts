// The structural verifier, run after every transformation: SSA form (each value defined once,
// before use), every node's operand count and inferred types equal to its stored result types,
// and outputs defined. A failure names the node, its scope and, when given, the pass.
import { fail } from "../diagnostics.js";
import { OpTypeError, arityRange } from "../ops/define.js";
import { isOpKind, opDef } from "../ops/index.js";
import { sameType, typeStr, type Graph, type Node, type Value } from "./graph.js";

export function nodeLabel(n: Node): string {
  return `%${n.outputs[0]?.id ?? "?"} ${n.kind}${n.scope ? ` in ${n.scope}` : ""}`;
}

/**
 * Nodes whose operands and results already passed type inference. Nodes and values are immutable,
 * so a node a pass kept (the same object) infers the same types again: after a pass only its new
 * nodes are re-inferred, while the SSA order is still checked for every node.
 */
const inferred = new WeakSet<Node>();

export function verifyGraph(g: Graph, after?: string): void {
  const where = after ? `after pass ${after}` : "graph";
  const bad = (problem: string) => fail("irInvalid", { where, problem });
  const defined = new Set<Value>();
  // ids name tensors in dumps and emitted files, so two values may not share one
  const ids = new Set<number>();
  const define = (v: Value, by: () => string) => {
    if (ids.has(v.id)) throw bad(`%${v.id} is used by two values (again by ${by()})`);
    ids.add(v.id);
    defined.add(v);
  };
  for (const v of g.inputs) {
    if (defined.has(v)) throw bad(`input %${v.id} is listed twice`);
    define(v, () => "an input");
  }
  for (const n of g.nodes) {
    if (!isOpKind(n.kind)) throw bad(`node ${n.id} has unknown op kind "${n.kind}"`);
    const def = opDef(n.kind);
    const [lo, hi] = arityRange(def.operands);
    if (n.inputs.length < lo || n.inputs.length > hi) throw bad(`${nodeLabel(n)} has ${n.inputs.length} operands, its op takes ${def.operands.join(", ")}`);
    for (const v of n.inputs) if (!defined.has(v)) throw bad(`${nodeLabel(n)} reads %${v.id}, which is not defined before it`);
    if (inferred.has(n)) {
      for (const o of n.outputs) {
        if (defined.has(o)) throw bad(`%${o.id} is defined twice (again by ${nodeLabel(n)})`);
        define(o, () => nodeLabel(n));
      }
      continue;
    }
    let types;
    try {
      types = def.infer(n.inputs.map((v) => v.type), n.attrs as never);
    } catch (e) {
      if (e instanceof OpTypeError) throw bad(`${nodeLabel(n)}: ${e.message}`);
      throw e;
    }
    if (types.length !== n.outputs.length) throw bad(`${nodeLabel(n)} has ${n.outputs.length} results, its op gives ${types.length}`);
    n.outputs.forEach((o, i) => {
      if (defined.has(o)) throw bad(`%${o.id} is defined twice (again by ${nodeLabel(n)})`);
      if (!sameType(o.type, types[i]!)) throw bad(`${nodeLabel(n)} result ${i} is stored as ${typeStr(o.type)} but infers ${typeStr(types[i]!)}`);
      define(o, () => nodeLabel(n));
    });
    inferred.add(n);
  }
  for (const o of g.outputs) if (!defined.has(o)) throw bad(`output %${o.id}${o.name ? ` (${o.name})` : ""} is not defined`);
}
