// Worker thread for palettizing many tensors in parallel: receives a weight, returns its
// indices (4-bit ones packed two per byte, as the file stores them) and LUT. The clustering itself
// is src/quant/kmeans.ts.
import { parentPort } from "node:worker_threads";
import { palettize, palettizeBits } from "./kmeans.js";

const scratch = new Uint32Array(65536);
// f16 checkpoints send their raw bit patterns; others send float32 values
// a weight that cannot be clustered (a non-finite value) is answered with the error's message
parentPort?.on("message", (m: { id: number; data: Float32Array | Uint16Array; bits: 4 | 8 }) => {
  const t0 = performance.now();
  let r: ReturnType<typeof palettize>;
  try {
    r = m.data instanceof Uint16Array ? palettizeBits(m.data, m.bits, scratch, true) : palettize(m.data, m.bits, scratch, true);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
    return;
  }
  const ms = performance.now() - t0;
  parentPort!.postMessage({ id: m.id, indices: r.indices, count: m.data.length, lut: r.lut, sse: r.sse, ms }, [r.indices.buffer as ArrayBuffer, r.lut.buffer as ArrayBuffer]);
});
