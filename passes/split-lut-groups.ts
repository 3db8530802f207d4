// split-lut-groups: per-grouped-channel palettes for formats without them (ONNX, TFLite) as one
// lookup per group, before any layout pass moves the weight's rows off axis 0.
//
//   lut_to_dense(%i : u4[R, …], %lut : f32[G, 16])
//     ==>  concat(lut_to_dense(%i_0 : u4[R/G, …], %lut_0 : f32[16]), …, lut_to_dense(%i_G-1, %lut_G-1)) {axis 0}
//
// Each group's indices and LUT are slices of the originals, loaded once for all G groups.
import { derivedConst, type ConstValue, type Graph, type Node, type Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { asFloat, floatTensor, numel, type Tensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";

const constOf = (v: Value, ctx: RewriteContext): ConstValue | undefined => {
  const p = ctx.producer(v);
  return p?.kind === "const" ? p.attrs.value : undefined;
};

/** Loads `c` once for `uses` slices, then lets it go (a large weight is not kept G times). */
function sharedLoad(c: ConstValue, uses: number): () => Tensor {
  let t: Tensor | undefined, left = 0;
  return () => {
    if (!t) (t = c.load()), (left = uses);
    const r = t;
    if (--left === 0) t = undefined;
    return r;
  };
}

export const splitLutGroups = definePass<Record<string, never>>({
  name: "split-lut-groups",
  summary: "per-grouped-channel LUTs -> one per-tensor lookup per group, concatenated on axis 0",
  requires: [],
  ensures: [],
  defaults: {},
  run: (g: Graph, _o, log) => {
    const split = rule("split-lut-groups", "lut_to_dense", {
      match: (n, ctx) => (n.inputs[1]!.type.shape.length === 2 && constOf(n.inputs[0]!, ctx) !== undefined && constOf(n.inputs[1]!, ctx) !== undefined) || "needs constant indices and a grouped LUT",
      rewrite: (n: Extract<Node, { kind: "lut_to_dense" }>, ctx) => {
        const idx = constOf(n.inputs[0]!, ctx)!, lut = constOf(n.inputs[1]!, ctx)!;
        const [G, k] = lut.type.shape as [number, number];
        const shape = [...idx.type.shape], rows = shape[0]! / G, per = numel(shape) / G;
        const part = [rows, ...shape.slice(1)];
        const indices = sharedLoad(idx, G), table = sharedLoad(lut, G);
        const dtype = idx.type.dtype as "u4" | "u8";
        const parts = Array.from({ length: G }, (_, gi) => {
          const i = ctx.b.constant(derivedConst(idx, { type: { dtype, shape: part }, source: `${idx.source} group ${gi}`, load: () => ({ dtype, shape: part, data: (indices().data as Uint8Array).slice(gi * per, (gi + 1) * per) }) }));
          const l = ctx.b.constant(derivedConst(lut, { type: { dtype: lut.type.dtype, shape: [k] }, source: `${lut.source} group ${gi}`, load: () => floatTensor([k], asFloat(table()).data.slice(gi * k, (gi + 1) * k), lut.type.dtype as "f32" | "f16") }));
          return ctx.b.op("lut_to_dense", [i, l], {});
        });
        return ctx.b.op("concat", parts, { axis: 0 });
      },
    });
    return applyRules(g, [split], { pass: "split-lut-groups", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
