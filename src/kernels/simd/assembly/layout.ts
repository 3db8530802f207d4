// Data movement and reductions for the reader-interpreters' lowered graphs (slices, concats,
// transposes, the reduce_mean of a decomposed layer norm): the same element moves and the same
// float64 sums, in the same order, as the scalar kernels in src/kernels/{layout,reduce}.ts, so the
// results are bit for bit theirs, written where the next kernel reads them in place.
import { shareLo } from "./common";

/**
 * dst[Σ i_d·dStride_d] = src[Σ i_d·sStride_d] over every index of `dims`. `desc` holds rank i32s
 * each of dims, source strides and destination strides (in elements). Each thread takes a
 * contiguous share of the rows (all axes but the last); a row contiguous on both sides is one
 * memory.copy.
 */
export function copy_strided(tid: i32, nt: i32, src: usize, dst: usize, desc: usize, rank: i32): void {
  const last = rank - 1;
  const len = load<i32>(desc + (<usize>last << 2));
  const ss = load<i32>(desc + (<usize>(rank + last) << 2)), ds = load<i32>(desc + (<usize>(2 * rank + last) << 2));
  let rows = 1;
  for (let d = 0; d < last; d++) rows *= load<i32>(desc + (<usize>d << 2));
  const r0 = shareLo(rows, tid, nt), r1 = shareLo(rows, tid + 1, nt);
  if (r0 >= r1) return;
  // the first row's offsets, from its index on each outer axis
  let so: i64 = 0, dof: i64 = 0;
  for (let d = last - 1, r = r0; d >= 0; d--) {
    const n = load<i32>(desc + (<usize>d << 2));
    const i = r % n;
    r /= n;
    so += <i64>i * <i64>load<i32>(desc + (<usize>(rank + d) << 2));
    dof += <i64>i * <i64>load<i32>(desc + (<usize>(2 * rank + d) << 2));
  }
  for (let r = r0; r < r1; r++) {
    const s = src + (<usize>so << 2), t = dst + (<usize>dof << 2);
    if (ss == 1 && ds == 1) memory.copy(t, s, <usize>len << 2);
    else for (let j = 0; j < len; j++) store<f32>(t + (<usize>(j * ds) << 2), load<f32>(s + (<usize>(j * ss) << 2)));
    // odometer over the outer axes: the next row's offsets
    for (let d = last - 1, q = r + 1; d >= 0; d--) {
      const n = load<i32>(desc + (<usize>d << 2));
      const sd = <i64>load<i32>(desc + (<usize>(rank + d) << 2)), dd = <i64>load<i32>(desc + (<usize>(2 * rank + d) << 2));
      if (q % n != 0) {
        so += sd;
        dof += dd;
        break;
      }
      so -= sd * <i64>(n - 1);
      dof -= dd * <i64>(n - 1);
      q /= n;
    }
  }
}

export const REDUCE_SUM = 0, REDUCE_MEAN = 1, REDUCE_MAX = 2;

/**
 * out[o, i] = sum, mean or max of x[o, k, i] over k, for x seen as (outer, n, inner): accumulated
 * in float64 from k = 0 up, as the scalar kernel does, and rounded to float32 once. Rows of a
 * contiguous reduction (inner = 1) go four at a time, each with its own accumulator.
 */
export function reduce(tid: i32, nt: i32, kind: i32, x: usize, out: usize, outer: i32, n: i32, inner: i32): void {
  const items = outer * inner;
  const i0 = shareLo(items, tid, nt), i1 = shareLo(items, tid + 1, nt);
  const stride = <usize>inner << 2;
  let it = i0;
  if (inner == 1 && kind != REDUCE_MAX)
    for (; it + 4 <= i1; it += 4) {
      const p = x + ((<usize>it * <usize>n) << 2), row = <usize>n << 2;
      let a: f64 = 0, b: f64 = 0, c: f64 = 0, d: f64 = 0;
      for (let k = 0; k < n; k++) {
        const q = p + (<usize>k << 2);
        a += <f64>load<f32>(q);
        b += <f64>load<f32>(q + row);
        c += <f64>load<f32>(q + 2 * row);
        d += <f64>load<f32>(q + 3 * row);
      }
      if (kind == REDUCE_MEAN) (a /= <f64>n), (b /= <f64>n), (c /= <f64>n), (d /= <f64>n);
      const o = out + (<usize>it << 2);
      store<f32>(o, <f32>a);
      store<f32>(o, <f32>b, 4);
      store<f32>(o, <f32>c, 8);
      store<f32>(o, <f32>d, 12);
    }
  for (; it < i1; it++) {
    const o = it / inner, i = it % inner;
    const p = x + ((<usize>o * <usize>n * <usize>inner + <usize>i) << 2);
    let acc: f64 = kind == REDUCE_MAX ? -Infinity : 0;
    for (let k = 0; k < n; k++) {
      const v = <f64>load<f32>(p + <usize>k * stride);
      acc = kind == REDUCE_MAX ? (v > acc ? v : acc) : acc + v;
    }
    store<f32>(out + (<usize>it << 2), <f32>(kind == REDUCE_MEAN ? acc / <f64>n : acc));
  }
}

