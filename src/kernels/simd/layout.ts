// Slices, concats, transposes and reductions on the fast engine (assembly/layout.ts): the element
// moves and float64 sums of the scalar kernels (src/kernels/{layout,reduce}.ts), bit for bit, but
// with operands and results in the engine's memory, so the lowered graphs' hundreds of slices and
// transposes between matmuls cost a memory copy each instead of a JavaScript loop and two copies.
import { mergeAxes, numel, stridesOf, type FloatTensor } from "../tensor.js";
import { simdEngine } from "./engine.js";
import { run, withOperands } from "./elementwise.js";

/**
 * Copies `dims` elements from src (strides sStr) to dst (strides dStr), starting `sOff` and `dOff`
 * elements in, over the fewest axes that walk both sides (a row is then one `memory.copy`).
 */
function copyStrided(src: number, dst: number, dims: readonly number[], sStr: readonly number[], dStr: readonly number[], sOff = 0, dOff = 0): void {
  const m = mergeAxes(dims, [sStr, dStr]), one = !m.dims.length; // a single element: one axis of 1
  const d = one ? [1] : m.dims, s = one ? [1] : m.strides[0]!, t = one ? [1] : m.strides[1]!;
  const e = simdEngine(), rank = d.length;
  const desc = e.alloc(12 * rank);
  e.i32(desc, 3 * rank).set([...d, ...s, ...t]);
  run("copy_strided", [src + 4 * sOff, dst + 4 * dOff, desc, rank], numel(d));
}

export function sliceSimd(x: FloatTensor, begin: readonly number[], size: readonly number[]): FloatTensor {
  const strides = stridesOf(x.shape);
  const off = begin.reduce((a, b, i) => a + b * strides[i]!, 0);
  const data = withOperands([x.data], numel(size), ([p], out) => copyStrided(p!, out, size, strides, stridesOf(size), off));
  return { dtype: x.dtype, shape: [...size], data };
}

export function transposeSimd(x: FloatTensor, perm: readonly number[]): FloatTensor {
  const inStrides = stridesOf(x.shape), shape = perm.map((p) => x.shape[p]!);
  const data = withOperands([x.data], numel(shape), ([p], out) => copyStrided(p!, out, shape, perm.map((p) => inStrides[p]!), stridesOf(shape)));
  return { dtype: x.dtype, shape, data };
}

export function concatSimd(xs: readonly FloatTensor[], axis: number): FloatTensor {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
  const outStrides = stridesOf(shape);
  const data = withOperands(xs.map((x) => x.data), numel(shape), (ptrs, out) => {
    let at = 0;
    xs.forEach((x, i) => {
      copyStrided(ptrs[i]!, out, x.shape, stridesOf(x.shape), outStrides, 0, at * outStrides[axis]!);
      at += x.shape[axis]!;
    });
  });
  return { dtype: xs[0]!.dtype, shape, data };
}

const REDUCE = { sum: 0, mean: 1, max: 2 } as const;

/** Reduces the axes one at a time, highest first, each rounded to float32 (the scalar kernel's order). */
export function reduceSimd(x: FloatTensor, axes: readonly number[], kind: keyof typeof REDUCE, keepDims: boolean): FloatTensor {
  let shape = [...x.shape], data = x.data;
  for (const axis of [...axes].sort((a, b) => b - a)) {
    const outer = numel(shape.slice(0, axis)), n = shape[axis]!, inner = numel(shape.slice(axis + 1));
    data = withOperands([data], outer * inner, ([p], out) => run("reduce", [REDUCE[kind], p!, out, outer, n, inner], outer * n * inner));
    shape[axis] = 1;
  }
  if (!keepDims) shape = x.shape.filter((_, d) => !axes.includes(d));
  return { dtype: x.dtype, shape, data };
}

/** An unpadded depthwise convolution's sizes; strides are in elements, per (batch, channel, row, column). */
export interface DepthwiseShape {
  B: number;
  C: number;
  /** output channels per input channel */
  mult: number;
  Ho: number;
  Wo: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  xStrides: readonly [number, number, number, number];
  outStrides: readonly [number, number, number, number];
}

/**
 * A depthwise convolution without padding on the engine (assembly/layout.ts `depthwise`): NCHW
 * planes or token rows, as the strides say; w holds C·KH·KW taps, bias C values or none. The bits
 * of the JavaScript loops in ../fast.ts: float64 sums, tap by tap, rounded once.
 */
export function depthwiseSimd(x: Float32Array, w: Float32Array, bias: Float32Array | undefined, s: DepthwiseShape): Float32Array {
  const n = s.B * s.C * s.Ho * s.Wo;
  const [xb, xc, xh, xw] = s.xStrides, [ob, oc, oh, ow] = s.outStrides;
  return withOperands(bias ? [x, w, bias] : [x, w], n, ([px, pw, pb], out) =>
    run("depthwise", [px!, out, pw!, pb ?? 0, s.B, s.C, s.mult, s.Ho, s.Wo, s.KH, s.KW, s.sh, s.sw, xb * 4, xc * 4, xh * 4, xw * 4, ob * 4, oc * 4, oh * 4, ow * 4], n * s.KH * s.KW),
  );
}
