// Reads many tensors' stored bytes into memory at once, on this thread and one more. Compile
// keeps a checkpoint's bytes for its whole run (src/model/weights.ts withReadCache) and reads a
// width's tensors before its forwards; reading into fresh memory costs a page fault per 4 KiB
// more than the copy, and two threads take those faults side by side (~1.8x here). The bytes go
// into shared buffers that the cache then holds: nothing is copied after the read.
//
// Jobs are taken from one shared counter, so when the helper is slow to start (or never does),
// this thread simply reads everything. The helper reports each job done, or failed (this thread
// then reads it again and raises the usual error, naming the file and tensor).
import { closeSync, openSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { fail } from "../diagnostics.js";
import { compiledModule } from "../io/project.js";
import { readFullyAt } from "../io/read.js";
import type { TensorEntry } from "./safetensors.js";

/** Job states in shared memory. */
export const READ = { FREE: 0, CLAIMED: 1, DONE: 2, FAILED: 3 } as const;

/** One tensor's bytes: where they are and the shared buffer they go to. */
export interface ReadJob {
  file: string;
  /** absolute offset in the file */
  offset: number;
  length: number;
  into: SharedArrayBuffer;
}

/** What the helper thread gets: the jobs, the counter [next job] and one state word per job. */
export interface ReadWork {
  jobs: ReadJob[];
  next: Int32Array;
  states: Int32Array;
}

/** How long this thread waits for the helper to finish one tensor it took before giving up. */
const HELPER_TENSOR_MS = 10 * 60_000;

/** Reads one job's bytes with the file's descriptor from `fds` (opened on first use). */
export function readJob(job: ReadJob, fds: Map<string, number>): void {
  let fd = fds.get(job.file);
  if (fd === undefined) fds.set(job.file, (fd = openSync(job.file, "r")));
  const got = readFullyAt(fd, new Uint8Array(job.into, 0, job.length), job.offset);
  if (got < job.length) throw new Error(`the file ends ${job.length - got} bytes short`);
}

/** Takes jobs off the shared counter until none is left; each one's state says how it went. */
export function takeJobs(w: ReadWork, fds: Map<string, number>): void {
  for (let i = Atomics.add(w.next, 0, 1); i < w.jobs.length; i = Atomics.add(w.next, 0, 1)) {
    Atomics.store(w.states, i, READ.CLAIMED);
    let state: number = READ.DONE;
    try {
      readJob(w.jobs[i]!, fds);
    } catch {
      state = READ.FAILED;
    }
    Atomics.store(w.states, i, state);
    Atomics.notify(w.states, i);
  }
}

export interface PrefetchItem {
  /** the cache key the bytes are stored under */
  key: string;
  entry: TensorEntry;
  file: string;
  /** absolute offset of the tensor's first byte */
  offset: number;
  /** reads the tensor the ordinary way (when a prefetch read failed: it raises the usual error) */
  readAgain: () => Uint8Array;
  /** counts bytes read for the tensor's file */
  counted: (bytes: number) => void;
}

/**
 * Reads every item `cache` lacks into it, with one helper thread when `threads` allows one and
 * there is more than one tensor to read. Returns the bytes read.
 */
export function prefetchInto(items: readonly PrefetchItem[], cache: Map<string, Uint8Array>, threads = 2): number {
  const todo: PrefetchItem[] = [];
  const keys = new Set<string>();
  for (const it of items) if (!cache.has(it.key) && !keys.has(it.key)) (keys.add(it.key), todo.push(it));
  if (!todo.length) return 0;
  const work: ReadWork = {
    jobs: todo.map((it) => ({ file: it.file, offset: it.offset, length: it.entry.end - it.entry.begin, into: new SharedArrayBuffer(it.entry.end - it.entry.begin) })),
    next: new Int32Array(new SharedArrayBuffer(4)),
    states: new Int32Array(new SharedArrayBuffer(4 * todo.length)),
  };
  const helper = threads > 1 && todo.length > 1 ? new Worker(compiledModule("src/checkpoint/prefetch-worker.js"), { workerData: work, execArgv: [] }) : undefined;
  helper?.unref();
  helper?.on("error", () => {}); // a helper that fails to start leaves its jobs FREE: this thread takes them
  const fds = new Map<string, number>();
  try {
    takeJobs(work, fds);
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  let bytes = 0;
  try {
    todo.forEach((it, i) => {
      // every job is taken now; one the helper took may not say so yet (FREE) or be under way
      const deadline = performance.now() + HELPER_TENSOR_MS;
      for (let s = Atomics.load(work.states, i); s === READ.FREE || s === READ.CLAIMED; s = Atomics.load(work.states, i))
        if (Atomics.wait(work.states, i, s, Math.max(0, deadline - performance.now())) === "timed-out")
          throw fail("fileUnreadable", { file: it.file, problem: `reading tensor "${it.entry.name}" took over ${HELPER_TENSOR_MS / 60_000} minutes` });
      const data = Atomics.load(work.states, i) === READ.DONE ? new Uint8Array(work.jobs[i]!.into) : it.readAgain();
      if (data.buffer === work.jobs[i]!.into) it.counted(data.byteLength);
      cache.set(it.key, data);
      bytes += data.byteLength;
    });
  } finally {
    void helper?.terminate();
  }
  return bytes;
}
