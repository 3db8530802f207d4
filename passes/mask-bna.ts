// mask-bna: blockwise neighbourhood attention as dense attention over all tokens with an
// additive mask, exactly the reference kernel's formulation (docs/model.md step 5) in core ops. It is the
// unoptimized baseline that unroll-bna is measured against; no target pipeline uses it.
//
//   %o = bna_attention(q, k, v)   ==>   per head: softmax(q_h k_gᵀ · scale + M) v_g,  M = 0 in window, −1e9 outside
import type { ConstValue, Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { bnaMask } from "../src/kernels/attention.js";
import { floatTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";

/** Large enough that exp underflows to 0 in fp32, finite so a masked sum never makes NaN. */
const MASKED = -1e9;

export const maskBna = definePass({
  name: "mask-bna",
  summary: "bna_attention -> dense per-head attention with an additive window mask (baseline)",
  requires: [],
  ensures: ["bna:unrolled"],
  defaults: {},
  run: (g: Graph, _o, log) => {
    const masks = new Map<string, ConstValue>(); // one mask per window layout, shared by blocks
    const lower = rule("bna-to-masked-attention", "bna_attention", {
      match: () => true,
      rewrite: (n, { b }) => {
        const [q, k, v] = n.inputs as [Value, Value, Value];
        const [B, L, Cq] = q.type.shape as [number, number, number];
        const { heads, kvHeads, scale } = n.attrs;
        const dh = Cq / heads, dv = v.type.shape[2]! / kvHeads, group = heads / kvHeads;
        const allowed = bnaMask(n.attrs);
        const source = `bna mask ${n.attrs.partition} ${n.attrs.edge} ${n.attrs.grid.join("x")} nb${n.attrs.blocks} r${n.attrs.radius}`;
        if (!masks.has(source))
          masks.set(source, { type: { dtype: "f32", shape: [L, L] }, source, load: () => floatTensor([L, L], Float32Array.from({ length: L * L }, (_, i) => (allowed(Math.floor(i / L), i % L) ? 0 : MASKED))) });
        const mask = b.constant(masks.get(source)!);
        const qs = b.op("mul", [q, b.tensorConstant(`attention scale ${scale}`, floatTensor([1], Float32Array.of(scale)))], {});
        const slice = (x: Value, c0: number, c: number) => b.op("slice", [x], { begin: [0, 0, c0], size: [B, L, c] });
        const outs: Value[] = [];
        for (let h = 0; h < heads; h++) {
          const kv = Math.floor(h / group);
          const s = b.op("add", [b.op("matmul", [slice(qs, h * dh, dh), slice(k, kv * dh, dh)], { transposeA: false, transposeB: true }), mask], {});
          outs.push(b.op("matmul", [b.op("softmax", [s], { axis: 2 }), slice(v, kv * dv, dv)], { transposeA: false, transposeB: false }));
        }
        return outs.length === 1 ? outs[0]! : b.op("concat", outs, { axis: 2 });
      },
    });
    return applyRules(g, [lower], { pass: "mask-bna", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
