// Results kept in the fast engine's memory between ops (resident scopes, src/kernels/simd/engine.ts):
// a run frees every block it made, its outputs are ordinary arrays that later runs cannot touch,
// values are freed after their last use, and results nobody keeps (an observer's scratch work) do
// not pile up.
import { describe, expect, test } from "vitest";
import { buildModel, makeInputs, presetWeights } from "../../src/api/index.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { unary } from "../../src/kernels/fast.js";
import { engineInfo } from "../../src/kernels/simd/engine.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";

const weights = presetWeights("mini", 0);
const graph = buildModel(weights, { width: 1, resolution: 256 }).graph;
const inputs = makeInputs(weights, { resolution: 256 });

describe("resident results", () => {
  test("a run leaves nothing held; its outputs are plain arrays no later run overwrites", () => {
    const first = runGraph(graph, inputs).velocity as FloatTensor;
    expect(engineInfo().residentBytes).toBe(0);
    expect(first.data.buffer instanceof SharedArrayBuffer).toBe(false);
    const copy = first.data.slice();
    const second = runGraph(graph, inputs).velocity as FloatTensor;
    const memory = engineInfo().memoryBytes;
    runGraph(graph, inputs);
    expect(engineInfo().memoryBytes).toBe(memory); // the third run fits in what the second freed
    expect(first.data).toEqual(copy);
    expect(second.data).toEqual(copy);
  });

  test("held bytes peak at the live set, and an observer's throwaway results are swept after each node", () => {
    const peak = (observe?: (outs: readonly unknown[]) => void) => {
      let max = 0, produced = 0;
      runGraph(graph, inputs, {
        observe: (_n, _ins, outs) => {
          for (const t of outs) produced += (t as FloatTensor).palette ? 0 : t.data.byteLength;
          observe?.(outs);
          max = Math.max(max, engineInfo().residentBytes);
        },
      });
      return { max, produced };
    };
    const plain = peak();
    // every result run through one more kernel whose output nobody keeps
    const scratch = peak((outs) => outs.forEach((t) => (t as FloatTensor).dtype === "f32" && !(t as FloatTensor).palette && unary("gelu_tanh", t as FloatTensor)));
    expect(plain.max).toBeGreaterThan(0);
    expect(plain.max).toBeLessThan(plain.produced / 4); // dropped after last use, not kept to the end
    // the observer's extra result is still held when the peak is read inside the call; nothing accumulates
    expect(scratch.max).toBeLessThanOrEqual(2 * plain.max);
    expect(engineInfo().residentBytes).toBe(0);
  });
});
