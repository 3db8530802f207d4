import { expect, test } from "vitest";
import { runGraph } from "../../src/interp/interpreter.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";
import { presetConfig } from "../../src/model/config.js";
import { compareOutputs } from "../../src/driver/verify.js";
import { modelGraph, runPasses } from "./helpers.js";

test("fp16-weights stores float weights in half precision outside the timestep island, within 1e-2 relative L2", () => {
  const { graph, inputs } = modelGraph({ config: presetConfig("micro"), width: 1, seed: 6 });
  const out = runPasses(graph, [{ pass: "fp16-weights" }]);
  const consts = out.nodes.filter((n) => n.kind === "const");
  const f32 = consts.filter((n) => n.outputs[0]!.type.dtype === "f32");
  expect(f32.length).toBeGreaterThan(0);
  expect(f32.every((n) => n.scope === "t_embed")).toBe(true);
  expect(consts.some((n) => n.outputs[0]!.type.dtype === "f16" && n.attrs.value.source === "down.0.attn.q.weight")).toBe(true);
  // every f16 constant is read through one cast back to f32; activations stay f32
  expect(out.nodes.filter((n) => n.kind === "cast").length).toBe(consts.filter((n) => n.outputs[0]!.type.dtype === "f16").length);
  expect(out.inputs.every((v) => v.type.dtype === "f32") && out.outputs.every((v) => v.type.dtype === "f32")).toBe(true);
  const ref = runGraph(graph, inputs).velocity as FloatTensor, got = runGraph(out, inputs).velocity as FloatTensor;
  const c = compareOutputs(got.data, ref.data);
  expect(c.relL2).toBeLessThan(1e-2);
  expect(c.relL2).toBeGreaterThan(0); // the weights really were rounded
});
