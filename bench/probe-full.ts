// Calibration and probe time on the full preset (synthetic weights in an f16 checkpoint): ditc calibrate's cost per
// recorded step, and per width the statistics and the layer probe on one record (one forward since
// they share it: statistics then reads 0), at 256 px
// (and at 1024 px unless --skip-full); one calibrate step is one float forward, the baseline the
// probe is compared with.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recordTrajectories } from "../src/driver/calibrate.js";
import { DEFAULT_TECHNIQUES, planWidth } from "../src/driver/quantize-plan.js";
import { writeTensorFile } from "../src/checkpoint/tensors.js";
import { floatTensor } from "../src/kernels/tensor.js";
import { buildModel, latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { openCheckpoint } from "../src/model/weights.js";
import { syntheticInputs, writeSyntheticCheckpoint } from "../src/driver/init.js";

export async function benchProbeFull(resolutions: number[]) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-probe-"));
  // weights from an f16 checkpoint on disk, as a user has them (drawing 1.6B synthetic weights
  // per forward would be what is measured otherwise)
  writeSyntheticCheckpoint(presetConfig("full"), 0, join(dir, "full-f16.safetensors"), "f16");
  const source = openCheckpoint(join(dir, "full-f16.safetensors"));
  const c = source.config;
  try {
    const rows = [];
    for (const px of resolutions) {
      const latentSize = latentForResolution(px);
      const ctx = join(dir, "context.safetensors");
      const inputs = syntheticInputs(c, 0, { batch: 1, latentSize, contextTokens: c.contextTokens });
      writeTensorFile(ctx, { context: floatTensor([1, c.contextTokens, c.contextDim], inputs.context!.data) });
      // one calibrate step is one float forward (plus recording its inputs): the baseline here
      let t0 = performance.now();
      const steps = 1;
      const cal = await recordTrajectories(source, { context: ctx, steps, shift: 1, seed: 1000, samples: 1, width: 1, latentSize });
      const calibratePerStep = (performance.now() - t0) / 1000 / steps;
      const forward = calibratePerStep;
      const plan = planWidth(source, buildModel(source, { width: 1, latentSize }).graph, 1, latentSize, { mode: "mixed", target: 4.3 }, DEFAULT_TECHNIQUES, cal.set);
      const row = { resolution: px, width: 1, calibrateSecondsPerStep: +calibratePerStep.toFixed(2), statisticsSecondsPerRecord: plan.seconds.statistics, layerProbeSecondsPerRecord: plan.seconds.probe, layers: plan.layers.length, probeOverForward: +(plan.seconds.probe / forward).toFixed(2) };
      console.log(`probe full@${px}: calibrate ${row.calibrateSecondsPerStep} s/step, statistics ${row.statisticsSecondsPerRecord} s/record, layer probe ${row.layerProbeSecondsPerRecord} s/record (${row.probeOverForward}x a forward, ${row.layers} layers)`);
      rows.push(row);
    }
    return { preset: "full", note: "per record; a calibration set of N records costs N times this (chunks of 8 share a forward); a set of one chunk gathers its statistics in the probe's forward (statistics 0); the model probe costs one forward per layer and record (at most 64 records)", rows };
  } finally {
    source.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
