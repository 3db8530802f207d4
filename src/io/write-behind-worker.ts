// The helper thread of src/io/write-behind.ts: writes the slots in turn as the caller fills
// them, until it finds STOP; it does nothing if the caller stopped waiting for it to start.
import { workerData } from "node:worker_threads";
import { recordThreadId } from "./thread-liveness.js";
import { SLOT, SLOTS, START, STARTED, writeSlot, type WriteBehindMemory } from "./write-behind.js";

const m = workerData as WriteBehindMemory;
recordThreadId(m.threadId);
if (Atomics.compareExchange(m.state, STARTED, START.WAITING, START.RUNNING) === START.WAITING) {
  Atomics.notify(m.state, STARTED);
  for (let s = 0; ; s = (s + 1) % SLOTS) {
    let state: number;
    while ((state = Atomics.load(m.state, s)) === SLOT.EMPTY) Atomics.wait(m.state, s, SLOT.EMPTY);
    if (state === SLOT.STOP) break;
    writeSlot(m, s);
  }
}
