// Jobs shared by this thread and one helper thread, taken off one counter in shared memory: when
// the helper is slow to start (or never does), this thread simply does them all. Each job's state
// word says whether it is done; a job the helper failed is done again here, where its error is
// raised the usual way. Prefetching a width's tensors and slicing them use this
// (src/checkpoint/prefetch.ts, src/model/slice-jobs.ts).
import { Worker } from "node:worker_threads";
import { compiledModule } from "./project.js";

/** Job states in shared memory (the cluster pool's job status words take them too, src/quant/cluster-pool.ts). */
export const JOB = { FREE: 0, CLAIMED: 1, DONE: 2, FAILED: 3 } as const;

/** The counter [next job] and one state word per job, as the helper receives them. */
export interface JobBoard {
  next: Int32Array;
  states: Int32Array;
}

export function jobBoard(count: number): JobBoard {
  return { next: new Int32Array(new SharedArrayBuffer(4)), states: new Int32Array(new SharedArrayBuffer(4 * Math.max(1, count))) };
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
 * A helper thread started on a board's jobs, which this thread joins later (or never: `stop`).
 * Started well before the join, the helper does the jobs while this thread works on something
 * else; joined at once, it is runWithHelper.
 */
export interface StartedHelper {
  /**
   * Runs `ownWork` (work only this thread can do), takes every job still left, then waits for
   * the helper's: `finish(i, ok)` is called for each job in order, `ok` false for one the helper
   * failed. A job the helper holds for more than `jobMs` raises `timedOut(i)`.
   */
  join(run: (i: number) => void, finish: (i: number, ok: boolean) => void, jobMs: number, timedOut: (i: number) => Error, ownWork?: () => void): void;
  /** Leaves the jobs unfinished: the helper takes no more and ends after the one it holds. */
  stop(): void;
}

/**
 * Starts a helper from `helper.module` (a compiled module's path, "src/... .js") with
 * `helper.data` on `count` jobs, when `threads` > 1 and there is more than one; otherwise every
 * job is left to this thread's join.
 */
export function startHelper(count: number, threads: number, helper: { module: string; data: { board: JobBoard } }): StartedHelper {
  const { board } = helper.data;
  const worker = threads > 1 && count > 1 ? new Worker(compiledModule(helper.module), { workerData: helper.data, execArgv: [] }) : undefined;
  worker?.unref();
  worker?.on("error", () => {}); // a helper that fails to start leaves its jobs FREE: this thread takes them
  // past the last job, the helper's next take ends its loop (it closes its files on the way out)
  const stop = () => void Atomics.add(board.next, 0, count);
  return {
    join(run, finish, jobMs, timedOut, ownWork) {
      try {
        ownWork?.();
        takeJobs(board, count, run);
        for (let i = 0; i < count; i++) {
          // every job is taken now; one the helper took may not say so yet (FREE) or be under way
          const deadline = performance.now() + jobMs;
          for (let s = Atomics.load(board.states, i); s === JOB.FREE || s === JOB.CLAIMED; s = Atomics.load(board.states, i))
            if (Atomics.wait(board.states, i, s, Math.max(0, deadline - performance.now())) === "timed-out") throw timedOut(i);
          finish(i, Atomics.load(board.states, i) === JOB.DONE);
        }
      } finally {
        stop();
        void worker?.terminate();
      }
    },
    stop,
  };
}

/** Runs `count` jobs on this thread and a helper that starts now (startHelper, then its join at once). */
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
  startHelper(count, threads, helper).join(run, finish, jobMs, timedOut, ownWork);
}
