// The passes over every element of a weight around its k-means programme: the activation-weighted
// count of fp16 patterns before it, the pattern → cluster lookup that writes the indices and the
// bias correction's sums after it. On large weights they cost more than the programme (a few ns
// an element each in JavaScript), so they run in WebAssembly (src/quant/assembly/kmeans.ts, the
// programme's module); the JavaScript beside each is the oracle it is tested against, and both
// do the same float64 operations in the same order, so their results are identical bit for bit.
import { builtWasm } from "../io/project.js";
import type { ChannelLayout, IndexOutput } from "./kmeans.js";

export type PassEngine = "wasm" | "js";

export interface KmeansModule {
  memory: WebAssembly.Memory;
  reserve(bytes: number): boolean;
  layer(lowest: number, from: number, last: number, cap: number, R: number, W: number, S1: number, S2: number, below: number, out: number, arg: number, stack: number): void;
  refill(R: number, prev: number, S2: number, from: number, to: number): void;
  penalizedSuffix(W: number, S1: number, S2: number, n: number, lambda: number, E: number, cand: number, from: number): void;
  weightedCounts(bits: number, w: number, rowBase: number, rows: number, inPerRow: number, spatial: number, sums: number): number;
  lookupIndices(bits: number, n: number, byPattern: number, indices: number, nibbles: number): void;
  biasSums(bits: number, i0: number, err: number, mean: number, rowBase: number, r0: number, r1: number, inPerRow: number, spatial: number, acc: number): number;
}

let instance: KmeansModule | undefined;

/** This thread's instance of the clustering's WebAssembly (built by scripts/build-wasm.mjs). */
export function kmeansWasm(): KmeansModule {
  return (instance ??= new WebAssembly.Instance(new WebAssembly.Module(builtWasm("kmeans.wasm")), {}).exports as unknown as KmeansModule);
}

/**
 * Lays arrays out in the module's memory from 64 KiB up (below it: the module's static data), each
 * 8-byte aligned; `reserve` grows the memory once for all of them, after which views are safe to take.
 */
export class Arena {
  private at = 1 << 16;
  constructor(readonly wasm: KmeansModule = kmeansWasm()) {}

  take(bytes: number): number {
    const p = this.at;
    this.at += Math.ceil(bytes / 8) * 8;
    return p;
  }

  reserve(what: string): ArrayBuffer {
    if (!this.wasm.reserve(this.at)) throw new RangeError(`${what} needs ${this.at} bytes of WebAssembly memory`);
    return this.wasm.memory.buffer;
  }
}

/**
 * Σ of each element's input-channel weight `w[rowBase[r] + c]` per fp16 bit pattern (65,536 sums),
 * rows and elements in order.
 */
export function weightedCounts(bits: Uint16Array, w: Float64Array, layout: ChannelLayout, engine: PassEngine = "wasm"): Float64Array {
  const { rowBase, inPerRow, spatial } = layout;
  const covered = rowBase.length * inPerRow * spatial;
  if (covered !== bits.length) throw new RangeError(`channel layout covers ${covered} elements, the weight has ${bits.length}`);
  if (engine === "js") return weightedCountsJs(bits, w, layout);
  const a = new Arena();
  const pBits = a.take(2 * bits.length), pW = a.take(8 * w.length), pRows = a.take(4 * rowBase.length), pSums = a.take(8 * 65536);
  const buf = a.reserve(`counting a weight of ${bits.length} elements`);
  new Uint16Array(buf, pBits, bits.length).set(bits);
  new Float64Array(buf, pW, w.length).set(w);
  new Int32Array(buf, pRows, rowBase.length).set(rowBase);
  const sums = new Float64Array(buf, pSums, 65536);
  sums.fill(0);
  a.wasm.weightedCounts(pBits, pW, pRows, rowBase.length, inPerRow, spatial, pSums);
  return sums.slice();
}

function weightedCountsJs(bits: Uint16Array, w: Float64Array, { rowBase, inPerRow, spatial }: ChannelLayout): Float64Array {
  const sums = new Float64Array(65536);
  let i = 0;
  for (let r = 0; r < rowBase.length; r++) {
    const rb = rowBase[r]!;
    if (spatial === 1) for (let c = 0; c < inPerRow; c++) sums[bits[i++]!] += w[rb + c]!;
    else
      for (let c = 0; c < inPerRow; c++) {
        const x = w[rb + c]!;
        for (let s = 0; s < spatial; s++) sums[bits[i++]!] += x;
      }
  }
  return sums;
}

