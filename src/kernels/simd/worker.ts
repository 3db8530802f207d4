// A kernel thread of the fast engine (engine.ts): instantiates the kernel module on the shared
// memory, then waits for jobs in the control block and runs its share of each.
import { workerData } from "node:worker_threads";
import { recordThreadId } from "../../io/thread-liveness.js";
import { claimShare, CTL, PARALLEL_KERNELS, type KernelThreadData } from "./engine.js";

const { module, memory, ctl, args, threadId } = workerData as KernelThreadData;
recordThreadId(threadId);
const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error("a WebAssembly kernel aborted"); } } });
const exports = instance.exports as Record<string, (...a: number[]) => void>;
const kernels = PARALLEL_KERNELS.map((k) => exports[k]!);

/**
 * Kernels come in bursts (a forward is hundreds of them, a few milliseconds apart), and waking a
 * sleeping thread costs a few hundred microseconds here: so look for the next job for a while
 * before sleeping on the generation word.
 */
function waitForJob(): void {
  const until = performance.now() + Atomics.load(ctl, CTL.SPIN_US) / 1000;
  while (Atomics.load(ctl, CTL.GEN) === seen) {
    if (performance.now() > until) {
      Atomics.wait(ctl, CTL.GEN, seen);
      return;
    }
  }
}

// the generation is read before announcing readiness: the first job may be posted the moment the
// caller sees READY, and a worker that read the generation after it would wait past its own job
let seen = Atomics.load(ctl, CTL.GEN);
Atomics.add(ctl, CTL.READY, 1);
Atomics.notify(ctl, CTL.READY);

for (;;) {
  waitForJob();
  const gen = Atomics.load(ctl, CTL.GEN);
  if (gen === seen) continue;
  seen = gen;
  const job = gen & 0xffff, nt = gen >>> 16;
  // the kernel and its arguments are read after a claim: until this share is done, the caller posts no other job
  for (let share = claimShare(ctl, job, nt); share >= 0; share = claimShare(ctl, job, nt)) {
    try {
      kernels[Atomics.load(ctl, CTL.KERNEL)]!(share, nt, ...Array.from(args.subarray(0, Atomics.load(ctl, CTL.ARGC))));
    } catch {
      Atomics.store(ctl, CTL.FAILED, 1);
    }
    if (Atomics.sub(ctl, CTL.PENDING, 1) === 1) Atomics.notify(ctl, CTL.PENDING);
  }
}
