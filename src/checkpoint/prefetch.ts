// Reads many tensors' stored bytes into memory at once, on this thread and one more. Compile
// keeps a checkpoint's bytes for its whole run (src/model/weights.ts withReadCache) and reads a
// width's tensors before its forwards; reading into fresh memory costs a page fault per 4 KiB
// more than the copy, and two threads take those faults side by side (~1.8x here). The bytes go
// into shared buffers that the cache then holds: nothing is copied after the read.
//
// The jobs are shared with the helper through src/io/helper-jobs.ts: a tensor the helper could
// not read is read again on this thread, which raises the usual error (naming file and tensor).
import { closeSync, openSync } from "node:fs";
import { fail } from "../diagnostics.js";
import { helperTakesJobs, jobBoard, runWithHelper, type JobBoard } from "../io/helper-jobs.js";
import { readFullyAt } from "../io/read.js";
import type { TensorEntry } from "./safetensors.js";

/** One tensor's bytes: where they are and the shared buffer they go to. */
export interface ReadJob {
  file: string;
  /** absolute offset in the file */
  offset: number;
  length: number;
  into: SharedArrayBuffer;
}

/** What the helper thread gets: the jobs and their board. */
export interface ReadWork {
  jobs: ReadJob[];
  board: JobBoard;
}

/** How long this thread waits for the helper to finish one tensor it took before giving up. */
const HELPER_TENSOR_MS = 10 * 60_000;

/** Reads one job's bytes with the file's descriptor from `fds` (opened on first use). */
function readJob(job: ReadJob, fds: Map<string, number>): void {
  let fd = fds.get(job.file);
  if (fd === undefined) fds.set(job.file, (fd = openSync(job.file, "r")));
  const got = readFullyAt(fd, new Uint8Array(job.into, 0, job.length), job.offset);
  if (got < job.length) throw new Error(`the file ends ${job.length - got} bytes short`);
}

/** The helper's part: reads jobs off the board until none is left, then closes its files. */
export function readJobs(w: ReadWork): void {
  const fds = new Map<string, number>();
  try {
    helperTakesJobs(w.board, w.jobs.length, (i) => readJob(w.jobs[i]!, fds));
  } finally {
    for (const fd of fds.values()) closeSync(fd);
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
    board: jobBoard(todo.length),
  };
  const fds = new Map<string, number>();
  let bytes = 0;
  try {
    runWithHelper(
      todo.length, threads, { module: "src/checkpoint/prefetch-worker.js", data: work },
      (i) => readJob(work.jobs[i]!, fds),
      (i, ok) => {
        const it = todo[i]!;
        const data = ok ? new Uint8Array(work.jobs[i]!.into) : it.readAgain();
        if (ok) it.counted(data.byteLength);
        cache.set(it.key, data);
        bytes += data.byteLength;
      },
      HELPER_TENSOR_MS,
      (i) => fail("fileUnreadable", { file: todo[i]!.file, problem: `reading tensor "${todo[i]!.entry.name}" took over ${HELPER_TENSOR_MS / 60_000} minutes` }),
    );
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return bytes;
}
