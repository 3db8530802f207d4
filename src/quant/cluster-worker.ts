// A clustering thread of src/quant/cluster-pool.ts: clusters each weight it is sent, posts the
// result on its port (the arrays transferred, not copied) and bumps the shared counter the
// waiting caller sleeps on.
import { workerData, parentPort, type MessagePort } from "node:worker_threads";
import type { ClusterReply } from "./cluster-pool.js";
import { clusterGroups, type ClusterPlan } from "./layer.js";

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };

function reply(r: ClusterReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(r, transfer);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

parentPort!.on("message", ({ id, data, plan }: { id: number; data: Float32Array; plan: ClusterPlan }) => {
  try {
    const result = clusterGroups(data, plan);
    reply({ id, result }, [...new Set([result.indices.buffer as ArrayBuffer, result.lut.buffer as ArrayBuffer])]);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply({ id, error: { name: err.name, message: err.message } });
  }
});
reply({ id: -1, error: { name: "ready", message: "" } });
