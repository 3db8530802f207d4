// transpose-elimination: removes data movement that layout conversions leave behind.
//
//   %1 = transpose(%0) {[0,2,1]}          %3 = reshape(%0) {[2,4,4,8]}
//   %2 = reshape(%1) {[2,8,4,4]}    ==>
//   %3 = transpose(%2) {[0,2,3,1]}
//
// Rules (greedy until nothing fires):
// - collapse-layout-chain: a chain of reshapes/transposes is replaced by the fewest ops (none, one
//   reshape or transpose, or reshape then transpose) that give the same strided view of its root;
// - fold-layout-into-constant: reshape/transpose of a constant becomes a constant;
// - layout-through-lut: reshape/transpose of a palettized weight moves onto its indices;
// - layout-through-dequantize: the same for an int8 weight whose scaled rows stay put;
// - sink-transpose-through-unary: f(transpose(x)) -> transpose(f(x)), so transposes can meet.
// Decisions come from exact stride analysis (src/ir/views.ts), never from axis sizes matching.
// Implements docs/toolchain.md "transpose elimination".
import { derivedConst, type Graph, type Node, type Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { asReshapeTranspose, asTranspose, isContiguous, reshapeView, rootView, transposeView, type View } from "../src/ir/views.js";
import { transpose as transposeKernel } from "../src/kernels/layout.js";
import { withShape } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { sameShape } from "../src/ops/define.js";

const LAYOUT_OPS = ["reshape", "transpose"] as const;
const UNARY = ["gelu_tanh", "silu", "sigmoid", "tanh", "exp", "sqrt", "rsqrt", "neg", "sin", "cos", "cast"] as const;

function isLayout(n: Node | undefined): n is Extract<Node, { kind: "reshape" | "transpose" }> {
  return n?.kind === "reshape" || n?.kind === "transpose";
}

function step(v: View, n: Extract<Node, { kind: "reshape" | "transpose" }>): View | undefined {
  return n.kind === "transpose" ? transposeView(v, n.attrs.perm) : reshapeView(v, n.attrs.shape);
}

/** The chain of layout ops ending at `n`, farthest first, with the value it starts from. */
function chainOf(n: Node, ctx: RewriteContext): { root: Value; ops: Extract<Node, { kind: "reshape" | "transpose" }>[] } {
  const ops = [n as Extract<Node, { kind: "reshape" | "transpose" }>];
  let root = n.inputs[0]!;
  for (let p = ctx.producer(root); isLayout(p); p = ctx.producer(root)) {
    ops.unshift(p);
    root = p.inputs[0]!;
  }
  return { root, ops };
}

type Canonical = { kind: "same" } | { kind: "reshape" } | { kind: "transpose"; perm: number[] } | { kind: "reshape-transpose"; shape: number[]; perm: number[] };

function canonical(root: Value, v: View): Canonical | undefined {
  const rs = root.type.shape;
  if (isContiguous(v)) return v.shape.length === rs.length && v.shape.every((d, i) => d === rs[i]) ? { kind: "same" } : { kind: "reshape" };
  const perm = asTranspose(v, rs);
  if (perm) return { kind: "transpose", perm };
  const rt = asReshapeTranspose(v, rs);
  return rt ? { kind: "reshape-transpose", ...rt } : undefined;
}

const cost = (c: Canonical) => ({ same: 0, reshape: 1, transpose: 1, "reshape-transpose": 2 })[c.kind];

/** Tries every suffix of the chain, longest first, for a shorter equivalent. */
function bestCollapse(n: Node, ctx: RewriteContext): { root: Value; form: Canonical } | undefined {
  const { root, ops } = chainOf(n, ctx);
  // a lone op improves only by vanishing, which needs its result shaped as its operand: most
  // layout ops are alone and change the shape, so they need no stride analysis
  if (ops.length === 1 && !sameShape(n.outputs[0]!.type.shape, root.type.shape)) return undefined;
  const starts: Value[] = [root, ...ops.slice(0, -1).map((o) => o.outputs[0]!)];
  for (let s = 0; s < ops.length; s++) {
    let v: View | undefined = rootView(starts[s]!.type.shape);
    for (const o of ops.slice(s)) v = v && step(v, o);
    if (!v) continue;
    const form = canonical(starts[s]!, v);
    const len = ops.length - s;
    // the single-op cases only improve on a single op when they drop it entirely
    if (form && (cost(form) < len || (len === 1 && form.kind === "same"))) return { root: starts[s]!, form };
  }
  return undefined;
}

// match finds the collapse and rewrite uses it: the stride analysis runs once per node
const found = new WeakMap<Node, NonNullable<ReturnType<typeof bestCollapse>>>();
const collapseLayoutChain = rule("collapse-layout-chain", LAYOUT_OPS, {
  match: (n, ctx) => {
    const c = bestCollapse(n, ctx);
    if (!c) return "no shorter equivalent chain";
    found.set(n, c);
    return true;
  },
  rewrite: (n, { b }) => {
    const { root, form } = found.get(n)!;
    const shape = [...n.outputs[0]!.type.shape];
    switch (form.kind) {
      case "same":
        return root;
      case "reshape":
        return b.op("reshape", [root], { shape });
      case "transpose":
        return b.op("transpose", [root], { perm: form.perm });
      case "reshape-transpose":
        return b.op("transpose", [b.op("reshape", [root], { shape: form.shape })], { perm: form.perm });
    }
  },
});

const foldLayoutIntoConstant = rule("fold-layout-into-constant", LAYOUT_OPS, {
  match: (n, ctx) => ctx.producer(n.inputs[0]!)?.kind === "const" || "input is not a constant",
  rewrite: (n, ctx) => {
    const c = ctx.producer(n.inputs[0]!) as Extract<Node, { kind: "const" }>;
    const src = c.attrs.value;
    const type = n.outputs[0]!.type;
    const load =
      n.kind === "reshape"
        ? () => withShape(src.load(), type.shape)
        : () => transposeKernel(src.load(), (n as Extract<Node, { kind: "transpose" }>).attrs.perm);
    const what = n.kind === "reshape" ? `reshaped to [${type.shape}]` : `transposed [${(n as Extract<Node, { kind: "transpose" }>).attrs.perm}]`;
    return ctx.b.constant(derivedConst(src, { type, source: `${src.source} ${what}`, load }));
  },
});

// layout(lut_to_dense(i, lut)) -> lut_to_dense(layout(i), lut): moves the layout onto the
// constant indices, where it folds, so a palettized weight reaches its consumer in final layout
const layoutThroughLut = rule("layout-through-lut", LAYOUT_OPS, {
  match: (n, ctx) => {
    const l = ctx.producer(n.inputs[0]!);
    if (l?.kind !== "lut_to_dense") return "input is not a lut_to_dense";
    // per-group LUTs follow axis-0 rows: only layouts that keep axis 0 first and whole may move
    if (l.inputs[1]!.type.shape.length === 2)
      return (n.kind === "transpose" ? n.attrs.perm[0] === 0 : n.attrs.shape[0] === l.outputs[0]!.type.shape[0]) || "a grouped LUT's rows would move";
    return true;
  },
  rewrite: (n, ctx) => {
    const l = ctx.producer(n.inputs[0]!)!;
    const idx = ctx.b.op(n.kind, [l.inputs[0]!], n.attrs as never);
    return ctx.b.op("lut_to_dense", [idx, l.inputs[1]!], {});
  },
});

// layout(dequantize(q, s)) -> dequantize(layout(q), s) when axis 0 (the channel of the scales)
// stays first and whole, so an int8 weight reaches its consumer in final layout too
const layoutThroughDequantize = rule("layout-through-dequantize", LAYOUT_OPS, {
  match: (n, ctx) => {
    const d = ctx.producer(n.inputs[0]!);
    if (d?.kind !== "dequantize") return "input is not a dequantize";
    return (n.kind === "transpose" ? n.attrs.perm[0] === 0 : n.attrs.shape[0] === d.outputs[0]!.type.shape[0]) || "the scaled rows would move";
  },
  rewrite: (n, ctx) => {
    const d = ctx.producer(n.inputs[0]!)!;
    return ctx.b.op("dequantize", [ctx.b.op(n.kind, [d.inputs[0]!], n.attrs as never), d.inputs[1]!], {});
  },
});

const sinkTransposeThroughUnary = rule("sink-transpose-through-unary", UNARY, {
  match: (n, ctx) => ctx.producer(n.inputs[0]!)?.kind === "transpose" || "input is not a transpose",
  rewrite: (n, ctx) => {
    const t = ctx.producer(n.inputs[0]!) as Extract<Node, { kind: "transpose" }>;
    const inner = ctx.b.op(n.kind, [t.inputs[0]!], n.attrs as never);
    return ctx.b.op("transpose", [inner], { perm: t.attrs.perm });
  },
});

export const transposeElimination = definePass({
  name: "transpose-elimination",
  summary: "cancel, fold and sink reshapes/transposes using exact strided-view analysis",
  requires: [],
  ensures: ["transposes:eliminated"],
  defaults: {},
  run: (g: Graph, _o, log) => applyRules(g, [foldLayoutIntoConstant, layoutThroughLut, layoutThroughDequantize, collapseLayoutChain, sinkTransposeThroughUnary], { pass: "transpose-elimination", ...(log ? { log } : {}) }).graph,
});
