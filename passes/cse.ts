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

/**
 * A number for a node's kind, operands and attributes (a constant's: its value object). Nodes
 * that share one are compared in full; no strings are built (keys made as text were most of this
 * pass' time on the full preset's 45k-node graphs).
 */
function bucketOf(n: Node, inputs: readonly Value[], kindNumber: (kind: string) => number): number {
  if (n.kind === "const") return mix(0x51ed27, objectNumber(n.attrs.value));
  let h = mix(kindNumber(n.kind), attrsHash(n.attrs));
  for (let i = 0; i < inputs.length; i++) h = mix(h, inputs[i]!.id);
  return h;
}

const mix = (h: number, x: number) => Math.imul(h ^ x, 0x85ebca6b) ^ (h >>> 13);

/** attrsHash by attributes object, computed once for each (passes that copy a node share its attrs). */
const attrsHashes = new WeakMap<object, number>();
function attrsHash(attrs: object): number {
  let h = attrsHashes.get(attrs);
  if (h === undefined) attrsHashes.set(attrs, (h = valueHash(attrs)));
  return h;
}

/** A hash that values equal by sameAttrValue share. */
function valueHash(v: unknown): number {
  if (typeof v === "number") return v | 0; // 0 and -0 alike; fractions collide, which costs a comparison
  if (typeof v === "string") {
    let h = v.length;
    for (let i = 0; i < v.length; i++) h = mix(h, v.charCodeAt(i));
    return h;
  }
  if (typeof v === "boolean") return v ? 1 : 2;
  if (typeof v !== "object" || v === null) return 3;
  if (isList(v)) {
    const a = v as ArrayLike<unknown>;
    let h = mix(4, a.length);
    for (let i = 0; i < a.length; i++) h = mix(h, valueHash(a[i]));
    return h;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype) return objectNumber(v);
  // keys in any order: a sum of each key's and value's hash
  let h = 5;
  for (const [k, x] of Object.entries(v)) if (x !== undefined) h = (h + mix(valueHash(k), valueHash(x))) | 0;
  return h;
}

/** Arrays and typed arrays (not a DataView: it has no elements to compare, so it counts as an object). */
const isList = (v: object): boolean => Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));

/** Same kind, operands and attributes (a constant: the same value object). */
function sameNode(a: Node, b: Node, inputs: readonly Value[]): boolean {
  if (a.kind !== b.kind || a.inputs.length !== inputs.length) return false;
  if (a.kind === "const") return a.attrs.value === (b.attrs as typeof a.attrs).value;
  for (let i = 0; i < inputs.length; i++) if (a.inputs[i] !== inputs[i]) return false;
  return a.attrs === b.attrs || sameAttrValue(a.attrs, b.attrs);
}

/**
 * Attribute values equal by structure: primitives by ===, arrays and typed arrays element by
 * element, plain objects key by key (keys holding undefined count as absent), anything else
 * (constants, functions) only when it is the same object. Never equal when unsure: a merge
 * missed costs a node, a wrong merge a wrong model.
 */
function sameAttrValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (isList(a)) {
    if (!isList(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    const x = a as ArrayLike<unknown>, y = b as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameAttrValue(x[i], y[i])) return false;
    return true;
  }
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!Object.hasOwn(b, k) || !sameAttrValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** Numbers for objects compared by identity (constants above all), kept across runs: a number is never reused. */
const objectNumbers = new WeakMap<object, number>();
let nextObject = 0;
function objectNumber(o: object): number {
  let id = objectNumbers.get(o);
  if (id === undefined) objectNumbers.set(o, (id = nextObject++));
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
    const kinds = new Map<string, number>();
    const kindNumber = (kind: string) => {
      let k = kinds.get(kind);
      if (k === undefined) kinds.set(kind, (k = kinds.size + 1));
      return k;
    };
    // the kept nodes by bucket, in graph order: a node merges into the first equal one (buckets
    // hold more than one node only when hashes collide or nodes differ in something hashed loosely)
    const buckets = new Map<number, Node[]>();
    const remap = (v: Value) => map.get(v) ?? v;
    const nodes: Node[] = [];
    for (const n of g.nodes) {
      let inputs = n.inputs;
      for (let i = 0; i < inputs.length; i++)
        if (map.has(inputs[i]!)) {
          inputs = n.inputs.map(remap);
          break;
        }
      const bucket = bucketOf(n, inputs, kindNumber);
      const list = buckets.get(bucket);
      let prev: Node | undefined;
      for (let i = 0; list && !prev && i < list.length; i++) if (sameNode(list[i]!, n, inputs)) prev = list[i];
      if (prev) {
        for (let i = 0; i < n.outputs.length; i++) map.set(n.outputs[i]!, prev.outputs[i]!);
        continue;
      }
      // a node none of whose operands merged is kept as it is
      const kept = inputs === n.inputs ? n : withOperands(n, inputs);
      if (list) list.push(kept);
      else buckets.set(bucket, [kept]);
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
