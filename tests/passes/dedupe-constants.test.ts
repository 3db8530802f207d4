import fc from "fast-check";
import { expect, test } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { randomTensor } from "../helpers.js";
import { caseArb, expectSameOutputs, modelGraph, opCount, runPasses } from "./helpers.js";

test("dedupe-constants (then cse) merges constants with equal bytes, in any shape, and only those", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), fc.nat(1000), (uses, n, seed) => {
      const b = new GraphBuilder();
      const x = b.input("x", { dtype: "f32", shape: [2, n] });
      const table = randomTensor([n], seed).data;
      let y = x;
      // the same table as `uses` separate constant objects, plus one that differs in one element
      for (let i = 0; i < uses; i++) {
        // every other copy is stored as (1, n): the same bytes in another shape
        const shape = i % 2 ? [1, n] : [n];
        y = b.op("add", [y, b.tensorConstant(`table copy ${i}`, floatTensor(shape, table.slice()), "table")], {});
      }
      const other = table.slice();
      other[n - 1]! += 1;
      y = b.op("mul", [y, b.tensorConstant("other", floatTensor([n], other), "table")], {});
      y.name = "y";
      const g = b.finish([y]);
      const out = runPasses(g, [{ pass: "dedupe-constants" }, { pass: "cse" }], { x: randomTensor([2, n], seed + 1) }, 0);
      expect(opCount(out, "const")).toBe(2);
      expect(opCount(out, "reshape")).toBe(uses > 1 ? 1 : 0);
      expectSameOutputs(g, out, { x: randomTensor([2, n], seed + 2) }, 0);
    }),
    { numRuns: 40 },
  );
});

test("on models: every pipeline ends with it and outputs are unchanged", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const lowered = runPasses(graph, [{ pass: "lower-assa" }, { pass: "unroll-bna", options: { layout: "tokens" } }, { pass: "lower-rope", options: { layout: "tokens" } }, { pass: "lower-qk-norm", options: { layout: "tokens" } }]);
      const out = runPasses(lowered, [{ pass: "dedupe-constants" }, { pass: "cse" }], inputs, 0);
      expect(opCount(out, "const")).toBeLessThanOrEqual(opCount(lowered, "const"));
    }),
    { numRuns: 15 },
  );
});
