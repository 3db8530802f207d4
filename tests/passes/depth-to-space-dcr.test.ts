import fc from "fast-check";
import { expect, test } from "vitest";
import { dcrPermutation } from "../../passes/depth-to-space-dcr.js";
import { opDef } from "../../src/ops/index.js";
import { intTensor } from "../../src/kernels/tensor.js";
import { presetConfig } from "../../src/model/config.js";
import { randomTensor } from "../helpers.js";
import { caseArb, modelGraph, opCount, runPasses } from "./helpers.js";

test("a DCR pixel shuffle of the permuted channels is the CRD pixel shuffle", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.nat(99), (C, r, hw, seed) => {
      const x = randomTensor([1, hw, hw + 1, C * r * r], seed);
      const ps = opDef("pixel_shuffle"), gather = opDef("gather");
      const crd = ps.kernel([x], { factor: r, layout: "NHWC", order: "CRD" })[0]!;
      const permuted = gather.kernel([x, intTensor([C * r * r], dcrPermutation(C * r * r, r))], { axis: 3 })[0]!;
      const dcr = ps.kernel([permuted], { factor: r, layout: "NHWC", order: "DCR" })[0]!;
      expect([...dcr.data]).toEqual([...crd.data]);
    }),
    { numRuns: 30 },
  );
});

const pre = [{ pass: "lower-assa" }, { pass: "relayout-nhwc" }, { pass: "transpose-elimination" }];

test("depth-to-space-dcr: the permutation folds into the upsample and final linears, no gather is left there", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const out = runPasses(graph, [...pre, { pass: "depth-to-space-dcr" }], inputs);
      const shuffles = out.nodes.filter((n) => n.kind === "pixel_shuffle");
      expect(shuffles.length).toBe(2);
      expect(shuffles.every((n) => n.kind === "pixel_shuffle" && n.attrs.order === "DCR")).toBe(true);
      // the unpatchify gather folded too
      expect(out.nodes.filter((n) => n.kind === "gather" && (n.scope === "upsample" || n.scope === "final")).length).toBe(0);
    }),
    { numRuns: 8 },
  );
});

test("depth-to-space-dcr on palettized weights moves the permutation onto the indices", () => {
  const { graph, inputs } = modelGraph({ config: presetConfig("micro"), width: 0.5, seed: 4 });
  const bits = { "upsample.weight": 4 as const, "final.linear.weight": 8 as const };
  const quantized = runPasses(graph, [{ pass: "palettize", options: { bits } }]);
  const out = runPasses(quantized, [...pre, { pass: "depth-to-space-dcr" }], inputs);
  expect(opCount(out, "lut_to_dense")).toBe(2);
  expect(out.nodes.filter((n) => n.kind === "gather" && (n.scope === "upsample" || n.scope === "final")).length).toBe(0);
});
