// Exact analysis of reshape/transpose chains as strided views of their root tensor, and the
// layout conversions passes wrap their rewrites in.
//
// A chain of reshapes and transposes moves no arithmetic, only element order. Following it as a
// strided view (numpy's no-copy reshape rules) tells exactly which single op, if any, does the
// same: a plain reshape when the final view is contiguous, a transpose when its strides are a
// permutation of the root's. The answer comes from strides, never from comparing axis sizes, so
// square grids (H = W) cannot fool it.
import { stridesOf } from "../kernels/tensor.js";
import type { GraphBuilder } from "./builder.js";
import type { Value } from "./graph.js";

export interface View {
  shape: number[];
  strides: number[];
}

export const contiguousStrides = stridesOf;

export function rootView(shape: readonly number[]): View {
  return { shape: [...shape], strides: contiguousStrides(shape) };
}

export function transposeView(v: View, perm: readonly number[]): View {
  return { shape: perm.map((p) => v.shape[p]!), strides: perm.map((p) => v.strides[p]!) };
}

/** The view after a row-major reshape, or undefined when that reshape would have to copy. */
export function reshapeView(v: View, newShape: readonly number[]): View | undefined {
  const old = v.shape.map((d, i) => [d, v.strides[i]!] as const).filter(([d]) => d !== 1);
  const target = newShape.map((d, i) => [d, i] as const).filter(([d]) => d !== 1);
  const strides = new Array<number>(newShape.length).fill(0);
  let oi = 0, ni = 0;
  while (oi < old.length && ni < target.length) {
    let oj = oi + 1, nj = ni + 1;
    let op = old[oi]![0], np = target[ni]![0];
    while (op !== np) {
      if (np < op) {
        if (nj >= target.length) return undefined;
        np *= target[nj++]![0];
      } else {
        if (oj >= old.length) return undefined;
        op *= old[oj++]![0];
      }
    }
    // the old axes oi..oj-1 must be mutually contiguous to be regrouped without a copy
    for (let k = oi; k < oj - 1; k++) if (old[k]![1] !== old[k + 1]![0] * old[k + 1]![1]) return undefined;
    let s = old[oj - 1]![1];
    for (let k = nj - 1; k >= ni; k--) {
      strides[target[k]![1]] = s;
      s *= target[k]![0];
    }
    oi = oj;
    ni = nj;
  }
  if (oi !== old.length || ni !== target.length) return undefined;
  // size-1 axes take the stride they would have in a contiguous layout; they never move data
  for (let i = newShape.length - 1; i >= 0; i--) if (newShape[i] === 1) strides[i] = i + 1 < newShape.length ? strides[i + 1]! * newShape[i + 1]! : 1;
  return { shape: [...newShape], strides };
}

/** Non-unit axes in order equal a contiguous layout: the view is a plain reshape of its root. */
export function isContiguous(v: View): boolean {
  const axes = v.shape.map((d, i) => [d, v.strides[i]!] as const).filter(([d]) => d !== 1);
  let expect = 1;
  for (let i = axes.length - 1; i >= 0; i--) {
    if (axes[i]![1] !== expect) return false;
    expect *= axes[i]![0];
  }
  return true;
}

/** The permutation p with view = transpose(root, p), if there is one. */
export function asTranspose(v: View, rootShape: readonly number[]): number[] | undefined {
  if (v.shape.length !== rootShape.length) return undefined;
  const rs = contiguousStrides(rootShape);
  const perm: number[] = [];
  const used = new Set<number>();
  for (let i = 0; i < v.shape.length; i++) {
    // a size-1 axis may pair with any unused size-1 root axis
    const j = rootShape.findIndex((d, k) => !used.has(k) && d === v.shape[i] && (d === 1 || rs[k] === v.strides[i]));
    if (j < 0) return undefined;
    used.add(j);
    perm.push(j);
  }
  return perm;
}

/**
 * The view as reshape(root, S) then transpose(p): S lists the view's axes by decreasing stride.
 * Returns undefined when no such two-op form exists.
 */
export function asReshapeTranspose(v: View, rootShape: readonly number[]): { shape: number[]; perm: number[] } | undefined {
  const order = v.shape.map((_, i) => i).sort((a, b) => v.strides[b]! - v.strides[a]! || a - b);
  const shape = order.map((i) => v.shape[i]!);
  const mid = rootView(rootShape);
  const r = reshapeView(mid, shape);
  if (!r || !isContiguous({ shape, strides: order.map((i) => v.strides[i]!) })) return undefined;
  const perm = v.shape.map((_, i) => order.indexOf(i));
  return { shape, perm };
}

/** Token-major (B, N, C) -> channels-first (B, C, 1, N), the ANE's layout (docs/toolchain.md). */
export function toChannelsFirst(b: GraphBuilder, x: Value): Value {
  const [B, N, C] = x.type.shape as [number, number, number];
  return b.op("reshape", [b.op("transpose", [x], { perm: [0, 2, 1] })], { shape: [B, C, 1, N] });
}

/** Channels-first (B, C, 1, N) -> token-major (B, N, C). */
export function fromChannelsFirst(b: GraphBuilder, y: Value): Value {
  const [B, C, , N] = y.type.shape as [number, number, number, number];
  return b.op("transpose", [b.op("reshape", [y], { shape: [B, C, N] })], { perm: [0, 2, 1] });
}

/** Raster-order tokens (B, L, C) of an h x w grid -> feature map (B, C, h, w): transpose + reshape. */
export function tokensToMap(b: GraphBuilder, x: Value, h: number, w: number): Value {
  const [B, , C] = x.type.shape as [number, number, number];
  return b.op("reshape", [b.op("transpose", [x], { perm: [0, 2, 1] })], { shape: [B, C, h, w] });
}

/** Feature map (B, C, h, w) -> raster-order tokens (B, h·w, C): reshape + transpose. */
export function mapToTokens(b: GraphBuilder, x: Value): Value {
  const [B, C, h, w] = x.type.shape as [number, number, number, number];
  return b.op("transpose", [b.op("reshape", [x], { shape: [B, C, h * w] })], { perm: [0, 2, 1] });
}
