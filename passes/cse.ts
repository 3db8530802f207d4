// cse: common subexpression elimination. Two nodes of the same kind, attributes and operands
// compute the same value; the later one is replaced by the earlier one's results.
//
//   %5 = transpose(%0) {[0,2,1]}            %5 = transpose(%0) {[0,2,1]}
//   %9 = transpose(%0) {[0,2,1]}    ==>     (uses of %9 read %5)
//
// Constants are equal only when they are the same constant object (same data source).
import { withOperands, type Graph, type Node, type Value } from "../src/ir/graph.js";
import { removeDeadNodes } from "../src/ir/rewrite.js";
import { definePass } from "../src/pipeline/pass.js";

/** Kind and operands; nodes that share them are told apart by their attributes (`sameAttrs`). */
function key(n: Node, inputs: readonly Value[]): string {
  const operands = inputs.length === 1 ? `${inputs[0]!.id}` : inputs.map((v) => v.id).join(",");
  return n.kind === "const" ? `const#${constId(n.attrs.value)}` : `${n.kind}(${operands})`;
}

/** Constants are keyed by their value object alone; other attributes compare as text, made only for nodes whose kind and operands another shares. */
function sameAttrs(a: Node, b: Node): boolean {
  return a.kind === "const" || a.attrs === b.attrs || attrsText(a.attrs) === attrsText(b.attrs);
}

/** Attributes as text, once per attributes object (passes that copy a node share its attrs). */
const attrsTexts = new WeakMap<object, string>();
function attrsText(attrs: object): string {
  let t = attrsTexts.get(attrs);
  if (t === undefined) attrsTexts.set(attrs, (t = JSON.stringify(attrs)));
  return t;
}

const ids = new WeakMap<object, number>();
let nextConst = 0;
function constId(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextConst++));
  return id;
}

export const cse = definePass({
  name: "cse",
  summary: "merge nodes that compute the same value",
  requires: [],
  ensures: [],
  defaults: {},
  run: (g: Graph) => {
    const map = new Map<Value, Value>();
    // by kind and operands the first node seen; by those and attribute text the later ones that differ from it
    const first = new Map<string, Node>(), byAttrs = new Map<string, Node>();
    const remap = (v: Value) => map.get(v) ?? v;
    const nodes: Node[] = [];
    for (const n of g.nodes) {
      const inputs = n.inputs.some((v) => map.has(v)) ? n.inputs.map(remap) : n.inputs;
      const k = key(n, inputs);
      const head = first.get(k);
      const prev = !head ? undefined : sameAttrs(head, n) ? head : byAttrs.get(`${k}${attrsText(n.attrs)}`);
      if (prev) {
        n.outputs.forEach((o, i) => map.set(o, prev.outputs[i]!));
        continue;
      }
      // a node none of whose operands merged is kept as it is
      const kept = inputs === n.inputs ? n : withOperands(n, inputs);
      if (head) byAttrs.set(`${k}${attrsText(n.attrs)}`, kept);
      else first.set(k, kept);
      nodes.push(kept);
    }
    const outputs = g.outputs.map((o) => {
      const v = remap(o);
      if (v !== o && o.name) v.name = o.name;
      return v;
    });
    return removeDeadNodes({ inputs: g.inputs, nodes, outputs });
  },
});
