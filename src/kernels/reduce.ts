// Reductions and the normalizations built on them (softmax, layer norm).
import { floatTensor, numel, type FloatTensor } from "./tensor.js";

export type ReduceKind = "sum" | "mean" | "max";

/** Views `shape` as (outer, n, inner) around `axis`. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis]!, numel(shape.slice(axis + 1))];
}

export function reduce(x: FloatTensor, axes: readonly number[], kind: ReduceKind, keepDims: boolean): FloatTensor {
  let cur = x;
  // reduce one axis at a time, highest first, keeping dims so indices stay valid
  for (const axis of [...axes].sort((a, b) => b - a)) cur = reduceAxis(cur, axis, kind);
  const shape = keepDims ? cur.shape : x.shape.filter((_, d) => !axes.includes(d));
  return floatTensor(shape, cur.data);
}

function reduceAxis(x: FloatTensor, axis: number, kind: ReduceKind): FloatTensor {
  const [outer, n, inner] = around(x.shape, axis);
  const out = new Float32Array(outer * inner);
  const X = x.data;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = kind === "max" ? -Infinity : 0;
      for (let k = 0, p = o * n * inner + i; k < n; k++, p += inner) {
        const v = X[p]!;
        acc = kind === "max" ? (v > acc ? v : acc) : acc + v;
      }
      out[o * inner + i] = kind === "mean" ? acc / n : acc;
    }
  const shape = [...x.shape];
  shape[axis] = 1;
  return floatTensor(shape, out);
}

/** Numerically stable softmax (max subtracted) along one axis. */
export function softmax(x: FloatTensor, axis: number): FloatTensor {
  const [outer, n, inner] = around(x.shape, axis);
  const out = new Float32Array(x.data.length);
  const X = x.data;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let m = -Infinity;
      for (let k = 0; k < n; k++) m = Math.max(m, X[base + k * inner]!);
      let s = 0;
      for (let k = 0; k < n; k++) {
        const e = Math.exp(X[base + k * inner]! - m);
        out[base + k * inner] = e;
        s += e;
      }
      const inv = 1 / s;
      for (let k = 0; k < n; k++) out[base + k * inner] *= inv;
    }
  return floatTensor(x.shape, out);
}

/** Layer norm over one axis with biased variance; optional per-channel affine (length = that axis). */
export function layerNorm(x: FloatTensor, axis: number, eps: number, weight?: Float32Array, bias?: Float32Array): FloatTensor {
  const [outer, n, inner] = around(x.shape, axis);
  const out = new Float32Array(x.data.length);
  const X = x.data;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let mean = 0;
      for (let k = 0; k < n; k++) mean += X[base + k * inner]!;
      mean /= n;
      let v = 0;
      for (let k = 0; k < n; k++) {
        const d = X[base + k * inner]! - mean;
        v += d * d;
      }
      const inv = 1 / Math.sqrt(v / n + eps);
      for (let k = 0; k < n; k++) {
        let y = (X[base + k * inner]! - mean) * inv;
        if (weight) y = y * weight[k]! + bias![k]!;
        out[base + k * inner] = y;
      }
    }
  return floatTensor(x.shape, out);
}
