// precision-fp16: computes the graph in half precision, keeping named fp32 islands.
//
//   %x : f32 -> op -> %y : f32       ==>    %x : f16 -> op -> %y : f16   (constants stored f16)
//   t_embed island (scope "t_embed") stays f32, cast to f16 where it feeds the rest
//
// The timestep sinusoid is an island by default: t·1000 has a step of 0.5 in half precision
// above 512, which shifts the high-frequency phases by up to a quarter turn (README, fp16 mode).
// So are the RoPE tables computed in the graph (lower-rope): their angles reach tens of radians.
// Graph inputs read only by islands (the timestep) stay f32 in the model's interface.
import type { GraphBuilder } from "../src/ir/builder.js";
import { GraphBuilder as Builder } from "../src/ir/builder.js";
import { isFloat, type DType } from "../src/ir/dtype.js";
import { inScopes, type Graph, type Value } from "../src/ir/graph.js";
import { maxValueId, removeDeadNodes } from "../src/ir/rewrite.js";
import { definePass } from "../src/pipeline/pass.js";
import { halfPrecisionConst } from "./fp16-weights.js";
import { POSITION_TABLES_SCOPE } from "./lower-rope.js";

export const precisionFp16 = definePass<{ fp32Scopes: string[] }>({
  name: "precision-fp16",
  summary: "compute in fp16 (weights stored fp16), keeping fp32 islands such as the timestep embedding",
  requires: [],
  ensures: [],
  defaults: { fp32Scopes: ["t_embed", POSITION_TABLES_SCOPE] },
  run: (g: Graph, o) => {
    const island = inScopes(o.fp32Scopes);
    const size = maxValueId(g) + 1;
    // by value id: read by a node outside the islands (such a value is needed in f16)
    const readOutsideIslands = new Uint8Array(size);
    const inIsland = g.nodes.map(island); // by node index: each node's scope is tested once
    g.nodes.forEach((n, i) => {
      if (!inIsland[i]) for (const v of n.inputs) readOutsideIslands[v.id] = 1;
    });
    const b: GraphBuilder = new Builder(size);
    // by the old value's id (as the rewrite driver's tables): each value as computed, and its
    // cast to the other float type once one is needed (a value has one, f16 or f32)
    const computed = new Array<Value>(size), cast = new Array<Value | undefined>(size);
    const as = (v: Value, dtype: DType, scope?: string): Value => {
      const src = computed[v.id]!;
      if (src.type.dtype === dtype) return src;
      return (cast[v.id] ??= b.inScope(scope, () => b.op("cast", [src], { to: dtype })));
    };
    for (const v of g.inputs) {
      const nv = isFloat(v.type.dtype) && readOutsideIslands[v.id] ? b.input(v.name!, { dtype: "f16", shape: v.type.shape }) : (b.adoptInput(v), v);
      computed[v.id] = nv;
    }
    for (const [i, n] of g.nodes.entries()) {
      const want: DType = inIsland[i] ? "f32" : "f16";
      if (n.kind === "const") {
        const c = n.attrs.value;
        const dtype = isFloat(c.type.dtype) && readOutsideIslands[n.outputs[0]!.id] ? "f16" : c.type.dtype;
        const out = b.inScope(n.scope, () => b.constant(dtype === c.type.dtype ? c : halfPrecisionConst(c)));
        computed[n.outputs[0]!.id] = out;
        continue;
      }
      const ins = n.inputs.map((v) => (isFloat(v.type.dtype) ? as(v, want, n.scope) : computed[v.id]!));
      const outs = b.inScope(n.scope, () => b.add(n.kind, ins, n.attrs as never));
      for (let i = 0; i < outs.length; i++) computed[n.outputs[i]!.id] = outs[i]!;
    }
    const outputs = g.outputs.map((v) => {
      const nv = isFloat(v.type.dtype) ? as(v, "f16") : computed[v.id]!;
      nv.name = v.name!;
      return nv;
    });
    return removeDeadNodes(b.finish(outputs));
  },
});
