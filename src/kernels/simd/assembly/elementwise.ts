// Pointwise functions whose cost is the transcendental, on four lanes (exp4 underneath). Each
// thread takes a contiguous run of the elements; every element is computed the same way wherever
// it falls, so thread counts do not change results.
import { exp4, shareLo } from "./common";

export const GELU_TANH = 0, SILU = 1, SIGMOID = 2, TANH = 3, EXP = 4, SQRT = 5, RSQRT = 6, NEG = 7, ROUND_F16 = 8;
export const ADD = 0, SUB = 1, MUL = 2, DIV = 3, MAXIMUM = 4;

@inline function tanh4(x: v128): v128 {
  // 1 - 2 / (e^{2x} + 1): saturates to ±1 without overflow (exp4 clamps its argument)
  const e = exp4(f32x4.add(x, x));
  return f32x4.sub(f32x4.splat(1), f32x4.div(f32x4.splat(2), f32x4.add(e, f32x4.splat(1))));
}

/**
 * The nearest half-precision value of each lane, ties to even, past 65504 ±Infinity, subnormals
 * kept (src/kernels/fp16.ts's f32ToF16Bits then back, bit for bit but for NaN payloads).
 */
@inline function roundF16x4(x: v128): v128 {
  const abs = v128.and(x, i32x4.splat(0x7fffffff)), sign = v128.and(x, i32x4.splat(i32.MIN_VALUE));
  // normal halves: the float32 bits rounded to 10 mantissa bits (a carry moves into the exponent)
  const lsb = v128.and(i32x4.shr_u(abs, 13), i32x4.splat(1));
  const normal = v128.and(i32x4.add(i32x4.add(abs, i32x4.splat(0xfff)), lsb), i32x4.splat(~0x1fff));
  // below 2^-14 the grid is 2^-24, the ulp of float32 numbers in [0.5, 1): adding 0.5 rounds to it
  const tiny = f32x4.sub(f32x4.add(abs, f32x4.splat(0.5)), f32x4.splat(0.5));
  let r = v128.bitselect(tiny, normal, i32x4.lt_s(abs, i32x4.splat(0x38800000)));
  // from 65520 (halfway past 65504, whose mantissa is odd) up: infinity; NaN and infinities as they are
  r = v128.bitselect(i32x4.splat(0x7f800000), r, i32x4.ge_s(abs, i32x4.splat(0x477ff000)));
  r = v128.bitselect(abs, r, i32x4.ge_s(abs, i32x4.splat(0x7f800000)));
  return v128.or(r, sign);
}

@inline function apply(kind: i32, x: v128): v128 {
  const one = f32x4.splat(1);
  switch (kind) {
    case GELU_TANH: {
      // 0.5·x·(1 + tanh(u)) = x·sigmoid(2u): the same function without 1 + tanh's cancellation for x ≪ 0
      const x3 = f32x4.mul(f32x4.mul(x, x), x);
      const u2 = f32x4.mul(f32x4.splat(-1.5957691216057308), f32x4.add(x, f32x4.mul(f32x4.splat(0.044715), x3)));
      return f32x4.div(x, f32x4.add(one, exp4(u2)));
    }
    case SILU: return f32x4.div(x, f32x4.add(one, exp4(f32x4.neg(x))));
    case SIGMOID: return f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
    case TANH: return tanh4(x);
    case SQRT: return f32x4.sqrt(x);
    case RSQRT: return f32x4.div(one, f32x4.sqrt(x));
    case NEG: return f32x4.neg(x);
    case ROUND_F16: return roundF16x4(x);
    default: return exp4(x);
  }
}

/** dst[i] = f(src[i]) for i < n, f by `kind`; src and dst may be the same. */
export function unary(tid: i32, nt: i32, kind: i32, src: usize, dst: usize, n: i32): void {
  const quads = (n + 3) >> 2;
  const q0 = shareLo(quads, tid, nt), q1 = shareLo(quads, tid + 1, nt);
  const full = min(q1, n >> 2);
  for (let q = q0; q < full; q++) {
    const o = <usize>q << 4;
    v128.store(dst + o, apply(kind, v128.load(src + o)));
  }
  if (q1 > full) {
    // the last partial quad, one lane at a time through the same vector code
    for (let i = full << 2; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(dst + o, f32x4.extract_lane(apply(kind, f32x4.splat(load<f32>(src + o))), 0));
    }
  }
}

