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
import { derivedConst, inScopes, readers, type Graph, type Value } from "../src/ir/graph.js";
import { maxValueId, removeDeadNodes } from "../src/ir/rewrite.js";
import { roundToF16InPlace } from "../src/kernels/fp16.js";
import { asFloat, floatTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { POSITION_TABLES_SCOPE } from "./lower-rope.js";

export const precisionFp16 = definePass<{ fp32Scopes: string[] }>({
  name: "precision-fp16",
  summary: "compute in fp16 (weights stored fp16), keeping fp32 islands such as the timestep embedding",
  requires: [],
  ensures: [],
  defaults: { fp32Scopes: ["t_embed", POSITION_TABLES_SCOPE] },
  run: (g: Graph, o) => {
    const island = inScopes(o.fp32Scopes);
    const readersOf = readers(g);
    // (a loop, not Math.max over a spread: a graph's ids outnumber the arguments a call may take)
    const b: GraphBuilder = new Builder(maxValueId(g) + 1);
    /** each value as computed, plus its cast to the other float type once needed */
    const variants = new Map<Value, Map<DType, Value>>();
    const as = (v: Value, dtype: DType, scope?: string): Value => {
      const m = variants.get(v)!;
      let out = m.get(dtype);
      if (!out) {
        const src = m.values().next().value!;
        out = b.inScope(scope, () => b.op("cast", [src], { to: dtype }));
        m.set(dtype, out);
      }
      return out;
    };
    for (const v of g.inputs) {
      const onlyIslands = (readersOf.get(v) ?? []).every(island);
      const nv = isFloat(v.type.dtype) && !onlyIslands ? b.input(v.name!, { dtype: "f16", shape: v.type.shape }) : (b.adoptInput(v), v);
      variants.set(v, new Map([[nv.type.dtype, nv]]));
    }
    for (const n of g.nodes) {
      const want: DType = island(n) ? "f32" : "f16";
      if (n.kind === "const") {
        const c = n.attrs.value;
        const users = readersOf.get(n.outputs[0]!) ?? [];
        const dtype = isFloat(c.type.dtype) && !users.every(island) ? "f16" : c.type.dtype;
        const out = dtype === c.type.dtype ? b.inScope(n.scope, () => b.constant(c)) : b.inScope(n.scope, () =>
          b.constant(derivedConst(c, { type: { dtype, shape: c.type.shape }, source: c.source, load: () => floatTensor(c.type.shape, roundToF16InPlace(asFloat(c.load()).data.slice()), "f16") })));
        variants.set(n.outputs[0]!, new Map([[out.type.dtype, out]]));
        continue;
      }
      const ins = n.inputs.map((v) => (isFloat(v.type.dtype) ? as(v, want, n.scope) : variants.get(v)!.values().next().value!));
      const outs = b.inScope(n.scope, () => b.add(n.kind, ins, n.attrs as never));
      n.outputs.forEach((v, i) => variants.set(v, new Map([[outs[i]!.type.dtype, outs[i]!]])));
    }
    const outputs = g.outputs.map((v) => {
      const nv = isFloat(v.type.dtype) ? as(v, "f16") : variants.get(v)!.values().next().value!;
      nv.name = v.name!;
      return nv;
    });
    return removeDeadNodes(b.finish(outputs));
  },
});
