// The flow-matching sampler of docs/sampling.md: a time grid from 1 to 0 (optionally shifted),
// seeded Gaussian noise, and Euler steps x ← x + (t_{i+1} − t_i) · v(x, t_i, context), host-side,
// with whatever engine computes the velocity.
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";
import { Rng } from "../model/synthetic.js";

/** t_0 = 1 > t_1 > … > t_N = 0, uniform in N steps, then t' = s·t / (1 + (s − 1)·t). */
export function timeGrid(steps: number, shift = 1): number[] {
  return Array.from({ length: steps + 1 }, (_, k) => {
    const t = 1 - k / steps;
    return (shift * t) / (1 + (shift - 1) * t);
  });
}

/**
 * The initial noise of one sample, reproducible from its seed alone: N(0, 1) values in row-major
 * order of (C, H, W), drawn from ditc's generator seeded with (seed, "noise") (docs/sampling.md
 * gives the generator), each rounded to float32.
 */
export function seededNoise(seed: number, shape: readonly [number, number, number]): Float32Array {
  const rng = new Rng(seed, "noise");
  return Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => rng.normal());
}

/** Computes the velocity of a batch: latent (B, C, H, W), timestep (B), context (B, S, Dctx). */
export type VelocityFn = (latent: FloatTensor, timestep: FloatTensor, context: FloatTensor) => Promise<FloatTensor> | FloatTensor;

export interface SampleLoopOptions {
  steps: number;
  shift?: number;
  /** after each step: the step just done (1-based) */
  onStep?: (step: number, steps: number) => void;
  signal?: AbortSignal;
}

/** Euler from t = 1 to t = 0; `noise` (B, C, H, W) is not modified. Returns the final latents. */
export async function eulerSample(velocity: VelocityFn, noise: FloatTensor, context: FloatTensor, o: SampleLoopOptions): Promise<FloatTensor> {
  const grid = timeGrid(o.steps, o.shift ?? 1);
  const B = noise.shape[0]!;
  const x = noise.data.slice();
  for (let i = 0; i < o.steps; i++) {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error("aborted");
    const t = floatTensor([B], new Float32Array(B).fill(grid[i]!));
    const v = await velocity(floatTensor(noise.shape, x.slice()), t, context);
    const dt = grid[i + 1]! - grid[i]!;
    for (let j = 0; j < x.length; j++) x[j] = x[j]! + dt * v.data[j]!;
    o.onStep?.(i + 1, o.steps);
  }
  return floatTensor(noise.shape, x);
}
