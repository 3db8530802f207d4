// The ONNX target: its pipeline, legality, emitter, reader and real runtime in one record.
import type { TargetBackend } from "../../src/pipeline/target.js";
import { emitOnnx } from "./emit.js";
import { onnxLegality } from "./legality.js";
import { openOrtSession } from "./ort.js";
import { onnxPipeline } from "./pipeline.js";
import { readOnnx } from "./read.js";

export const onnxTarget: TargetBackend = {
  name: "onnx",
  artifact: "model.onnx",
  pipeline: onnxPipeline,
  legality: onnxLegality,
  emit: (g, path, o) => {
    const r = emitOnnx(g, path, { externalData: o.externalData ?? "auto", metadata: o.metadata, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
    return { files: r.dataPath ? [r.path, r.dataPath] : [r.path], bytes: r.bytes + r.dataBytes, transposes: r.transposes };
  },
  read: (path) => readOnnx(path),
  runtime: {
    engine: "onnxruntime",
    run: async (path, inputs) => {
      const s = await openOrtSession(path);
      try {
        return await s.run(inputs);
      } finally {
        await s.release();
      }
    },
  },
};
