// Elementwise work, normalizations and RoPE on the fast engine: one pass of 4-lane code on every
// thread over operands in the engine's memory (copied in when they are not, and the result copied
// out when no resident scope is open). Copies run at memory speed, several times what a scalar
// JavaScript loop over a Float32Array reaches.
import { broadcastShapes, broadcastStrides } from "../elementwise.js";
import { floatTensor, mergeAxes, numel, type FloatTensor } from "../tensor.js";
import { simdEngine, type ParallelKernel } from "./engine.js";

/** Kernel codes, as src/kernels/simd/assembly/elementwise.ts numbers them. */
export const UNARY_SIMD = { gelu_tanh: 0, silu: 1, sigmoid: 2, tanh: 3, exp: 4, sqrt: 5, rsqrt: 6, neg: 7 } as const;
const ROUND_F16 = 8;
export type SimdUnary = keyof typeof UNARY_SIMD;
export const BINARY_SIMD = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4 } as const;
export type SimdBinary = keyof typeof BINARY_SIMD;

const PARALLEL_MIN_ELEMENTS = 1 << 16;

/** Runs `kernel` with the engine's thread count when the job is big enough to share. */
export function run(kernel: ParallelKernel, args: number[], elements: number): void {
  const e = simdEngine();
  e.parallel(kernel, args, elements >= PARALLEL_MIN_ELEMENTS ? e.info().threads : 1);
}

/**
 * Lets `body` run kernels on the pointers of `inputs` (copied in unless they live in the engine's
 * memory) and of an `outElements`-float result, which it returns (see `Engine.output`).
 */
export function withOperands(inputs: readonly Float32Array[], outElements: number, body: (ptrs: number[], out: number) => void): Float32Array {
  const e = simdEngine();
  const mark = e.mark();
  try {
    const ptrs = inputs.map((x) => e.input(x));
    const result = e.output(outElements);
    const out = e.target(result);
    body(ptrs, out.ptr);
    out.done();
    return result;
  } finally {
    e.release(mark);
  }
}

export function unarySimd(kind: SimdUnary, x: FloatTensor): FloatTensor {
  const n = x.data.length;
  const data = withOperands([x.data], n, ([p], out) => run("unary", [UNARY_SIMD[kind], p!, out, n], n));
  return floatTensor(x.shape, data);
}

/**
 * Rounds every element to the nearest half-precision value in place (roundToF16InPlace's values;
 * a NaN keeps its payload): where it lies, when `data` lives in the engine's memory, so a result
 * stays there for the next kernel; otherwise through working memory.
 */
export function roundToF16Simd(data: Float32Array): Float32Array {
  const e = simdEngine(), n = data.length;
  if (e.holds(data)) {
    run("unary", [ROUND_F16, data.byteOffset, data.byteOffset, n], n);
    return data;
  }
  const mark = e.mark();
  try {
    const p = e.put(data);
    run("unary", [ROUND_F16, p, p, n], n);
    data.set(e.f32(p, n));
  } finally {
    e.release(mark);
  }
  return data;
}

/**
 * a ⊙ b with numpy broadcasting, or undefined when the collapsed broadcast's innermost axis is
 * not a plain run in both operands (the caller falls back to its scalar loop).
 */
export function binarySimd(kind: SimdBinary, a: FloatTensor, b: FloatTensor): FloatTensor | undefined {
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) throw new Error(`internal: shapes (${a.shape}) and (${b.shape}) do not broadcast`);
  const n = numel(shape);
  const { dims, strides } = mergeAxes(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
  if (dims.length === 0) return undefined;
  const sa = strides[0]!, sb = strides[1]!;
  const rank = dims.length, ia = sa[rank - 1]!, ib = sb[rank - 1]!;
  if (ia > 1 || ib > 1 || (ia === 0 && ib === 0)) return undefined;
  const e = simdEngine();
  const data = withOperands([a.data, b.data], n, ([pa, pb], out) => {
    const desc = e.alloc(12 * rank);
    e.i32(desc, 3 * rank).set([...dims, ...sa, ...sb]);
    run("binary", [BINARY_SIMD[kind], pa!, pb!, out, desc, rank], n);
  });
  return floatTensor(shape, data);
}

/** Views `shape` as (outer, n, inner) around `axis`. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis]!, numel(shape.slice(axis + 1))];
}

export function layerNormSimd(x: FloatTensor, axis: number, eps: number, weight?: Float32Array, bias?: Float32Array): FloatTensor {
  const [outer, n, inner] = around(x.shape, axis);
  const inputs = weight ? [x.data, weight, bias!] : [x.data];
  const data = withOperands(inputs, x.data.length, ([p, w, b], out) => run("layer_norm", [p!, out, outer, n, inner, eps, w ?? 0, b ?? 0], x.data.length));
  return floatTensor(x.shape, data);
}

export function softmaxSimd(x: FloatTensor, axis: number): FloatTensor {
  const [outer, n, inner] = around(x.shape, axis);
  const e = simdEngine();
  const data = withOperands([x.data], x.data.length, ([p], out) => run("softmax", [p!, out, outer, n, inner, e.alloc(e.kernels.softmax_scratch_bytes() * e.info().threads)], x.data.length));
  return floatTensor(x.shape, data);
}

/** Axial 2-D RoPE (docs/model.md step 4) on x (B, L, heads·dh) for the tokens of an Hg x Wg grid. */
export function rope2dSimd(x: FloatTensor, heads: number, grid: readonly [number, number]): FloatTensor {
  const [B, L, C] = x.shape as [number, number, number];
  const dh = C / heads;
  const { cos, sin } = ropeTables(grid, dh);
  const data = withOperands([x.data, cos, sin], x.data.length, ([p, c, s], out) => run("rope", [p!, out, B * L, L, heads, dh, c!, s!], x.data.length));
  return floatTensor(x.shape, data);
}

/** The last few grids' tables: a model's every attention layer asks for the same ones. */
const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array }>();

/** cos and sin of each token's angles, (L, dh/2): the row's pairs, then the column's. */
function ropeTables(grid: readonly [number, number], dh: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${grid[0]}x${grid[1]}/${dh}`;
  const hit = ropeCache.get(key);
  if (hit) return hit;
  const L = grid[0] * grid[1], Wg = grid[1], half = dh / 2, pairs = dh / 4;
  // angles depend on (row or column, pair) only: a small table per axis, spread over the tokens
  const angle = (pos: number, i: number) => pos * 10000 ** (-(2 * i) / half);
  const axisTable = (n: number, f: (v: number) => number) => Float32Array.from({ length: n * pairs }, (_, k) => f(angle(Math.floor(k / pairs), k % pairs)));
  const rowCos = axisTable(grid[0], Math.cos), rowSin = axisTable(grid[0], Math.sin);
  const colCos = axisTable(Wg, Math.cos), colSin = axisTable(Wg, Math.sin);
  const cos = new Float32Array(L * half), sin = new Float32Array(L * half);
  for (let t = 0; t < L; t++) {
    const r = Math.floor(t / Wg) * pairs, c = (t % Wg) * pairs;
    cos.set(rowCos.subarray(r, r + pairs), t * half);
    sin.set(rowSin.subarray(r, r + pairs), t * half);
    cos.set(colCos.subarray(c, c + pairs), t * half + pairs);
    sin.set(colSin.subarray(c, c + pairs), t * half + pairs);
  }
  if (ropeCache.size >= 4) ropeCache.delete(ropeCache.keys().next().value!);
  ropeCache.set(key, { cos, sin });
  return { cos, sin };
}
