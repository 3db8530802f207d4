// fp16-weights: weights stored in half precision and widened where they are read, computing in
// float32 (TFLite's float16 weight quantization: FLOAT16 constant -> DEQUANTIZE -> consumer).
//
//   %w = const "…" : f32[S]   ==>   %w16 = const "…" : f16[S]  (rounded once)
//                                   %w = cast(%w16) {f32} : f32[S]
//
// Constants read only inside fp32 islands keep float32, by default the timestep embedding, whose
// frequencies multiply t·1000 and so cannot lose bits (README, fp16).
import { fail } from "../src/diagnostics.js";
import { derivedConst, inScopes, readers, type ConstValue, type Graph } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { encodeF16Overflowing } from "../src/kernels/fp16.js";
import { asFloat, halfTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";

/**
 * `c` stored in half precision (rounded when loaded). In a model parameter, a finite element past
 * 65504 is an error naming it: it would be stored as an infinity, and the model's outputs with it.
 * (Computed constants may mean it: a mask's −1e9 is −Infinity in fp16, as good a mask.)
 */
export function halfPrecisionConst(c: ConstValue): ConstValue {
  return derivedConst(c, {
    type: { dtype: "f16", shape: c.type.shape },
    source: c.source,
    load: () => {
      const t = asFloat(c.load());
      // fp16 patterns (an f16 checkpoint's weight) are their own rounding: nothing to convert;
      // float32 values become the patterns of their rounding (widened where something reads them)
      if (t.half) return halfTensor(c.type.shape, t.half, "f16");
      const { bits, overflow } = encodeF16Overflowing(t.data);
      if (overflow >= 0 && c.role === "weight") throw fail("weightRange", { tensor: c.source, value: t.data[overflow]!, index: overflow });
      return halfTensor(c.type.shape, bits, "f16");
    },
  });
}

export const fp16Weights = definePass<{ fp32Scopes: string[] }>({
  name: "fp16-weights",
  summary: "store float weights as fp16, widened to fp32 where read (fp32 islands keep fp32)",
  requires: [],
  ensures: [],
  defaults: { fp32Scopes: ["t_embed"] },
  run: (g: Graph, o, log) => {
    const island = inScopes(o.fp32Scopes);
    const readersOf = readers(g);
    const halve = rule("weight-to-fp16", "const", {
      match: (n) => {
        if (n.attrs.value.type.dtype !== "f32") return "not a float32 constant";
        return !(readersOf.get(n.outputs[0]!) ?? []).every(island) || "read only by fp32 islands";
      },
      rewrite: (n, { b }) => {
        const c = n.attrs.value;
        const half = b.constant(halfPrecisionConst(c));
        return b.op("cast", [half], { to: "f32" });
      },
    });
    return applyRules(g, [halve], { pass: "fp16-weights", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
