// lower-rope: axial 2-D RoPE as two multiplies and a channel gather (docs/model.md step 4).
//
//   %y = rope_2d(%x) {heads, grid}    ==>    %y = x · cos + gather(x, pairSwap) · sinSigned
//
// pairSwap exchanges channels 2i and 2i+1; sinSigned is −sin on even channels and +sin on odd
// ones, so (a, b) -> (a cos − b sin, a sin + b cos). The tables are constants for the compiled
// grid: (1, L, C) in token layout, (1, C, 1, L) channels-first. Options: layout.
import type { ConstValue, Graph } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { fromChannelsFirst, toChannelsFirst } from "../src/ir/views.js";
import { floatTensor, intTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import { checkLayout, type LoweringLayout } from "./layout-option.js";

/** cos and signed sin of every (token, channel), token-major (L, C). */
export function ropeTables(heads: number, C: number, grid: readonly [number, number]): { cos: Float32Array; sin: Float32Array } {
  const [Hg, Wg] = grid, L = Hg * Wg, dh = C / heads, half = dh / 2;
  const cos = new Float32Array(L * C), sin = new Float32Array(L * C);
  for (let t = 0; t < L; t++) {
    const pos = [Math.floor(t / Wg), t % Wg];
    for (let ch = 0; ch < C; ch++) {
      const j = ch % dh, part = Math.floor(j / half), i = Math.floor((j % half) / 2);
      const theta = pos[part]! * 10000 ** (-(2 * i) / half);
      cos[t * C + ch] = Math.cos(theta);
      sin[t * C + ch] = (ch % 2 === 0 ? -1 : 1) * Math.sin(theta);
    }
  }
  return { cos, sin };
}

function transposeLC(a: Float32Array, L: number, C: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let t = 0; t < L; t++) for (let c = 0; c < C; c++) out[c * L + t] = a[t * C + c]!;
  return out;
}

export const lowerRope = definePass<{ layout: LoweringLayout }>({
  name: "lower-rope",
  summary: "rope_2d -> x·cos + gather(x, pair swap)·sin with constant tables",
  requires: [],
  ensures: ["rope:lowered"],
  defaults: { layout: "tokens" },
  run: (g: Graph, o, log) => {
    const layout = checkLayout("lower-rope", o.layout);
    // one table per (heads, width, grid): blocks share it, so the artifact stores it once
    const tables = new Map<string, ConstValue>();
    const shared = (key: string, make: () => ConstValue) => tables.get(key) ?? (tables.set(key, make()), tables.get(key)!);
    const lower = rule("rope-to-tables", "rope_2d", {
      match: () => true,
      rewrite: (n, { b }) => {
        const x = n.inputs[0]!;
        const [, L, C] = x.type.shape as [number, number, number];
        const { heads, grid } = n.attrs;
        const tag = `rope ${heads}x${C / heads} on ${grid[0]}x${grid[1]}`;
        let tables: ReturnType<typeof ropeTables> | undefined;
        const get = () => (tables ??= ropeTables(heads, C, grid));
        const swap = b.constant(shared(`${tag} swap`, () => ({ type: { dtype: "i32", shape: [C] }, source: `${tag} pair swap`, load: () => intTensor([C], Int32Array.from({ length: C }, (_, c) => c ^ 1)) })));
        const table = (which: "cos" | "sin") =>
          b.constant(shared(`${tag} ${which}`, () =>
            layout === "tokens"
              ? { type: { dtype: "f32", shape: [1, L, C] }, source: `${tag} ${which}`, load: () => floatTensor([1, L, C], get()[which]) }
              : { type: { dtype: "f32", shape: [1, C, 1, L] }, source: `${tag} ${which} (C,L)`, load: () => floatTensor([1, C, 1, L], transposeLC(get()[which], L, C)) }));
        const xs = layout === "tokens" ? x : toChannelsFirst(b, x);
        const axis = layout === "tokens" ? 2 : 1;
        const y = b.op("add", [b.op("mul", [xs, table("cos")], {}), b.op("mul", [b.op("gather", [xs, swap], { axis }), table("sin")], {})], {});
        return layout === "tokens" ? y : fromChannelsFirst(b, y);
      },
    });
    return applyRules(g, [lower], { pass: "lower-rope", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
