// depth-to-space-dcr: TFLite's DEPTH_TO_SPACE reads channels in TensorFlow's DCR order
// ((i·r + j)·C + c), PyTorch's pixel shuffle in CRD order (c·r² + i·r + j). The difference is a
// fixed channel permutation, which this pass moves into the weights that produce the channels:
//
//   %y = pixel_shuffle(%x) {NHWC, CRD}   ==>   %y = pixel_shuffle(gather(%x, perm, axis 3)) {NHWC, DCR}
//   gather(reshape(%v), p, last)          ->   reshape(gather(%v, p, last))       (last axis kept)
//   gather(gather(%v, p, a), q, a)        ->   gather(%v, p[q], a)
//   gather(linear(%x, W, b), p, last)     ->   linear(%x, gather(W, p, 0), gather(b, p, 0))
//   gather(lut_to_dense(i, lut), p, a)    ->   lut_to_dense(gather(i, p, a), lut)   (one LUT per tensor)
//   gather(dequantize(q, s), p, 0)        ->   dequantize(gather(q, p, 0), gather(s, p, 0))
//   gather(const, p, a)                   ->   const
//
// In the DiT the permutation lands in the upsample linear's rows and, with the unpatchify
// gather, in the final linear's rows: DEPTH_TO_SPACE then needs no extra op.
import { derivedConst, type Graph, type Node, type Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { gather as gatherKernel } from "../src/kernels/layout.js";
import { intTensor, normAxis, type Tensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";

type GatherNode = Extract<Node, { kind: "gather" }>;

/** The CRD -> DCR channel permutation: gathered channel (i·r + j)·C + c = input channel c·r² + i·r + j. */
export function dcrPermutation(channels: number, r: number): Int32Array {
  const C = channels / (r * r);
  const perm = new Int32Array(channels);
  for (let c = 0; c < C; c++) for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) perm[(i * r + j) * C + c] = c * r * r + i * r + j;
  return perm;
}

/** The data of a constant 1-D index vector feeding `v`, if that is what it is. */
function constIndices(v: Value, ctx: RewriteContext): Tensor | undefined {
  const p = ctx.producer(v);
  return p?.kind === "const" && v.type.shape.length === 1 ? p.attrs.value.load() : undefined;
}

const axisOf = (n: GatherNode) => normAxis(n.attrs.axis, n.inputs[0]!.type.shape.length);
const isLast = (n: GatherNode) => axisOf(n) === n.inputs[0]!.type.shape.length - 1;
const indexConst = (ctx: RewriteContext, what: string, data: Int32Array) => ctx.b.tensorConstant(what, intTensor([data.length], data));

const toDcr = rule("pixel-shuffle-to-dcr", "pixel_shuffle", {
  match: (n) => (n.attrs.layout === "NHWC" && n.attrs.order === "CRD") || "not an NHWC CRD pixel shuffle",
  rewrite: (n, { b }) => {
    const x = n.inputs[0]!, C = x.type.shape[3]!;
    const perm = b.tensorConstant(`dcr order ${C}/${n.attrs.factor}`, intTensor([C], dcrPermutation(C, n.attrs.factor)));
    return b.op("pixel_shuffle", [b.op("gather", [x, perm], { axis: 3 })], { ...n.attrs, order: "DCR" });
  },
});

const throughReshape = rule("gather-through-reshape", "gather", {
  match: (n, ctx) => {
    const r = ctx.producer(n.inputs[0]!);
    if (r?.kind !== "reshape" || !isLast(n) || !constIndices(n.inputs[1]!, ctx)) return "not a constant last-axis gather of a reshape";
    const src = r.inputs[0]!.type.shape;
    return (src.length > 0 && src[src.length - 1] === r.attrs.shape[r.attrs.shape.length - 1]) || "the reshape changes the last axis";
  },
  rewrite: (n, ctx) => {
    const r = ctx.producer(n.inputs[0]!) as Extract<Node, { kind: "reshape" }>;
    const src = r.inputs[0]!;
    const g = ctx.b.op("gather", [src, n.inputs[1]!], { axis: src.type.shape.length - 1 });
    return ctx.b.op("reshape", [g], { shape: [...n.outputs[0]!.type.shape] });
  },
});

const gatherOfGather = rule("gather-of-gather", "gather", {
  match: (n, ctx) => {
    const p = ctx.producer(n.inputs[0]!);
    return (p?.kind === "gather" && axisOf(p) === axisOf(n) && !!constIndices(p.inputs[1]!, ctx) && !!constIndices(n.inputs[1]!, ctx)) || "not two constant gathers on one axis";
  },
  rewrite: (n, ctx) => {
    const p = ctx.producer(n.inputs[0]!) as GatherNode;
    const inner = constIndices(p.inputs[1]!, ctx)!.data, outer = constIndices(n.inputs[1]!, ctx)!.data;
    const composed = Int32Array.from(outer as ArrayLike<number>, (q) => Number((inner as ArrayLike<number>)[q]));
    return ctx.b.op("gather", [p.inputs[0]!, indexConst(ctx, "composed gather", composed)], { axis: n.attrs.axis });
  },
});

const intoLinear = rule("gather-into-linear", "gather", {
  match: (n, ctx) => {
    const l = ctx.producer(n.inputs[0]!);
    return (l?.kind === "linear" && isLast(n) && ctx.useCount(n.inputs[0]!) === 1 && !!constIndices(n.inputs[1]!, ctx)) || "not the only constant last-axis gather of a linear";
  },
  rewrite: (n, ctx) => {
    const l = ctx.producer(n.inputs[0]!) as Extract<Node, { kind: "linear" }>;
    const [x, w, bias] = l.inputs;
    const rows = (v: Value) => ctx.b.op("gather", [v, n.inputs[1]!], { axis: 0 });
    return ctx.b.op("linear", bias ? [x!, rows(w!), rows(bias)] : [x!, rows(w!)], {});
  },
});

const throughLut = rule("gather-through-lut", "gather", {
  match: (n, ctx) => {
    const l = ctx.producer(n.inputs[0]!);
    return (l?.kind === "lut_to_dense" && l.inputs[1]!.type.shape.length === 1) || "not a per-tensor palettized weight";
  },
  rewrite: (n, ctx) => {
    const l = ctx.producer(n.inputs[0]!)!;
    return ctx.b.op("lut_to_dense", [ctx.b.op("gather", [l.inputs[0]!, n.inputs[1]!], n.attrs), l.inputs[1]!], {});
  },
});

const throughDequantize = rule("gather-through-dequantize", "gather", {
  match: (n, ctx) => (ctx.producer(n.inputs[0]!)?.kind === "dequantize" && axisOf(n) === 0 && n.inputs[1]!.type.shape.length === 1) || "not a row gather of an int8 weight",
  rewrite: (n, ctx) => {
    const d = ctx.producer(n.inputs[0]!)!;
    const rows = (v: Value) => ctx.b.op("gather", [v, n.inputs[1]!], { axis: 0 });
    return ctx.b.op("dequantize", [rows(d.inputs[0]!), rows(d.inputs[1]!)], {});
  },
});

const foldIntoConstant = rule("fold-gather-into-constant", "gather", {
  match: (n, ctx) => (ctx.producer(n.inputs[0]!)?.kind === "const" && !!constIndices(n.inputs[1]!, ctx)) || "not a constant gather of a constant",
  rewrite: (n, ctx) => {
    const c = (ctx.producer(n.inputs[0]!) as Extract<Node, { kind: "const" }>).attrs.value;
    const idx = constIndices(n.inputs[1]!, ctx)!, axis = axisOf(n);
    return ctx.b.constant(derivedConst(c, { type: n.outputs[0]!.type, source: `${c.source} gathered on axis ${axis}`, load: () => gatherKernel(c.load(), idx, axis) }));
  },
});

export const depthToSpaceDcr = definePass({
  name: "depth-to-space-dcr",
  summary: "NHWC pixel shuffles to DCR order, the channel permutation folded into the producing weights",
  requires: ["layout:nhwc"],
  ensures: [],
  defaults: {},
  run: (g: Graph, _o, log) =>
    applyRules(g, [toDcr, throughReshape, gatherOfGather, intoLinear, throughLut, throughDequantize, foldIntoConstant], { pass: "depth-to-space-dcr", ...(log ? { log } : {}) }).graph,
});
