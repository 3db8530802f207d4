// The kernels the op table runs for the matmul, convolution and attention families: the SIMD
// engine (simd/) by default, the plain scalar oracles when `setKernelMode("scalar")` (or
// DITC_KERNELS=scalar) asks for them. Both compute the same math; tests hold each fast path to its
// oracle, and benchmarks run both in one process.
import { assaAttention as assaDense, bnaAttention as bnaDense, mapToTokens, multiHeadAttention as mhaDense, qkNorm as qkNormScalar, rope2d as rope2dScalar, tokensToMap, type AssaWeights, type BnaAttrs, type HeadAttrs } from "./attention.js";
import { conv2d as convScalar, convOutSize, type Conv2dAttrs } from "./conv.js";
import { einsum as einsumScalar, einsumSizes, type EinsumSpec } from "./einsum.js";
import { binary as binaryScalar, binaryFns, unary as unaryScalar, unaryFns, type BinaryKind, type UnaryKind } from "./elementwise.js";
import { layerNorm as layerNormScalar, reduce as reduceScalar, softmax as softmaxScalar, type ReduceKind } from "./reduce.js";
import { roundToF16InPlace } from "./fp16.js";
import { gemmNT } from "./gemm.js";
import { concat as concatScalar, slice as sliceScalar, transpose as transposeScalar } from "./layout.js";
import { bnaAttentionTiled, multiHeadAttentionTiled } from "./simd/attention.js";
import { BINARY_SIMD, binarySimd, layerNormSimd, rope2dSimd, roundToF16Simd, softmaxSimd, UNARY_SIMD, unarySimd, type SimdBinary, type SimdUnary } from "./simd/elementwise.js";
import { simdEngine } from "./simd/engine.js";
import { gemmFast, type BOperand, type MatrixView } from "./simd/gemm.js";
import { concatSimd, depthwiseSimd, reduceSimd, sliceSimd, transposeSimd } from "./simd/layout.js";
import { floatTensor, isCompact, numel, stridesOf, type FloatTensor, type Tensor } from "./tensor.js";

export type KernelMode = "simd" | "scalar";
let mode: KernelMode = process.env.DITC_KERNELS === "scalar" ? "scalar" : "simd";

export function setKernelMode(m: KernelMode): void {
  mode = m;
}

export function kernelMode(): KernelMode {
  return mode;
}

/** Which kernels compute a forward, as reports name them: FMA changes the low bits of every sum. */
export type KernelBuild = "scalar" | "wasm-simd" | "wasm-simd-fma";

export function kernelBuild(): KernelBuild {
  if (mode === "scalar") return "scalar";
  return simdEngine().info().relaxedSimd ? "wasm-simd-fma" : "wasm-simd";
}

/**
 * The interpreter's hold on the results kernels leave in the fast engine's memory during one graph
 * run (see engine.ts): it says which values keep a result, and views of results it let go of (and
 * of everything once it is closed) must not be used again. Plain arrays pass through untouched,
 * and in scalar mode nothing is resident.
 */
export interface ResidentScope {
  /** allocation count, so `sweep` can free what one node made and no value kept */
  allocations(): number;
  keep(data: ArrayBufferView): void;
  drop(data: ArrayBufferView): void;
  sweep(since: number): void;
  /** whether `data` lives in the engine's memory (to be copied before it leaves the run) */
  holds(data: ArrayBufferView): boolean;
  close(): void;
}

export function openResidentScope(): ResidentScope {
  if (mode === "scalar") return { allocations: () => 0, keep: () => {}, drop: () => {}, sweep: () => {}, holds: () => false, close: () => {} };
  const e = simdEngine();
  e.openScope();
  return { allocations: () => e.allocations(), keep: (d) => e.keep(d), drop: (d) => e.drop(d), sweep: (s) => e.sweep(s), holds: (d) => e.holds(d), close: () => e.closeScope() };
}

