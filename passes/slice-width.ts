// slice-width: the supernetwork (the model at full width) -> its width-w sub-network (docs/model.md, elastic widths).
//
//   %w = const "down.0.ffn.fc1.weight" : f32[1024,256]        kept: rows < 4·Dw, columns < Dw
//   %h = linear(%x, %w, %b) : f32[1,64,1024]                  kept: ·, ·, < 4·Dw
//     ==>  %w = const "down.0.ffn.fc1.weight" : f32[512,128]
//          %h = linear(%x, %w, %b) : f32[1,64,512]
//
// Every value carries, per axis, the full-width indices it keeps (KeptAxes). Constants state
// theirs through ConstValue.atWidth (shared weights their slice; isolated parameters and
// width-dependent tables the entries they stand for); graph inputs keep everything. One rule per
// op kind checks that operands agree where the op combines them (a linear's input channels and
// its weight's columns, the two sides of an add), derives the results' kept sets and rewrites
// the attributes that name a width (reshape targets, slice sizes, the attention scale
// 1/√dh_w). The op's own type inference then gives the narrowed shapes, so the sub-network is
// checked as it is built, and a graph whose outputs would come out narrowed is refused.
// It runs on the supernetwork as the model builder makes it, before any other pass.
import { fail } from "../src/diagnostics.js";
import { GraphBuilder } from "../src/ir/builder.js";
import type { ConstValue, Graph, KeptAxes, TensorType, Value } from "../src/ir/graph.js";
import type { AttrsOf, OpKind } from "../src/ops/index.js";
import { broadcastShapes } from "../src/kernels/elementwise.js";
import { definePass } from "../src/pipeline/pass.js";

type Kept = Int32Array | null;

/** An operand as the rules see it: its full-width type and what the sub-network keeps of it. */
interface Operand {
  type: TensorType;
  kept: KeptAxes;
}

type Narrowing<A> = { attrs: A; kept: KeptAxes[] };
type NarrowRule<K extends OpKind> = (attrs: AttrsOf<K>, ins: readonly Operand[]) => Narrowing<AttrsOf<K>>;

/** Raised by a rule; the walk adds the node and scope. */
class Mismatch extends Error {}

const all = (rank: number): KeptAxes => new Array<Kept>(rank).fill(null);
const count = (k: Kept, size: number) => (k ? k.length : size);
const indices = (k: Kept, size: number): Int32Array => k ?? Int32Array.from({ length: size }, (_, i) => i);
/** null for a set that is the whole axis, so "kept whole" has one representation. */
const normalize = (k: Int32Array, size: number): Kept => (k.length === size && k.every((v, i) => v === i) ? null : k);

function sameKept(a: Kept, b: Kept, size: number): boolean {
  if (a === b) return true;
  const x = indices(a, size), y = indices(b, size);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function agree(a: Kept, b: Kept, size: number, what: string): void {
  if (!sameKept(a, b, size)) throw new Mismatch(`${what} keep different channels (${describe(a, size)} vs ${describe(b, size)})`);
}

function describe(k: Kept, size: number): string {
  if (!k) return `all ${size}`;
  return `${k.length} of ${size}: ${[...k.subarray(0, 4)].join(",")}${k.length > 4 ? ",…" : ""}`;
}

const last = (o: Operand) => o.kept[o.kept.length - 1]!;
const lastSize = (o: Operand) => o.type.shape[o.type.shape.length - 1]!;

/**
 * The channels each of `heads` heads keeps, as offsets within a head, if every head keeps the
 * same ones (docs/model.md, elastic widths: the first dh_w of each head's dh).
 */
function perHead(k: Kept, size: number, heads: number, what: string): Kept {
  if (!k) return null;
  const dh = size / heads;
  if (k.length % heads) throw new Mismatch(`${what} keeps ${k.length} channels, not the same number in each of ${heads} heads`);
  const per = k.length / heads, first = k.subarray(0, per);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < per; i++) if (k[h * per + i] !== h * dh + first[i]!) throw new Mismatch(`${what} does not keep the same channels in every head`);
  return normalize(Int32Array.from(first), dh);
}

