// Worker thread for palettizing many tensors in parallel: receives a weight, returns its
// indices (4-bit ones packed two per byte, as the file stores them) and LUT. The clustering itself
// is src/quant/kmeans.ts.
import { parentPort } from "node:worker_threads";
import { palettize, palettizeBits } from "./kmeans.js";

const scratch = new Uint32Array(65536);
// f16 checkpoints send their raw bit patterns; others send float32 values
parentPort?.on("message", (m: { id: number; data: Float32Array | Uint16Array; bits: 4 | 8 }) => {
  const t0 = performance.now();
  const r = m.data instanceof Uint16Array ? palettizeBits(m.data, m.bits, scratch, true) : palettize(m.data, m.bits, scratch, true);
  const ms = performance.now() - t0;
  parentPort!.postMessage({ id: m.id, indices: r.indices, count: m.data.length, lut: r.lut, sse: r.sse, ms }, [r.indices.buffer as ArrayBuffer, r.lut.buffer as ArrayBuffer]);
});