/** A kernel's result array: in the fast engine's memory inside a resident scope (see `Engine.output`), every element written by the kernel. */
function resultArray(n: number): Float32Array {
  return mode === "simd" ? simdEngine().output(n) : new Float32Array(n);
}

/**
 * Rounds every element to the nearest half-precision value, in place: on the engine (where the
 * array lies when it lives there, so a result stays put for the next kernel), or the scalar
 * oracle in scalar mode and for short arrays outside the engine.
 */
export function roundToF16(data: Float32Array): Float32Array {
  if (mode === "scalar" || (data.length < 1024 && !simdEngine().holds(data))) return roundToF16InPlace(data);
  return roundToF16Simd(data);
}

/** a ⊙ b with numpy broadcasting. */
export function binary(kind: BinaryKind, a: FloatTensor, b: FloatTensor): FloatTensor {
  const fast = mode === "simd" && Object.hasOwn(BINARY_SIMD, kind) ? binarySimd(kind as SimdBinary, a, b) : undefined;
  return fast ?? binaryScalar(a, b, binaryFns[kind]);
}

/** f(x) elementwise; the transcendental ones on the SIMD engine. */
export function unary(kind: UnaryKind, x: FloatTensor): FloatTensor {
  if (mode === "simd" && Object.hasOwn(UNARY_SIMD, kind)) return unarySimd(kind as SimdUnary, x);
  return unaryScalar(x, unaryFns[kind]);
}

/** Layer norm over `axis` (biased variance), optional affine. */
export function layerNorm(x: FloatTensor, axis: number, eps: number, weight?: Float32Array, bias?: Float32Array): FloatTensor {
  return mode === "scalar" ? layerNormScalar(x, axis, eps, weight, bias) : layerNormSimd(x, axis, eps, weight, bias);
}

export function softmax(x: FloatTensor, axis: number): FloatTensor {
  return mode === "scalar" ? softmaxScalar(x, axis) : softmaxSimd(x, axis);
}

/** Float tensors the engine's layout kernels take: plain float32 values, not empty (palettes and fp16 patterns keep their compact form). */
const engineFloats = (t: Tensor): t is FloatTensor => mode === "simd" && !isCompact(t) && t.data instanceof Float32Array && t.data.length > 0;

/** Static slice (begin and size per axis). */
export function slice(x: FloatTensor, begin: readonly number[], size: readonly number[]): FloatTensor {
  return engineFloats(x) && numel(size) > 0 ? sliceSimd(x, begin, size) : sliceScalar(x, begin, size);
}

export function concat(xs: readonly FloatTensor[], axis: number): FloatTensor {
  return xs.every(engineFloats) ? concatSimd(xs, axis) : concatScalar(xs, axis);
}

/** Any tensor; float ones move on the engine. */
export function transpose<T extends Tensor>(x: T, perm: readonly number[]): T {
  return engineFloats(x) && perm.length > 0 ? (transposeSimd(x, perm) as unknown as T) : transposeScalar(x, perm);
}

export function reduce(x: FloatTensor, axes: readonly number[], kind: ReduceKind, keepDims: boolean): FloatTensor {
  return engineFloats(x) && axes.length > 0 ? reduceSimd(x, axes, kind, keepDims) : reduceScalar(x, axes, kind, keepDims);
}

export function rope2d(x: FloatTensor, heads: number, grid: readonly [number, number]): FloatTensor {
  return mode === "scalar" ? rope2dScalar(x, heads, grid) : rope2dSimd(x, heads, grid);
}

/** LayerNorm over each head's dh channels with a shared affine (docs/model.md step 4). */
export function qkNorm(x: FloatTensor, weight: FloatTensor, bias: FloatTensor, heads: number, eps: number): FloatTensor {
  if (mode === "scalar") return qkNormScalar(x, weight, bias, heads, eps);
  const dh = x.shape[x.shape.length - 1]! / heads;
  const y = layerNormSimd(floatTensor([x.data.length / dh, dh], x.data), 1, eps, weight.data, bias.data);
  return floatTensor(x.shape, y.data);
}

