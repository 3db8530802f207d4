// Jobs shared by this thread and one helper thread, taken off one counter in shared memory: when
// the helper is slow to start (or never does), this thread simply does them all. Each job's state
// word says whether it is done; a job the helper failed is done again here, where its error is
// raised the usual way. Prefetching a width's tensors and slicing them use this
// (src/checkpoint/prefetch.ts, src/model/slice-jobs.ts).
import { isAbsolute } from "node:path";
import { Worker } from "node:worker_threads";
import { compiledModule } from "./project.js";
import { LIVENESS_CHECK_MS, recordThreadId, threadAlive, threadIdCell, type ThreadIdCell } from "./thread-liveness.js";

/** Job states in shared memory (the cluster pool's job status words take them too, src/quant/cluster-pool.ts). */
export const JOB = { FREE: 0, CLAIMED: 1, DONE: 2, FAILED: 3 } as const;

/** The counter [next job] and one state word per job, as the helper receives them, and the helper's OS thread id. */
export interface JobBoard {
  next: Int32Array;
  states: Int32Array;
  helper: ThreadIdCell;
}

export function jobBoard(count: number): JobBoard {
  return { next: new Int32Array(new SharedArrayBuffer(4)), states: new Int32Array(new SharedArrayBuffer(4 * Math.max(1, count))), helper: threadIdCell() };
}

/** takeJobs on the helper thread: it first records its thread id, so a waiting caller can tell when it has ended. */
export function helperTakesJobs(board: JobBoard, count: number, run: (i: number) => void): void {
  recordThreadId(board.helper);
  takeJobs(board, count, run);
}

/** Takes jobs off the counter until none of `count` is left; each one's state says how it went. */
export function takeJobs(board: JobBoard, count: number, run: (i: number) => void): void {
  for (let i = Atomics.add(board.next, 0, 1); i < count; i = Atomics.add(board.next, 0, 1)) {
    Atomics.store(board.states, i, JOB.CLAIMED);
    let state: number = JOB.DONE;
    try {
      run(i);
    } catch {
      state = JOB.FAILED;
    }
    Atomics.store(board.states, i, state);
    Atomics.notify(board.states, i);
  }
}

/**
 * Runs `count` jobs on this thread and, when `threads` > 1 and there is more than one, a helper
 * started from `helper.module` (a compiled module's path, "src/... .js", or an absolute one) with
 * `helper.data`, which takes jobs off the same board (with helperTakesJobs). `ownWork`, if given,
 * is work only this thread can do: it runs while the helper starts, before this thread takes
 * jobs. Returns once every job is finished: `finish(i, ok)` is called for each in order, `ok`
 * false for one the helper failed, or held when it ended (its heap ran out, say). A job the
 * helper holds for more than `jobMs` raises `timedOut(i)`.
 */
export function runWithHelper(
  count: number,
  threads: number,
  helper: { module: string; data: { board: JobBoard } },
  run: (i: number) => void,
  finish: (i: number, ok: boolean) => void,
  jobMs: number,
  timedOut: (i: number) => Error,
  ownWork?: () => void,
): void {
  const { board } = helper.data;
  const module = isAbsolute(helper.module) ? helper.module : compiledModule(helper.module);
  const worker = threads > 1 && count > 1 ? new Worker(module, { workerData: helper.data, execArgv: [] }) : undefined;
  worker?.unref();
  worker?.on("error", () => {}); // a helper that fails to start leaves its jobs FREE: this thread takes them
  try {
    ownWork?.();
    takeJobs(board, count, run);
    for (let i = 0; i < count; i++) {
      // every job is taken now; one the helper took may not say so yet (FREE) or be under way
      const deadline = performance.now() + jobMs;
      for (let s = Atomics.load(board.states, i); s === JOB.FREE || s === JOB.CLAIMED; s = Atomics.load(board.states, i)) {
        if (Atomics.wait(board.states, i, s, Math.max(0, Math.min(LIVENESS_CHECK_MS, deadline - performance.now()))) !== "timed-out") continue;
        // a helper that ended leaves the job unfinished (its last stores are in: look once more)
        const now = Atomics.load(board.states, i);
        if (!threadAlive(board.helper) && (now === JOB.FREE || now === JOB.CLAIMED)) break;
        if (performance.now() >= deadline) throw timedOut(i);
      }
      finish(i, Atomics.load(board.states, i) === JOB.DONE);
    }
  } finally {
    void worker?.terminate();
  }
}
