// One palettized layer: how its weight is clustered (bits, LUT groups, activation weighting) and
// the bias correction that follows, shared by the palettize pass and the sensitivity probes.
import { fail } from "../diagnostics.js";
import type { ConstValue } from "../ir/graph.js";
import { asFloat } from "../kernels/tensor.js";
import type { ChannelStats } from "./calibration.js";
import { encodeF16, F16_TO_F32 } from "../kernels/fp16.js";
import { packU4Into } from "../io/encode.js";
import { biasSums } from "./element-passes.js";
import { channelLayout, NonFiniteWeight, palettizeBits, palettizeWeightedBits, type ChannelLayout, type IndexOutput, type Palettized } from "./kmeans.js";

export interface QuantizeTechniques {
  /** 0: one LUT per tensor; n > 0: one LUT per n output channels */
  groupSize: number;
  /** cluster Σ E[x_c²]·(w − ŵ)² instead of Σ (w − ŵ)² (needs stats) */
  weighted?: boolean;
  /** add (W − Ŵ)·E[x] to the layer's bias (needs stats) */
  biasCorrection?: boolean;
}

/** How one weight is clustered: groups of rows, and the activation weighting if any. */
export interface ClusterPlan {
  bits: 4 | 8;
  groups: number;
  importance?: Float64Array;
  layout: ChannelLayout;
  /** a corrected bias reads the clustering too, so it is kept until that load */
  biasCorrected: boolean;
}

/** How many elements the planned weight has. */
export const planElements = (p: ClusterPlan): number => p.layout.rowBase.length * p.layout.inPerRow * p.layout.spatial;

/** The plan for a weight of this shape (convGroups: the conv's groups, 1 for a linear). */
export function clusterPlan(shape: readonly number[], convGroups: number, bits: 4 | 8, t: QuantizeTechniques, stats: ChannelStats | undefined): ClusterPlan {
  const rows = shape[0]!;
  const groups = t.groupSize > 0 && rows % t.groupSize === 0 && rows > t.groupSize ? rows / t.groupSize : 1;
  const layout = channelLayout(shape, convGroups);
  if (stats && stats.mean.length !== layout.rowBase[rows - 1]! + layout.inPerRow)
    throw fail("usage", { detail: `activation statistics hold ${stats.mean.length} channels where a weight of shape (${shape.join(", ")}) reads ${layout.rowBase[rows - 1]! + layout.inPerRow}: they come from another model or width; recompile.` });
  return { bits, groups, layout, ...(t.weighted && stats ? { importance: stats.meanSq } : {}), biasCorrected: !!(t.biasCorrection && stats) };
}

let clusteringSeconds = 0;

/** Seconds this process has spent clustering (the probes' and the palettize pass'), for compile's phase timings. */
export const clusteringClock = (): number => clusteringSeconds;

/** Clustering done elsewhere (worker threads) that this thread waited for. */
export function addClusteringSeconds(seconds: number): void {
  clusteringSeconds += seconds;
}

/**
 * Per-tensor clustering, or one clustering per group of consecutive axis-0 rows. The weight comes
 * as float32 or as fp16 bit patterns (Uint16Array): k-means works on the latter, so the clustering
 * is the same either way.
 */
export function clusterGroups(data: Float32Array | Uint16Array, plan: ClusterPlan, out?: IndexOutput): Palettized {
  const t0 = performance.now();
  try {
    return clusterEachGroup(data instanceof Uint16Array ? data : encodeF16(data), plan, out ?? { indices: new Uint8Array(data.length) });
  } finally {
    clusteringSeconds += (performance.now() - t0) / 1000;
  }
}

/**
 * Why clustering `weight` failed, from an error thrown here or the name and message a worker
 * handed back: a weight that is not finite is an input error naming it.
 */
export function clusteringFailure(weight: string, e: { name: string; message: string }): Error {
  if (e.name === NonFiniteWeight.errorName) return fail("weightValue", { tensor: weight, problem: e.message });
  return e instanceof Error ? e : e.name === "RangeError" ? new RangeError(e.message) : new Error(e.message);
}

/** clusterGroups for the weight `name`, which a failure names. */
export function clusterWeight(name: string, data: Float32Array | Uint16Array, plan: ClusterPlan): Palettized {
  try {
    return clusterGroups(data, plan);
  } catch (e) {
    throw e instanceof Error ? clusteringFailure(name, e) : e;
  }
}

