// onnxruntime-node, the real runtime the ONNX artifacts are checked against (CPU build bundled).
import { createRequire } from "node:module";
import { encodeF16, decodeF16 } from "../../src/kernels/fp16.js";
import { floatTensor, type FloatTensor } from "../../src/kernels/tensor.js";

type Ort = typeof import("onnxruntime-node");
let ort: Ort | undefined;

/** Loaded on first use: it is a native module, and most commands never need it. */
export function loadOrt(): Ort {
  ort ??= createRequire(import.meta.url)("onnxruntime-node") as Ort;
  return ort;
}

export interface OrtRunOptions {
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  threads?: number;
}

export interface OrtSession {
  run(inputs: Record<string, FloatTensor>): Promise<Record<string, FloatTensor>>;
  inputTypes: Record<string, string>;
  release(): Promise<void>;
}

export async function openOrtSession(path: string, opts: OrtRunOptions = {}): Promise<OrtSession> {
  const o = loadOrt();
  const session = await o.InferenceSession.create(path, {
    graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
    intraOpNumThreads: opts.threads ?? 2,
    logSeverityLevel: 3,
  });
  const inputTypes: Record<string, string> = {};
  for (const m of session.inputMetadata) if (m.isTensor) inputTypes[m.name] = m.type;
  return {
    inputTypes,
    run: async (inputs) => {
      const feeds: Record<string, InstanceType<Ort["Tensor"]>> = {};
      for (const [name, t] of Object.entries(inputs)) {
        feeds[name] = inputTypes[name] === "float16" ? new o.Tensor("float16", encodeF16(t.data), [...t.shape]) : new o.Tensor("float32", t.data, [...t.shape]);
      }
      const out = await session.run(feeds);
      const result: Record<string, FloatTensor> = {};
      for (const [name, t] of Object.entries(out)) {
        const data = t.type === "float16" ? decodeF16(t.data as Uint16Array) : Float32Array.from(t.data as Float32Array);
        result[name] = floatTensor(t.dims as number[], data);
      }
      return result;
    },
    release: () => session.release(),
  };
}
