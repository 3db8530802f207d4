// precision-fp16: every float value outside the fp32 islands computed in half precision, the
// model's outputs within the fp16 tolerance of the float32 graph's, and no graph too large for it.
import fc from "fast-check";
import { expect, test } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { inScopes } from "../../src/ir/graph.js";
import { isFloat } from "../../src/ir/dtype.js";
import { TOLERANCES } from "../../src/driver/compile.js";
import { compareOutputs } from "../../src/driver/verify.js";
import { POSITION_TABLES_SCOPE } from "../../passes/lower-rope.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { roundToF16InPlace } from "../../src/kernels/fp16.js";
import { randomTensor } from "../helpers.js";
import { caseArb, modelGraph, opCount, runPasses } from "./helpers.js";

const island = inScopes(["t_embed", POSITION_TABLES_SCOPE]);

test("precision-fp16 on whole models: f16 outside the islands, outputs within the fp16 tolerance", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const out = runPasses(graph, [{ pass: "lower-rope" }, { pass: "precision-fp16" }]);
      for (const n of out.nodes) {
        if (n.kind === "const" || n.kind === "cast") continue;
        for (const o of n.outputs) if (isFloat(o.type.dtype)) expect(o.type.dtype, `${n.kind} in ${n.scope}`).toBe(island(n) ? "f32" : "f16");
      }
      expect(opCount(out, "cast")).toBeGreaterThan(0); // the timestep island meets the rest
      // the tolerance `verify` holds an fp16 artifact to
      const want = runGraph(graph, inputs), got = runGraph(out, inputs);
      for (const k of Object.keys(want)) expect(compareOutputs(got[k]!.data as Float32Array, want[k]!.data as Float32Array).relL2, k).toBeLessThanOrEqual(TOLERANCES.fp16.relL2);
    }),
    { numRuns: 5 },
  );
});

test("precision-fp16 takes a graph of more values than a call takes arguments", () => {
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [4] });
  let y = x;
  for (let i = 0; i < 250_000; i++) y = b.op("neg", [y], {});
  y.name = "y";
  const out = runPasses(b.finish([y]), [{ pass: "precision-fp16" }]);
  expect(out.nodes.length).toBe(250_000);
  expect(out.outputs[0]!.type.dtype).toBe("f16");
  // (a chain of negations: the result is x, rounded to f16, with an even count)
  const t = randomTensor([4], 1);
  const got = runGraph(out, { x: t }).y!.data as Float32Array;
  expect(Array.from(got)).toEqual(Array.from(roundToF16InPlace(Float32Array.from(t.data as Float32Array))));
});
