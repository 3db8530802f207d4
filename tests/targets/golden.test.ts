// The golden vectors (an independent float64 implementation of docs/model.md) through every
// backend: the emitted file run by ditc's reader and by the real runtime where one exists.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { applyPipeline, BACKENDS } from "../../src/driver/pipelines.js";
import { runGraph } from "../../src/interp/interpreter.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";
import { buildModel } from "../../src/model/build.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { readTensorFile } from "../../src/checkpoint/tensors.js";
import { relErr } from "../helpers.js";

const GOLDEN = new URL("../../fixtures/golden/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-golden-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("golden micro velocity through every backend (fp32, batch 2, within 1e-4)", () => {
  const ck = openCheckpoint(`${GOLDEN}micro-checkpoint.safetensors`);
  const inputs = readTensorFile(`${GOLDEN}micro-inputs.safetensors`) as Record<string, FloatTensor>;
  for (const [width, tag] of [[1, "w1000"], [0.5, "w500"]] as const)
    for (const [target, backend] of Object.entries(BACKENDS))
      test(`${target} at width ${width}`, async () => {
        const want = readTensorFile(`${GOLDEN}micro-velocity-${tag}.safetensors`).velocity!;
        const model = buildModel(ck, { width, batch: 2 });
        const path = join(dir, `${target}-${tag}-${backend.artifact}`);
        backend.emit(applyPipeline(model.graph, target, {}), path, { metadata: {} });
        const read = backend.read(path);
        try {
          expect(relErr((runGraph(read.graph, inputs).velocity as FloatTensor).data, want.data as Float32Array)).toBeLessThan(1e-4);
        } finally {
          read.close();
        }
        if (backend.runtime && !backend.runtime.unavailable?.()) {
          const out = await backend.runtime.run(path, inputs);
          expect(relErr(out.velocity!.data, want.data as Float32Array)).toBeLessThan(1e-4);
        }
      });
});
