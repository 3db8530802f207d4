// The TFLite target: NHWC pipeline, flatbuffer emitter and reader, and LiteRT as the real runtime
// (LiteRT.js in Node; Google's native interpreter for files past LiteRT.js's 2 GB wasm heap).
import { statSync } from "node:fs";
import type { TargetBackend } from "../../src/pipeline/target.js";
import { emitTflite } from "./emit.js";
import { tfliteLegality } from "./legality.js";
import { litertUnavailable, runLiteRt } from "./litert.js";
import { nativeLiteRtUnavailable, runNativeLiteRt } from "./litert-native.js";
import { tflitePipeline } from "./pipeline.js";
import { readTflite } from "./read.js";

/** LiteRT.js streams a model into a wasm32 heap and stops at 2e9 bytes (docs/formats/tflite.md). */
const WASM_MODEL_LIMIT = 2e9;

export const tfliteTarget: TargetBackend = {
  name: "tflite",
  artifact: "model.tflite",
  pipeline: tflitePipeline,
  legality: tfliteLegality,
  emit: (g, path, o) => {
    const r = emitTflite(g, path, { externalData: o.externalData ?? "auto", metadata: o.metadata, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
    return { files: [path], bytes: r.bytes, transposes: r.transposes };
  },
  read: (path) => readTflite(path),
  runtime: {
    engine: "litert",
    unavailable: litertUnavailable,
    run: async (path, inputs) => {
      if (statSync(path).size <= WASM_MODEL_LIMIT) return runLiteRt(path, inputs);
      if (nativeLiteRtUnavailable()) throw new Error(`${path} is past LiteRT.js's 2 GB limit and ${nativeLiteRtUnavailable()}`);
      return { velocity: runNativeLiteRt(path, inputs).velocity };
    },
  },
};
