// Draws many synthetic tensors at once, on this thread and one helper (src/io/helper-jobs.ts),
// each into shared memory: a preset's weights are Box-Muller and Student-t draws at 40-80 ns a
// value (src/model/synthetic.ts), ~1.5 minutes for the full preset on one core. Each tensor has
// its own generator, so which thread draws it changes nothing.
import { helperTakesJobs, jobBoard, runWithHelper, type JobBoard } from "../io/helper-jobs.js";
import { numel } from "../kernels/tensor.js";
import type { ParamSpec } from "./params.js";
import { synthesizeInto } from "./synthetic.js";

/** What the helper is sent: the specs (name, shape, init, fan-in), the seed, and where each tensor goes in `memory`. */
export interface SynthesisWork {
  specs: Pick<ParamSpec, "name" | "shape" | "init" | "fanIn">[];
  seed: number;
  memory: SharedArrayBuffer;
  /** each tensor's first float in `memory` */
  starts: number[];
  board: JobBoard;
}

/** How long this thread waits for the helper to finish one tensor it took before giving up. */
const HELPER_TENSOR_MS = 10 * 60_000;

const view = (w: SynthesisWork, i: number) => new Float32Array(w.memory, 4 * w.starts[i]!, numel(w.specs[i]!.shape));
const draw = (w: SynthesisWork, i: number) => void synthesizeInto(w.specs[i]! as ParamSpec, w.seed, view(w, i));

/** The helper's part (src/model/synthesis-worker.ts). */
export function drawJobs(w: SynthesisWork): void {
  helperTakesJobs(w.board, w.specs.length, (i) => draw(w, i));
}

/** Float32 bytes the specs take side by side: the least `memory` synthesizeMany takes for them. */
export const synthesisBytes = (specs: readonly ParamSpec[]): number => specs.reduce((n, s) => n + 4 * numel(s.shape), 0);

/**
 * Each spec's synthetic values (as `synthesize` gives them), side by side in `memory` (by default
 * fresh; a caller drawing batch after batch passes the same one each time, as fresh shared memory
 * is not given back until a collection notices it), drawn on this thread and, when `threads` > 1,
 * a helper. A tensor the helper failed is drawn again here.
 */
export function synthesizeMany(specs: readonly ParamSpec[], seed: number, threads: number, memory = new SharedArrayBuffer(synthesisBytes(specs))): Float32Array[] {
  if (memory.byteLength < synthesisBytes(specs)) throw new Error(`internal: synthesizeMany needs ${synthesisBytes(specs)} bytes of memory, was given ${memory.byteLength}`);
  const starts: number[] = [];
  specs.reduce((at, s) => (starts.push(at), at + numel(s.shape)), 0);
  const work: SynthesisWork = {
    specs: specs.map(({ name, shape, init, fanIn }) => ({ name, shape, init, ...(fanIn !== undefined ? { fanIn } : {}) })),
    seed,
    memory,
    starts,
    board: jobBoard(specs.length),
  };
  runWithHelper(
    specs.length, threads, { module: "src/model/synthesis-worker.js", data: work },
    (i) => draw(work, i),
    (i, ok) => void (ok || draw(work, i)),
    HELPER_TENSOR_MS,
    (i) => new Error(`drawing the synthetic tensor "${specs[i]!.name}" took over ${HELPER_TENSOR_MS / 60_000} minutes`),
  );
  return specs.map((_, i) => view(work, i));
}
