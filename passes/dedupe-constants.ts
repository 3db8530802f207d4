// dedupe-constants: constants with the same dtype and bytes become one constant, so an emitter
// writes each distinct array once however many nodes read it (the cse pass after it merges the
// constant nodes and what they feed). A twin stored in another shape is read through a reshape.
//
//   %3 = const {bias of block 0} : f32[128]           %3 = const {bias of block 0}
//   %9 = const {copy of it}      : f32[1,128]  ==>    %9 = reshape(%3) {[1,128]}
//
// Only constants that share a dtype and shape with another are loaded and hashed: computed ones
// (position tables, gather indices, scalars) up to HASH_LIMIT_BYTES, model parameters up to
// WEIGHT_HASH_LIMIT_BYTES (biases, norms, modulation tables). Weight matrices are checkpoint
// tensors that are read (or generated) once, when the emitter writes them, and hashing them here
// would read every one twice; the CoreML blob writer shares identical bytes it meets there.
// Palettes and corrected biases belong to one weight each (ownedByOneWeight) and are never
// loaded here: loading one runs its weight's k-means, which the emitter would run again.
import { createHash } from "node:crypto";
import type { ConstValue, Graph } from "../src/ir/graph.js";
import { storedBytes } from "../src/ir/dtype.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { sameShape } from "../src/ops/define.js";
import { tensorBytes } from "../src/io/encode.js";
import { numel } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";

export const HASH_LIMIT_BYTES = 4 * 2 ** 20;
export const WEIGHT_HASH_LIMIT_BYTES = 64 * 2 ** 10;

/**
 * Each constant's digest, kept while the constant lives: constants are immutable, and a compile's
 * targets lower one graph, so most of a width's constants reach this pass once per target.
 */
const digests = new WeakMap<ConstValue, string>();

function digestOf(c: ConstValue): string {
  let d = digests.get(c);
  if (d === undefined) digests.set(c, (d = createHash("sha1").update(tensorBytes(c.load(), c.type.dtype)).digest("hex")));
  return d;
}

export const dedupeConstants = definePass({
  name: "dedupe-constants",
  summary: "merge constants with the same dtype and bytes (a reshape where their shapes differ)",
  requires: [],
  ensures: [],
  defaults: {},
  run: (g: Graph, _o, log) => {
    // candidates: constants sharing a dtype and an element count with another
    const bySize = new Map<string, ConstValue[]>();
    for (const n of g.nodes) {
      if (n.kind !== "const") continue;
      const c = n.attrs.value as ConstValue;
      const k = `${c.type.dtype}x${numel(c.type.shape)}`;
      const list = bySize.get(k) ?? [];
      if (!list.includes(c)) list.push(c);
      bySize.set(k, list);
    }
    // each constant that has an earlier twin by content, mapped to that twin
    const twin = new Map<ConstValue, ConstValue>();
    for (const [k, list] of bySize) {
      if (list.length < 2) continue;
      const firstOf = new Map<string, ConstValue>();
      for (const c of list) {
        const limit = c.role === "weight" ? WEIGHT_HASH_LIMIT_BYTES : HASH_LIMIT_BYTES;
        if (c.ownedByOneWeight || storedBytes(c.type) > limit) continue;
        const digest = `${k}#${digestOf(c)}`;
        const first = firstOf.get(digest);
        if (first) twin.set(c, first);
        else firstOf.set(digest, c);
      }
    }
    if (!twin.size) return g;
    log?.(`dedupe-constants: ${twin.size} constants merged into their twins`);
    // the twin itself, reshaped when it was stored in another shape (a view on every target)
    const merge = rule("merge-equal-constant", "const", {
      match: (n) => twin.has(n.attrs.value as ConstValue),
      rewrite: (n, { b }) => {
        const v = b.constant(twin.get(n.attrs.value as ConstValue)!);
        const shape = n.outputs[0]!.type.shape;
        return sameShape(v.type.shape, shape) ? v : b.op("reshape", [v], { shape: [...shape] });
      },
    });
    return applyRules(g, [merge], { pass: "dedupe-constants", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
