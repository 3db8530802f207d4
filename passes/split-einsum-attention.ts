// split-einsum-attention: multi-head attention as per-head products, the form Apple's ANE
// transformers and ml-stable-diffusion use (docs/toolchain.md), for gqa_attention and cross_attention.
//
//   %o = gqa_attention(q, k, v) {heads=H, kvHeads=Hkv, scale}
//     ==>  qs = q · scale                                   (pre-scaled: fp16-safe logits)
//          per head h (kv head g = h / (H/Hkv)), per query chunk:
//            nchw:   s = matmul(k_g as (B,1,dh,Lk), q_h as (B,1,dh,lq), transposeA) -> (B,Lk,1,lq)
//                    p = softmax(s, axis 1)
//                    o = einsum("bchk,bkhq->bchq", v_g, p)   (MIL's one einsum form; "matmul" form: matmul)
//            tokens: s = matmul(q_h, k_g, transposeB) (B,lq,Lk); p = softmax(s, -1); o = matmul(p, v_g)
//          concat chunks, then heads, on the channel axis
//
// No transposes: key transposition rides on the matmul flag. Softmax subtracts its max, and no
// mask is used, so nothing overflows in fp16. Queries are chunked so one head's score tensor
// stays within maxScoreBytes at scoreBytes per element (16 MiB of fp16 by default).
// Options: layout ("tokens" | "nchw"), form ("einsum" | "matmul"), maxScoreBytes, scoreBytes.
import { fail } from "../src/diagnostics.js";
import type { GraphBuilder } from "../src/ir/builder.js";
import type { Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { fromChannelsFirst, toChannelsFirst } from "../src/ir/views.js";
import { floatTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { checkLayout, type LoweringLayout } from "./layout-option.js";

export interface SplitAttentionOptions {
  layout: LoweringLayout;
  form: "einsum" | "matmul";
  maxScoreBytes: number;
  scoreBytes: number;
}

/** Query chunk sizes so each (B, Lk, chunk) score tensor fits the budget. */
export function queryChunks(B: number, Lq: number, Lk: number, o: SplitAttentionOptions): number[] {
  const maxQ = Math.max(1, Math.floor(o.maxScoreBytes / (B * Lk * o.scoreBytes)));
  const n = Math.ceil(Lq / maxQ);
  const base = Math.floor(Lq / n), extra = Lq % n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}

/** `make(i)`, made once per index. */
function memoByIndex<T>(make: (i: number) => T): (i: number) => T {
  const made = new Map<number, T>();
  return (i) => {
    let t = made.get(i);
    if (t === undefined) made.set(i, (t = make(i)));
    return t;
  };
}

function lowerAttention(b: GraphBuilder, q: Value, k: Value, v: Value, heads: number, kvHeads: number, scale: number, o: SplitAttentionOptions): Value {
  const [B, Lq, Cq] = q.type.shape as [number, number, number];
  const Lk = k.type.shape[1]!;
  const Cv = v.type.shape[2]!;
  const dh = Cq / heads, dv = Cv / kvHeads, group = heads / kvHeads;
  const qs = b.op("mul", [q, b.tensorConstant(`attention scale ${scale}`, floatTensor([1], Float32Array.of(scale)))], {});
  const chunks = queryChunks(B, Lq, Lk, o);
  const headOut: Value[] = [];
  if (o.layout === "tokens") {
    const slice3 = (x: Value, c0: number, n: number, t0 = 0, tn = x.type.shape[1]!) => b.op("slice", [x], { begin: [0, t0, c0], size: [B, tn, n] });
    // a kv head's slices are made once and read by every query head of its group
    const kvOf = memoByIndex((g) => [slice3(k, g * dh, dh), slice3(v, g * dv, dv)] as const);
    for (let h = 0; h < heads; h++) {
      const [kg, vg] = kvOf(Math.floor(h / group));
      const parts: Value[] = [];
      let start = 0;
      for (const len of chunks) {
        const s = b.op("matmul", [slice3(qs, h * dh, dh, start, len), kg], { transposeA: false, transposeB: true });
        parts.push(b.op("matmul", [b.op("softmax", [s], { axis: 2 }), vg], { transposeA: false, transposeB: false }));
        start += len;
      }
      headOut.push(parts.length === 1 ? parts[0]! : b.op("concat", parts, { axis: 1 }));
    }
    return headOut.length === 1 ? headOut[0]! : b.op("concat", headOut, { axis: 2 });
  }
  const qc = toChannelsFirst(b, qs), kc = toChannelsFirst(b, k), vc = toChannelsFirst(b, v);
  const slice4 = (x: Value, c0: number, n: number, t0: number, tn: number) => b.op("slice", [x], { begin: [0, c0, 0, t0], size: [B, n, 1, tn] });
  const kvOf = memoByIndex((g) => [b.op("reshape", [slice4(kc, g * dh, dh, 0, Lk)], { shape: [B, 1, dh, Lk] }), slice4(vc, g * dv, dv, 0, Lk)] as const);
  for (let h = 0; h < heads; h++) {
    const [kg, vg] = kvOf(Math.floor(h / group));
    const parts: Value[] = [];
    let start = 0;
    for (const len of chunks) {
      const qh = b.op("reshape", [slice4(qc, h * dh, dh, start, len)], { shape: [B, 1, dh, len] });
      const s = b.op("reshape", [b.op("matmul", [kg, qh], { transposeA: true, transposeB: false })], { shape: [B, Lk, 1, len] });
      const p = b.op("softmax", [s], { axis: 1 });
      parts.push(
        o.form === "einsum"
          ? b.op("einsum", [vg, p], { equation: "bchk,bkhq->bchq" })
          : b.op("reshape", [b.op("matmul", [b.op("reshape", [vg], { shape: [B, 1, dv, Lk] }), b.op("reshape", [p], { shape: [B, 1, Lk, len] })], { transposeA: false, transposeB: false })], { shape: [B, dv, 1, len] }),
      );
      start += len;
    }
    headOut.push(parts.length === 1 ? parts[0]! : b.op("concat", parts, { axis: 3 }));
  }
  return fromChannelsFirst(b, headOut.length === 1 ? headOut[0]! : b.op("concat", headOut, { axis: 1 }));
}

export const splitEinsumAttention = definePass<SplitAttentionOptions>({
  name: "split-einsum-attention",
  summary: "gqa/cross attention -> per-head products with pre-scaled queries, chunked to a score budget",
  requires: ["assa:lowered", "bna:unrolled"],
  ensures: ["attention:lowered"],
  defaults: { layout: "tokens", form: "matmul", maxScoreBytes: 16 * 2 ** 20, scoreBytes: 2 },
  run: (g: Graph, o, log) => {
    checkLayout("split-einsum-attention", o.layout);
    if (o.form !== "einsum" && o.form !== "matmul") throw fail("usage", { detail: `pass split-einsum-attention: option form must be "einsum" or "matmul", got ${JSON.stringify(o.form)}.` });
    if (o.form === "einsum" && o.layout !== "nchw") throw fail("usage", { detail: 'pass split-einsum-attention: form "einsum" is the channels-first form; use layout "nchw".' });
    const rules = [
      rule("gqa-to-heads", "gqa_attention", {
        match: () => true,
        rewrite: (n, { b }) => lowerAttention(b, n.inputs[0]!, n.inputs[1]!, n.inputs[2]!, n.attrs.heads, n.attrs.kvHeads, n.attrs.scale, o),
      }),
      rule("cross-to-heads", "cross_attention", {
        match: () => true,
        rewrite: (n, { b }) => lowerAttention(b, n.inputs[0]!, n.inputs[1]!, n.inputs[2]!, n.attrs.heads, n.attrs.heads, n.attrs.scale, o),
      }),
    ];
    return applyRules(g, rules, { pass: "split-einsum-attention", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
