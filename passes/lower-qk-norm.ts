// lower-qk-norm: per-head LayerNorm with a shared affine, as a reshape that exposes the head
// axis, one layer_norm over the head's channels, and the reshape back (docs/model.md step 4).
//
//   %y = qk_norm(%x, %w, %b) {heads=4}        tokens: reshape (B,L,4,dh) -> layer_norm(axis 3, w, b) -> reshape (B,L,C)
//                                      ==>    nchw:   toCF -> reshape (B,4,dh,L) -> layer_norm(axis 2, w, b) -> reshape -> fromCF
//
// Options: layout ("tokens" | "nchw").
import type { Graph } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { fromChannelsFirst, toChannelsFirst } from "../src/ir/views.js";
import { definePass } from "../src/pipeline/pass.js";
import { checkLayout, type LoweringLayout } from "./layout-option.js";

export const lowerQkNorm = definePass<{ layout: LoweringLayout }>({
  name: "lower-qk-norm",
  summary: "qk_norm -> reshape + layer_norm over each head's channels + reshape",
  requires: [],
  ensures: ["qknorm:lowered"],
  defaults: { layout: "tokens" },
  run: (g: Graph, o, log) => {
    const layout = checkLayout("lower-qk-norm", o.layout);
    const lower = rule("qk-norm-to-layer-norm", "qk_norm", {
      match: () => true,
      rewrite: (n, { b }) => {
        const [x, w, bias] = n.inputs as [typeof n.inputs[0], typeof n.inputs[0], typeof n.inputs[0]];
        const [B, L, C] = x.type.shape as [number, number, number];
        const heads = n.attrs.heads, dh = C / heads;
        if (layout === "tokens") {
          const y = b.op("layer_norm", [b.op("reshape", [x], { shape: [B, L, heads, dh] }), w, bias], { axis: 3, eps: n.attrs.eps });
          return b.op("reshape", [y], { shape: [B, L, C] });
        }
        const y = b.op("layer_norm", [b.op("reshape", [toChannelsFirst(b, x)], { shape: [B, heads, dh, L] }), w, bias], { axis: 2, eps: n.attrs.eps });
        return fromChannelsFirst(b, b.op("reshape", [y], { shape: [B, C, 1, L] }));
      },
    });
    return applyRules(g, [lower], { pass: "lower-qk-norm", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
