// Clusters many weights on worker threads while the calling thread reads the next ones, and
// returns only when all are done, so a synchronous caller (compile) gets the machine's cores for
// its k-means without becoming asynchronous: the caller blocks on a shared counter that workers
// bump after posting each result, and takes the results off their ports synchronously
// (receiveMessageOnPort). A weight's clustering is the same function on any thread
// (src/quant/layer.ts clusterGroups), so results do not depend on the worker count.
import { availableParallelism } from "node:os";
import { MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads";
import { compiledModule } from "../io/project.js";
import type { Palettized } from "./kmeans.js";
import { addClusteringSeconds, type ClusterPlan } from "./layer.js";

export interface ClusterJob {
  /** the weight's checkpoint name: the key its clustering is stored under */
  source: string;
  plan: ClusterPlan;
  /** reads the weight (on the calling thread) */
  load: () => Float32Array;
}

/** A worker's answer: the clustering, or the error clusterGroups threw (id −1: the worker is ready). */
export type ClusterReply = { id: number; result: Palettized; error?: undefined } | { id: number; error: { name: string; message: string } };

/** How long workers may take to start before the pool gives up (they load the k-means module). */
const START_MS = 30_000;

/** Jobs in flight per worker: one being clustered, one read and waiting. */
const DEPTH = 2;

/**
 * Clusters every job whose source `into` does not hold yet and stores the results there. At most
 * DEPTH weights per worker are in memory as float32 at once.
 */
export function clusterAll(jobs: readonly ClusterJob[], into: Map<string, Palettized>, workers = availableParallelism(), onProgress?: (done: number, total: number) => void): void {
  const todo = jobs.filter((j) => !into.has(j.source));
  if (!todo.length) return;
  const t0 = performance.now();
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const pool = Array.from({ length: Math.max(1, Math.min(workers, todo.length)) }, () => {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(compiledModule("src/quant/cluster-worker.js"), { workerData: { port: port2, signal }, transferList: [port2], execArgv: [] });
    return { worker, port: port1, busy: 0 };
  });
  let next = 0, received = 0, seen = 0;
  const submit = (w: (typeof pool)[number]) => {
    const id = next++;
    const data = todo[id]!.load();
    w.worker.postMessage({ id, data, plan: todo[id]!.plan }, [data.buffer as ArrayBuffer]);
    w.busy++;
  };
  try {
    // every worker says it is ready (one bump each) before any work is sent: a worker that cannot
    // start would otherwise leave this thread waiting for results that never come
    const deadline = Date.now() + START_MS;
    while (Atomics.load(signal, 0) < pool.length) {
      if (Date.now() > deadline) throw new Error("internal: the clustering worker threads did not start within 30 s");
      Atomics.wait(signal, 0, Atomics.load(signal, 0), 100);
    }
    seen = Atomics.load(signal, 0);
    for (const w of pool) while (receiveMessageOnPort(w.port)); // the ready notes
    for (const w of pool) while (w.busy < DEPTH && next < todo.length) submit(w);
    while (received < todo.length) {
      // a worker bumps the counter after posting: wait for a bump, then drain every port
      Atomics.wait(signal, 0, seen, 1000);
      seen = Atomics.load(signal, 0);
      for (const w of pool) {
        for (let m = receiveMessageOnPort(w.port); m; m = receiveMessageOnPort(w.port)) {
          const reply = m.message as ClusterReply;
          if (reply.error) throw Object.assign(reply.error.name === "RangeError" ? new RangeError(reply.error.message) : new Error(reply.error.message), { weight: todo[reply.id]!.source });
          into.set(todo[reply.id]!.source, reply.result);
          onProgress?.(++received, todo.length);
          w.busy--;
        }
        while (w.busy < DEPTH && next < todo.length) submit(w);
      }
    }
  } finally {
    for (const w of pool) {
      w.port.close();
      void w.worker.terminate();
    }
    addClusteringSeconds((performance.now() - t0) / 1000);
  }
}
