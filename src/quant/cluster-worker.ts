// A clustering thread of src/quant/cluster-pool.ts: clusters each weight it is sent (unless the
// caller took it over meanwhile), writes the result into the job's shared buffers, sets the job's
// status and bumps its pool's shared counter, which the waiting caller sleeps on. The thread
// serves one pool after another.
import { parentPort, workerData } from "node:worker_threads";
import { announceClusterThread, claimJob, runClusterJob, type ClusterThreadData, type JobMessage } from "./cluster-pool.js";

function bump(signal: Int32Array): void {
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

parentPort!.on("message", (m: JobMessage) => {
  if (!claimJob(m)) return; // the caller clusters it (or its pool has ended)
  runClusterJob(m);
  bump(m.signal);
});
announceClusterThread(workerData as ClusterThreadData);
