import fc from "fast-check";
import { expect, test } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { presetConfig } from "../../src/model/config.js";
import { expectSameOutputs, modelGraph, opCount, runPasses } from "./helpers.js";

test("lut-to-gather decodes exactly what lut_to_dense does: 4-bit pairs, 4-bit odd counts, 8-bit", () => {
  fc.assert(
    fc.property(fc.constantFrom(4, 8), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 9 }), fc.nat(1000), (bits, rows, cols, seed) => {
      const k = 1 << bits;
      const idx = Uint8Array.from({ length: rows * cols }, (_, i) => (i * 7 + seed) % k);
      const lut = Float32Array.from({ length: k }, (_, i) => Math.sin(i + seed));
      const b = new GraphBuilder();
      const x = b.input("x", { dtype: "f32", shape: [1] });
      const dtype = bits === 4 ? "u4" : "u8";
      const i = b.constant({ type: { dtype, shape: [rows, cols] }, source: "w indices", load: () => ({ dtype, shape: [rows, cols], data: idx }) });
      const l = b.tensorConstant("w lut", floatTensor([k], lut));
      const y = b.op("mul", [b.op("lut_to_dense", [i, l], {}), x], {});
      y.name = "y";
      const g = b.finish([y]);
      const out = runPasses(g, [{ pass: "lut-to-gather" }]);
      expect(opCount(out, "lut_to_dense")).toBe(0);
      expect(out.nodes.some((n) => n.kind === "const" && n.outputs[0]!.type.dtype === "u4")).toBe(false);
      const pairs = bits === 4 && (rows * cols) % 2 === 0;
      expect(out.nodes.some((n) => n.kind === "const" && n.outputs[0]!.type.shape.join() === "256,2")).toBe(pairs);
      expectSameOutputs(g, out, { x: floatTensor([1], Float32Array.of(1)) }, 0);
    }),
    { numRuns: 40 },
  );
});

test("lut-to-gather on a palettized model keeps its outputs exactly", () => {
  const { graph, inputs } = modelGraph({ config: presetConfig("micro"), width: 0.375, seed: 8 });
  const bits = { "mid.0.ffn.fc1.weight": 4 as const, "mid.0.ffn.fc2.weight": 8 as const, "down.0.attn.q.weight": 4 as const };
  const q = runPasses(graph, [{ pass: "palettize", options: { bits } }]);
  const out = runPasses(q, [{ pass: "lut-to-gather" }], inputs, 0);
  expect(opCount(out, "lut_to_dense")).toBe(0);
  expect(opCount(out, "gather")).toBe(opCount(q, "gather") + 3);
});