// a > b ? a : b, as the scalar oracle has it (pmax(b, a) returns a only when b < a)
@inline function binary4(kind: i32, a: v128, b: v128): v128 {
  switch (kind) {
    case ADD: return f32x4.add(a, b);
    case SUB: return f32x4.sub(a, b);
    case MUL: return f32x4.mul(a, b);
    case DIV: return f32x4.div(a, b);
    default: return f32x4.pmax(b, a);
  }
}

/**
 * out = a ⊙ b over a broadcast collapsed to `rank` axes: at `shape`, rank i32 sizes, then rank
 * i32 strides of a, then of b, in elements. The innermost axis has stride 1 or 0 in each operand
 * (not 0 in both); each thread takes a contiguous range of the innermost runs.
 */
export function binary(tid: i32, nt: i32, kind: i32, a: usize, b: usize, out: usize, shape: usize, rank: i32): void {
  const last = rank - 1;
  const len = load<i32>(shape + (<usize>last << 2));
  const ia = load<i32>(shape + (<usize>(rank + last) << 2)), ib = load<i32>(shape + (<usize>(2 * rank + last) << 2));
  let runs = 1;
  for (let d = 0; d < last; d++) runs *= load<i32>(shape + (<usize>d << 2));
  const quads = len & ~3;
  for (let r = shareLo(runs, tid, nt), r1 = shareLo(runs, tid + 1, nt); r < r1; r++) {
    // operand offsets of run r, from its index over the outer axes
    let ao: usize = 0, bo: usize = 0, rest = r;
    for (let d = last - 1; d >= 0; d--) {
      const size = load<i32>(shape + (<usize>d << 2));
      const i = rest % size;
      rest /= size;
      ao += <usize>(i * load<i32>(shape + (<usize>(rank + d) << 2)));
      bo += <usize>(i * load<i32>(shape + (<usize>(2 * rank + d) << 2)));
    }
    const pa = a + (ao << 2), pb = b + (bo << 2), po = out + ((<usize>r * <usize>len) << 2);
    if (ia == 1 && ib == 1) {
      for (let j = 0; j < quads; j += 4) v128.store(po + (<usize>j << 2), binary4(kind, v128.load(pa + (<usize>j << 2)), v128.load(pb + (<usize>j << 2))));
      for (let j = quads; j < len; j++) store<f32>(po + (<usize>j << 2), f32x4.extract_lane(binary4(kind, f32x4.splat(load<f32>(pa + (<usize>j << 2))), f32x4.splat(load<f32>(pb + (<usize>j << 2)))), 0));
    } else if (ia == 1) {
      const y = v128.load32_splat(pb);
      for (let j = 0; j < quads; j += 4) v128.store(po + (<usize>j << 2), binary4(kind, v128.load(pa + (<usize>j << 2)), y));
      for (let j = quads; j < len; j++) store<f32>(po + (<usize>j << 2), f32x4.extract_lane(binary4(kind, f32x4.splat(load<f32>(pa + (<usize>j << 2))), y), 0));
    } else {
      const x = v128.load32_splat(pa);
      for (let j = 0; j < quads; j += 4) v128.store(po + (<usize>j << 2), binary4(kind, x, v128.load(pb + (<usize>j << 2))));
      for (let j = quads; j < len; j++) store<f32>(po + (<usize>j << 2), f32x4.extract_lane(binary4(kind, x, f32x4.splat(load<f32>(pb + (<usize>j << 2)))), 0));
    }
  }
}

/**
 * Layer norm (biased variance) of x seen as (outer, n, inner) over its middle axis, with an
 * optional affine w, b (n floats each, 0 for none). inner = 1: one row per item, vectorized along
 * the row; otherwise four inner positions per item, vectorized across them.
 */