/**
 * A depthwise convolution without padding, in either layout the model runs it in: out(b, c, oh, ow)
 * = bias[c] + Σ_kh Σ_kw x(b, c / mult, oh·sh + kh, ow·sw + kw) · w[c·KH·KW + kh·KW + kw]. Element
 * (b, c, h, w) of x is at x + b·xsB + c·xsC + h·xsH + w·xsW (bytes), of out likewise with the os
 * strides. Each output is summed in float64, tap by tap, and rounded once: the bits of the
 * JavaScript loops it replaces (src/kernels/fast.ts). Channels adjacent in memory (xsC = 4, the
 * token layout, mult 1): a thread takes output rows and runs the channels innermost; otherwise
 * (NCHW planes) it takes output planes.
 */
export function depthwise(
  tid: i32, nt: i32, x: usize, out: usize, w: usize, bias: usize, B: i32, C: i32, mult: i32, Ho: i32, Wo: i32, KH: i32, KW: i32, sh: i32, sw: i32,
  xsB: usize, xsC: usize, xsH: usize, xsW: usize, osB: usize, osC: usize, osH: usize, osW: usize,
): void {
  const taps = KH * KW;
  if (xsC == 4 && mult == 1) {
    const rows = B * Ho;
    for (let r = shareLo(rows, tid, nt), r1 = shareLo(rows, tid + 1, nt); r < r1; r++) {
      const b = r / Ho, oh = r % Ho;
      for (let ow = 0; ow < Wo; ow++) {
        const xp = x + <usize>b * xsB + <usize>(oh * sh) * xsH + <usize>(ow * sw) * xsW;
        const op = out + <usize>b * osB + <usize>oh * osH + <usize>ow * osW;
        for (let c = 0; c < C; c++) {
          let s: f64 = 0;
          const wc = w + (<usize>(c * taps) << 2), xc = xp + (<usize>c << 2);
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++)
              s += <f64>load<f32>(xc + <usize>kh * xsH + <usize>kw * xsW) * <f64>load<f32>(wc + (<usize>(kh * KW + kw) << 2));
          store<f32>(op + <usize>c * osC, <f32>(s + (bias ? <f64>load<f32>(bias + (<usize>c << 2)) : 0)));
        }
      }
    }
    return;
  }
  const planes = B * C;
  for (let q = shareLo(planes, tid, nt), q1 = shareLo(planes, tid + 1, nt); q < q1; q++) {
    const b = q / C, c = q % C;
    const xq = x + <usize>b * xsB + <usize>(c / mult) * xsC, oq = out + <usize>b * osB + <usize>c * osC;
    const wc = w + (<usize>(c * taps) << 2);
    const bv: f64 = bias ? <f64>load<f32>(bias + (<usize>c << 2)) : 0;
    for (let oh = 0; oh < Ho; oh++)
      for (let ow = 0; ow < Wo; ow++) {
        let s: f64 = 0;
        const xp = xq + <usize>(oh * sh) * xsH + <usize>(ow * sw) * xsW;
        for (let kh = 0; kh < KH; kh++)
          for (let kw = 0; kw < KW; kw++) s += <f64>load<f32>(xp + <usize>kh * xsH + <usize>kw * xsW) * <f64>load<f32>(wc + (<usize>(kh * KW + kw) << 2));
        store<f32>(oq + <usize>oh * osH + <usize>ow * osW, <f32>(s + bv));
      }
  }
}
