import fc from "fast-check";
import { expect, test } from "vitest";
import { presetConfig } from "../../src/model/config.js";
import { caseArb, modelGraph, opCount, runPasses } from "./helpers.js";

test("lower-assa: every assa_attention becomes one global gqa_attention and one bna_attention, outputs unchanged", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const n = opCount(graph, "assa_attention");
      const after = runPasses(graph, [{ pass: "lower-assa" }], inputs);
      expect(opCount(after, "assa_attention")).toBe(0);
      expect(opCount(after, "bna_attention")).toBe(n);
      expect(opCount(after, "gqa_attention")).toBe(opCount(graph, "gqa_attention") + n);
    }),
    { numRuns: 12 },
  );
});

test("lower-assa leaves a graph without ASSA blocks unchanged", () => {
  const { graph } = modelGraph({ config: presetConfig("micro", { depths: [0, 2, 0] }), width: 1, seed: 0 });
  const after = runPasses(graph, [{ pass: "lower-assa" }]);
  expect(after.nodes.map((n) => n.kind)).toEqual(graph.nodes.map((n) => n.kind));
});