export function layer_norm(tid: i32, nt: i32, x: usize, out: usize, outer: i32, n: i32, inner: i32, eps: f32, w: usize, b: usize): void {
  const invN: f32 = 1 / <f32>n;
  if (inner == 1) {
    const quads = n & ~3;
    for (let o = shareLo(outer, tid, nt), o1 = shareLo(outer, tid + 1, nt); o < o1; o++) {
      const row = x + ((<usize>o * <usize>n) << 2), dst = out + ((<usize>o * <usize>n) << 2);
      let acc = f32x4.splat(0);
      for (let k = 0; k < quads; k += 4) acc = f32x4.add(acc, v128.load(row + (<usize>k << 2)));
      let s = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
      for (let k = quads; k < n; k++) s += load<f32>(row + (<usize>k << 2));
      const mean = s * invN, m = f32x4.splat(mean);
      let vacc = f32x4.splat(0);
      for (let k = 0; k < quads; k += 4) {
        const d = f32x4.sub(v128.load(row + (<usize>k << 2)), m);
        vacc = f32x4.add(vacc, f32x4.mul(d, d));
      }
      let v = (f32x4.extract_lane(vacc, 0) + f32x4.extract_lane(vacc, 1)) + (f32x4.extract_lane(vacc, 2) + f32x4.extract_lane(vacc, 3));
      for (let k = quads; k < n; k++) {
        const d = load<f32>(row + (<usize>k << 2)) - mean;
        v += d * d;
      }
      const inv: f32 = 1 / Mathf.sqrt(v * invN + eps), iv = f32x4.splat(inv);
      for (let k = 0; k < quads; k += 4) {
        let y = f32x4.mul(f32x4.sub(v128.load(row + (<usize>k << 2)), m), iv);
        if (w) y = f32x4.add(f32x4.mul(y, v128.load(w + (<usize>k << 2))), v128.load(b + (<usize>k << 2)));
        v128.store(dst + (<usize>k << 2), y);
      }
      for (let k = quads; k < n; k++) {
        let y = (load<f32>(row + (<usize>k << 2)) - mean) * inv;
        if (w) y = y * load<f32>(w + (<usize>k << 2)) + load<f32>(b + (<usize>k << 2));
        store<f32>(dst + (<usize>k << 2), y);
      }
    }
    return;
  }
  // strided: items are (o, a group of four inner positions); the last group may be partial
  const groups = (inner + 3) >> 2, items = outer * groups;
  const stride = <usize>inner << 2;
  for (let it = shareLo(items, tid, nt), end = shareLo(items, tid + 1, nt); it < end; it++) {
    const o = it / groups, i0 = (it % groups) << 2, lanes = min(4, inner - i0);
    const base = ((<usize>o * <usize>n * <usize>inner) << 2) + (<usize>i0 << 2);
    if (lanes == 4) {
      let acc = f32x4.splat(0);
      for (let k = 0; k < n; k++) acc = f32x4.add(acc, v128.load(x + base + <usize>k * stride));
      const m = f32x4.mul(acc, f32x4.splat(invN));
      let vacc = f32x4.splat(0);
      for (let k = 0; k < n; k++) {
        const d = f32x4.sub(v128.load(x + base + <usize>k * stride), m);
        vacc = f32x4.add(vacc, f32x4.mul(d, d));
      }
      const iv = f32x4.div(f32x4.splat(1), f32x4.sqrt(f32x4.add(f32x4.mul(vacc, f32x4.splat(invN)), f32x4.splat(eps))));
      for (let k = 0; k < n; k++) {
        let y = f32x4.mul(f32x4.sub(v128.load(x + base + <usize>k * stride), m), iv);
        if (w) y = f32x4.add(f32x4.mul(y, v128.load32_splat(w + (<usize>k << 2))), v128.load32_splat(b + (<usize>k << 2)));
        v128.store(out + base + <usize>k * stride, y);
      }
    } else {
      for (let l = 0; l < lanes; l++) {
        const p = base + (<usize>l << 2);
        let s: f32 = 0;
        for (let k = 0; k < n; k++) s += load<f32>(x + p + <usize>k * stride);
        const mean = s * invN;
        let v: f32 = 0;
        for (let k = 0; k < n; k++) {
          const d = load<f32>(x + p + <usize>k * stride) - mean;
          v += d * d;
        }
        const inv: f32 = 1 / Mathf.sqrt(v * invN + eps);
        for (let k = 0; k < n; k++) {
          let y = (load<f32>(x + p + <usize>k * stride) - mean) * inv;
          if (w) y = y * load<f32>(w + (<usize>k << 2)) + load<f32>(b + (<usize>k << 2));
          store<f32>(out + p + <usize>k * stride, y);
        }
      }
    }
  }
}