/** Result kept sets of a reshape: axes regroup, and each group's kept set must stay a product. */
function reshapeKept(from: Operand, to: readonly number[]): KeptAxes {
  const out = all(to.length) as Kept[];
  const inAxes = from.type.shape.map((n, a) => a).filter((a) => from.type.shape[a] !== 1);
  const outAxes = to.map((n, a) => a).filter((a) => to[a] !== 1);
  let i = 0, o = 0;
  while (i < inAxes.length && o < outAxes.length) {
    const gi = [inAxes[i++]!], go = [outAxes[o++]!];
    let pi = from.type.shape[gi[0]!]!, po = to[go[0]!]!;
    while (pi !== po) {
      if (pi < po) gi.push(inAxes[i]!), (pi *= from.type.shape[inAxes[i++]!]!);
      else go.push(outAxes[o]!), (po *= to[outAxes[o++]!]!);
    }
    if (gi.every((a) => !from.kept[a])) continue;
    // the kept flat offsets of the group (ascending: row-major over ascending per-axis sets)
    let flat = Int32Array.of(0);
    for (const a of gi) {
      const ks = indices(from.kept[a]!, from.type.shape[a]!), n = from.type.shape[a]!;
      const next = new Int32Array(flat.length * ks.length);
      let p = 0;
      for (const f of flat) for (const k of ks) next[p++] = f * n + k;
      flat = next;
    }
    let stride = po, product = 1;
    for (const a of go) {
      const n = to[a]!;
      stride /= n;
      const seen = new Uint8Array(n);
      for (const f of flat) seen[Math.floor(f / stride) % n] = 1;
      const ks = Int32Array.from([...seen.keys()].filter((k) => seen[k]));
      product *= ks.length;
      out[a] = normalize(ks, n);
    }
    if (product !== flat.length) throw new Mismatch(`reshape (${from.type.shape}) -> (${to}) would mix kept and dropped channels`);
  }
  return out;
}

const same = <A>(attrs: A, [x]: readonly Operand[]): Narrowing<A> => ({ attrs, kept: [x!.kept] });

const elementwise = <A>(attrs: A, ins: readonly Operand[]): Narrowing<A> => {
  const shape = broadcastShapes(ins[0]!.type.shape, ins[1]!.type.shape)!;
  const kept = shape.map((n, a) => {
    if (n === 1) return null;
    const from = ins.map((o) => ({ o, k: a - (shape.length - o.type.shape.length) })).filter(({ o, k }) => k >= 0 && o.type.shape[k] === n);
    const k0 = from[0]!.o.kept[from[0]!.k]!;
    for (const { o, k } of from.slice(1)) agree(k0, o.kept[k]!, n, `the operands' axis ${a}`);
    return k0;
  });
  return { attrs, kept: [kept] };
};

/** Attention over heads: q, k and v keep the same channels in every head; the scale follows dh_w. */
function attentionScale(scale: number, q: Operand, k: Operand, v: Operand, heads: number, kvHeads: number): number {
  const dh = lastSize(q) / heads;
  const pq = perHead(last(q), lastSize(q), heads, "q"), pk = perHead(last(k), lastSize(k), kvHeads, "k"), pv = perHead(last(v), lastSize(v), kvHeads, "v");
  agree(pq, pk, dh, "q and k heads");
  agree(pq, pv, dh, "q and v heads");
  for (const o of [q, k, v]) if (o.kept.slice(0, -1).some((x) => x)) throw new Mismatch("attention batch and token axes cannot be narrowed");
  const dhw = count(pq, dh);
  // keeps the usual 1/√dh exact as 1/√dh_w
  return dhw === dh ? scale : Math.abs(scale * Math.sqrt(dh) - 1) < 1e-12 ? 1 / Math.sqrt(dhw) : scale * Math.sqrt(dh / dhw);
}

