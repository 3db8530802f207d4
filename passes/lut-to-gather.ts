// lut-to-gather: palettized weights as an in-graph lookup, for targets with no LUT weight format
// (TFLite: docs/formats/tflite.md). GATHER wants int32 indices, so they are stored as
// bytes and cast; 4-bit indices stay 4 bits by reading them in pairs from a 256-row pair table.
//
//   lut_to_dense(%i : u8[S], %lut : [256])   ==>   gather(%lut, cast(%i) {i32}, axis 0)
//   lut_to_dense(%i : u4[S], %lut : [16])    ==>   reshape(gather(%pairs : [256,2], cast(%packed : u8[n/2]) {i32}, axis 0)) {S}
//
// %packed holds two indices per byte, the first in the low nibble; %pairs[b] = (lut[b & 15], lut[b >> 4]).
import { derivedConst, type ConstValue, type Graph, type Node, type Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { tensorBytes } from "../src/io/encode.js";
import { asFloat, floatTensor, numel } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";

const constOf = (v: Value, ctx: RewriteContext): ConstValue | undefined => {
  const p = ctx.producer(v);
  return p?.kind === "const" ? p.attrs.value : undefined;
};

/** The 256 x 2 table that decodes one byte of packed 4-bit indices into its two values. */
export function pairTable(lut: Float32Array): Float32Array {
  const t = new Float32Array(512);
  for (let b = 0; b < 256; b++) {
    t[2 * b] = lut[b & 15]!;
    t[2 * b + 1] = lut[b >> 4]!;
  }
  return t;
}

export const lutToGather = definePass<{ pairs: boolean }>({
  name: "lut-to-gather",
  summary: "palettized weights -> cast + gather from the LUT (4-bit indices read in pairs)",
  requires: [],
  ensures: [],
  defaults: { pairs: true },
  run: (g: Graph, o, log) => {
    const expand = rule("lut-to-gather", "lut_to_dense", {
      match: (n, ctx) => (n.inputs[1]!.type.shape.length === 1 && constOf(n.inputs[0]!, ctx) !== undefined) || "needs constant indices and one LUT per tensor",
      rewrite: (n: Extract<Node, { kind: "lut_to_dense" }>, ctx) => {
        const { b } = ctx;
        const idx = constOf(n.inputs[0]!, ctx)!, lut = constOf(n.inputs[1]!, ctx);
        const shape = [...idx.type.shape], count = numel(shape);
        if (idx.type.dtype === "u4" && lut && o.pairs && count % 2 === 0) {
          const packed = b.constant(derivedConst(idx, { type: { dtype: "u8", shape: [count / 2] }, source: `${idx.source} packed pairs`, load: () => ({ dtype: "u8", shape: [count / 2], data: tensorBytes(idx.load(), "u4") }) }));
          const dtype = lut.type.dtype as "f32" | "f16";
          const pairs = b.constant(derivedConst(lut, { type: { dtype, shape: [256, 2] }, source: `${lut.source} pairs`, load: () => floatTensor([256, 2], pairTable(asFloat(lut.load()).data), dtype) }));
          const rows = b.op("gather", [pairs, b.op("cast", [packed], { to: "i32" })], { axis: 0 });
          return b.op("reshape", [rows], { shape });
        }
        // one index per byte (8-bit palettes, or 4-bit ones that cannot pair up)
        const bytes = idx.type.dtype === "u8" ? n.inputs[0]! : b.constant(derivedConst(idx, { type: { dtype: "u8", shape }, source: `${idx.source} as bytes`, load: () => ({ ...idx.load(), dtype: "u8" }) }));
        return b.op("gather", [n.inputs[1]!, b.op("cast", [bytes], { to: "i32" })], { axis: 0 });
      },
    });
    return applyRules(g, [expand], { pass: "lut-to-gather", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
