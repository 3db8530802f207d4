// The layer probe's 4-bit clusterings, computed on the worker pool (in the probe's one forward for
// these sets of one chunk; ahead of it, clusterLayersAhead, for more), are exactly the ones the
// probe would compute itself and the ones the palettize pass would: the probe's errors do not
// change, and compile may hand the 4-bit layers' clusterings and corrected biases on instead of
// clustering those weights again.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { SafetensorsFile, writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { DEFAULT_TECHNIQUES, planWidth } from "../../src/driver/quantize-plan.js";
import { producers, type Graph } from "../../src/ir/graph.js";
import { asFloat, floatTensor } from "../../src/kernels/tensor.js";
import { buildModel } from "../../src/model/build.js";
import { openCheckpoint, type Checkpoint } from "../../src/model/weights.js";
import { type CalibrationSet } from "../../src/quant/calibration.js";
import { clusterGroups, clusterPlan, correctedBias, denseOf } from "../../src/quant/layer.js";
import { probeLayers, techniqueQuantizer, type LayerQuantizer } from "../../src/quant/probe.js";

const TRAINED = new URL("../../fixtures/shapes-micro/model.safetensors", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-probe-ahead-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The trained fixture, and the same stored as fp16 (whose patterns go to k-means directly). */
function checkpoints(): Checkpoint[] {
  const f16 = join(dir, "trained-f16.safetensors");
  const f = SafetensorsFile.open(TRAINED);
  writeSafetensors(f16, f.names().map((n) => ({ name: n, dtype: "F16", shape: f.entry(n).shape, produce: (emit) => emit(f.readFloat(n)) })), f.metadata);
  f.close();
  return [openCheckpoint(TRAINED), openCheckpoint(f16)];
}

/** Each linear/conv weight constant with its node, as the palettize pass meets them. */
function layers(g: Graph) {
  const prod = producers(g);
  return g.nodes.flatMap((n) => {
    if (n.kind !== "linear" && n.kind !== "conv2d") return [];
    const w = prod.get(n.inputs[1]!), b = n.inputs[2] ? prod.get(n.inputs[2]) : undefined;
    if (w?.kind !== "const") return [];
    return [{ node: n, weight: w.attrs.value, bias: b?.kind === "const" ? b.attrs.value : undefined }];
  });
}

test("the 4-bit layers a mixed plan hands on are what clustering and correcting them directly gives, bit for bit (float32 and fp16 checkpoints)", () => {
  for (const source of checkpoints()) {
    const width = 0.5, latentSize = source.config.latentSize;
    const graph = buildModel(source, { width }).graph;
    const cal = syntheticInputs(source.config, 3, { batch: 2, latentSize, contextTokens: source.config.contextTokens }) as CalibrationSet;
    const plan = planWidth(source, graph, width, latentSize, { mode: "mixed", target: 4.5 }, DEFAULT_TECHNIQUES, cal);
    const fours = Object.entries(plan.bits).filter(([, b]) => b === 4).map(([n]) => n);
    expect(fours.length).toBeGreaterThan(3);
    expect(fours.length).toBeLessThan(Object.keys(plan.bits).length); // some went to 8 bits, and are not handed on
    expect([...plan.clustered!.clusterings.keys()].sort()).toEqual(fours.sort());
    const t = { groupSize: 0, weighted: true, biasCorrection: true };
    let corrected = 0;
    for (const { node, weight, bias } of layers(graph)) {
      const got = plan.clustered!.clusterings.get(weight.source);
      if (!got) continue;
      const p = clusterPlan(weight.type.shape, node.kind === "conv2d" ? node.attrs.groups : 1, 4, t, plan.stats!.get(weight.source));
      const w = asFloat(weight.load()).data;
      const want = clusterGroups(w, p);
      expect(got.indices, weight.source).toEqual(want.indices);
      expect(got.lut, weight.source).toEqual(want.lut);
      const key = bias ? `${bias.source} corrected` : `${weight.source} bias correction`;
      const b = plan.clustered!.biases.get(key);
      expect(b, key).toBeDefined();
      expect(b, key).toEqual(correctedBias(w, want, p, plan.stats!.get(weight.source)!.mean, bias ? asFloat(bias.load()).data : undefined));
      corrected++;
    }
    expect(corrected).toBe(fours.length);
    source.close();
  }
});

test("the probe's errors are the same with the layers clustered ahead or one by one", () => {
  const [source] = checkpoints();
  const width = 1, latentSize = source!.config.latentSize;
  const cal = syntheticInputs(source!.config, 5, { batch: 1, latentSize, contextTokens: source!.config.contextTokens }) as CalibrationSet;
  const graph = buildModel(source!, { width }).graph;
  const plan = planWidth(source!, graph, width, latentSize, { mode: "mixed", target: 4.3 }, DEFAULT_TECHNIQUES, cal);
  const t = { groupSize: 0, weighted: true, biasCorrection: true };
  // one by one on this thread, each layer's weight widened to a dense copy (the quantizer as it was)
  const dense: LayerQuantizer = (name, node, w, bias) => {
    const s = plan.stats!.get(name)!;
    const p = clusterPlan(w.shape, node.kind === "conv2d" ? (node.attrs as { groups: number }).groups : 1, 4, t, s);
    const c = clusterGroups(w.data, p);
    return { w: floatTensor(w.shape, denseOf(c, p, w.data.length)), bias: floatTensor([w.shape[0]!], correctedBias(w.data, c, p, s.mean, bias?.data)) };
  };
  const oneByOne = probeLayers(() => graph, cal, dense);
  // the plan's probe ran with its clusterings ahead, palettes widened while packing: same errors, so the same ranking
  expect(plan.layers.map((l) => [l.name, l.mse])).toEqual(plan.layers.map((l) => [l.name, oneByOne.find((s) => s.name === l.name)!.mse]));
  expect(probeLayers(() => graph, cal, techniqueQuantizer(t, plan.stats)).map((s) => s.mse)).toEqual(oneByOne.map((s) => s.mse));
  source!.close();
});
