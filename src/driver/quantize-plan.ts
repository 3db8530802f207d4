// What a compile does to each width's weights before lowering (docs/toolchain.md, "Quantization"):
// which layers get 4 or 8 bits (uniform, or ranked by the layer or model probe), the activation
// statistics weighted k-means and bias correction take from the calibration set, and the options
// of the palettize (or quantize-int8) pass that applies them. Verify rebuilds the same weights from
// the report and the statistics file.
import { fail } from "../diagnostics.js";
import type { Graph } from "../ir/graph.js";
import type { FloatTensor } from "../kernels/tensor.js";
import { buildModel } from "../model/build.js";
import type { Width } from "../model/config.js";
import type { WeightSource } from "../model/weights.js";
import type { PipelineEntry } from "../pipeline/pass.js";
import { writeTensorFile, readTensorFile } from "../checkpoint/tensors.js";
import { activationStats, calibrationSize, storedStats, type CalibrationSet, type ChannelStats } from "../quant/calibration.js";
import type { QuantizeTechniques } from "../quant/layer.js";
import { allocateBits, oneForwardProbe, probeLayersClustering, probeLayersWithStatistics, palettizableWeights, probeModel, rankingOverlap, uniformBits, type LayerSensitivity, type RankingOverlap } from "../quant/probe.js";
import { floatTensor } from "../kernels/tensor.js";
import { engineInfo } from "../kernels/simd/engine.js";
import type { Palettized } from "../quant/kmeans.js";

export type ProbeScope = "layer" | "model";

/** The techniques of a palettized compile, as chosen on the command line or by default. */
export interface Techniques {
  probe: ProbeScope;
  kmeans: "plain" | "weighted";
  biasCorrection: boolean;
  /** one LUT per this many output channels; 0 = per tensor */
  lutGroupSize: number;
}

/** The paper's recipe: layer-local probe, plain k-means, no correction, one LUT per tensor. */
export const PAPER_TECHNIQUES: Techniques = { probe: "layer", kmeans: "plain", biasCorrection: false, lutGroupSize: 0 };

/**
 * Defaults, chosen by the samplingTechniques benchmark (README, "Quantization"): activation-weighted
 * k-means and bias correction for every palettized mode; the layer probe for mixed (the model
 * probe costs one forward per layer and calibration sample and did not rank better).
 */
export const DEFAULT_TECHNIQUES: Techniques = { probe: "layer", kmeans: "weighted", biasCorrection: true, lutGroupSize: 0 };

export interface QuantizedLayerPlan {
  name: string;
  shape: number[];
  params: number;
  bits: 4 | 8;
  /** probe error at 4 bits (relative to output energy); null when no probe ran */
  mse: number | null;
}

export interface WidthPlan {
  bits: Record<string, 4 | 8>;
  layers: QuantizedLayerPlan[];
  /** activation statistics, rounded to float32 as the statistics file stores them */
  stats?: Map<string, ChannelStats>;
  entry: PipelineEntry;
  seconds: { statistics: number; probe: number };
  /** with the model probe: how its 8-bit choices overlap the layer probe's */
  overlap?: RankingOverlap;
  /** mixed: the 4-bit layers' clusterings and corrected biases, computed for the probe (the palettize pass' SharedQuantization maps) */
  clustered?: { clusterings: Map<string, Palettized>; biases: Map<string, Float32Array> };
}

export type QuantMode = { mode: "k4" } | { mode: "k8" } | { mode: "mixed"; target: number } | { mode: "int8" };

/** The palettize pass's options for a width: bits, LUT groups, weighting and correction with their statistics. */
export function palettizeEntry(bits: Record<string, 4 | 8>, t: Techniques, stats: Map<string, ChannelStats> | undefined): PipelineEntry {
  const techniques: QuantizeTechniques = { groupSize: t.lutGroupSize, weighted: t.kmeans === "weighted", biasCorrection: t.biasCorrection };
  return { pass: "palettize", options: { bits, ...techniques, ...(stats ? { stats } : {}) } };
}

export function needsStatistics(q: QuantMode, t: Techniques): boolean {
  return q.mode !== "int8" && (t.kmeans === "weighted" || t.biasCorrection);
}

/**
 * Plans one width: statistics (if a technique needs them), the probe (mixed), the pass entry.
 * `graph` is the width's model as compiled (batch 1); calibration runs build it at their batch.
 */