/**
 * B(k, n) = W[rowOff + n, k] for a weight whose rows (axis 0) are K elements long, in whichever
 * form the tensor holds it: a palette or fp16 patterns are widened while packing, never as a whole.
 */
function weightOperand(w: FloatTensor, K: number, rowOff = 0): BOperand {
  const p = w.palette;
  const rowsPerGroup = w.shape[0]! / (p?.groups ?? 1);
  if (p && rowOff % rowsPerGroup === 0) {
    const lut = p.lut.subarray((rowOff / rowsPerGroup) * p.entries);
    return { kind: "lut", indices: p.indices, off: rowOff * K, sK: 1, sN: K, lut, entries: p.entries, nPerGroup: rowsPerGroup };
  }
  if (w.half) return { kind: "f16", bits: w.half, off: rowOff * K, sK: 1, sN: K };
  return { kind: "f32", data: w.data, off: rowOff * K, sK: 1, sN: K };
}

/** y = x · Wᵀ + b, W (N, K) as PyTorch stores it. */
export function linear(x: FloatTensor, w: FloatTensor, bias?: FloatTensor): FloatTensor {
  const [N, K] = w.shape as [number, number];
  const M = x.data.length / K;
  const out = resultArray(M * N);
  if (mode === "scalar") gemmNT(x.data, 0, w.data, 0, out, 0, M, N, K, bias?.data);
  else gemmFast(M, N, K, { data: x.data, off: 0, rs: K, cs: 1 }, weightOperand(w, K), { data: out, off: 0, rs: N, cs: 1 }, bias?.data);
  return floatTensor([...x.shape.slice(0, -1), N], out);
}

/** Batched op(a) · op(b) with broadcast batch axes; op transposes the last two axes when asked. */
export function matmul(a: FloatTensor, b: FloatTensor, transposeA: boolean, transposeB: boolean, batch: readonly number[]): FloatTensor {
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const [M, K] = transposeA ? [a1, a0] : [a0, a1];
  const N = transposeB ? b0 : b1;
  const out = resultArray(numel(batch) * M * N);
  const offA = batchOffsets(a.shape.slice(0, -2), batch, a0 * a1);
  const offB = batchOffsets(b.shape.slice(0, -2), batch, b0 * b1);
  for (let i = 0; i < offA.length; i++) {
    const A: MatrixView = transposeA ? { data: a.data, off: offA[i]!, rs: 1, cs: M } : { data: a.data, off: offA[i]!, rs: K, cs: 1 };
    const C: MatrixView = { data: out, off: i * M * N, rs: N, cs: 1 };
    if (mode === "scalar") {
      const At = transposeA ? transpose(floatTensor([K, M], a.data.slice(offA[i]!, offA[i]! + M * K)), [1, 0]).data : a.data.subarray(offA[i]!, offA[i]! + M * K);
      const Bt = transposeB ? b.data.subarray(offB[i]!, offB[i]! + N * K) : transpose(floatTensor([K, N], b.data.slice(offB[i]!, offB[i]! + K * N)), [1, 0]).data;
      gemmNT(At, 0, Bt, 0, out, C.off, M, N, K);
    } else {
      const B: BOperand = transposeB ? { kind: "f32", data: b.data, off: offB[i]!, sK: 1, sN: K } : { kind: "f32", data: b.data, off: offB[i]!, sK: N, sN: 1 };
      gemmFast(M, N, K, A, B, C);
    }
  }
  return floatTensor([...batch, M, N], out);
}

