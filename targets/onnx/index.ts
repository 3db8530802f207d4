// The ONNX target: its pipeline, legality, emitter, reader and real runtime in one record.
import type { TargetBackend } from "../../src/pipeline/target.js";
import { emitOnnx } from "./emit.js";
import { onnxLegality } from "./legality.js";
import { openOrtSession } from "./ort.js";
import { onnxPipeline } from "./pipeline.js";
import { readFileSync } from "node:fs";
import { inBlockScope } from "../../src/model/build.js";
import { decodeModel } from "./proto.js";
import { readOnnx } from "./read.js";

export const onnxTarget: TargetBackend = {
  name: "onnx",
  artifact: "model.onnx",
  pipeline: onnxPipeline,
  legality: onnxLegality,
  emit: (g, path, o) => {
    const r = emitOnnx(g, path, { externalData: o.externalData ?? "auto", metadata: o.metadata, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
    return { files: r.dataPath ? [r.path, r.dataPath] : [r.path], bytes: r.bytes + r.dataBytes };
  },
  read: (path) => readOnnx(path),
  fileStats: (path) => {
    const nodes = decodeModel(readFileSync(path)).graph?.node ?? [];
    const ops: Record<string, number> = {};
    for (const n of nodes) ops[n.opType ?? "?"] = (ops[n.opType ?? "?"] ?? 0) + 1;
    const transposes = nodes.filter((n) => n.opType === "Transpose");
    // node names are "<scope>/<op>_<id>", the scope saying which block a node belongs to
    return { ops, transposes: { total: transposes.length, inBlocks: transposes.filter((n) => inBlockScope(n.name ?? "")).length } };
  },
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