/** indices[i] = byPattern[bits[i]], and with `nibbles` the same two per byte (low nibble first). */
export function lookupIndices(bits: Uint16Array, byPattern: Uint8Array, { indices, nibbles }: IndexOutput, engine: PassEngine = "wasm"): void {
  const n = bits.length;
  if (engine === "js") return lookupIndicesJs(bits, byPattern, indices, nibbles);
  const a = new Arena();
  const pBits = a.take(2 * n), pTable = a.take(65536), pIdx = a.take(n), pNib = nibbles ? a.take(nibbles.length) : 0;
  const buf = a.reserve(`indexing a weight of ${n} elements`);
  new Uint16Array(buf, pBits, n).set(bits);
  new Uint8Array(buf, pTable, 65536).set(byPattern);
  a.wasm.lookupIndices(pBits, n, pTable, pIdx, pNib);
  indices.set(new Uint8Array(buf, pIdx, n));
  if (nibbles) {
    nibbles.set(new Uint8Array(buf, pNib, n >> 1));
    if (n & 1) nibbles[n >> 1] = indices[n - 1]!;
  }
}

function lookupIndicesJs(data: Uint16Array, byPattern: Uint8Array, indices: Uint8Array, nibbles: Uint8Array | undefined): void {
  if (!nibbles) {
    for (let i = 0; i < data.length; i++) indices[i] = byPattern[data[i]!]!;
    return;
  }
  const pairs = data.length >> 1;
  for (let j = 0; j < pairs; j++) {
    const a = byPattern[data[2 * j]!]!, b = byPattern[data[2 * j + 1]!]!;
    indices[2 * j] = a;
    indices[2 * j + 1] = b;
    nibbles[j] = a | (b << 4);
  }
  if (data.length & 1) nibbles[pairs] = indices[data.length - 1] = byPattern[data[data.length - 1]!]!;
}

/**
 * The bias correction's sums: for each row r, bias[r] + Σ_c (Σ_s err[bits[i]]) · mean[rowBase[r] + c]
 * over its elements in order, where `errOf(g)` is LUT group g's table of w − ŵ per fp16 pattern
 * (groups of consecutive rows; asked for once each, in order).
 */
export function biasSums(bits: Uint16Array, errOf: (group: number) => Float64Array, groups: number, layout: ChannelLayout, mean: Float64Array, bias: Float32Array | undefined, engine: PassEngine = "wasm"): Float32Array {
  const { rowBase, inPerRow, spatial } = layout;
  const rows = rowBase.length, perGroup = rows / groups;
  if (engine === "js") return biasSumsJs(bits, errOf, perGroup, layout, mean, bias);
  const a = new Arena();
  const pBits = a.take(2 * bits.length), pErr = a.take(8 * 65536), pMean = a.take(8 * mean.length), pRows = a.take(4 * rows), pAcc = a.take(8 * rows);
  const buf = a.reserve(`correcting the bias of a weight of ${bits.length} elements`);
  new Uint16Array(buf, pBits, bits.length).set(bits);
  new Float64Array(buf, pMean, mean.length).set(mean);
  new Int32Array(buf, pRows, rows).set(rowBase);
  const acc = new Float64Array(buf, pAcc, rows);
  if (bias) acc.set(bias);
  else acc.fill(0);
  const err = new Float64Array(buf, pErr, 65536);
  let i = 0;
  for (let g = 0; g < groups; g++) {
    err.set(errOf(g));
    i = a.wasm.biasSums(pBits, i, pErr, pMean, pRows, g * perGroup, (g + 1) * perGroup, inPerRow, spatial, pAcc);
  }
  return Float32Array.from(acc);
}

function biasSumsJs(w: Uint16Array, errOf: (group: number) => Float64Array, perGroup: number, { rowBase, inPerRow, spatial }: ChannelLayout, mean: Float64Array, bias: Float32Array | undefined): Float32Array {
  const rows = rowBase.length;
  const out = new Float32Array(rows);
  let err: Float64Array = new Float64Array(0), i = 0;
  for (let r = 0; r < rows; r++) {
    if (r % perGroup === 0) err = errOf(r / perGroup);
    let acc = bias ? bias[r]! : 0;
    const rb = rowBase[r]!;
    if (spatial === 1) for (let c = 0; c < inPerRow; c++, i++) acc += err[w[i]!]! * mean[rb + c]!;
    else
      for (let c = 0; c < inPerRow; c++) {
        let d = 0;
        for (let s = 0; s < spatial; s++, i++) d += err[w[i]!]!;
        acc += d * mean[rb + c]!;
      }
    out[r] = acc;
  }
  return out;
}