/** Element offset of each (row-major) batch index of `batch` in a tensor whose batch axes are `shape` (broadcast). */
function batchOffsets(shape: readonly number[], batch: readonly number[], matrix: number): number[] {
  const n = numel(batch);
  const rank = batch.length;
  const own = stridesOf(shape);
  const strides = batch.map((_, i) => {
    const j = i - (rank - shape.length);
    return j < 0 || shape[j] === 1 ? 0 : own[j]! * matrix;
  });
  const offs = new Array<number>(n);
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0, off = 0; i < n; i++) {
    offs[i] = off;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      off += strides[d]!;
      if (idx[d]! < batch[d]!) break;
      off -= strides[d]! * batch[d]!;
      idx[d] = 0;
    }
  }
  return offs;
}

/** NCHW convolution with OIHW weights: per batch item and group, C (Cout_g x P) = W_g · im2col. */
export function conv2dNchw(x: FloatTensor, w: FloatTensor, bias: FloatTensor | undefined, a: Conv2dAttrs): FloatTensor {
  if (mode === "scalar") return convScalar(x, w, bias, a);
  const [B, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cout, CinG, KH, KW] = w.shape as [number, number, number, number];
  if (CinG === 1 && a.groups === Cin) return depthwiseNchw(x, w, bias, a);
  const [sh, sw] = a.stride, [pt, pl, pb, pr] = a.pads;
  const Ho = convOutSize(H, KH, sh, pt, pb), Wo = convOutSize(W, KW, sw, pl, pr);
  const G = a.groups, CoutG = Cout / G, P = Ho * Wo, Kc = CinG * KH * KW;
  const out = resultArray(B * Cout * P);
  const pointwise = KH === 1 && KW === 1 && sh === 1 && sw === 1 && pt + pl + pb + pr === 0;
  const col = pointwise ? undefined : new Float32Array(Kc * P);
  const unpaddedW = pl === 0 && pr === 0; // every column inside the row: no test per element
  const X = x.data, Wt = w.data;
  for (let b = 0; b < B; b++)
    for (let g = 0; g < G; g++) {
      let Bop: BOperand;
      if (col) {
        // im2col as (Kc x P): row (ci, kh, kw), column = output pixel
        for (let ci = 0; ci < CinG; ci++) {
          const plane = (b * Cin + g * CinG + ci) * H * W;
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const row = ((ci * KH + kh) * KW + kw) * P;
              for (let oh = 0; oh < Ho; oh++) {
                const ih = oh * sh - pt + kh, at = row + oh * Wo;
                if (ih < 0 || ih >= H) {
                  col.fill(0, at, at + Wo);
                  continue;
                }
                const src = plane + ih * W - pl + kw;
                if (unpaddedW) for (let ow = 0; ow < Wo; ow++) col[at + ow] = X[src + ow * sw]!;
                else
                  for (let ow = 0; ow < Wo; ow++) {
                    const iw = ow * sw - pl + kw;
                    col[at + ow] = iw >= 0 && iw < W ? X[src + ow * sw]! : 0;
                  }
              }
            }
        }
        Bop = { kind: "f32", data: col, off: 0, sK: P, sN: 1 };
      } else {
        Bop = { kind: "f32", data: X, off: (b * Cin + g * CinG) * H * W, sK: H * W, sN: 1 };
      }
      const C0 = (b * Cout + g * CoutG) * P;
      // the output channels are C's rows: their bias is the gemm's per-row bias
      gemmFast(CoutG, P, Kc, { data: Wt, off: g * CoutG * Kc, rs: Kc, cs: 1 }, Bop, { data: out, off: C0, rs: P, cs: 1 }, bias?.data.subarray(g * CoutG, (g + 1) * CoutG), true);
    }
  return floatTensor([B, Cout, Ho, Wo], out);
}