function clusterEachGroup(data: Uint16Array, plan: ClusterPlan, out: IndexOutput): Palettized {
  const { bits, groups, importance, layout } = plan;
  const one = (d: Uint16Array, rowBase: Int32Array, o: IndexOutput) => (importance ? palettizeWeightedBits(d, bits, importance, { ...layout, rowBase }, o) : palettizeBits(d, bits, undefined, false, o));
  if (groups === 1) return one(data, layout.rowBase, out);
  const per = data.length / groups, rows = layout.rowBase.length / groups, k = 1 << bits;
  const lut = new Float32Array(groups * k);
  // a group's nibbles are its own bytes only when it starts on a byte
  const nibblesPerGroup = out.nibbles && per % 2 === 0 ? out.nibbles : undefined;
  const clusterOf = new Uint8Array(groups * 65536);
  let sse = 0;
  for (let g = 0; g < groups; g++) {
    const part = { indices: out.indices.subarray(g * per, (g + 1) * per), ...(nibblesPerGroup ? { nibbles: nibblesPerGroup.subarray((g * per) / 2, ((g + 1) * per) / 2) } : {}) };
    const r = one(data.subarray(g * per, (g + 1) * per), layout.rowBase.subarray(g * rows, (g + 1) * rows), part);
    lut.set(r.lut, g * k);
    clusterOf.set(r.clusterOf!, g * 65536);
    sse += r.sse;
  }
  if (out.nibbles && !nibblesPerGroup) packU4Into(out.indices, out.nibbles);
  return { indices: out.indices, lut, sse, clusterOf };
}

/** A weight as k-means takes it: its stored fp16 patterns when it has them, else float32. */
export const weightForClustering = (w: ConstValue): Float32Array | Uint16Array => {
  const t = asFloat(w.load());
  return t.half ?? t.data;
};

/** The name a corrected bias is stored under: after the layer's bias, or after its weight when it had none. */
export const correctedBiasSource = (weight: ConstValue, oldBias: ConstValue | undefined): string => (oldBias ? `${oldBias.source} corrected` : `${weight.source} bias correction`);

/**
 * The bias that restores each output channel's mean: b + Σ_{c,s} (W − Ŵ)[o, c, s] · E[x_c]
 * (a conv's mean over positions; padding's zeros are not counted).
 */
export function correctedBias(w: Float32Array | Uint16Array, p: Palettized, plan: ClusterPlan, mean: Float64Array, bias: Float32Array | undefined): Float32Array {
  if (!(w instanceof Uint16Array)) return correctBias(w, p, plan, mean, bias);
  // w − ŵ depends on the fp16 pattern alone: one lookup in a table of 65,536 errors per LUT group
  const k = 1 << plan.bits, clusterOf = p.clusterOf ?? clusterOfPatterns(w, p.indices, plan.groups);
  const err = new Float64Array(65536);
  const errOf = (g: number) => {
    for (let q = 0; q < 65536; q++) err[q] = F16_TO_F32[q]! - p.lut[g * k + clusterOf[g * 65536 + q]!]!;
    return err;
  };
  return biasSums(w, errOf, plan.groups, plan.layout, mean, bias);
}

/** Per LUT group, each present fp16 pattern's cluster, read off a clustering's indices (computed elsewhere). */
function clusterOfPatterns(w: Uint16Array, indices: Uint8Array, groups: number): Uint8Array {
  const table = new Uint8Array(groups * 65536), per = w.length / groups;
  for (let g = 0, i = 0; g < groups; g++) for (const base = g * 65536, end = i + per; i < end; i++) table[base + w[i]!] = indices[i]!;
  return table;
}

/** The same for a float32 weight, element by element. */
function correctBias(w: Float32Array, p: Palettized, plan: ClusterPlan, mean: Float64Array, bias: Float32Array | undefined): Float32Array {
  const { rowBase, inPerRow, spatial } = plan.layout;
  const rows = rowBase.length, per = w.length / plan.groups, k = 1 << plan.bits;
  const { lut, indices } = p;
  const out = new Float32Array(rows);
  let i = 0;
  for (let r = 0; r < rows; r++) {
    let acc = bias ? bias[r]! : 0;
    const lutBase = Math.floor(i / per) * k; // LUT groups are whole rows
    const rb = rowBase[r]!;
    if (spatial === 1) {
      // a linear's row: the same sums as below, without the one-element inner loop
      for (let c = 0; c < inPerRow; c++, i++) acc += (w[i]! - lut[lutBase + indices[i]!]!) * mean[rb + c]!;
      out[r] = acc;
      continue;
    }
    for (let c = 0; c < inPerRow; c++) {
      const m = mean[rb + c]!;
      let d = 0;
      for (let s = 0; s < spatial; s++, i++) d += w[i]! - lut[lutBase + indices[i]!]!;
      acc += d * m;
    }
    out[r] = acc;
  }
  return out;
}

/** The dense weight a clustering stands for (lut[idx], per LUT group). */
export function denseOf(p: Palettized, plan: ClusterPlan, count: number): Float32Array {
  const per = count / plan.groups, k = 1 << plan.bits, out = new Float32Array(count);
  for (let g = 0, i = 0; g < plan.groups; g++) for (const base = g * k, end = i + per; i < end; i++) out[i] = p.lut[base + p.indices[i]!]!;
  return out;
}
