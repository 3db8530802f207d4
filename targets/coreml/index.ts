// The CoreML target: channels-first pipeline, MIL emitter and reader, and Apple's coremltools as
// the external check (no Core ML runtime exists on Linux).
import type { TargetBackend } from "../../src/pipeline/target.js";
import { checkWithCoremltools, coremltoolsUnavailable } from "./coremltools.js";
import { emitCoreml } from "./emit.js";
import { coremlLegality } from "./legality.js";
import { coremlPipeline } from "./pipeline.js";
import { readCoreml } from "./read.js";

export const coremlTarget: TargetBackend = {
  name: "coreml",
  artifact: "model.mlpackage",
  pipeline: coremlPipeline,
  legality: coremlLegality,
  defaultPrecision: "fp16",
  emit: (g, path, o) => {
    const r = emitCoreml(g, path, { deployment: o.deployment ?? "iOS17", metadata: o.metadata, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
    return { files: [path], bytes: r.bytes };
  },
  read: (path) => readCoreml(path),
  checker: {
    engine: "coremltools",
    unavailable: coremltoolsUnavailable,
    check: async (path) => {
      const r = checkWithCoremltools(path);
      return r.ok ? { ok: true, detail: `loaded and rebuilt: ${Object.values(r.ops ?? {}).reduce((a, b) => a + b, 0)} ops, ${r.transposesInBlocks} transposes in blocks, max rank ${r.maxRank}` } : { ok: false, detail: r.error ?? "failed" };
    },
  },
};
