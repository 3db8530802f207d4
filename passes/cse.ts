// cse: common subexpression elimination. Two nodes of the same kind, attributes and operands
// compute the same value; the later one is replaced by the earlier one's results.
//
//   %5 = transpose(%0) {[0,2,1]}            %5 = transpose(%0) {[0,2,1]}
//   %9 = transpose(%0) {[0,2,1]}    ==>     (uses of %9 read %5)
//
// Constants are equal only when they are the same constant object (same data source).
import type { Graph, Node, Value } from "../src/ir/graph.js";
import { removeDeadNodes } from "../src/ir/rewrite.js";
import { definePass } from "../src/pipeline/pass.js";

function key(n: Node, inputs: readonly Value[]): string {
  const attrs = n.kind === "const" ? `const#${constId(n.attrs.value)}` : attrsText(n.attrs);
  return `${n.kind}(${inputs.map((v) => v.id).join(",")})${attrs}`;
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
    const seen = new Map<string, Node>();
    const remap = (v: Value) => map.get(v) ?? v;
    const nodes: Node[] = [];
    for (const n of g.nodes) {
      const inputs = n.inputs.map(remap);
      const k = key(n, inputs);
      const prev = seen.get(k);
      if (prev) {
        n.outputs.forEach((o, i) => map.set(o, prev.outputs[i]!));
        continue;
      }
      // a node none of whose operands merged is kept as it is
      const kept = inputs.every((v, i) => v === n.inputs[i]) ? n : ({ ...n, inputs } as Node);
      seen.set(k, kept);
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
