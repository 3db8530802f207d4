import fc from "fast-check";
import { expect, test } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { randomTensor } from "../helpers.js";
import { caseArb, expectSameOutputs, modelGraph, opCount, runPasses } from "./helpers.js";

test("decompose-layer-norm equals layer_norm on any axis, with and without the affine", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }), fc.nat(10), fc.boolean(), fc.nat(99), (shape, axisPick, affine, seed) => {
      const axis = axisPick % shape.length;
      const b = new GraphBuilder();
      const x = b.input("x", { dtype: "f32", shape });
      const C = shape[axis]!;
      const ins = affine ? [x, b.tensorConstant("w", randomTensor([C], seed + 1)), b.tensorConstant("b", randomTensor([C], seed + 2))] : [x];
      const y = b.op("layer_norm", ins, { axis, eps: 1e-6 });
      y.name = "y";
      const g = b.finish([y]);
      const out = runPasses(g, [{ pass: "decompose-layer-norm" }]);
      expect(opCount(out, "layer_norm")).toBe(0);
      expectSameOutputs(g, out, { x: randomTensor(shape, seed, 3) }, 1e-5);
    }),
    { numRuns: 40 },
  );
});

test("decompose-layer-norm on whole models (every LayerNorm and per-head QK norm)", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const out = runPasses(graph, [{ pass: "lower-qk-norm" }, { pass: "decompose-layer-norm" }], inputs);
      expect(opCount(out, "layer_norm")).toBe(0);
      expect(opCount(out, "rsqrt")).toBeGreaterThan(0);
    }),
    { numRuns: 6 },
  );
});