/**
 * The most quads of positions one work item of a strided softmax covers (4 KB of each row), and
 * the scratch a thread needs for them.
 */
const SOFTMAX_BLOCK = 256;
const SOFTMAX_SCRATCH: usize = SOFTMAX_BLOCK * 32;

export function softmax_scratch_bytes(): usize {
  return SOFTMAX_SCRATCH;
}

/** Softmax of x seen as (outer, n, inner) over its middle axis (max subtracted); `scratch`: SOFTMAX_SCRATCH bytes a thread. */
export function softmax(tid: i32, nt: i32, x: usize, out: usize, outer: i32, n: i32, inner: i32, scratch: usize): void {
  const stride = <usize>inner << 2;
  if (inner == 1) {
    const quads = n & ~3;
    for (let o = shareLo(outer, tid, nt), o1 = shareLo(outer, tid + 1, nt); o < o1; o++) {
      const row = x + ((<usize>o * <usize>n) << 2), dst = out + ((<usize>o * <usize>n) << 2);
      let mv = f32x4.splat(-Infinity);
      for (let k = 0; k < quads; k += 4) mv = f32x4.pmax(mv, v128.load(row + (<usize>k << 2)));
      let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      for (let k = quads; k < n; k++) m = max(m, load<f32>(row + (<usize>k << 2)));
      const ms = f32x4.splat(m);
      let acc = f32x4.splat(0);
      for (let k = 0; k < quads; k += 4) {
        const e = exp4(f32x4.sub(v128.load(row + (<usize>k << 2)), ms));
        v128.store(dst + (<usize>k << 2), e);
        acc = f32x4.add(acc, e);
      }
      let s = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
      for (let k = quads; k < n; k++) {
        const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(row + (<usize>k << 2)) - m)), 0);
        store<f32>(dst + (<usize>k << 2), e);
        s += e;
      }
      const iv = f32x4.splat(1 / s);
      for (let k = 0; k < quads; k += 4) v128.store(dst + (<usize>k << 2), f32x4.mul(v128.load(dst + (<usize>k << 2)), iv));
      for (let k = quads; k < n; k++) store<f32>(dst + (<usize>k << 2), load<f32>(dst + (<usize>k << 2)) * (1 / s));
    }
    return;
  }
  // a strided axis: neighbouring inner positions side by side in the lanes, each lane doing
  // exactly the one-position loop's arithmetic in the same order (so the bits do not depend on
  // which positions share a vector). A work item takes a block of up to SOFTMAX_BLOCK quads of
  // positions, so every row it visits gives it a run of contiguous bytes rather than one vector
  // (a 1024-row axis 16 KB apart otherwise costs a cache line and a TLB entry per vector); its
  // running maxima and sums (then their inverses) wait in this thread's scratch. The inner % 4
  // positions left over take the loop below.
  const quadsPerRow = inner >> 2;
  // narrower items when a row has few quads, so every thread gets some (the bits are the same)
  const block = max(4, min(SOFTMAX_BLOCK, (quadsPerRow + 2 * nt - 1) / (2 * nt)));
  const blocksPerRow = (quadsPerRow + block - 1) / block;
  const maxima = scratch + <usize>tid * SOFTMAX_SCRATCH, sums = maxima + (SOFTMAX_SCRATCH >> 1);
  const blockItems = outer * blocksPerRow;
  for (let it = shareLo(blockItems, tid, nt), end = shareLo(blockItems, tid + 1, nt); it < end; it++) {
    const o = it / blocksPerRow, q0 = (it % blocksPerRow) * block;
    const bytes = <usize>(min(q0 + block, quadsPerRow) - q0) << 4;
    const p = ((<usize>o * <usize>n * <usize>inner + (<usize>q0 << 2)) << 2);
    for (let v: usize = 0; v < bytes; v += 16) v128.store(maxima + v, f32x4.splat(-Infinity));
    for (let k = 0; k < n; k++) {
      const row = x + p + <usize>k * stride;
      for (let v: usize = 0; v < bytes; v += 16) v128.store(maxima + v, f32x4.max(v128.load(maxima + v), v128.load(row + v)));
    }
    for (let v: usize = 0; v < bytes; v += 16) v128.store(sums + v, f32x4.splat(0));
    for (let k = 0; k < n; k++) {
      const row = p + <usize>k * stride;
      for (let v: usize = 0; v < bytes; v += 16) {
        const e = exp4(f32x4.sub(v128.load(x + row + v), v128.load(maxima + v)));
        v128.store(out + row + v, e);
        v128.store(sums + v, f32x4.add(v128.load(sums + v), e));
      }
    }
    for (let v: usize = 0; v < bytes; v += 16) v128.store(sums + v, f32x4.div(f32x4.splat(1), v128.load(sums + v)));
    for (let k = 0; k < n; k++) {
      const row = out + p + <usize>k * stride;
      for (let v: usize = 0; v < bytes; v += 16) v128.store(row + v, f32x4.mul(v128.load(row + v), v128.load(sums + v)));
    }
  }
  const tail = inner & 3;
  const items = outer * tail;
  for (let it = shareLo(items, tid, nt), end = shareLo(items, tid + 1, nt); it < end; it++) {
    const o = it / tail, i = (inner & ~3) + it % tail;
    const p = ((<usize>o * <usize>n * <usize>inner + <usize>i) << 2);
    let m: f32 = -Infinity;
    for (let k = 0; k < n; k++) m = max(m, load<f32>(x + p + <usize>k * stride));
    let s: f32 = 0;
    for (let k = 0; k < n; k++) {
      const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(x + p + <usize>k * stride) - m)), 0);
      store<f32>(out + p + <usize>k * stride, e);
      s += e;
    }
    const inv: f32 = 1 / s;
    for (let k = 0; k < n; k++) store<f32>(out + p + <usize>k * stride, load<f32>(out + p + <usize>k * stride) * inv);
  }
}

/**
 * Rotates channel pairs (2m, 2m+1) of every head of every token row (width C = heads·dh) by the
 * angle whose cosine and sine are row t's entry m of the (L, dh/2) tables (t taken modulo L).
 */
export function rope(tid: i32, nt: i32, x: usize, out: usize, rows: i32, L: i32, heads: i32, dh: i32, cosT: usize, sinT: usize): void {
  const half = dh >> 1, C = heads * dh;
  for (let t = shareLo(rows, tid, nt), t1 = shareLo(rows, tid + 1, nt); t < t1; t++) {
    const tab = <usize>((t % L) * half) << 2;
    const row = <usize>t * <usize>C;
    for (let h = 0; h < heads; h++)
      for (let m = 0; m < half; m++) {
        const c = load<f32>(cosT + tab + (<usize>m << 2)), s = load<f32>(sinT + tab + (<usize>m << 2));
        const at = (row + <usize>(h * dh + 2 * m)) << 2;
        const x0 = load<f32>(x + at), x1 = load<f32>(x + at, 4);
        store<f32>(out + at, x0 * c - x1 * s);
        store<f32>(out + at, x0 * s + x1 * c, 4);
      }
  }
}