/** One input channel per group (NCHW, OIHW with I = 1): a direct loop, there is no matrix to multiply. */
function depthwiseNchw(x: FloatTensor, w: FloatTensor, bias: FloatTensor | undefined, a: Conv2dAttrs): FloatTensor {
  if (isUnpadded(a)) return depthwiseUnpadded(x, w, bias, a, "NCHW");
  const [B, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cout, , KH, KW] = w.shape as [number, number, number, number];
  const [sh, sw] = a.stride, [pt, pl, pb, pr] = a.pads;
  const Ho = convOutSize(H, KH, sh, pt, pb), Wo = convOutSize(W, KW, sw, pl, pr);
  const mult = Cout / Cin;
  const out = resultArray(B * Cout * Ho * Wo);
  const X = x.data, Wt = w.data;
  for (let b = 0; b < B; b++)
    for (let co = 0; co < Cout; co++) {
      const plane = (b * Cin + Math.floor(co / mult)) * H * W, dst = (b * Cout + co) * Ho * Wo;
      const bv = bias ? bias.data[co]! : 0;
      for (let oh = 0; oh < Ho; oh++)
        for (let ow = 0; ow < Wo; ow++) {
          let s = 0;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sh - pt + kh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sw - pl + kw;
              if (iw >= 0 && iw < W) s += X[plane + ih * W + iw]! * Wt[(co * KH + kh) * KW + kw]!;
            }
          }
          out[dst + oh * Wo + ow] = s + bv;
        }
    }
  return floatTensor([B, Cout, Ho, Wo], out);
}

const isUnpadded = (a: Conv2dAttrs) => a.pads.every((p) => p === 0);

/**
 * A depthwise convolution whose every tap lies inside the image (the ASSA compression as CoreML
 * and TFLite lower it), on the engine: the same float64 sums as depthwiseNchw's loop. The weight
 * is (Cout, 1, KH, KW) or, NHWC, (Cout, KH, KW, 1): the same order of taps.
 */
function depthwiseUnpadded(x: FloatTensor, w: FloatTensor, bias: FloatTensor | undefined, a: Conv2dAttrs, layout: "NCHW" | "NHWC"): FloatTensor {
  const nchw = layout === "NCHW";
  const [B, Cin, H, W] = (nchw ? x.shape : [x.shape[0], x.shape[3], x.shape[1], x.shape[2]]) as [number, number, number, number];
  const Cout = w.shape[0]!, KH = w.shape[nchw ? 2 : 1]!, KW = w.shape[nchw ? 3 : 2]!;
  const [sh, sw] = a.stride;
  const Ho = convOutSize(H, KH, sh, 0, 0), Wo = convOutSize(W, KW, sw, 0, 0);
  const data = depthwiseSimd(x.data, w.data, bias?.data, {
    B, C: Cout, mult: Cout / Cin, Ho, Wo, KH, KW, sh, sw,
    xStrides: nchw ? [Cin * H * W, H * W, W, 1] : [H * W * Cin, 1, W * Cin, Cin],
    outStrides: nchw ? [Cout * Ho * Wo, Ho * Wo, Wo, 1] : [Ho * Wo * Cout, 1, Wo * Cout, Cout],
  });
  return floatTensor(nchw ? [B, Cout, Ho, Wo] : [B, Ho, Wo, Cout], data);
}

/**
 * The depthwise convolution (no padding) of tokens x (B, L, C) seen as their Hg x Wg map, in token
 * layout: what depthwiseNchw computes between tokensToMap and mapToTokens, sums in the same order,
 * without the two transposes.
 */
function depthwiseTokens(x: FloatTensor, grid: readonly [number, number], w: FloatTensor, bias: FloatTensor, stride: number): FloatTensor {
  const [B, , C] = x.shape as [number, number, number];
  const [Hg, Wg] = grid;
  const [, , KH, KW] = w.shape as [number, number, number, number];
  const Ho = convOutSize(Hg, KH, stride, 0, 0), Wo = convOutSize(Wg, KW, stride, 0, 0);
  const data = depthwiseSimd(x.data, w.data, bias.data, {
    B, C, mult: 1, Ho, Wo, KH, KW, sh: stride, sw: stride, xStrides: [Hg * Wg * C, 1, Wg * C, C], outStrides: [Ho * Wo * C, 1, Wo * C, C],
  });
  return floatTensor([B, Ho * Wo, C], data);
}

