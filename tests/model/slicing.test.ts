// Width slicing checked against an independent path: the supernetwork checkpoint is cut offline,
// tensor by tensor, into a checkpoint file of the smaller config (hidden = w·D, one width), with
// slicing rules written out in tests/model/offline-slicer.ts from docs/model.md, elastic widths rather than taken
// from src/model/params.ts or the slice-width pass.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { SafetensorsFile, writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { configJson, syntheticInputs, writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { runFloatModel } from "../../src/driver/run.js";
import { presetConfig } from "../../src/model/config.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { relErr } from "../helpers.js";
import { sliceTensor, smallConfig } from "./offline-slicer.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-slice-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the width-w sub-network equals the smaller model built from an offline-sliced checkpoint; width 1 is the identity", () => {
  const config = presetConfig("micro", { kvCompress: "dense" }); // dense compress exercises per-head input slicing
  const superCk = join(dir, "super.safetensors");
  writeSyntheticCheckpoint(config, 21, superCk);
  const file = SafetensorsFile.open(superCk);
  const inputs = syntheticInputs(config, 5, { batch: 2, latentSize: config.latentSize, contextTokens: config.contextTokens });
  const sup = openCheckpoint(superCk);
  for (const w of [0.375, 0.5, 1] as const) {
    const small = smallConfig(config, w);
    const tag = `w${w * 1000}.`;
    const tensors = file.names().flatMap((name) => {
      const e = file.entry(name);
      if (/^w\d+\./.test(name)) {
        if (!name.startsWith(tag)) return [];
        const data = file.readFloat(name);
        return [{ name: name.replace(tag, "w1000."), dtype: "F32" as const, shape: e.shape, produce: (emit: (c: Float32Array) => void) => emit(data) }];
      }
      const { shape, data } = sliceTensor(name, e.shape, file.readFloat(name), config, w);
      return [{ name, dtype: "F32" as const, shape, produce: (emit: (c: Float32Array) => void) => emit(data) }];
    });
    const smallCk = join(dir, `small-${w}.safetensors`);
    writeSafetensors(smallCk, tensors, { config: configJson(small) });
    const direct = openCheckpoint(smallCk);
    const viaSlicing = runFloatModel(sup, w, inputs);
    const viaSmall = runFloatModel(direct, 1, inputs);
    expect(relErr(viaSlicing.data, viaSmall.data)).toBeLessThanOrEqual(1e-5);
    if (w === 1) expect(viaSlicing.data).toEqual(viaSmall.data);
    direct.close();
  }
  sup.close();
  file.close();
});
