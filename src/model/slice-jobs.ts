// Slicing stored tensors to a width: the gather of kept index runs (docs/model.md, elastic
// widths), and a width's fp16 slices made as jobs on this thread and one helper
// (src/io/helper-jobs.ts). Slices go into fresh memory (src/model/slice-store.ts), whose first
// touch costs more than the copy; two threads take those page faults side by side.
import { helperTakesJobs, jobBoard, runWithHelper, type JobBoard } from "../io/helper-jobs.js";
import { stridesOf } from "../kernels/tensor.js";

/** Gathers the kept index runs of every axis (docs/model.md, elastic widths) from a row-major tensor. */
export function sliceRuns<T extends Float32Array | Uint16Array>(data: T, shape: readonly number[], runs: readonly [number, number][][], into?: T): T {
  const size = runs.reduce((a, rs) => a * rs.reduce((k, [, n]) => k + n, 0), 1);
  const st = stridesOf(shape);
  if (into && into.length !== size) throw new Error(`internal: sliceRuns into ${into.length} elements, the slice has ${size}`);
  const out = into ?? ((data instanceof Float32Array ? new Float32Array(size) : new Uint16Array(size)) as T);
  // trailing axes kept whole make each run of the axis before them one contiguous block
  let last = shape.length - 1;
  const whole = (a: number) => runs[a]!.length === 1 && runs[a]![0]![0] === 0 && runs[a]![0]![1] === shape[a];
  while (last > 0 && whole(last)) last--;
  const inner = last >= 0 ? st[last]! : 1;
  // the kept indices of the axes walked one by one (those before `last`)
  const idx = runs.slice(0, Math.max(0, last)).map((rs) => rs.flatMap(([s, n]) => Array.from({ length: n }, (_, i) => s + i)));
  let o = 0;
  const walk = (axis: number, base: number): void => {
    if (axis === last) {
      for (const [s, n] of runs[axis]!) {
        const from = base + s * inner, len = n * inner;
        if (len >= 64) out.set(data.subarray(from, from + len), o);
        else for (let i = 0; i < len; i++) out[o + i] = data[from + i]!;
        o += len;
      }
      return;
    }
    for (const i of idx[axis]!) walk(axis + 1, base + i * st[axis]!);
  };
  if (size && shape.length) walk(0, 0);
  else if (size) out[0] = data[0]!; // a scalar
  return out;
}

/** One slice to make: `from`, stored in `shape`, gathered by `runs` into `into`. */
export interface SliceJob {
  from: Uint16Array;
  shape: readonly number[];
  runs: [number, number][][];
  into: Uint16Array;
}

/** What the helper thread gets: jobs whose arrays are all in shared memory, and their board. */
export interface SliceWork {
  jobs: SliceJob[];
  board: JobBoard;
}

/** A slice takes well under a second; a helper holding one for a minute is stuck. */
const HELPER_SLICE_MS = 60_000;

const sliceJob = (j: SliceJob) => void sliceRuns(j.from, j.shape, j.runs, j.into);

/** The helper's part: slices jobs off the board until none is left. */
export function sliceJobs(w: SliceWork): void {
  helperTakesJobs(w.board, w.jobs.length, (i) => sliceJob(w.jobs[i]!));
}

/**
 * Makes every slice, sharing those whose arrays are in shared memory with a helper thread when
 * `threads` > 1 (the others, e.g. tensors read outside a prefetch, are made on this thread).
 */
export function makeSlices(jobs: readonly SliceJob[], threads: number): void {
  const inShared = (j: SliceJob) => threads > 1 && j.from.buffer instanceof SharedArrayBuffer && j.into.buffer instanceof SharedArrayBuffer;
  const own = jobs.filter((j) => !inShared(j)), shared = jobs.filter(inShared);
  const work: SliceWork = { jobs: shared, board: jobBoard(shared.length) };
  runWithHelper(
    work.jobs.length, threads, { module: "src/model/slice-worker.js", data: work },
    (i) => sliceJob(work.jobs[i]!),
    (i, ok) => {
      if (!ok) sliceJob(work.jobs[i]!); // what the helper failed fails here again, with its error
    },
    HELPER_SLICE_MS,
    (i) => new Error(`internal: the slicing helper took over ${HELPER_SLICE_MS / 1000} s on a slice of ${work.jobs[i]!.into.length} elements`),
    () => own.forEach(sliceJob),
  );
}
