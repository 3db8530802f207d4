// A clustering thread of src/quant/cluster-pool.ts: clusters each weight it is sent, writes the
// result into the job's shared buffers, sets the job's status and bumps the shared counter the
// waiting caller sleeps on.
import { parentPort, workerData } from "node:worker_threads";
import { ERROR_BYTES, JOB, type JobMessage } from "./cluster-pool.js";
import { clusterGroups, correctedBias } from "./layer.js";

const { signal } = workerData as { signal: Int32Array };

function bump(): void {
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

parentPort!.on("message", (m: JobMessage) => {
  try {
    // indices (and 4-bit nibbles) go straight into the job's shared buffers
    const r = clusterGroups(m.data, m.plan, { indices: m.indices, ...(m.nibbles.length ? { nibbles: m.nibbles } : {}) });
    if (r.indices !== m.indices || r.lut.length !== m.lut.length) throw new Error(`internal: clustering sizes ${r.indices.length}/${r.lut.length}, expected ${m.indices.length}/${m.lut.length} in place`);
    m.lut.set(r.lut);
    const fix = m.corrections;
    if (fix) {
      const rows = m.plan.layout.rowBase.length;
      fix.old.forEach((old, k) => fix.out.set(correctedBias(m.data, r, m.plan, fix.mean, old), k * rows));
    }
    m.sse[0] = r.sse;
    Atomics.store(m.status, 0, JOB.DONE);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const text = new TextEncoder().encode(`${err.name}\n${err.message}`).subarray(0, ERROR_BYTES);
    m.error.set(text);
    m.status[1] = text.length;
    Atomics.store(m.status, 0, JOB.FAILED);
  }
  bump();
});
bump(); // ready
