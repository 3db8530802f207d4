// The structural verifier, run after every transformation: SSA form (each value defined once,
// before use), every node's operand count and inferred types equal to its stored result types,
// and outputs defined. A failure names the node, its scope and, when given, the pass.
import { fail } from "../diagnostics.js";
import { OpTypeError } from "../ops/define.js";
import { findOpDef } from "../ops/index.js";
import { sameType, typeStr, type Graph, type Node, type Value } from "./graph.js";

export function nodeLabel(n: Node): string {
  return `%${n.outputs[0]?.id ?? "?"} ${n.kind}${n.scope ? ` in ${n.scope}` : ""}`;
}

/**
 * What each node's results were inferred from, kept on its results array: passes that keep a
 * node copy it (a new id, remapped operands) but share its results and attrs, and values are
 * immutable, so the same results from the same operands and attrs infer the same types again.
 * After a pass only nodes it rewired, or built without the builder, are inferred again (the
 * builder infers each node's types as it adds it and records that here); the SSA order is still
 * checked for every node. A symbol-keyed property, not a WeakMap: on 30-60k-node graphs the
 * WeakMap's inserts and lookups were a third of the verifier's time.
 */
const INFERRED_FROM = Symbol("inferredFrom");
/** the node whose kind, attrs and operands the results were inferred from (nodes are immutable) */
type Results = readonly Value[] & { [INFERRED_FROM]?: Node };

/** Records that `n`'s result types are its op's inference from its operands and attrs. */
export function markInferred(n: Node): void {
  (n.outputs as Results)[INFERRED_FROM] = n;
}

function alreadyInferred(n: Node): boolean {
  const was = (n.outputs as Results)[INFERRED_FROM];
  if (was === n) return true;
  if (!was || was.kind !== n.kind || was.attrs !== n.attrs || was.inputs.length !== n.inputs.length) return false;
  for (let i = 0; i < n.inputs.length; i++) if (was.inputs[i] !== n.inputs[i]) return false;
  return true;
}

/** Largest value id the verifier accepts (passes number values upward from the graph's largest). */
const MAX_ID = 2 ** 31 - 1;

export function verifyGraph(g: Graph, after?: string): void {
  const where = after ? `after pass ${after}` : "graph";
  const bad = (problem: string) => fail("irInvalid", { where, problem });
  // each value by its id (ids name tensors in dumps and emitted files, so two values may not share
  // one); ids are small integers, so an array indexed by id (faster than a Map on 60k-node graphs)
  // allocated at its full length (an array grown by scattered indices is several times slower),
  // unless a malformed graph's ids are far more than its values: those are checked in a Map
  let values = g.inputs.length, maxId = -1;
  for (const v of g.inputs) maxId = Math.max(maxId, v.id);
  for (let at = 0; at < g.nodes.length; at++) {
    const outs = g.nodes[at]!.outputs;
    values += outs.length;
    for (let j = 0; j < outs.length; j++) maxId = Math.max(maxId, outs[j]!.id);
  }
  const dense = maxId < 4 * values + 1024 ? maxId + 1 : 0;
  if (byIdTable.length < dense) byIdTable = new Array<Value | undefined>(dense);
  const byId = byIdTable, sparse = new Map<number, Value>();
  try {
    checkNodes(g, bad, dense, byId, sparse);
  } finally {
    // the table is kept for the next graph (a fresh one per pass was ~10 % of lowering's
    // allocations): empty what this one filled
    for (const v of g.inputs) if (Number.isInteger(v.id) && v.id >= 0 && v.id < dense) byId[v.id] = undefined;
    for (const n of g.nodes) for (const o of n.outputs) if (Number.isInteger(o.id) && o.id >= 0 && o.id < dense) byId[o.id] = undefined;
  }
}

/**
 * Each value by its id while a graph is verified, allocated at its full length (an array grown by
 * scattered indices is several times slower) and reused: between verifications it holds nothing.
 */
let byIdTable: (Value | undefined)[] = [];

function checkNodes(g: Graph, bad: (problem: string) => Error, dense: number, byId: (Value | undefined)[], sparse: Map<number, Value>): void {
  const holder = (id: number) => (id < dense ? byId[id] : sparse.get(id));
  const defined = (v: Value) => holder(v.id) === v;
  const define = (v: Value, n: Node | undefined) => {
    const id = v.id;
    if (Number.isSafeInteger(id) && id >= 0 && id <= MAX_ID && holder(id) === undefined) return void (id < dense ? (byId[id] = v) : sparse.set(id, v));
    const by = n ? nodeLabel(n) : "an input";
    if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) throw bad(`a value has id ${id}, not a non-negative integer below 2^31 (defined by ${by})`);
    if (holder(id) === v) throw bad(n ? `%${id} is defined twice (again by ${by})` : `input %${id} is listed twice`);
    throw bad(`%${id} is used by two values (again by ${by})`);
  };
  for (const v of g.inputs) define(v, undefined);
  for (let at = 0; at < g.nodes.length; at++) {
    const n = g.nodes[at]!;
    const def = findOpDef(n.kind);
    if (!def) throw bad(`node ${at} has unknown op kind "${n.kind}"`);
    const arity = def.arity; // (indexed: destructuring an array costs an iterator per node)
    if (n.inputs.length < arity[0] || n.inputs.length > arity[1]) throw bad(`${nodeLabel(n)} has ${n.inputs.length} operands, its op takes ${def.operands.join(", ")}`);
    const ins = n.inputs;
    for (let j = 0; j < ins.length; j++) if (!defined(ins[j]!)) throw bad(`${nodeLabel(n)} reads %${ins[j]!.id}, which is not defined before it`);
    if (!alreadyInferred(n)) {
      let types;
      try {
        types = def.infer(n.inputs.map((v) => v.type), n.attrs as never);
      } catch (e) {
        if (e instanceof OpTypeError) throw bad(`${nodeLabel(n)}: ${e.message}`);
        throw e;
      }
      if (types.length !== n.outputs.length) throw bad(`${nodeLabel(n)} has ${n.outputs.length} results, its op gives ${types.length}`);
      n.outputs.forEach((o, i) => {
        if (!sameType(o.type, types[i]!)) throw bad(`${nodeLabel(n)} result ${i} is stored as ${typeStr(o.type)} but infers ${typeStr(types[i]!)}`);
      });
      markInferred(n);
    }
    for (let j = 0; j < n.outputs.length; j++) define(n.outputs[j]!, n);
  }
  for (const o of g.outputs) if (!defined(o)) throw bad(`output %${o.id}${o.name ? ` (${o.name})` : ""} is not defined`);
}
