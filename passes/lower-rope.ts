// lower-rope: axial 2-D RoPE as two multiplies and a channel gather (docs/model.md step 4).
//
//   %y = rope_2d(%x) {heads, grid}    ==>    %y = x · cos + gather(x, pairSwap) · sinSigned
//
// pairSwap exchanges channels 2i and 2i+1; sinSigned is −sin on even channels and +sin on odd
// ones, so (a, b) -> (a cos − b sin, a sin + b cos). Every head rotates its dh channels the same
// way, so the tables are one head wide and broadcast over the heads: x is seen as
// (B, L, heads, dh) against (1, L, 1, dh) tables in token layout, (B, heads, dh, L) against
// (1, 1, dh, L) channels-first.
//
// The tables are computed in the graph, not stored: the angle of channel j at grid cell (r, c) is
// r·fr(j) + c·fc(j) (fr the frequency on the first dh/2 channels, 0 on the rest; fc the other way
// round), from position vectors of Hg and Wg entries and three dh-long vectors. Stored, a table
// pair is 2·L·dh values (1.3 MB in fp16 for the mini preset at 1024²; more than the 4-bit weights
// of a small model); computed, Hg + Wg + 3·dh. The ops run in scope "position_tables", which
// precision-fp16 keeps in fp32 (an angle of 63 rad in half precision is off by 0.03 rad), and CSE
// makes every block, head, q and k of a stage share one pair. Options: layout.
import type { ConstValue, Graph, Value } from "../src/ir/graph.js";
import type { GraphBuilder } from "../src/ir/builder.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { transpose } from "../src/kernels/layout.js";
import { fromChannelsFirst, toChannelsFirst } from "../src/ir/views.js";
import { floatTensor, intTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { checkLayout, type LoweringLayout } from "./layout-option.js";

/** The scope of the table computations (an fp32 island under precision-fp16). */
export const POSITION_TABLES_SCOPE = "position_tables";

/** Per channel j of a head: the row frequency (first half), the column frequency (second half), the sign of its sine. */
export function ropeFrequencies(dh: number): { fr: Float32Array; fc: Float32Array; sign: Float32Array } {
  const half = dh / 2;
  const fr = new Float32Array(dh), fc = new Float32Array(dh), sign = new Float32Array(dh);
  for (let j = 0; j < dh; j++) {
    const i = Math.floor((j % half) / 2), f = 10000 ** (-(2 * i) / half);
    (j < half ? fr : fc)[j] = f;
    sign[j] = j % 2 === 0 ? -1 : 1;
  }
  return { fr, fc, sign };
}

/**
 * The tables as ditc stored them before they were computed in the graph: cos and signed sin of
 * every (token, channel) of every head, (L, C). Kept only as the benchmark's baseline
 * (`tables: "stored-per-channel"`), which measures what computing them saves.
 */
function perChannelTables(heads: number, C: number, grid: readonly [number, number]): { cos: Float32Array; sin: Float32Array } {
  const L = grid[0] * grid[1], dh = C / heads, one = ropeFrequencies(dh);
  const cos = new Float32Array(L * C), sin = new Float32Array(L * C);
  for (let t = 0; t < L; t++) {
    const r = Math.floor(t / grid[1]), c = t % grid[1];
    for (let ch = 0; ch < C; ch++) {
      const j = ch % dh, angle = r * one.fr[j]! + c * one.fc[j]!;
      cos[t * C + ch] = Math.cos(angle);
      sin[t * C + ch] = one.sign[j]! * Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Channel c's partner in its (even, odd) pair: c ^ 1. */
function pairSwap(C: number): Int32Array {
  const p = new Int32Array(C);
  for (let c = 0; c < C; c++) p[c] = c ^ 1;
  return p;
}

export const lowerRope = definePass<{ layout: LoweringLayout; tables: "computed" | "stored-per-channel" }>({
  name: "lower-rope",
  summary: "rope_2d -> x·cos + gather(x, pair swap)·sin, one-head tables computed in the graph from position and frequency vectors",
  requires: [],
  ensures: ["rope:lowered"],
  defaults: { layout: "tokens", tables: "computed" },
  run: (g: Graph, o, log) => {
    const layout = checkLayout("lower-rope", o.layout);
    if (o.tables !== "computed" && o.tables !== "stored-per-channel") throw new Error(`internal: lower-rope tables "${o.tables}"`);
    // one constant object per content, so CSE merges the table computations of a stage
    const consts = new Map<string, ConstValue>();
    const shared = (key: string, make: () => ConstValue) => consts.get(key) ?? (consts.set(key, make()), consts.get(key)!);
    const vector = (b: GraphBuilder, name: string, shape: number[], values: () => Float32Array) =>
      b.constant(shared(`${name} ${shape}`, () => ({ type: { dtype: "f32", shape }, source: name, role: "table", load: () => floatTensor(shape, values()) })));
    // tables are loaded by every pass and emitter that reads them: plain loops, not Array.from with a mapping function
    const positions = (n: number) => () => {
      const p = new Float32Array(n);
      for (let i = 0; i < n; i++) p[i] = i;
      return p;
    };

    /** cos and signed sin tables for one (dh, grid), laid out to broadcast against the per-head view of x. */
    const tables = (b: GraphBuilder, dh: number, grid: readonly [number, number]): [Value, Value] =>
      b.inScope(POSITION_TABLES_SCOPE, () => {
        const [Hg, Wg] = grid;
        const f = () => ropeFrequencies(dh);
        const tokens = layout === "tokens";
        // tokens: angle (1, Hg, Wg, dh); channels-first: angle (1, dh, Hg, Wg) (rank 4, as layouts want).
        // Positions 0 … n−1 are one vector per n, shaped by a reshape: a square grid stores it once.
        const along = (n: number, shape: number[]) => b.op("reshape", [vector(b, `positions ${n}`, [n], positions(n))], { shape });
        const rows = along(Hg, tokens ? [1, Hg, 1, 1] : [1, 1, Hg, 1]);
        const cols = along(Wg, tokens ? [1, 1, Wg, 1] : [1, 1, 1, Wg]);
        const chan = tokens ? [1, 1, 1, dh] : [1, dh, 1, 1];
        const fr = vector(b, `rope row freqs dh ${dh}`, chan, () => f().fr);
        const fc = vector(b, `rope col freqs dh ${dh}`, chan, () => f().fc);
        const sign = vector(b, `rope sin signs dh ${dh}`, chan, () => f().sign);
        const angle = b.op("add", [b.op("mul", [rows, fr], {}), b.op("mul", [cols, fc], {})], {});
        const shape = tokens ? [1, Hg * Wg, 1, dh] : [1, 1, dh, Hg * Wg];
        return [b.op("reshape", [b.op("cos", [angle], {})], { shape }), b.op("reshape", [b.op("mul", [b.op("sin", [angle], {}), sign], {})], { shape })];
      });

    const lower = rule("rope-to-tables", "rope_2d", {
      match: () => true,
      rewrite: (n, { b }) => {
        const x = n.inputs[0]!;
        const [B, L, C] = x.type.shape as [number, number, number];
        const { heads, grid } = n.attrs;
        const dh = C / heads;
        const swap = b.constant(shared(`swap ${C}`, () => ({ type: { dtype: "i32", shape: [C] }, source: `pair swap of ${C} channels`, load: () => intTensor([C], pairSwap(C)) })));
        const xs = layout === "tokens" ? x : toChannelsFirst(b, x);
        if (o.tables === "stored-per-channel") {
          const table = (which: "cos" | "sin") => b.constant(shared(`per-channel ${heads} ${C} ${grid} ${which}`, () => ({
            type: { dtype: "f32", shape: layout === "tokens" ? [1, L, C] : [1, C, 1, L] }, source: `rope ${heads}x${dh} on ${grid} ${which}`, role: "table",
            load: () => {
              const t = perChannelTables(heads, C, grid)[which];
              if (layout === "tokens") return floatTensor([1, L, C], t);
              return floatTensor([1, C, 1, L], transpose(floatTensor([L, C], t), [1, 0]).data);
            },
          })));
          const y = b.op("add", [b.op("mul", [xs, table("cos")], {}), b.op("mul", [b.op("gather", [xs, swap], { axis: layout === "tokens" ? 2 : 1 }), table("sin")], {})], {});
          return layout === "tokens" ? y : fromChannelsFirst(b, y);
        }
        const [cos, sin] = tables(b, dh, grid);
        const axis = layout === "tokens" ? 2 : 1;
        const perHead = layout === "tokens" ? [B, L, heads, dh] : [B, heads, dh, L];
        const split = (v: Value) => b.op("reshape", [v], { shape: perHead });
        const y = b.op("add", [b.op("mul", [split(xs), cos], {}), b.op("mul", [split(b.op("gather", [xs, swap], { axis })), sin], {})], {});
        const joined = b.op("reshape", [y], { shape: layout === "tokens" ? [B, L, C] : [B, C, 1, L] });
        return layout === "tokens" ? joined : fromChannelsFirst(b, joined);
      },
    });
    return applyRules(g, [lower], { pass: "lower-rope", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
