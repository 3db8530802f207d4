// High-level attention ops of the model (docs/model.md steps 3–5), on token-major tensors (B, L, C)
// with head-major channels. Their kernels are the reference forms in src/kernels/attention.ts;
// passes lower them to core ops that every target expresses.
import type { TensorType } from "../ir/graph.js";
import type { BnaAttrs, HeadAttrs } from "../kernels/attention.js";
import { assaAttention, bnaAttention, multiHeadAttention, qkNorm, rope2d } from "../kernels/fast.js";
import { asFloat, type Tensor } from "../kernels/tensor.js";
import { check, defineOp, isPositiveInt, requireFloat, requireRank, sameShape } from "./define.js";

const f = (t: Tensor) => asFloat(t);

/** Checks q/k/v against the head counts; returns [B, Lq, Lk, dh]. */
function inferHeads(q: TensorType, k: TensorType, v: TensorType, a: HeadAttrs): [number, number, number, number] {
  for (const [t, n] of [[q, "q"], [k, "k"], [v, "v"]] as const) {
    requireFloat(t, n);
    requireRank(t, 3, n);
  }
  const [B, Lq, Cq] = q.shape as [number, number, number];
  const [Bk, Lk, Ck] = k.shape as [number, number, number];
  check(isPositiveInt(a.heads) && isPositiveInt(a.kvHeads) && a.heads % a.kvHeads === 0, () => `heads ${a.heads} must be a multiple of kvHeads ${a.kvHeads}`);
  check(Cq % a.heads === 0, () => `q width ${Cq} is not divisible by ${a.heads} heads`);
  const dh = Cq / a.heads;
  check(Bk === B && v.shape[0] === B, "q, k and v batch sizes differ");
  check(Ck === a.kvHeads * dh, () => `k width ${Ck} must be kvHeads x head dim = ${a.kvHeads} x ${dh}`);
  check(sameShape(v.shape, k.shape), () => `v (${v.shape.join(", ")}) must match k (${k.shape.join(", ")})`);
  check(a.scale > 0, () => `scale must be positive, got ${a.scale}`);
  return [B, Lq, Lk, dh];
}

function checkBna(a: BnaAttrs, L: number): void {
  const [Hg, Wg] = a.grid;
  check(Hg * Wg === L, () => `grid ${Hg}x${Wg} has ${Hg * Wg} tokens, the sequence has ${L}`);
  check(isPositiveInt(a.blocks) && Number.isInteger(a.radius) && a.radius >= 0, "blocks must be positive and radius non-negative");
  if (a.partition === "raster") check(L % a.blocks === 0, () => `${a.blocks} blocks do not divide ${L} tokens`);
  else {
    const s = Math.round(Math.sqrt(a.blocks));
    check(s * s === a.blocks, () => `tiles need a square block count, got ${a.blocks}`);
    check(Hg % s === 0 && Wg % s === 0, () => `a ${Hg}x${Wg} grid does not split into ${s}x${s} equal tiles`);
  }
}

/** Multi-head attention with GQA grouping; self-attention when Lq = Lk, any Lk otherwise. */
const gqa_attention = defineOp<HeadAttrs>({
  operands: ["q", "k", "v"],
  infer: ([q, k, v], a) => {
    inferHeads(q!, k!, v!, a);
    return [q!];
  },
  kernel: ([q, k, v], a) => [multiHeadAttention(f(q!), f(k!), f(v!), a)],
});

/** Text cross-attention: queries from image tokens, keys/values from context, no mask. */
const cross_attention = defineOp<{ heads: number; scale: number }>({
  operands: ["q", "k", "v"],
  infer: ([q, k, v], a) => {
    inferHeads(q!, k!, v!, { ...a, kvHeads: a.heads });
    check(k!.shape[2] === q!.shape[2], "cross-attention q and k widths differ");
    return [q!];
  },
  kernel: ([q, k, v], a) => [multiHeadAttention(f(q!), f(k!), f(v!), { ...a, kvHeads: a.heads })],
});

