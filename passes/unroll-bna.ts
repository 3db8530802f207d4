// unroll-bna: blockwise neighbourhood attention as one static attention per block over its
// window, fully unrolled (docs/model.md step 5; the paper runs BNA as a loop over blocks).
//
//   %o = bna_attention(q, k, v) {nb=16, r=1, raster}
//     ==>  for block b: o_b = gqa_attention(q[block b], k[window b], v[window b])
//          %o = concat(o_0 … o_15)
//
// raster: blocks are runs of L/nb tokens, windows contiguous runs of blocks (static slices on
// the token axis). tiles: blocks are rectangles of the grid and windows rectangles of tiles, so
// each is one static slice of the (B, H, W, C) or (B, C, H, W) view; outputs are reassembled
// with concats along W, then H. clamp/shift windows come from the reference's bnaWindow, so
// both forms use the same definition. Options: layout.
import type { GraphBuilder } from "../src/ir/builder.js";
import type { Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { fromChannelsFirst, toChannelsFirst } from "../src/ir/views.js";
import { bnaWindow } from "../src/kernels/attention.js";
import { definePass } from "../src/pipeline/pass.js";
import { checkLayout, type LoweringLayout } from "./layout-option.js";

/** Slices and reassembly of the token axis in one layout. */
interface TokenView {
  /** tokens [start, start+len) as a (B, len, C) value */
  run(x: Value, start: number, len: number): Value;
  /** the rectangle rows [r, r+h) x cols [c, c+w) as (B, h·w, C) */
  rect(x: Value, r: number, c: number, h: number, w: number): Value;
  /** concat (B, n_i, C) token runs in order */
  joinRuns(parts: Value[]): Value;
  /** reassemble tile outputs (rows of (B, th·tw, C)) into the (B, L, C) raster order */
  joinTiles(rows: Value[][], th: number, tw: number): Value;
}

function tokenView(b: GraphBuilder, layout: LoweringLayout, grid: readonly [number, number]): TokenView {
  const [Hg, Wg] = grid;
  if (layout === "tokens") {
    const map = (x: Value) => {
      const [B, , C] = x.type.shape as [number, number, number];
      return b.op("reshape", [x], { shape: [B, Hg, Wg, C] });
    };
    return {
      run: (x, start, len) => {
        const [B, , C] = x.type.shape as [number, number, number];
        return b.op("slice", [x], { begin: [0, start, 0], size: [B, len, C] });
      },
      rect: (x, r, c, h, w) => {
        const [B, , C] = x.type.shape as [number, number, number];
        return b.op("reshape", [b.op("slice", [map(x)], { begin: [0, r, c, 0], size: [B, h, w, C] })], { shape: [B, h * w, C] });
      },
      joinRuns: (parts) => (parts.length === 1 ? parts[0]! : b.op("concat", parts, { axis: 1 })),
      joinTiles: (rows, th, tw) => {
        const [B, , C] = rows[0]![0]!.type.shape as [number, number, number];
        const tile = (t: Value) => b.op("reshape", [t], { shape: [B, th, tw, C] });
        const joined = rows.map((row) => (row.length === 1 ? tile(row[0]!) : b.op("concat", row.map(tile), { axis: 2 })));
        const all = joined.length === 1 ? joined[0]! : b.op("concat", joined, { axis: 1 });
        return b.op("reshape", [all], { shape: [B, Hg * Wg, C] });
      },
    };
  }
  // channels-first: slice the (B, C, 1, L) / (B, C, H, W) views, hand (B, n, C) to the attention
  const memo = new Map<Value, Value>();
  const cf = (x: Value) => memo.get(x) ?? (memo.set(x, toChannelsFirst(b, x)), memo.get(x)!);
  return {
    run: (x, start, len) => {
      const [B, , C] = x.type.shape as [number, number, number];
      return fromChannelsFirst(b, b.op("slice", [cf(x)], { begin: [0, 0, 0, start], size: [B, C, 1, len] }));
    },
    rect: (x, r, c, h, w) => {
      const [B, , C] = x.type.shape as [number, number, number];
      const m = b.op("reshape", [cf(x)], { shape: [B, C, Hg, Wg] });
      return fromChannelsFirst(b, b.op("reshape", [b.op("slice", [m], { begin: [0, 0, r, c], size: [B, C, h, w] })], { shape: [B, C, 1, h * w] }));
    },
    joinRuns: (parts) => (parts.length === 1 ? parts[0]! : fromChannelsFirst(b, b.op("concat", parts.map((p) => toChannelsFirst(b, p)), { axis: 3 }))),
    joinTiles: (rows, th, tw) => {
      const [B, , C] = rows[0]![0]!.type.shape as [number, number, number];
      const tile = (t: Value) => b.op("reshape", [toChannelsFirst(b, t)], { shape: [B, C, th, tw] });
      const joined = rows.map((row) => (row.length === 1 ? tile(row[0]!) : b.op("concat", row.map(tile), { axis: 3 })));
      const all = joined.length === 1 ? joined[0]! : b.op("concat", joined, { axis: 2 });
      return fromChannelsFirst(b, b.op("reshape", [all], { shape: [B, C, 1, Hg * Wg] }));
    },
  };
}

export const unrollBna = definePass<{ layout: LoweringLayout }>({
  name: "unroll-bna",
  summary: "bna_attention -> one static gqa_attention per block over its window, unrolled",
  requires: [],
  ensures: ["bna:unrolled"],
  defaults: { layout: "tokens" },
  run: (g: Graph, o, log) => {
    const layout = checkLayout("unroll-bna", o.layout);
    const unroll = rule("bna-to-blocks", "bna_attention", {
      match: () => true,
      rewrite: (n, { b }) => {
        const [q, k, v] = n.inputs as [Value, Value, Value];
        const { heads, kvHeads, scale, grid, blocks, radius, edge } = n.attrs;
        const attn = (qq: Value, kk: Value, vv: Value) => b.op("gqa_attention", [qq, kk, vv], { heads, kvHeads, scale });
        const tv = tokenView(b, layout, grid);
        if (n.attrs.partition === "raster") {
          const per = (grid[0] * grid[1]) / blocks;
          const outs: Value[] = [];
          for (let blk = 0; blk < blocks; blk++) {
            const [lo, hi] = bnaWindow(blk, blocks, radius, edge);
            outs.push(attn(tv.run(q, blk * per, per), tv.run(k, lo * per, (hi - lo + 1) * per), tv.run(v, lo * per, (hi - lo + 1) * per)));
          }
          return tv.joinRuns(outs);
        }
        const s = Math.round(Math.sqrt(blocks)), th = grid[0] / s, tw = grid[1] / s;
        const rows: Value[][] = [];
        for (let tr = 0; tr < s; tr++) {
          const row: Value[] = [];
          const [r0, r1] = bnaWindow(tr, s, radius, edge);
          for (let tc = 0; tc < s; tc++) {
            const [c0, c1] = bnaWindow(tc, s, radius, edge);
            const win = (x: Value) => tv.rect(x, r0 * th, c0 * tw, (r1 - r0 + 1) * th, (c1 - c0 + 1) * tw);
            row.push(attn(tv.rect(q, tr * th, tc * tw, th, tw), win(k), win(v)));
          }
          rows.push(row);
        }
        return tv.joinTiles(rows, th, tw);
      },
    });
    return applyRules(g, [unroll], { pass: "unroll-bna", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