export function planWidth(source: WeightSource, graph: Graph, width: Width, latentSize: [number, number], q: QuantMode, t: Techniques, cal: CalibrationSet, onProgress?: (step: string, done: number, total: number, unit: string) => void): WidthPlan {
  const graphs = new Map<number, Graph>();
  const graphFor = (batch: number) => graphs.get(batch) ?? (graphs.set(batch, buildModel(source, { width, batch, latentSize, contextTokens: source.config.contextTokens }).graph), graphs.get(batch)!);
  const weights = palettizableWeights(graph, { ungrouped: q.mode === "int8" }).map((w) => ({ ...w, params: w.shape.reduce((a, b) => a * b, 1) }));
  const t0 = performance.now();
  let stats: Map<string, ChannelStats> | undefined;
  const techniques: QuantizeTechniques = { groupSize: t.lutGroupSize, weighted: t.kmeans === "weighted", biasCorrection: t.biasCorrection };
  // mixed with statistics on a set of one chunk: statistics, clustering and probe in one forward
  const oneForward = q.mode === "mixed" && needsStatistics(q, t) && oneForwardProbe(graphFor(calibrationSize(cal)), cal)
    ? probeLayersWithStatistics(graphFor, graph, cal, techniques, engineInfo().threads, (done, total) => onProgress?.(`w${width}: layer probe`, done, total, "layers"))
    : undefined;
  if (oneForward) stats = oneForward.stats;
  else if (needsStatistics(q, t)) {
    const raw = activationStats(graphFor, cal, undefined, (done, total) => onProgress?.(`w${width}: calibration statistics`, done, total, "samples"));
    stats = new Map([...raw].map(([k, s]) => [k, storedStats(s)]));
  }
  const t1 = oneForward ? t0 : performance.now(); // the one forward is the probe's
  let bits: Record<string, 4 | 8>;
  let mse = new Map<string, number>();
  let overlap: RankingOverlap | undefined;
  let clustered: WidthPlan["clustered"];
  if (q.mode === "mixed") {
    const { ahead, layers: layerSens } = oneForward ?? probeLayersClustering(graphFor, graph, cal, techniques, stats, engineInfo().threads, (done, total) => onProgress?.(`w${width}: layer probe`, done, total, "samples"));
    let sens: LayerSensitivity[] = layerSens;
    if (t.probe === "model") {
      sens = probeModel(graphFor, cal, weights.map((w) => w.name), { ...techniques, ...(stats ? { stats } : {}) }, undefined, (done, total) => onProgress?.(`w${width}: model probe`, done, total, "layers"));
      overlap = rankingOverlap(allocateBits(layerSens, q.target).bits, allocateBits(sens, q.target).bits);
    }
    mse = new Map(sens.map((s) => [s.name, s.mse]));
    bits = allocateBits(sens, q.target).bits;
    // the layers that stay at 4 bits are clustered already, as the palettize pass would
    clustered = { clusterings: new Map(), biases: new Map() };
    for (const [name, a] of ahead) {
      if (bits[name] !== 4) continue;
      clustered.clusterings.set(name, a.clustering);
      if (a.bias) clustered.biases.set(a.bias.source, a.bias.value);
    }
  } else bits = uniformBits(weights, q.mode === "k4" ? 4 : 8); // int8: one byte a weight
  const t2 = performance.now();
  const layers = weights.map((w) => ({ name: w.name, shape: w.shape, params: w.params, bits: bits[w.name] ?? 4, mse: mse.get(w.name) ?? null }));
  const entry: PipelineEntry = q.mode === "int8" ? { pass: "quantize-int8", options: { names: Object.keys(bits) } } : palettizeEntry(bits, t, stats);
  return { bits, layers, ...(stats ? { stats } : {}), ...(clustered ? { clustered } : {}), entry, seconds: { statistics: +((t1 - t0) / 1000).toFixed(3), probe: +((t2 - t1) / 1000).toFixed(3) }, ...(overlap ? { overlap } : {}) };
}

/** The statistics file's tensor names: `w{width} {checkpoint name} mean|meansq`. */
const statName = (width: number, name: string, what: "mean" | "meansq") => `w${width} ${name} ${what}`;

/** Writes every width's statistics to one safetensors file (float32, as the compile used them). */
export function writeStatistics(path: string, byWidth: Map<number, Map<string, ChannelStats>>): void {
  const tensors: Record<string, FloatTensor> = {};
  for (const [w, stats] of byWidth)
    for (const [name, s] of [...stats].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      tensors[statName(w, name, "mean")] = floatTensor([s.mean.length], Float32Array.from(s.mean));
      tensors[statName(w, name, "meansq")] = floatTensor([s.meanSq.length], Float32Array.from(s.meanSq));
    }
  writeTensorFile(path, tensors);
}

/** One width's statistics from the file `writeStatistics` wrote. */
export function readStatistics(path: string, width: number): Map<string, ChannelStats> {
  const t = readTensorFile(path);
  const out = new Map<string, ChannelStats>();
  const prefix = `w${width} `;
  for (const [k, v] of Object.entries(t)) {
    if (!k.startsWith(prefix) || !k.endsWith(" mean")) continue;
    const name = k.slice(prefix.length, -" mean".length);
    const sq = t[statName(width, name, "meansq")];
    if (!sq || sq.data.length !== v.data.length) throw fail("inputTensor", { file: path, tensor: statName(width, name, "meansq"), problem: `is missing or differs in length from ${k}` });
    out.set(name, { mean: Float64Array.from(v.data), meanSq: Float64Array.from(sq.data) });
  }
  return out;
}
