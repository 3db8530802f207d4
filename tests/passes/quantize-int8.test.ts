import fc from "fast-check";
import { expect, test } from "vitest";
import { runGraph } from "../../src/interp/interpreter.js";
import { compareOutputs } from "../../src/driver/verify.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";
import { palettizableWeights } from "../../src/quant/probe.js";
import { quantizeInt8PerChannel } from "../../src/quant/int8.js";
import { caseArb, modelGraph, opCount, runPasses } from "./helpers.js";

test("per-channel int8: every row spans [-127, 127] and reconstructs within half a step", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 20 }), fc.nat(1000), (rows, cols, seed) => {
      const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 12.9898 + seed) * (1 + (i % cols)));
      const { q, scale } = quantizeInt8PerChannel(w, rows);
      for (let r = 0; r < rows; r++) {
        const row = Array.from(q.subarray(r * cols, (r + 1) * cols));
        if (row.some((x) => x !== 0)) expect(Math.max(...row.map(Math.abs))).toBe(127);
        for (let j = 0; j < cols; j++) expect(Math.abs(q[r * cols + j]! * scale[r]! - w[r * cols + j]!)).toBeLessThanOrEqual(scale[r]! / 2 + 1e-6);
      }
    }),
    { numRuns: 40 },
  );
});

test("quantize-int8: listed weights become dequantize(int8, scales); the tflite lowering keeps them through layout moves", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const names = palettizableWeights(graph, { ungrouped: true }).map((w) => w.name);
      const q = runPasses(graph, [{ pass: "quantize-int8", options: { names } }]);
      expect(opCount(q, "dequantize")).toBe(names.length);
      const ref = runGraph(graph, inputs).velocity as FloatTensor, got = runGraph(q, inputs).velocity as FloatTensor;
      // per-channel int8 of seeded random weights, compounded through every block: a few percent (dequantizing wrongly gives ~1)
      expect(compareOutputs(got.data, ref.data).relL2).toBeLessThan(0.08);
      // relayout and the DCR fold move int8 weights without dequantizing them early
      const lowered = runPasses(q, [{ pass: "lower-assa" }, { pass: "relayout-nhwc" }, { pass: "conv-to-depthwise" }, { pass: "transpose-elimination" }, { pass: "depth-to-space-dcr" }], inputs);
      expect(opCount(lowered, "dequantize")).toBe(names.length);
      expect(lowered.nodes.filter((n) => n.kind === "transpose" || n.kind === "gather").every((n) => n.inputs.every((v) => v.type.dtype !== "i8"))).toBe(true);
    }),
    { numRuns: 6 },
  );
});
