// Draws many synthetic tensors at once, on this thread and one helper (src/io/helper-jobs.ts),
// each into shared memory: a preset's weights are Box-Muller and Student-t draws at 40-80 ns a
// value (src/model/synthetic.ts), ~1.5 minutes for the full preset on one core. Each tensor has
// its own generator, so which thread draws it changes nothing.
import { helperTakesJobs, jobBoard, runWithHelper, type JobBoard } from "../io/helper-jobs.js";
import type { ParamSpec } from "./params.js";
import { synthesizeInto } from "./synthetic.js";

/** What the helper is sent: the specs (name, shape, init, fan-in), the seed, and where each tensor goes. */
export interface SynthesisWork {
  specs: Pick<ParamSpec, "name" | "shape" | "init" | "fanIn">[];
  seed: number;
  into: SharedArrayBuffer[];
  board: JobBoard;
}

/** How long this thread waits for the helper to finish one tensor it took before giving up. */
const HELPER_TENSOR_MS = 10 * 60_000;

const draw = (w: SynthesisWork, i: number) => void synthesizeInto(w.specs[i]! as ParamSpec, w.seed, new Float32Array(w.into[i]!));

/** The helper's part (src/model/synthesis-worker.ts). */
export function drawJobs(w: SynthesisWork): void {
  helperTakesJobs(w.board, w.specs.length, (i) => draw(w, i));
}

/**
 * Each spec's synthetic values (as `synthesize` gives them), drawn on this thread and, when
 * `threads` > 1, a helper. A tensor the helper failed is drawn again here.
 */
export function synthesizeMany(specs: readonly ParamSpec[], seed: number, threads: number): Float32Array[] {
  const work: SynthesisWork = {
    specs: specs.map(({ name, shape, init, fanIn }) => ({ name, shape, init, ...(fanIn !== undefined ? { fanIn } : {}) })),
    seed,
    into: specs.map((s) => new SharedArrayBuffer(4 * s.shape.reduce((a, b) => a * b, 1))),
    board: jobBoard(specs.length),
  };
  const out: Float32Array[] = [];
  runWithHelper(
    specs.length, threads, { module: "src/model/synthesis-worker.js", data: work },
    (i) => draw(work, i),
    (i, ok) => {
      if (!ok) draw(work, i);
      out.push(new Float32Array(work.into[i]!));
    },
    HELPER_TENSOR_MS,
    (i) => new Error(`drawing the synthetic tensor "${specs[i]!.name}" took over ${HELPER_TENSOR_MS / 60_000} minutes`),
  );
  return out;
}
