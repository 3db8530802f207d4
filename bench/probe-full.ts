// Calibration and probe time on the full preset (synthetic weights): ditc calibrate's cost per
// recorded step, and per width the statistics pass and the layer probe on one record, at 256 px
// (and at 1024 px with --full), next to one plain float forward of the same graph in the same run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recordTrajectories } from "../src/driver/calibrate.js";
import { DEFAULT_TECHNIQUES, planWidth } from "../src/driver/quantize-plan.js";
import { writeTensorFile } from "../src/checkpoint/tensors.js";
import { runGraph } from "../src/interp/interpreter.js";
import { floatTensor } from "../src/kernels/tensor.js";
import { buildModel, latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";
import { syntheticInputs } from "../src/driver/init.js";

export async function benchProbeFull(resolutions: number[]) {
  const source = syntheticSource(presetConfig("full"), 0);
  const c = source.config;
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-probe-"));
  try {
    const rows = [];
    for (const px of resolutions) {
      const latentSize = latentForResolution(px);
      const ctx = join(dir, "context.safetensors");
      const inputs = syntheticInputs(c, 0, { batch: 1, latentSize, contextTokens: c.contextTokens });
      writeTensorFile(ctx, { context: floatTensor([1, c.contextTokens, c.contextDim], inputs.context!.data) });
      const g = buildModel(source, { width: 1, latentSize }).graph;
      let t0 = performance.now();
      runGraph(g, inputs);
      const forward = (performance.now() - t0) / 1000;
      t0 = performance.now();
      const steps = 2;
      const cal = await recordTrajectories(source, { context: ctx, steps, shift: 1, seed: 1000, samples: 1, width: 1, latentSize });
      const calibratePerStep = (performance.now() - t0) / 1000 / steps;
      const one = { latent: floatTensor([1, ...cal.set.latent.shape.slice(1)], cal.set.latent.data.slice(0, cal.set.latent.data.length / steps)), timestep: floatTensor([1], cal.set.timestep.data.slice(0, 1)), context: floatTensor([1, ...cal.set.context.shape.slice(1)], cal.set.context.data.slice(0, cal.set.context.data.length / steps)) };
      const plan = planWidth(source, 1, latentSize, { mode: "mixed", target: 4.3 }, DEFAULT_TECHNIQUES, one);
      const row = { resolution: px, width: 1, forwardSeconds: +forward.toFixed(2), calibrateSecondsPerStep: +calibratePerStep.toFixed(2), statisticsSecondsPerRecord: plan.seconds.statistics, layerProbeSecondsPerRecord: plan.seconds.probe, layers: plan.layers.length, probeOverForward: +(plan.seconds.probe / forward).toFixed(2) };
      console.log(`probe full@${px}: forward ${row.forwardSeconds} s, calibrate ${row.calibrateSecondsPerStep} s/step, statistics ${row.statisticsSecondsPerRecord} s/record, layer probe ${row.layerProbeSecondsPerRecord} s/record (${row.probeOverForward}x a forward, ${row.layers} layers)`);
      rows.push(row);
    }
    return { preset: "full", note: "per record; a calibration set of N records costs N times this (chunks of 8 share a forward); the model probe costs one forward per layer and record (at most 64 records)", rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
