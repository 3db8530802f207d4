import { floatTensor, type FloatTensor } from "../src/kernels/tensor.js";
import { Rng } from "../src/model/synthetic.js";

export function randomTensor(shape: number[], seed: number, scale = 1): FloatTensor {
  const rng = new Rng(seed, "test");
  return floatTensor(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()));
}

/** max |a - b| / max |b| */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m === 0 ? d : d / m;
}

/** Row-major index helper for naive reference loops. */
export function at(shape: readonly number[], ...idx: number[]): number {
  let o = 0;
  for (let i = 0; i < shape.length; i++) o = o * shape[i]! + idx[i]!;
  return o;
}
