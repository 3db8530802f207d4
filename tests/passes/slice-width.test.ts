// slice-width against an independent path: over random configs, widths and seeds, the narrowed
// supernetwork computes what the builder makes of the smaller config (hidden = w·D) with weights
// cut offline by tests/model/offline-slicer.ts. Width 1 changes nothing; graphs the rules cannot
// narrow consistently are refused with the node named.
import fc from "fast-check";
import { expect, test } from "vitest";
import { sliceWidth } from "../../passes/slice-width.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { ConstValue } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/print.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { buildSupernetwork } from "../../src/model/build.js";
import { presetConfig } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { randomTensor, relErr } from "../helpers.js";
import { offlineSlicedSource } from "../model/offline-slicer.js";
import { caseArb } from "./helpers.js";

test("the narrowed supernetwork equals the smaller config built from offline-sliced weights (random configs, widths, seeds)", () => {
  let narrowed = 0;
  fc.assert(
    fc.property(caseArb, ({ config, width, seed }) => {
      const sup = syntheticSource(config, seed);
      const inputs = syntheticInputs(config, seed + 1, { batch: 2, latentSize: config.latentSize, contextTokens: config.contextTokens });
      const sliced = sliceWidth.run(buildSupernetwork(sup, { batch: 2 }).graph, { width });
      verifyGraph(sliced);
      // the smaller config's own full-width graph: no slicing pass on this side
      const direct = buildSupernetwork(offlineSlicedSource(sup, width), { batch: 2 }).graph;
      const a = runGraph(sliced, inputs).velocity!.data, b = runGraph(direct, inputs).velocity!.data;
      expect(relErr(a, b)).toBeLessThanOrEqual(1e-5);
      if (width === 1) expect(a).toEqual(b);
      else narrowed++;
    }),
    { numRuns: 16, seed: 4242 },
  );
  expect(narrowed).toBeGreaterThan(4);
});

test("width 1 is the identity: the same IR, bit-identical outputs", () => {
  fc.assert(
    fc.property(caseArb, ({ config, seed }) => {
      const g = buildSupernetwork(syntheticSource(config, seed), {}).graph;
      const same = sliceWidth.run(g, { width: 1 });
      expect(printGraph(same)).toBe(printGraph(g));
      const inputs = syntheticInputs(config, seed, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
      expect(runGraph(same, inputs).velocity!.data).toEqual(runGraph(g, inputs).velocity!.data);
    }),
    { numRuns: 6, seed: 7 },
  );
});

/** A (rows, cols) weight whose width-w form keeps the first `keepRows`/`keepCols` (all when undefined). */
function narrowingWeight(rows: number, cols: number, keepRows?: number, keepCols?: number): ConstValue {
  const full = randomTensor([rows, cols], 1);
  const prefix = (n?: number) => (n === undefined ? null : Int32Array.from({ length: n }, (_, i) => i));
  const r = keepRows ?? rows, c = keepCols ?? cols;
  const cut = floatTensor([r, c], Float32Array.from({ length: r * c }, (_, i) => full.data[Math.floor(i / c) * cols + (i % c)]!));
  return {
    type: { dtype: "f32", shape: [rows, cols] }, source: "w", load: () => full,
    atWidth: () => ({ value: { type: { dtype: "f32", shape: [r, c] }, source: "w sliced", load: () => cut }, kept: [prefix(keepRows), prefix(keepCols)] }),
  };
}

test("operands that keep different channels, narrowed outputs and ops without a rule are refused, naming the node", () => {
  const graph = (w: ConstValue, then?: (b: GraphBuilder, y: ReturnType<GraphBuilder["op"]>) => ReturnType<GraphBuilder["op"]>) => {
    const b = new GraphBuilder();
    const x = b.input("x", { dtype: "f32", shape: [1, 3, 8] });
    let y = b.scoped("blk", () => b.op("linear", [x, b.constant(w)], {}));
    if (then) y = then(b, y);
    y.name = "y";
    return b.finish([y]);
  };
  // the input keeps all 8 channels, the weight only 4 of its columns
  expect(() => sliceWidth.run(graph(narrowingWeight(6, 8, undefined, 4)), { width: 0.5 })).toThrow(/linear in blk: cannot narrow to width 0.5: linear input and weight columns keep different channels \(all 8 vs 4 of 8/);
  // rows narrowed and nothing widens them again: the model's output would shrink
  expect(() => sliceWidth.run(graph(narrowingWeight(6, 8, 3)), { width: 0.5 })).toThrow(/output y: width 0.5 would narrow a model output \(1,3,6 -> 1,3,3\)/);
  expect(() => sliceWidth.run(graph(narrowingWeight(6, 8), (b, y) => b.op("softmax", [y], { axis: -1 })), { width: 0.5 })).toThrow(/slice-width has no rule for softmax/);
  // a reshape that would interleave kept and dropped channels of one axis
  const regroup = graph(narrowingWeight(6, 8, 3), (b, y) => b.op("reshape", [y], { shape: [1, 3, 3, 2] }));
  expect(() => sliceWidth.run(regroup, { width: 0.5 })).toThrow(/reshape .* would mix kept and dropped channels/);
});

test("mini preset (ASSA stages, dense skips, upsample) at widths 0.375 and 0.5 against the offline slicer", () => {
  const config = presetConfig("mini");
  const sup = syntheticSource(config, 11);
  const inputs = syntheticInputs(config, 3, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
  const graph = buildSupernetwork(sup, {}).graph;
  for (const width of [0.375, 0.5] as const) {
    const a = runGraph(sliceWidth.run(graph, { width }), inputs).velocity!.data;
    const b = runGraph(buildSupernetwork(offlineSlicedSource(sup, width), {}).graph, inputs).velocity!.data;
    expect(relErr(a, b)).toBeLessThanOrEqual(1e-5);
  }
});

test("a width the weights do not hold is refused by name, not sliced into fractions", () => {
  const g = buildSupernetwork(syntheticSource(presetConfig("micro", { widths: [0.5, 1] }), 0), {}).graph;
  expect(() => sliceWidth.run(g, { width: 0.375 })).toThrow(/width.*0\.375.*one of the widths synthetic, seed 0 holds: 0\.5, 1/);
  expect(() => sliceWidth.run(g, { width: 0.3 })).toThrow(/0\.3/);
});