const RULES: { [K in OpKind]?: NarrowRule<K> } = {
  silu: same, sigmoid: same, gelu_tanh: same, tanh: same, exp: same, sin: same, cos: same, neg: same, sqrt: same, rsqrt: same,
  add: elementwise, sub: elementwise, mul: elementwise, div: elementwise, maximum: elementwise, pow: elementwise,
  layer_norm: same, // normalizes over what is kept: LayerNorm over Dw
  linear: (attrs, [x, w, b]) => {
    agree(last(x!), w!.kept[1]!, w!.type.shape[1]!, "linear input and weight columns");
    if (b) agree(b.kept[0]!, w!.kept[0]!, w!.type.shape[0]!, "linear bias and weight rows");
    return { attrs, kept: [[...x!.kept.slice(0, -1), w!.kept[0]!]] };
  },
  conv2d: (attrs, [x, w, b]) => {
    const ch = attrs.layout === "NCHW" ? 1 : 3, spatial = attrs.layout === "NCHW" ? [2, 3] : [1, 2];
    if (attrs.groups !== 1 && (w!.kept.some((k) => k) || x!.kept[ch])) throw new Mismatch("grouped convolutions are not narrowed");
    agree(x!.kept[ch]!, w!.kept[1]!, w!.type.shape[1]!, "conv input channels and weight");
    if (spatial.some((a) => x!.kept[a]) || w!.kept[2] || w!.kept[3]) throw new Mismatch("spatial axes cannot be narrowed");
    if (b) agree(b.kept[0]!, w!.kept[0]!, w!.type.shape[0]!, "conv bias and weight");
    const kept = [...x!.kept];
    kept[ch] = w!.kept[0]!;
    return { attrs, kept: [kept] };
  },
  reshape: (attrs, [x]) => {
    const kept = reshapeKept(x!, attrs.shape);
    return { attrs: { shape: attrs.shape.map((n, a) => count(kept[a]!, n)) }, kept: [kept] };
  },
  transpose: (attrs, [x]) => ({ attrs, kept: [attrs.perm.map((p) => x!.kept[p]!)] }),
  slice: (attrs, [x]) => {
    const size = attrs.size.map((n, a) => {
      const k = x!.kept[a];
      if (!k) return n;
      if (attrs.begin[a] !== 0 || n !== x!.type.shape[a]) throw new Mismatch(`a narrowed axis ${a} can only be sliced whole`);
      return k.length;
    });
    return { attrs: { begin: attrs.begin, size }, kept: [x!.kept] };
  },
  concat: (attrs, ins) => {
    const r = ins[0]!.type.shape.length, axis = attrs.axis < 0 ? attrs.axis + r : attrs.axis;
    const kept = [...ins[0]!.kept];
    for (let a = 0; a < r; a++) if (a !== axis) for (const o of ins.slice(1)) agree(kept[a]!, o.kept[a]!, o.type.shape[a]!, `concatenated operands' axis ${a}`);
    const joined: number[] = [];
    let offset = 0;
    for (const o of ins) {
      for (const k of indices(o.kept[axis]!, o.type.shape[axis]!)) joined.push(offset + k);
      offset += o.type.shape[axis]!;
    }
    kept[axis] = normalize(Int32Array.from(joined), offset);
    return { attrs, kept: [kept] };
  },
  gather: (attrs, [x, idx]) => {
    const r = x!.type.shape.length, axis = attrs.axis < 0 ? attrs.axis + r : attrs.axis;
    if (x!.kept[axis] || idx!.kept.some((k) => k)) throw new Mismatch("a gathered axis cannot be narrowed");
    return { attrs, kept: [[...x!.kept.slice(0, axis), ...idx!.kept, ...x!.kept.slice(axis + 1)]] };
  },
  pixel_shuffle: (attrs, [x]) => {
    const ch = attrs.layout === "NCHW" ? 1 : 3, C = x!.type.shape[ch]!, r2 = attrs.factor ** 2, Cout = C / r2;
    if (x!.kept.some((k, a) => k && a !== ch)) throw new Mismatch("spatial axes cannot be narrowed");
    const k = x!.kept[ch];
    let out: Kept = null;
    if (k) {
      // CRD: channel c·r² + s; DCR: channel s·C' + c. Each kept c must bring all r² of its channels.
      const cOf = (n: number) => (attrs.order === "CRD" ? Math.floor(n / r2) : n % Cout);
      const cs = Int32Array.from(new Set([...k].map(cOf))).sort();
      if (cs.length * r2 !== k.length) throw new Mismatch("pixel shuffle would split a kept output channel's block");
      out = normalize(cs, Cout);
    }
    const kept = all(x!.kept.length) as Kept[];
    kept[ch] = out;
    return { attrs, kept: [kept] };
  },
  qk_norm: (attrs, [x, w, b]) => {
    const dh = lastSize(x!) / attrs.heads, p = perHead(last(x!), lastSize(x!), attrs.heads, "the normalized input");
    agree(p, w!.kept[0]!, dh, "the head channels and the norm weight");
    agree(p, b!.kept[0]!, dh, "the head channels and the norm bias");
    return { attrs, kept: [x!.kept] };
  },
  rope_2d: (attrs, [x]) => {
    const dh = lastSize(x!) / attrs.heads, p = perHead(last(x!), lastSize(x!), attrs.heads, "the rotated input");
    // the sub-network rotates dh_w channels with frequencies over dh_w (docs/model.md, elastic widths), which is its first dh_w
    if (p && !p.every((v, i) => v === i)) throw new Mismatch(`2-D RoPE keeps channels that are not the first of each head (of ${dh})`);
    return { attrs, kept: [x!.kept] };
  },
  gqa_attention: (attrs, [q, k, v]) => ({ attrs: { ...attrs, scale: attentionScale(attrs.scale, q!, k!, v!, attrs.heads, attrs.kvHeads) }, kept: [q!.kept] }),
  bna_attention: (attrs, [q, k, v]) => ({ attrs: { ...attrs, scale: attentionScale(attrs.scale, q!, k!, v!, attrs.heads, attrs.kvHeads) }, kept: [q!.kept] }),
  cross_attention: (attrs, [q, k, v]) => ({ attrs: { ...attrs, scale: attentionScale(attrs.scale, q!, k!, v!, attrs.heads, attrs.heads) }, kept: [q!.kept] }),
  assa_attention: (attrs, [q, k, v, kw, kb, vw, vb, gate]) => {
    const scale = attentionScale(attrs.scale, q!, k!, v!, attrs.heads, attrs.kvHeads);
    for (const [w, b, x, n] of [[kw, kb, k, "k"], [vw, vb, v, "v"]] as const) {
      const C = lastSize(x!);
      agree(w!.kept[0]!, last(x!), C, `${n} and its compression's outputs`);
      if (w!.type.shape[1] !== 1) agree(w!.kept[1]!, last(x!), C, `${n} and its compression's inputs`);
      if (w!.kept[2] || w!.kept[3]) throw new Mismatch("compression kernels cannot be narrowed");
      agree(b!.kept[0]!, last(x!), C, `${n} and its compression's bias`);
    }
    if (gate!.kept.some((g) => g)) throw new Mismatch("the attention gate (one value per head) cannot be narrowed");
    return { attrs: { ...attrs, scale }, kept: [q!.kept] };
  },
};

