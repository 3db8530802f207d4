import { describe, expect, test } from "vitest";
import { readTensorFile } from "../../src/checkpoint/tensors.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { runFloatModel } from "../../src/driver/run.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { buildModel } from "../../src/model/build.js";
import { presetConfig, validateConfig, WIDTHS, type ModelConfig } from "../../src/model/config.js";
import { paramCount, paramSpecs } from "../../src/model/params.js";
import { openCheckpoint, syntheticSource } from "../../src/model/weights.js";
import { relErr, validOptionCombos } from "../helpers.js";

const GOLDEN = new URL("../../fixtures/golden/", import.meta.url).pathname;

describe("parameter counts", () => {
  test("full preset: exactly the presets table of docs/model.md at every width", () => {
    const c = presetConfig("full");
    expect(paramCount(c, 1)).toBe(1_540_825_440);
    expect(paramCount(c, 0.5)).toBe(460_581_728);
    expect(paramCount(c, 0.375)).toBe(299_638_240);
  });

  test("every width of the checkpoint layout: shared tensors plus exactly one isolated set", () => {
    const c = presetConfig("micro");
    const stored = paramSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    const isolated = (w: number) => paramSpecs(c).filter((s) => s.width === w).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    // width 1 slices nothing, so its count is the shared tensors plus its own isolated set
    expect(paramCount(c, 1)).toBe(stored - isolated(0.5) - isolated(0.375));
  });
});

describe("golden vectors (independent float64 implementation)", () => {
  const ck = openCheckpoint(`${GOLDEN}micro-checkpoint.safetensors`);
  const inputs = readTensorFile(`${GOLDEN}micro-inputs.safetensors`);
  for (const [w, file] of [[1, "w1000"], [0.5, "w500"]] as const)
    test(`micro at width ${w} reproduces the golden velocity within 1e-4`, () => {
      const got = runFloatModel(ck, w, inputs);
      const want = readTensorFile(`${GOLDEN}micro-velocity-${file}.safetensors`).velocity!;
      expect(got.shape).toEqual(want.shape);
      expect(relErr(got.data, want.data)).toBeLessThan(1e-4);
    });
});

function micro(overrides: Partial<ModelConfig>) {
  return presetConfig("micro", overrides);
}

describe("forward passes", () => {
  const combos = validOptionCombos();

  test("48 valid option combinations (rope 2d + sincos is the only invalid pairing)", () => {
    expect(combos.length).toBe(48);
    expect(() => micro({ rope: "2d", posEmbed: "sincos" })).toThrow(/posEmbed/);
  });

  test.each(combos.map((c, i) => [i, c] as const))("micro option set %i runs finite at its width", (i, opts) => {
    const c = micro(opts);
    const w = WIDTHS[i % 3]!;
    const src = syntheticSource(c, i);
    const inputs = syntheticInputs(c, i, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
    const out = runFloatModel(src, w, inputs);
    expect(out.shape).toEqual([1, 4, 16, 16]);
    expect(out.data.every(Number.isFinite)).toBe(true);
    expect(Math.max(...out.data.map(Math.abs))).toBeGreaterThan(1e-3);
  });

  test("option changes change the output (each option is wired in)", () => {
    const base = micro({});
    const inputs = syntheticInputs(base, 3, { batch: 1, latentSize: base.latentSize, contextTokens: base.contextTokens });
    const ref = runFloatModel(syntheticSource(base, 3), 1, inputs);
    for (const o of [{ bnaEdge: "shift" }, { bnaPartition: "tiles" }, { rope: "none" }, { qkNorm: "none" }] as Partial<ModelConfig>[]) {
      const out = runFloatModel(syntheticSource(micro(o), 3), 1, inputs);
      expect(relErr(out.data, ref.data), JSON.stringify(o)).toBeGreaterThan(1e-4);
    }
  });

  for (const preset of ["micro", "mini"] as const)
    // fp16 mode rounds every op's result; on these synthetic weights that costs 1-4% relative L2,
    // about half of it from the timestep sinusoid (t·1000 has a 0.5 step in half precision).
    test(`${preset}: every width runs, deterministically, and fp16 mode stays finite and close`, () => {
      const c = presetConfig(preset);
      const src = syntheticSource(c, 11);
      const inputs = syntheticInputs(c, 5, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
      for (const w of WIDTHS) {
        const a = runFloatModel(src, w, inputs), b = runFloatModel(src, w, inputs);
        expect(a.data).toEqual(b.data);
        expect(a.data.every(Number.isFinite)).toBe(true);
        if (preset === "micro" || w === 0.375) {
          const h = runFloatModel(src, w, inputs, "fp16");
          let num = 0, den = 0;
          for (let i = 0; i < a.data.length; i++) (num += (h.data[i]! - a.data[i]!) ** 2), (den += a.data[i]! ** 2);
          expect(h.data.every(Number.isFinite)).toBe(true);
          expect(Math.sqrt(num / den)).toBeLessThan(5e-2);
        }
      }
    });

  test("the built graph verifies and has the op mix docs/model.md implies", () => {
    const c = presetConfig("micro");
    const g = buildModel(syntheticSource(c, 0), { width: 0.5, batch: 2 }).graph;
    verifyGraph(g);
    const count = (k: string) => g.nodes.filter((n) => n.kind === k).length;
    expect(count("assa_attention")).toBe(2);
    expect(count("gqa_attention")).toBe(4);
    expect(count("cross_attention")).toBe(6);
    expect(g.nodes.filter((n) => n.kind === "linear" && n.scope?.endsWith(".skip")).length).toBe(2); // mid.2, mid.3
  });
});

describe("config validation names the field", () => {
  const base = () => structuredClone(presetConfig("micro")) as unknown as Record<string, unknown>;
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ["heads not dividing w·D", (c) => ((c.hidden = 120), (c.heads = 4), (c.widths = [0.375])), /"heads" \(4\) must divide the width-0.375 hidden size 45/],
    ["fractional width", (c) => ((c.hidden = 100), (c.heads = 1), (c.kvHeads = 1), (c.rope = "none")), /"hidden" \(100\) times width 0.375 is 37.5/],
    ["dh not divisible by 4 with rope", (c) => (c.hidden = 96), /"rope" "2d" needs the head dim divisible by 4, but width 0.375 has head dim 36\/4 = 9/],
    ["L not divisible by nb", (c) => (c.bnaBlocks = 5), /"latentSize" \[16,16\]: its 64 tokens \(8x8\) are not divisible by bnaBlocks 5/],
    ["tiles need a square nb", (c) => ((c.bnaPartition = "tiles"), (c.bnaBlocks = 8)), /"bnaBlocks" \(8\) must be a perfect square/],
    ["odd token grid", (c) => (c.latentSize = [18, 18]), /even sides/],
    ["missing field", (c) => delete c.kvHeads, /"kvHeads" is missing/],
    ["unknown field", (c) => (c.kvHead = 2), /"kvHead" is not a known field/],
    ["bad enum", (c) => (c.bnaEdge = "wrap"), /"bnaEdge" must be one of "clamp", "shift", got "wrap"/],
    ["bad widths", (c) => (c.widths = [0.25]), /"widths" must be a non-empty list/],
    ["bad depths", (c) => (c.depths = [1, 2]), /"depths" must be a list of 3 integers/],
  ];
  test.each(cases)("%s", (_, mutate, message) => {
    const c = base();
    mutate(c);
    expect(() => validateConfig(c, "test.json")).toThrow(message);
  });
});