/** NHWC convolution with OHWI weights (TFLite's CONV_2D): per group, C (P x Cout_g) = im2col · W_gᵀ. */
export function conv2dNhwc(x: FloatTensor, w: FloatTensor, bias: FloatTensor | undefined, a: Conv2dAttrs): FloatTensor {
  const [B, H, W, Cin] = x.shape as [number, number, number, number];
  const [Cout, KH, KW, CinG] = w.shape as [number, number, number, number];
  if (mode !== "scalar" && CinG === 1 && a.groups === Cin && isUnpadded(a)) return depthwiseUnpadded(x, w, bias, a, "NHWC");
  if (mode === "scalar" || (CinG === 1 && a.groups === Cin)) {
    const y = conv2dNchw(transpose(x, [0, 3, 1, 2]), transpose(w, [0, 3, 1, 2]), bias, a);
    return transpose(y, [0, 2, 3, 1]);
  }
  const [sh, sw] = a.stride, [pt, pl, pb, pr] = a.pads;
  const Ho = convOutSize(H, KH, sh, pt, pb), Wo = convOutSize(W, KW, sw, pl, pr);
  const G = a.groups, CoutG = Cout / G, P = Ho * Wo, Kc = KH * KW * CinG;
  const out = resultArray(B * P * Cout);
  const pointwise = KH === 1 && KW === 1 && sh === 1 && sw === 1 && pt + pl + pb + pr === 0;
  const col = pointwise ? undefined : new Float32Array(P * Kc);
  const X = x.data;
  for (let b = 0; b < B; b++)
    for (let g = 0; g < G; g++) {
      let A: MatrixView;
      if (col) {
        // im2col as (P x Kc): row = output pixel, column (kh, kw, ci) as OHWI flattens
        for (let oh = 0; oh < Ho; oh++)
          for (let ow = 0; ow < Wo; ow++) {
            const row = (oh * Wo + ow) * Kc;
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh - pt + kh;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sw - pl + kw, dst = row + (kh * KW + kw) * CinG;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) col.fill(0, dst, dst + CinG);
                else {
                  const src = ((b * H + ih) * W + iw) * Cin + g * CinG;
                  col.set(X.subarray(src, src + CinG), dst);
                }
              }
            }
          }
        A = { data: col, off: 0, rs: Kc, cs: 1 };
      } else {
        A = { data: X, off: b * H * W * Cin + g * CinG, rs: Cin, cs: 1 };
      }
      gemmFast(P, CoutG, Kc, A, weightOperand(w, Kc, g * CoutG), { data: out, off: b * P * Cout + g * CoutG, rs: Cout, cs: 1 }, bias?.data.subarray(g * CoutG, (g + 1) * CoutG));
    }
  return floatTensor([B, Ho, Wo, Cout], out);
}

/**
 * A two-operand einsum that is a batched matrix product (each index in both operands and the
 * output is a batch index, at most one index each for rows, columns and the sum) on the gemm;
 * anything else on the general scalar einsum.
 */
