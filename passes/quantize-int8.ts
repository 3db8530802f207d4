// quantize-int8: replaces linear/conv weights by symmetric per-channel int8 (docs/toolchain.md leaves the
// int8 form to the targets; TFLite runs it faster than an in-graph palette lookup).
//
//   %w = const "…fc1.weight" : f32[O,I]   ==>   %q = const "…fc1.weight int8" : i8[O,I]
//                                               %s = const "…fc1.weight scale" : f32[O]
//                                               %w = dequantize(%q, %s) : f32[O,I]
//
// Options: names, the checkpoint tensors to quantize (the others stay dense).
import type { ConstValue, Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { asFloat, floatTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { quantizeInt8PerChannel, type Int8Weights } from "../src/quant/int8.js";

/** The quantized data and scales of one weight, computed on the first load of either and then dropped. */
function int8Constants(w: ConstValue): [ConstValue, ConstValue] {
  let cached: Int8Weights | undefined;
  let pending = 0;
  const take = () => {
    if (!cached) {
      cached = quantizeInt8PerChannel(asFloat(w.load()).data, w.type.shape[0]!, w.source);
      pending = 2;
    }
    const r = cached;
    if (--pending === 0) cached = undefined;
    return r;
  };
  const rows = w.type.shape[0]!;
  return [
    { type: { dtype: "i8", shape: w.type.shape }, source: `${w.source} int8`, role: "palette", ownedByOneWeight: true, load: () => ({ dtype: "i8", shape: w.type.shape, data: take().q }) },
    { type: { dtype: "f32", shape: [rows] }, source: `${w.source} scale`, role: "lut", ownedByOneWeight: true, load: () => floatTensor([rows], take().scale) },
  ];
}

export const quantizeInt8 = definePass<{ names: string[] }>({
  name: "quantize-int8",
  summary: "symmetric per-channel int8 linear/conv weights, dequantized in the graph",
  requires: [],
  ensures: [],
  defaults: { names: [] },
  run: (g: Graph, o, log) => {
    const names = new Set(o.names);
    const done = new Map<Value, Value>();
    const weightOf = (n: { inputs: readonly Value[] }, ctx: RewriteContext) => {
      const p = ctx.producer(n.inputs[1]!);
      return p?.kind === "const" && names.has(p.attrs.value.source) ? p : undefined;
    };
    const quantize = rule("quantize-weight-int8", ["linear", "conv2d"], {
      // grouped (depthwise) filters move their channel axis on the way to TFLite; they are tiny, so they stay float
      match: (n, ctx) => (n.kind === "conv2d" && n.attrs.groups !== 1 ? "a grouped conv" : weightOf(n, ctx) !== undefined || "weight is not a listed constant"),
      rewrite: (n, ctx) => {
        const c = weightOf(n, ctx)!;
        let w = done.get(c.outputs[0]!);
        if (!w) {
          const [q, s] = int8Constants(c.attrs.value);
          w = ctx.b.op("dequantize", [ctx.b.constant(q), ctx.b.constant(s)], {});
          done.set(c.outputs[0]!, w);
        }
        return ctx.b.op(n.kind, [n.inputs[0]!, w, ...n.inputs.slice(2)], n.attrs as never);
      },
    });
    return applyRules(g, [quantize], { pass: "quantize-int8", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
