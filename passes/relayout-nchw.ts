// relayout-nchw: moves token-major (B, N, C) computation to the channels-first (B, C, 1, N)
// layout of Apple's ANE transformers (docs/toolchain.md, the paper's Supp. §C).
//
//   %2 = linear(%x, %w, %b) : f32[1,256,128]       %t = toCF(%x) : f32[1,128,1,256]
//                                           ==>    %c = conv2d(%t, reshape(%w)[128,128,1,1], %b)
//                                                  %2 = fromCF(%c) : f32[1,256,128]
//
// Each rule is exact for any rank-3 operand: it converts operands with toCF (transpose + reshape),
// computes in channels-first form (linears become 1x1 convs, LayerNorm reduces over C, axes of
// slice/concat/gather/softmax are renamed) and converts the result back. Back-to-back conversions
// then cancel in transpose-elimination, so a chain of converted ops keeps no transposes. A value
// is converted once, in the scope of the node that produced it.
import type { Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { fromChannelsFirst, toChannelsFirst } from "../src/ir/views.js";
import { definePass } from "../src/pipeline/pass.js";

/** Axis a of a (B, N, C) value in its (B, C, 1, N) form. */
const CF_AXIS = [0, 3, 1] as const;
const cfAxis = (a: number) => CF_AXIS[a < 0 ? a + 3 : a]!;

const UNARY = ["gelu_tanh", "silu", "sigmoid", "tanh", "exp", "sqrt", "rsqrt", "neg", "sin", "cos", "cast"] as const;
const BINARY = ["add", "sub", "mul", "div", "maximum", "pow"] as const;

const rank3 = (v: Value) => v.type.shape.length === 3;

export const relayoutNchw = definePass({
  name: "relayout-nchw",
  summary: "token-major (B,N,C) ops to channels-first (B,C,1,N); linears become 1x1 convs",
  requires: [],
  ensures: ["layout:nchw"],
  defaults: {},
  run: (g: Graph, _o, log) => {
    const memo = new Map<Value, Value>();
    /** (B, N, C) -> (B, C, 1, N), once per value, placed with the value's producer */
    const cf = (ctx: RewriteContext, v: Value): Value => {
      let out = memo.get(v);
      if (!out) {
        const scope = ctx.producer(v)?.scope;
        out = ctx.b.inScope(scope, () => toChannelsFirst(ctx.b, v));
        memo.set(v, out);
      }
      return out;
    };
    /** (B, C, 1, N) -> (B, N, C); remembered, so converting the result again returns y itself */
    const back = (ctx: RewriteContext, y: Value) => {
      const t = fromChannelsFirst(ctx.b, y);
      memo.set(t, y);
      return t;
    };
    /** a broadcast operand of rank < 3 is first given leading unit axes */
    const cfOperand = (ctx: RewriteContext, v: Value) =>
      rank3(v) ? cf(ctx, v) : cf(ctx, ctx.b.op("reshape", [v], { shape: [...Array(3 - v.type.shape.length).fill(1), ...v.type.shape] }));

    const rules = [
      // linear(x, W, b) -> fromCF(conv1x1(toCF(x), W[O, I, 1, 1], b))
      rule("linear-to-conv1x1", "linear", {
        match: (n) => rank3(n.inputs[0]!) || "input is not rank 3",
        rewrite: (n, ctx) => {
          const [x, w, bias] = n.inputs;
          const [O, I] = w!.type.shape as [number, number];
          const w4 = ctx.b.op("reshape", [w!], { shape: [O, I, 1, 1] });
          const y = ctx.b.op("conv2d", bias ? [cf(ctx, x!), w4, bias] : [cf(ctx, x!), w4], { stride: [1, 1], pads: [0, 0, 0, 0], groups: 1, layout: "NCHW" });
          return back(ctx, y);
        },
      }),
      // f(x) -> fromCF(f(toCF(x)))
      rule("unary-to-nchw", UNARY, {
        match: (n) => rank3(n.inputs[0]!) || "input is not rank 3",
        rewrite: (n, ctx) => back(ctx, ctx.b.op(n.kind, [cf(ctx, n.inputs[0]!)], n.attrs as never)),
      }),
      // a ∘ b -> fromCF(toCF(a) ∘ toCF(b)); lower-rank operands get leading unit axes first
      rule("binary-to-nchw", BINARY, {
        match: (n) => rank3(n.outputs[0]!) || "result is not rank 3",
        rewrite: (n, ctx) => back(ctx, ctx.b.op(n.kind, n.inputs.map((v) => cfOperand(ctx, v)), {})),
      }),
      // layer_norm over C -> layer_norm over axis 1
      rule("layer-norm-to-nchw", "layer_norm", {
        match: (n) => rank3(n.inputs[0]!) || "input is not rank 3",
        rewrite: (n, ctx) => back(ctx, ctx.b.op("layer_norm", [cf(ctx, n.inputs[0]!), ...n.inputs.slice(1)], { ...n.attrs, axis: cfAxis(n.attrs.axis) })),
      }),
      rule("softmax-to-nchw", "softmax", {
        match: (n) => rank3(n.inputs[0]!) || "input is not rank 3",
        rewrite: (n, ctx) => back(ctx, ctx.b.op("softmax", [cf(ctx, n.inputs[0]!)], { axis: cfAxis(n.attrs.axis) })),
      }),
      // slice of (B, N, C) by [b0, b1, b2] -> slice of (B, C, 1, N) by [b0, b2, 0, b1]
      rule("slice-to-nchw", "slice", {
        match: (n) => rank3(n.inputs[0]!) || "input is not rank 3",
        rewrite: (n, ctx) => {
          const { begin: [b0, b1, b2], size: [s0, s1, s2] } = n.attrs as { begin: number[]; size: number[] };
          return back(ctx, ctx.b.op("slice", [cf(ctx, n.inputs[0]!)], { begin: [b0!, b2!, 0, b1!], size: [s0!, s2!, 1, s1!] }));
        },
      }),
      rule("concat-to-nchw", "concat", {
        match: (n) => n.inputs.every(rank3) || "an operand is not rank 3",
        rewrite: (n, ctx) => back(ctx, ctx.b.op("concat", n.inputs.map((v) => cf(ctx, v)), { axis: cfAxis(n.attrs.axis) })),
      }),
      rule("gather-to-nchw", "gather", {
        match: (n) => (rank3(n.inputs[0]!) && n.inputs[1]!.type.shape.length === 1) || "not a rank-3 gather with 1-D indices",
        rewrite: (n, ctx) => back(ctx, ctx.b.op("gather", [cf(ctx, n.inputs[0]!), n.inputs[1]!], { axis: cfAxis(n.attrs.axis) })),
      }),
    ];
    return applyRules(g, rules, { pass: "relayout-nchw", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