/** Blockwise neighborhood attention, the local branch of ASSA. */
const bna_attention = defineOp<HeadAttrs & BnaAttrs>({
  operands: ["q", "k", "v"],
  infer: ([q, k, v], a) => {
    const [, Lq, Lk] = inferHeads(q!, k!, v!, a);
    check(Lq === Lk, "BNA is self-attention: q and k lengths differ");
    checkBna(a, Lq);
    return [q!];
  },
  kernel: ([q, k, v], a) => [bnaAttention(f(q!), f(k!), f(v!), a)],
});

/** ASSA: gate-blended global (2x2-compressed keys/values) and local (BNA) attention. */
const assa_attention = defineOp<HeadAttrs & BnaAttrs>({
  operands: ["q", "k", "v", "k_compress_weight", "k_compress_bias", "v_compress_weight", "v_compress_bias", "gate"],
  infer: ([q, k, v, kw, kb, vw, vb, gate], a) => {
    const [B, L] = inferHeads(q!, k!, v!, a);
    checkBna(a, L);
    const C = k!.shape[2]!;
    check(a.grid[0] % 2 === 0 && a.grid[1] % 2 === 0, () => `KV compression needs an even grid, got ${a.grid[0]}x${a.grid[1]}`);
    for (const [w, b, n] of [[kw, kb, "k"], [vw, vb, "v"]] as const) {
      requireRank(w!, 4, `${n}_compress weight`);
      const [O, I, KH, KW] = w!.shape;
      check(O === C && KH === 2 && KW === 2 && (I === 1 || I === C), () => `${n}_compress weight must be (${C}, 1 or ${C}, 2, 2), got (${w!.shape.join(", ")})`);
      check(sameShape(b!.shape, [C]), () => `${n}_compress bias must be (${C})`);
    }
    check(sameShape(gate!.shape, [B, L, a.heads]), () => `gate must be (${B}, ${L}, ${a.heads}), got (${gate!.shape.join(", ")})`);
    return [q!];
  },
  kernel: ([q, k, v, kw, kb, vw, vb, gate], a) => [
    assaAttention(f(q!), f(k!), f(v!), { kCompressW: f(kw!), kCompressB: f(kb!), vCompressW: f(vw!), vCompressB: f(vb!), gate: f(gate!) }, a),
  ],
});

const rope_2d = defineOp<{ heads: number; grid: [number, number] }>({
  operands: ["x"],
  infer: ([x], a) => {
    requireFloat(x!, "x");
    requireRank(x!, 3, "x");
    const C = x!.shape[2]!;
    check(C % a.heads === 0 && (C / a.heads) % 4 === 0, () => `2-D RoPE needs a head dim divisible by 4, got ${C}/${a.heads}`);
    check(a.grid[0] * a.grid[1] === x!.shape[1], () => `grid ${a.grid[0]}x${a.grid[1]} does not match ${x!.shape[1]} tokens`);
    return [x!];
  },
  kernel: ([x], a) => [rope2d(f(x!), a.heads, a.grid)],
});

const qk_norm = defineOp<{ heads: number; eps: number }>({
  operands: ["x", "weight", "bias"],
  infer: ([x, w, b], a) => {
    requireFloat(x!, "x");
    const C = x!.shape[x!.shape.length - 1]!;
    check(C % a.heads === 0, () => `width ${C} is not divisible by ${a.heads} heads`);
    const dh = C / a.heads;
    check(sameShape(w!.shape, [dh]) && sameShape(b!.shape, [dh]), () => `weight and bias must be (${dh}), got (${w!.shape}) and (${b!.shape})`);
    return [x!];
  },
  kernel: ([x, w, b], a) => [qkNorm(f(x!), f(w!), f(b!), a.heads, a.eps)],
});

export const attentionOps = { gqa_attention, cross_attention, bna_attention, assa_attention, rope_2d, qk_norm };