export function einsum(spec: EinsumSpec, xs: readonly FloatTensor[]): FloatTensor {
  if (mode === "scalar" || xs.length !== 2) return einsumScalar(spec, xs);
  const [sa, sb] = spec.inputs as [string, string];
  const so = spec.output;
  const letters = new Set([...sa, ...sb, ...so]);
  const batch: string[] = [], m: string[] = [], n: string[] = [], k: string[] = [];
  for (const l of letters) {
    const inA = sa.includes(l), inB = sb.includes(l), inO = so.includes(l);
    if (inA && inB && inO) batch.push(l);
    else if (inA && inO && !inB) m.push(l);
    else if (inB && inO && !inA) n.push(l);
    else if (inA && inB && !inO) k.push(l);
    else return einsumScalar(spec, xs);
  }
  if (m.length > 1 || n.length > 1 || k.length > 1 || new Set(sa).size !== sa.length || new Set(sb).size !== sb.length) return einsumScalar(spec, xs);
  const sizes = einsumSizes(spec, xs.map((x) => x.shape));
  if (typeof sizes === "string") throw new Error(`internal: einsum ${sizes}`);
  const outShape = [...so].map((l) => sizes.get(l)!);
  const strideIn = (sub: string, shape: readonly number[]) => {
    const st = stridesOf(shape);
    return (l: string | undefined) => (l === undefined || !sub.includes(l) ? 0 : st[sub.indexOf(l)]!);
  };
  const sA = strideIn(sa, xs[0]!.shape), sB = strideIn(sb, xs[1]!.shape), sO = strideIn(so, outShape);
  const size = (l: string | undefined) => (l === undefined ? 1 : sizes.get(l)!);
  const [ml, nl, kl] = [m[0], n[0], k[0]];
  const M = size(ml), N = size(nl), K = size(kl);
  const out = resultArray(numel(outShape));
  const idx = new Array<number>(batch.length).fill(0);
  const total = numel(batch.map((l) => sizes.get(l)!));
  for (let t = 0; t < total; t++) {
    let oa = 0, ob = 0, oo = 0;
    batch.forEach((l, i) => {
      oa += idx[i]! * sA(l);
      ob += idx[i]! * sB(l);
      oo += idx[i]! * sO(l);
    });
    gemmFast(M, N, K, { data: xs[0]!.data, off: oa, rs: sA(ml), cs: sA(kl) }, { kind: "f32", data: xs[1]!.data, off: ob, sK: sB(kl), sN: sB(nl) }, { data: out, off: oo, rs: sO(ml), cs: sO(nl) });
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++idx[d]! < sizes.get(batch[d]!)!) break;
      idx[d] = 0;
    }
  }
  return floatTensor(outShape, out);
}

/** Multi-head attention with GQA grouping, no mask. */
export function multiHeadAttention(q: FloatTensor, k: FloatTensor, v: FloatTensor, a: HeadAttrs): FloatTensor {
  return mode === "scalar" ? mhaDense(q, k, v, a) : multiHeadAttentionTiled(q, k, v, a);
}

export function bnaAttention(q: FloatTensor, k: FloatTensor, v: FloatTensor, a: HeadAttrs & BnaAttrs): FloatTensor {
  return mode === "scalar" ? bnaDense(q, k, v, a) : bnaAttentionTiled(q, k, v, a);
}

/** ASSA (docs/model.md step 5): per head, g · global + (1 − g) · local, before the out projection. */
export function assaAttention(q: FloatTensor, k: FloatTensor, v: FloatTensor, w: AssaWeights, a: HeadAttrs & BnaAttrs): FloatTensor {
  if (mode === "scalar") return assaDense(q, k, v, w, a);
  const compress = (x: FloatTensor, cw: FloatTensor, cb: FloatTensor) => {
    const groups = x.shape[2]! / cw.shape[1]!;
    if (cw.shape[1] === 1 && cw.shape[0] === x.shape[2]) return depthwiseTokens(x, a.grid, cw, cb, 2);
    return mapToTokens(conv2dNchw(tokensToMap(x, a.grid), cw, cb, { stride: [2, 2], pads: [0, 0, 0, 0], groups }));
  };
  const global = multiHeadAttentionTiled(q, compress(k, w.kCompressW, w.kCompressB), compress(v, w.vCompressW, w.vCompressB), a);
  const local = bnaAttentionTiled(q, k, v, a);
  const [B, L, C] = global.shape as [number, number, number];
  const H = a.heads, dv = C / H;
  const out = global.data, loc = local.data, gate = w.gate.data;
  for (let t = 0; t < B * L; t++)
    for (let h = 0; h < H; h++) {
      const g = gate[t * H + h]!;
      const base = t * C + h * dv;
      for (let c = 0; c < dv; c++) out[base + c] = g * out[base + c]! + (1 - g) * loc[base + c]!;
    }
  return global;
}
