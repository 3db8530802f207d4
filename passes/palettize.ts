// palettize: replaces linear/conv weights by k-means palettized constants (docs/toolchain.md).
//
//   %w = const "down.0.ffn.fc1.weight" : f32[512,256]
//     ==>  %i = const "…fc1.weight indices" : u4[512,256]
//          %l = const "…fc1.weight lut" : f32[16]
//          %w = lut_to_dense(%i, %l) : f32[512,256]
//
// Options: bits, a map from checkpoint tensor name to 4 or 8 (weights not named stay dense);
// groupSize, 0 for one LUT per tensor or n for one LUT per n output channels.
// The clustering (src/quant/kmeans.ts) runs when a backend first loads either constant and is
// dropped once both are loaded, so palettized weights stream like dense ones.
import type { ConstValue, Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { asFloat, floatTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { palettize as cluster, type Palettized } from "../src/quant/kmeans.js";

/** Weights up to this many elements keep their clustering for later runs (interpreter reuse). */
const KEEP_ELEMENTS = 1 << 22;

/** Indices and LUT of one weight, computed on the first load of either; large ones are released after both. */
function palettizedConstants(w: ConstValue, bits: 4 | 8, groupSize: number): [ConstValue, ConstValue] {
  let cached: Palettized | undefined;
  const pending = new Set(["indices", "lut"]);
  const keep = w.type.shape.reduce((a, b) => a * b, 1) <= KEEP_ELEMENTS;
  const rows = w.type.shape[0]!;
  const groups = groupSize > 0 && rows % groupSize === 0 && rows > groupSize ? rows / groupSize : 1;
  const take = (part: "indices" | "lut") => {
    cached ??= clusterGroups(asFloat(w.load()).data, bits, groups);
    const r = cached;
    pending.delete(part);
    if (!pending.size && !keep) {
      cached = undefined;
      pending.add("indices").add("lut");
    }
    return r;
  };
  const k = 1 << bits;
  return [
    { type: { dtype: bits === 4 ? "u4" : "u8", shape: w.type.shape }, source: `${w.source} indices`, role: "palette", load: () => ({ dtype: bits === 4 ? "u4" : "u8", shape: w.type.shape, data: take("indices").indices }) },
    { type: { dtype: "f32", shape: groups > 1 ? [groups, k] : [k] }, source: `${w.source} lut`, role: "lut", load: () => floatTensor(groups > 1 ? [groups, k] : [k], take("lut").lut) },
  ];
}

/** Per-tensor clustering, or one clustering per group of consecutive axis-0 rows. */
function clusterGroups(data: Float32Array, bits: 4 | 8, groups: number): Palettized {
  if (groups === 1) return cluster(data, bits);
  const per = data.length / groups, k = 1 << bits;
  const indices = new Uint8Array(data.length), lut = new Float32Array(groups * k);
  let sse = 0;
  for (let g = 0; g < groups; g++) {
    const r = cluster(data.subarray(g * per, (g + 1) * per), bits);
    indices.set(r.indices, g * per);
    lut.set(r.lut, g * k);
    sse += r.sse;
  }
  return { indices, lut, sse };
}

export const palettizeWeights = definePass<{ bits: Record<string, 4 | 8>; groupSize: number }>({
  name: "palettize",
  summary: "k-means palettize linear/conv weights into 16- or 256-entry LUTs",
  requires: [],
  ensures: [],
  // groupSize 0: one LUT per tensor; n > 0: one LUT per n output channels (CoreML iOS18's per-grouped-channel form)
  defaults: { bits: {}, groupSize: 0 },
  run: (g: Graph, o, log) => {
    const done = new Map<Value, Value>();
    const weightOf = (n: { inputs: readonly Value[] }, ctx: RewriteContext) => {
      const p = ctx.producer(n.inputs[1]!);
      return p?.kind === "const" && o.bits[p.attrs.value.source] ? p : undefined;
    };
    const rules = [
      rule("palettize-weight", ["linear", "conv2d"], {
        match: (n, ctx) => weightOf(n, ctx) !== undefined || "weight is not a listed constant",
        rewrite: (n, ctx) => {
          const c = weightOf(n, ctx)!;
          let w = done.get(c.outputs[0]!);
          if (!w) {
            const [ic, lc] = palettizedConstants(c.attrs.value, o.bits[c.attrs.value.source]!, o.groupSize);
            w = ctx.b.op("lut_to_dense", [ctx.b.constant(ic), ctx.b.constant(lc)], {});
            done.set(c.outputs[0]!, w);
          }
          return ctx.b.op(n.kind, [n.inputs[0]!, w, ...n.inputs.slice(2)], n.attrs as never);
        },
      }),
    ];
    return applyRules(g, rules, { pass: "palettize", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
