// A clustering thread of src/quant/cluster-pool.ts: clusters each weight it is sent (unless the
// caller took it over meanwhile), writes the result into the job's shared buffers, sets the job's
// status and bumps the shared counter the waiting caller sleeps on.
import { parentPort, workerData } from "node:worker_threads";
import { claimJob, runClusterJob, type JobMessage } from "./cluster-pool.js";

const { signal } = workerData as { signal: Int32Array };

function bump(): void {
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

parentPort!.on("message", (m: JobMessage) => {
  if (!claimJob(m)) return; // the caller clusters it
  runClusterJob(m);
  bump();
});
bump(); // ready