export const sliceWidth = definePass<{ width: number }>({
  name: "slice-width",
  summary: "narrow the supernetwork to its width-w sub-network (docs/model.md, elastic widths)",
  requires: [],
  ensures: [],
  defaults: { width: 1 },
  run: (g: Graph, { width }, log) => {
    // inputs are kept, every other value is new: numbering after the inputs keeps ids unique
    // (and width 1's graph identical to the supernetwork, ids included)
    const b = new GraphBuilder(Math.max(-1, ...g.inputs.map((v) => v.id)) + 1);
    const now = new Map<Value, { v: Value; kept: KeptAxes }>();
    const narrowed = new Map<ConstValue, { value: ConstValue; kept: KeptAxes }>();
    for (const v of g.inputs) {
      b.adoptInput(v);
      now.set(v, { v, kept: all(v.type.shape.length) });
    }
    let constants = 0;
    for (const node of g.nodes) {
      const where = `${node.kind}${node.scope ? ` in ${node.scope}` : ""}`;
      b.inScope(node.scope, () => {
        if (node.kind === "const") {
          const c = node.attrs.value;
          let r = narrowed.get(c);
          if (!r) narrowed.set(c, (r = c.atWidth ? c.atWidth(width) : { value: c, kept: all(c.type.shape.length) }));
          if (r.value !== c) constants++;
          now.set(node.outputs[0]!, { v: b.constant(r.value), kept: r.kept });
          return;
        }
        const rule = RULES[node.kind] as NarrowRule<OpKind> | undefined;
        if (!rule) throw fail("opType", { node: where, problem: `slice-width has no rule for ${node.kind}: it narrows the supernetwork as the model builder makes it, before other passes` });
        const ins = node.inputs.map((v) => now.get(v)!);
        let r: Narrowing<AttrsOf<OpKind>>;
        try {
          r = rule(node.attrs, node.inputs.map((v, i) => ({ type: v.type, kept: ins[i]!.kept })));
        } catch (e) {
          if (e instanceof Mismatch) throw fail("opType", { node: where, problem: `cannot narrow to width ${width}: ${e.message}` });
          throw e;
        }
        const outs = b.add(node.kind, ins.map((x) => x.v), r.attrs as never);
        node.outputs.forEach((o, i) => {
          const want = o.type.shape.map((n, a) => count(r.kept[i]![a]!, n));
          if (want.some((n, a) => n !== outs[i]!.type.shape[a])) throw fail("opType", { node: where, problem: `slice-width: result (${outs[i]!.type.shape}) differs from the kept channels (${want})` });
          if (o.name !== undefined) outs[i]!.name = o.name;
          now.set(o, { v: outs[i]!, kept: r.kept[i]! });
        });
      });
    }
    const outputs = g.outputs.map((o) => {
      const r = now.get(o)!;
      if (r.kept.some((k) => k)) throw fail("opType", { node: `output ${o.name ?? o.id}`, problem: `width ${width} would narrow a model output (${o.type.shape} -> ${r.v.type.shape})` });
      return r.v;
    });
    log?.(`slice-width: width ${width}, ${constants} constants narrowed`);
    return b.finish(outputs);
  },
});
