// Plain float tensor files (model inputs and outputs) in safetensors form.
import { fail } from "../diagnostics.js";
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";
import { FLOAT_DTYPES, SafetensorsFile, writeSafetensors } from "./safetensors.js";

export function readTensorFile(path: string): Record<string, FloatTensor> {
  const f = SafetensorsFile.open(path);
  try {
    const out: Record<string, FloatTensor> = {};
    for (const e of f.entries.values()) {
      if (!FLOAT_DTYPES.includes(e.dtype)) throw fail("tensorDtype", { file: path, tensor: e.name, dtype: e.dtype });
      out[e.name] = floatTensor(e.shape, f.readFloat(e.name));
    }
    return out;
  } finally {
    f.close();
  }
}

export function writeTensorFile(path: string, tensors: Record<string, FloatTensor>, metadata: Record<string, string> = {}): void {
  writeSafetensors(
    path,
    Object.entries(tensors).map(([name, t]) => ({ name, dtype: "F32" as const, shape: [...t.shape], produce: (emit) => emit(t.data) })),
    metadata,
  );
}
