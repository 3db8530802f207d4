// The TFLite target: NHWC pipeline, flatbuffer emitter and reader, and LiteRT as the real runtime.
import type { TargetBackend } from "../../src/pipeline/target.js";
import { emitTflite } from "./emit.js";
import { tfliteLegality } from "./legality.js";
import { litertUnavailable, runLiteRt } from "./litert.js";
import { tflitePipeline } from "./pipeline.js";
import { readTflite } from "./read.js";

export const tfliteTarget: TargetBackend = {
  name: "tflite",
  artifact: "model.tflite",
  pipeline: tflitePipeline,
  legality: tfliteLegality,
  emit: (g, path, o) => {
    const r = emitTflite(g, path, { externalData: o.externalData ?? "auto", metadata: o.metadata });
    return { files: [path], bytes: r.bytes };
  },
  read: (path) => readTflite(path),
  runtime: { engine: "litert", unavailable: litertUnavailable, run: runLiteRt },
};
