// lower-assa: adaptive sparse self-attention as its two branches and the gate (docs/model.md step 5).
//
//   %o = assa_attention(q, k, v, kw, kb, vw, vb, g)
//     ==>  kc = tokens(conv2d(map(k), kw, kb, stride 2))       (same for v)
//          global = gqa_attention(q, kc, vc)                   (every query, compressed keys)
//          local  = bna_attention(q, k, v)                     (block neighbourhood)
//          o = local + expand(g) · (global − local)
//
// expand(g) repeats each head's gate over its dh channels with a constant 0/1 linear (H·dh, H),
// which costs H·C per token and keeps the blend elementwise on (B, L, C): no reshape splits the
// channel axis, so every layout converts it without transposes.
import type { ConstValue, Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import type { GraphBuilder } from "../src/ir/builder.js";
import { floatTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { mapToTokens, tokensToMap } from "../src/ir/views.js";

function compress(b: GraphBuilder, x: Value, w: Value, bias: Value, grid: readonly [number, number]): Value {
  const groups = x.type.shape[2]! / w.type.shape[1]!;
  const y = b.op("conv2d", [tokensToMap(b, x, grid[0], grid[1]), w, bias], { stride: [2, 2], pads: [0, 0, 0, 0], groups, layout: "NCHW" });
  return mapToTokens(b, y);
}

/** The 0/1 (C, heads) matrix whose row c has its 1 at c's head (loaded for every target and pass that reads it: a plain loop). */
function gateExpander(C: number, heads: number, dh: number): Float32Array {
  const m = new Float32Array(C * heads);
  for (let c = 0; c < C; c++) m[c * heads + Math.floor(c / dh)] = 1;
  return m;
}

export const lowerAssa = definePass({
  name: "lower-assa",
  summary: "assa_attention -> compress convs + global gqa_attention + local bna_attention + gated blend",
  requires: [],
  ensures: ["assa:lowered"],
  defaults: {},
  run: (g: Graph, _o, log) => {
    const expanders = new Map<string, ConstValue>();
    const lower = rule("assa-to-branches", "assa_attention", {
      match: () => true,
      rewrite: (n, { b }) => {
        const [q, k, v, kw, kb, vw, vb, gate] = n.inputs as Value[];
        const { heads, kvHeads, scale, grid, blocks, radius, partition, edge } = n.attrs;
        const C = q!.type.shape[2]!, dh = C / heads;
        const kc = compress(b, k!, kw!, kb!, grid), vc = compress(b, v!, vw!, vb!, grid);
        const global = b.op("gqa_attention", [q!, kc, vc], { heads, kvHeads, scale });
        const local = b.op("bna_attention", [q!, k!, v!], { heads, kvHeads, scale, grid, blocks, radius, partition, edge });
        const key = `${heads}x${dh}`;
        if (!expanders.has(key))
          expanders.set(key, {
            type: { dtype: "f32", shape: [C, heads] },
            source: `gate expand ${key}`,
            load: () => floatTensor([C, heads], gateExpander(C, heads, dh)),
          });
        const expand = b.constant(expanders.get(key)!);
        const g = b.op("linear", [gate!, expand], {});
        return b.op("add", [local, b.op("mul", [g, b.op("sub", [global, local], {})], {})], {});
      },
    });
    return applyRules(g, [lower], { pass: "lower-assa", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
