// Palettizes every linear/conv weight of a checkpoint into a safetensors file of indices and
// LUTs with worker threads. Each weight is read once; up to two per worker are clustered at a
// time while results are written in name order, so memory holds a few tensors, not the model,
// and the output does not depend on the worker count. 4-bit indices are packed two per byte,
// low nibble first (stored as U8, safetensors having no 4-bit type).
import { Worker } from "node:worker_threads";
import { byName, safetensorsHeader } from "../checkpoint/safetensors.js";
import { writeAll, writeFileAtomicAsync } from "../io/atomic.js";
import { encodeF16 } from "../kernels/fp16.js";
import { paramSpecs } from "../model/params.js";
import { openCheckpoint } from "../model/weights.js";
import { compiledModule } from "../io/project.js";

export interface PalettizeFileResult {
  tensors: number;
  params: number;
  bytesWritten: number;
  seconds: number;
  /** where the time went: clustering summed over workers, and the main thread's reads and writes */
  workerSeconds: number;
  readSeconds: number;
  writeSeconds: number;
}

/** indices as stored (4-bit ones two per byte); count is the number of weights; ms the worker's clustering time */
type Result = { indices: Uint8Array; count: number; lut: Float32Array; ms: number };

const WORKER = compiledModule("src/quant/worker.js");

export async function palettizeCheckpoint(input: string, output: string, bitsFor: (name: string) => 4 | 8, workers = 2): Promise<PalettizeFileResult> {
  const t0 = performance.now();
  const ck = openCheckpoint(input);
  const weights = paramSpecs(ck.config).filter((s) => s.init === "weight" && s.shape.length >= 2 && !s.width);
  const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const entries = byName(
    weights.flatMap((w) => {
      const n = numel(w.shape), bits = bitsFor(w.name);
      return [
        { name: `${w.name}.indices`, dtype: "U8" as const, shape: [bits === 4 ? Math.ceil(n / 2) : n], weight: w.name },
        { name: `${w.name}.lut`, dtype: "F16" as const, shape: [1 << bits], weight: w.name },
      ];
    }),
  );
  const order = entries.filter((_, i) => i % 2 === 0).map((e) => e.weight); // weights in the order their data is written
  if (!entries.every((e, i) => e.weight === order[i >> 1] && e.name.endsWith(i % 2 ? ".lut" : ".indices")))
    throw new Error("internal: index and LUT entries of a weight are not adjacent in name order");
  const pool = Array.from({ length: Math.max(1, workers) }, () => new Worker(WORKER));
  const waiting = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void }>();
  // a weight that cannot be clustered fails its own wait; a worker that throws or ends (out of
  // memory) fails every wait
  const failWaiting = (e: Error) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  for (const w of pool) {
    w.on("message", (m: (Result | { error: string }) & { id: number }) => {
      const entry = waiting.get(m.id);
      waiting.delete(m.id);
      if ("error" in m) entry?.reject(new Error(`palettizing ${input}: tensor "${order[m.id]}" ${m.error}`));
      else entry?.resolve(m);
    });
    w.on("error", (e) => failWaiting(new Error(`palettizing ${input}: ${e.message}`)));
    w.on("exit", (code) => failWaiting(new Error(`palettizing ${input}: a clustering thread ended (exit code ${code}; out of memory?)`)));
  }
  let readMs = 0, writeMs = 0, workerMs = 0;
  const submit = (id: number): Promise<Result> => {
    // an f16 tensor goes as its raw bit patterns: no widening here, no narrowing in the worker
    const t0 = performance.now();
    const e = ck.file.entry(order[id]!);
    const data = e.dtype === "F16" ? ((b) => new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2))(ck.file.readBytes(e)) : ck.file.readFloat(order[id]!);
    readMs += performance.now() - t0;
    const result = new Promise<Result>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      pool[id % pool.length]!.postMessage({ id, data, bits: bitsFor(order[id]!) }, [data.buffer as ArrayBuffer]);
    });
    // it may fail before it is awaited (it is, in order): not an unhandled rejection meanwhile
    result.catch(() => {});
    return result;
  };
  let params = 0;
  try {
    await writeFileAtomicAsync(output, async (fd) => {
      writeAll(fd, safetensorsHeader(entries, { palettized: input }));
      const inFlight: Promise<Result>[] = [];
      let next = 0;
      const fill = () => {
        while (next < order.length && inFlight.length < pool.length * 3) inFlight.push(submit(next++));
      };
      fill();
      for (let k = 0; k < order.length; k++) {
        const r = await inFlight.shift()!;
        fill();
        params += r.count;
        workerMs += r.ms;
        const t0 = performance.now();
        // entries sort "<name>.indices" before "<name>.lut", the order written here
        writeAll(fd, r.indices);
        const lut = encodeF16(r.lut);
        writeAll(fd, new Uint8Array(lut.buffer, lut.byteOffset, lut.byteLength));
        writeMs += performance.now() - t0;
      }
    });
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
    ck.close();
  }
  const bytesWritten = entries.reduce((s, e) => s + e.shape[0]! * (e.dtype === "U8" ? 1 : 2), 0);
  return { tensors: order.length, params, bytesWritten, seconds: (performance.now() - t0) / 1000, workerSeconds: workerMs / 1000, readSeconds: readMs / 1000, writeSeconds: writeMs / 1000 };
}
