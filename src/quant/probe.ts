// The MSE sensitivity probes and the mixed-bit allocation (docs/toolchain.md).
//
// Layer probe: the float model runs on calibration inputs; at every linear/conv whose weight is a
// checkpoint tensor, that weight alone is quantized to 4 bits, just that layer reruns on the
// activations it actually received (a linear on at most PROBE_ROWS of their rows), and the output
// error is recorded. Model probe: each weight alone at 4 bits, the whole model reruns, and the
// velocity's error is recorded. Layers are ranked by error per parameter; the most sensitive get
// 8 bits until the parameter-weighted average bit width reaches the target.
import { producers, type ConstValue, type Graph, type Node, type Value } from "../ir/graph.js";
import { runGraph } from "../interp/interpreter.js";
import { asFloat, floatTensor, numel, paletteTensor, type FloatTensor, type Tensor } from "../kernels/tensor.js";
import { opDef } from "../ops/index.js";
import { palettizeWeights, type PalettizeOptions } from "../../passes/palettize.js";
import { accumulate, calibrationSize, calibrationSlice, CALIBRATION_CHUNK, channelStats, emptySums, evenlySpaced, forEachChunk, statsSite, storedStats, type ChannelStats, type Feeds } from "./calibration.js";
import { palettize, type Palettized } from "./kmeans.js";
import { openClusterPool, type ClusterJob } from "./cluster-pool.js";
import { clusterPlan, clusterWeight, correctedBias, correctedBiasSource, weightForClustering, type QuantizeTechniques } from "./layer.js";

export interface LayerSensitivity {
  /** checkpoint name of the weight */
  name: string;
  shape: number[];
  params: number;
  /** ‖y4 − y‖² / ‖y‖² of the layer's output with only this weight at 4 bits (reported; a linear's over the rows it reruns, PROBE_ROWS) */
  mse: number;
  /** mean (y4 − y)²: the same error unnormalized (ranked, per parameter) */
  absMse: number;
}

/** Checkpoint weights of linear/conv nodes, in graph order (each once). */
/** Linear and conv weights by checkpoint name (`ungrouped`: leave out grouped, i.e. depthwise, convs). */
export function palettizableWeights(g: Graph, opts: { ungrouped?: boolean } = {}): { name: string; shape: number[] }[] {
  const prod = producers(g);
  const seen = new Set<string>();
  const out: { name: string; shape: number[] }[] = [];
  for (const n of g.nodes) {
    if (n.kind !== "linear" && n.kind !== "conv2d") continue;
    if (opts.ungrouped && n.kind === "conv2d" && n.attrs.groups !== 1) continue;
    const p = prod.get(n.inputs[1]!);
    if (p?.kind !== "const" || seen.has(p.attrs.value.source)) continue;
    seen.add(p.attrs.value.source);
    out.push({ name: p.attrs.value.source, shape: [...p.attrs.value.type.shape] });
  }
  return out;
}

/** What the probe does to one layer: its weight (and bias) as the compile would quantize them at 4 bits. */
export type LayerQuantizer = (name: string, node: Node, w: FloatTensor, bias: FloatTensor | undefined) => { w: FloatTensor; bias?: FloatTensor };

/** Plain 4-bit k-means, one LUT per tensor, bias untouched (the paper's probe). */
export const plainQuantizer: LayerQuantizer = (_name, _node, w) => {
  const q = palettize(w.data, 4);
  return { w: floatTensor(w.shape, Float32Array.from(q.indices, (i) => q.lut[i]!)) };
};

/**
 * The quantizer of a compile's techniques (weighted k-means, LUT groups, bias correction) at 4 bits.
 * `ahead`: layers clustered so on the worker pool (probeLayersClustering, probeLayersWithStatistics), used instead of clustering again.
 */
export function techniqueQuantizer(t: QuantizeTechniques, stats: ReadonlyMap<string, ChannelStats> | undefined, ahead?: Pick<ReadonlyMap<string, AheadClustering>, "get">): LayerQuantizer {
  return (name, node, w, bias) => {
    const s = stats?.get(name);
    const plan = clusterPlan(w.shape, convGroups(node), 4, t, s);
    const a = ahead?.get(name);
    const p = a?.clustering ?? clusterWeight(name, w.data, plan);
    // kept compact: the gemm widens the palette while packing (no dense copy of each layer)
    const wq = paletteTensor(w.shape, { indices: p.indices, lut: p.lut, entries: 16, groups: plan.groups }, w.dtype);
    if (!plan.biasCorrected) return { w: wq };
    return { w: wq, bias: floatTensor([w.shape[0]!], a?.bias?.value ?? correctedBias(w.data, p, plan, s!.mean, bias?.data)) };
  };
}

const convGroups = (n: Node) => (n.kind === "conv2d" ? (n.attrs as { groups: number }).groups : 1);

/** A layer clustered at 4 bits before the probe, with its corrected bias under the name the palettize pass gives it. */
export interface AheadClustering {
  clustering: Palettized;
  bias?: { source: string; value: Float32Array };
}

/**
 * The palettize pass' clustering jobs for a graph's linear and conv weights at the bits `bitsOf`
 * gives (none: left out), each with the bias corrections the pass would make (a constant bias or
 * none), stored in `biases` under the pass' names; `biasSource` maps a weight to its corrected bias.
 */
export function layerClusterJobs(g: Graph, t: QuantizeTechniques, stats: ReadonlyMap<string, ChannelStats> | undefined, bitsOf: (source: string) => 4 | 8 | undefined, biases: Map<string, Float32Array>): { jobs: ClusterJob[]; biasSource: Map<string, string> } {
  const prod = producers(g);
  const jobs = new Map<string, ClusterJob>();
  const biasSource = new Map<string, string>();
  for (const n of g.nodes) {
    const wp = n.kind === "linear" || n.kind === "conv2d" ? prod.get(n.inputs[1]!) : undefined;
    if (wp?.kind !== "const") continue;
    const c = wp.attrs.value, bits = bitsOf(c.source);
    if (!bits) continue;
    const had = jobs.get(c.source);
    if (had) {
      // a weight several layers read: their biases differ, so each is corrected where it is read
      delete had.corrections;
      biasSource.delete(had.source);
      continue;
    }
    const { job, biasSource: source } = layerClusterJob(n, c, prod, bits, t, stats?.get(c.source), biases);
    if (source) biasSource.set(c.source, source);
    jobs.set(c.source, job);
  }
  return { jobs: [...jobs.values()], biasSource };
}

/**
 * The clustering job of the constant weight `c` a linear/conv node reads, with the correction of
 * the node's bias when the plan corrects it and that bias is a constant or none.
 */
function layerClusterJob(n: Node, c: ConstValue, prod: ReturnType<typeof producers>, bits: 4 | 8, t: QuantizeTechniques, s: ChannelStats | undefined, biases: Map<string, Float32Array>): { job: ClusterJob; biasSource?: string } {
  const plan = clusterPlan(c.type.shape, convGroups(n), bits, t, s);
  const job: ClusterJob = { source: c.source, plan, load: () => weightForClustering(c) };
  const bp = n.inputs[2] ? prod.get(n.inputs[2]) : undefined;
  if (!plan.biasCorrected || (n.inputs[2] && bp?.kind !== "const")) return { job };
  const old = bp?.kind === "const" ? bp.attrs.value : undefined;
  const source = correctedBiasSource(c, old);
  job.corrections = [{ source, mean: s!.mean, ...(old ? { old: () => asFloat(old.load()).data } : {}), into: biases }];
  return { job, biasSource: source };
}

/**
 * The layer probe over a calibration set of any size, with its 4-bit clusterings (and the
 * palettize pass' bias corrections) on the worker pool: every weight is handed to the pool before
 * the first forward, in graph order, and the first chunk's rerun of a layer waits for that layer's
 * clustering only, so the pool works beside the forward. These are the pass' clusterings for the
 * layers that stay at 4 bits: same weight, plan and statistics, so compile hands them on.
 */
export function probeLayersClustering(graphFor: (batch: number) => Graph, g: Graph, cal: Feeds, t: QuantizeTechniques, stats: ReadonlyMap<string, ChannelStats> | undefined, threads: number, onChunk?: (done: number, total: number) => void, maxRows = PROBE_ROWS): { layers: LayerSensitivity[]; ahead: Map<string, AheadClustering> } {
  const biases = new Map<string, Float32Array>(), clusterings = new Map<string, Palettized>();
  const { jobs, biasSource } = layerClusterJobs(g, t, stats, () => 4, biases);
  const ahead = new Map<string, AheadClustering>();
  // a few jobs per worker at a time (each layer's wait collects and refills): the weights are not
  // all copied out at once, and the pool stays well ahead of forwards that take seconds a layer
  const pool = openClusterPool(clusterings, threads, undefined, { background: false });
  try {
    pool.add(jobs);
    const store = (name: string) => {
      const a = arrivedClustering(name, clusterings, biases, biasSource);
      ahead.set(name, a);
      return a;
    };
    const arrived = { get: (name: string) => ahead.get(name) ?? (pool.waitFor(name), store(name)) };
    const layers = probeLayers(graphFor, cal, techniqueQuantizer(t, stats, arrived), undefined, onChunk, maxRows);
    pool.finish();
    for (const name of clusterings.keys()) if (!ahead.has(name)) store(name); // a weight no probed layer reads (none in these models)
    return { layers, ahead };
  } finally {
    pool.cancel();
  }
}

/** A weight's clustering from the pool's maps, with its corrected bias when the job had one. */
function arrivedClustering(name: string, clusterings: Map<string, Palettized>, biases: Map<string, Float32Array>, biasSource: Map<string, string>): AheadClustering {
  const source = biasSource.get(name);
  return { clustering: clusterings.get(name)!, ...(source ? { bias: { source, value: biases.get(source)! } } : {}) };
}

interface ErrorSums {
  shape: number[];
  num: number;
  den: number;
  count: number;
}

/**
 * A quantizer that keeps its results for later chunks while they fit `budgetBytes` (clustering
 * every layer again for every chunk would cost more than the forwards).
 */
function cachedQuantizer(quantize: LayerQuantizer, budgetBytes = 2 ** 30): LayerQuantizer {
  const kept = new Map<string, ReturnType<LayerQuantizer>>();
  let bytes = 0;
  return (name, node, w, bias) => {
    const hit = kept.get(name);
    if (hit) return hit;
    const q = quantize(name, node, w, bias);
    const size = (q.w.palette ? q.w.palette.indices.length : 4 * numel(q.w.shape)) + 4 * (q.bias?.data.length ?? 0);
    if (bytes + size <= budgetBytes) (kept.set(name, q), (bytes += size));
    return q;
  };
}

/**
 * The layer probe reruns a linear layer on at most this many rows (tokens × records) of its
 * input: every s-th row (probeRowStep), against the same rows of its float output. A rerun
 * costs as much as the layer itself, so over every row the probe was two forwards; the full
 * preset at 1024² has 4096 rows in its Down and Up stages, where this takes one in five, and
 * 1024 in its Middle stage, all of them. Ranking by error per parameter needs the error's size,
 * not its last digit: over ~1000 rows a layer's error is a mean over 0.5–8 M outputs. Convs (a
 * handful per model) rerun whole.
 */
export const PROBE_ROWS = 1024;

/**
 * The stride of the probe's rows: ⌈rows / maxRows⌉ made odd. Token grids here are powers of two
 * wide, so an even stride would revisit the same columns row after row (eight records at 1024²,
 * stride 32 over a 64-wide grid: two columns); an odd one walks a lattice over every column.
 */
export function probeRowStep(rows: number, maxRows: number): number {
  const step = maxRows > 0 ? Math.ceil(rows / maxRows) : 1;
  return step > 1 ? step | 1 : 1;
}

/** The rows of a linear's input and float output the probe reruns (`take` gathers every step-th row), or the operands as they are. */
function probeRows(n: Node, ins: readonly Tensor[], y: Float32Array, maxRows: number, take: (src: Float32Array, cols: number, step: number) => Float32Array): { ins: readonly Tensor[]; y: Float32Array } {
  if (n.kind !== "linear" || maxRows <= 0) return { ins, y };
  const x = asFloat(ins[0]!), cols = x.shape[x.shape.length - 1]!, rows = x.data.length / (cols || 1);
  const step = probeRowStep(rows, maxRows);
  if (step === 1) return { ins, y };
  const xs = take(x.data, cols, step);
  return { ins: [floatTensor([1, xs.length / cols, cols], xs), ...ins.slice(1)], y: take(y, y.length / rows, step) };
}

/** Every step-th row of a (rows × cols) array, into `into` (⌈rows / step⌉ × cols). */
function takeRows(src: Float32Array, cols: number, step: number, into: Float32Array): Float32Array {
  for (let r = 0, o = 0; o < into.length; r += step, o += cols) into.set(src.subarray(r * cols, r * cols + cols), o);
  return into;
}

/** Adds one graph run's layer errors to `sums` (a weight used by several nodes sums their errors). */
function probeRun(g: Graph, feeds: Record<string, Tensor>, quantize: LayerQuantizer, sums: Map<string, ErrorSums>, onLayer?: (name: string) => void, maxRows = PROBE_ROWS): void {
  const prod = producers(g);
  // the sampled rows go into memory reused layer after layer (fresh memory faults a page per 4 KiB)
  const buffers = reusedBuffers(2 ** 28), taken: Float32Array[] = [];
  const keep = (t: Float32Array) => (taken.push(t), t);
  runGraph(g, feeds, {
    observe: (n, ins, outs) => {
      const name = statsSite(n, prod);
      if (!name) return;
      const r = probeRows(n, ins, asFloat(outs[0]!).data, maxRows, (src, cols, step) => keep(buffers.take(src, cols, step)));
      addLayerError(sums, name, n, r.ins, r.y, quantize);
      taken.splice(0).forEach(buffers.release);
      onLayer?.(name);
    },
  });
}

/**
 * Σ (yq − y)² and Σ y², in one pass. A loop of its own: in a caller that does more after it, a
 * first call optimized inside the loop (on-stack replacement) would leave the rest without
 * feedback, and the cached code would deoptimize there on every later call.
 */
function squaredErrors(yq: Float32Array, y: Float32Array): { num: number; den: number } {
  let num = 0, den = 0;
  for (let i = 0; i < y.length; i++) (num += (yq[i]! - y[i]!) ** 2), (den += y[i]! ** 2);
  return { num, den };
}

/** Reruns one linear/conv on its operands `ins` with its weight quantized, and adds the error against its float output `y`. */
function addLayerError(sums: Map<string, ErrorSums>, name: string, n: Node, ins: readonly Tensor[], y: Float32Array, quantize: LayerQuantizer): void {
  const w = asFloat(ins[1]!);
  const q = quantize(name, n, w, ins[2] ? asFloat(ins[2]) : undefined);
  const bias = q.bias ?? ins[2];
  const yq = asFloat(opDef(n.kind).kernel([ins[0]!, q.w, ...(bias ? [bias] : [])], n.attrs as never)[0]!).data;
  const s = sums.get(name) ?? { shape: [...w.shape], num: 0, den: 0, count: 0 };
  const e = squaredErrors(yq, y);
  s.num += e.num;
  s.den += e.den;
  s.count += y.length;
  sums.set(name, s);
}

/**
 * Whether `probeLayersWithStatistics` applies: the calibration set is one forward's chunk and
 * every weight has one reader, so a layer's statistics are complete when the forward reaches it.
 */
export function oneForwardProbe(g: Graph, cal: Feeds, chunk = CALIBRATION_CHUNK): boolean {
  const prod = producers(g), seen = new Set<string>();
  for (const n of g.nodes) {
    const name = statsSite(n, prod);
    if (name && seen.has(name)) return false;
    if (name) seen.add(name);
  }
  return calibrationSize(cal) <= chunk;
}

/** Bytes of layer inputs and outputs kept while their clusterings are under way. */
const PENDING_BYTES = 2 ** 29;

/**
 * The activation statistics and the layer probe in one forward, for a calibration set of one
 * chunk (oneForwardProbe): at each layer its input's statistics are complete, so its weight goes
 * to the worker pool for 4-bit clustering at once while the forward goes on, and the layer's
 * rerun waits (with copies of its input and output) until that clustering is back. Statistics,
 * clusterings, corrected biases and errors are the same as `activationStats` and then
 * `probeLayersClustering` give: the same forward, the same sums in the same order, the same jobs.
 * `g` is the width's graph the palettize pass will see (its jobs and bias names); `graphFor` the
 * model at the set's batch.
 */
export function probeLayersWithStatistics(graphFor: (batch: number) => Graph, g: Graph, cal: Feeds, t: QuantizeTechniques, threads: number, onLayer?: (done: number, total: number) => void, pendingLimit = PENDING_BYTES, maxRows = PROBE_ROWS): { layers: LayerSensitivity[]; stats: Map<string, ChannelStats>; ahead: Map<string, AheadClustering> } {
  const run = graphFor(calibrationSize(cal));
  if (!oneForwardProbe(run, cal)) throw new Error("internal: probeLayersWithStatistics needs one chunk and one reader per weight");
  const prod = producers(run), widthProd = producers(g);
  const readers = new Map<string, { n: Node; c: ConstValue }>();
  for (const n of g.nodes) {
    const wp = statsSite(n, widthProd) ? widthProd.get(n.inputs[1]!) : undefined;
    if (wp?.kind === "const") readers.set(wp.attrs.value.source, { n, c: wp.attrs.value });
  }
  const sites = run.nodes.filter((n) => statsSite(n, prod) !== undefined);
  const stats = new Map<string, ChannelStats>(), clusterings = new Map<string, Palettized>(), biases = new Map<string, Float32Array>();
  const statsOfInput = new Map<Value, ChannelStats>();
  const biasSource = new Map<string, string>(), errors = new Map<string, ErrorSums>();
  const ahead = new Map<string, AheadClustering>();
  const quantize = techniqueQuantizer(t, stats, ahead);
  const pending: { name: string; n: Node; ins: Tensor[]; y: Float32Array; copies: Float32Array[]; bytes: number }[] = [];
  let pendingBytes = 0, done = 0;
  const buffers = reusedBuffers(pendingLimit);
  const pool = openClusterPool(clusterings, threads, undefined, { background: false });
  const rerun = () => {
    const p = pending.shift()!;
    pendingBytes -= p.bytes;
    ahead.set(p.name, arrivedClustering(p.name, clusterings, biases, biasSource));
    addLayerError(errors, p.name, p.n, p.ins, p.y, quantize);
    p.copies.forEach(buffers.release);
    onLayer?.(++done, sites.length);
  };
  try {
    runGraph(run, cal, {
      observe: (n, ins, outs) => {
        const name = statsSite(n, prod);
        if (!name) return;
        // linears reading one tensor (an attention's q, k, v and gate) share its statistics
        let s = n.kind === "linear" ? statsOfInput.get(n.inputs[0]!) : undefined;
        if (!s) {
          const sums = emptySums(n, ins[0]!);
          accumulate(asFloat(ins[0]!), n.kind as "linear" | "conv2d", sums);
          s = storedStats(channelStats(sums));
          if (n.kind === "linear") statsOfInput.set(n.inputs[0]!, s);
        }
        stats.set(name, s);
        const reader = readers.get(name);
        if (!reader) throw new Error(`internal: ${name} is not a constant weight of the width's graph`);
        const made = layerClusterJob(reader.n, reader.c, widthProd, 4, t, s, biases);
        if (made.biasSource) biasSource.set(name, made.biasSource);
        pool.add([made.job]);
        // the engine's memory is reused after this call: the rerun gets copies (constants are the
        // run's own), of only the rows it reruns
        const copies: Float32Array[] = [];
        const keep = (t: Float32Array) => (copies.push(t), t);
        const out = asFloat(outs[0]!).data;
        const rows = probeRows(n, ins, out, maxRows, (src, cols, step) => keep(buffers.take(src, cols, step)));
        const kept = rows.ins.map((t, i) => (prod.get(n.inputs[i]!)?.kind === "const" || t !== ins[i] ? t : ({ ...asFloat(t), data: keep(buffers.copy(asFloat(t).data)) } as Tensor)));
        const y = rows.y === out ? keep(buffers.copy(out)) : rows.y;
        errors.set(name, { shape: [...ins[1]!.shape], num: 0, den: 0, count: 0 }); // graph order, as probeLayers
        const bytes = copies.reduce((b, c) => b + c.byteLength, 0);
        pending.push({ name, n, ins: kept, y, copies, bytes });
        pendingBytes += bytes;
        pool.poll();
        while (pending.length && (clusterings.has(pending[0]!.name) || pendingBytes > pendingLimit || n === sites[sites.length - 1])) {
          pool.waitFor(pending[0]!.name);
          rerun();
        }
      },
    });
    pool.finish();
  } finally {
    pool.cancel();
  }
  return { layers: sensitivities(errors), stats, ahead };
}

/**
 * Buffers for the copies pending reruns keep, reused copy after copy: fresh memory per copy
 * costs a page fault per 4 KiB (the copies of the full preset's width 1 come to 15 GB). At most
 * `spareLimit` bytes are kept spare (the smallest go first).
 */
function reusedBuffers(spareLimit: number): { copy(src: Float32Array): Float32Array; take(src: Float32Array, cols: number, step: number): Float32Array; release(copy: Float32Array): void } {
  const spare: Float32Array[] = [];
  let spareBytes = 0;
  const buffer = (length: number) => {
    let at = -1;
    spare.forEach((b, i) => {
      if (b.length >= length && (at < 0 || b.length < spare[at]!.length)) at = i;
    });
    const buf = at >= 0 ? spare.splice(at, 1)[0]! : new Float32Array(length);
    if (at >= 0) spareBytes -= buf.byteLength;
    return buf.subarray(0, length);
  };
  return {
    copy(src) {
      const out = buffer(src.length);
      out.set(src);
      return out;
    },
    take: (src, cols, step) => takeRows(src, cols, step, buffer(Math.ceil(src.length / cols / step) * cols)),
    release(copy) {
      const whole = new Float32Array(copy.buffer);
      spare.push(whole);
      spareBytes += whole.byteLength;
      spare.sort((a, b) => b.length - a.length);
      while (spareBytes > spareLimit && spare.length) spareBytes -= spare.pop()!.byteLength;
    },
  };
}

function sensitivities(sums: Map<string, ErrorSums>): LayerSensitivity[] {
  return [...sums].map(([name, s]) => ({ name, shape: s.shape, params: s.shape.reduce((a, b) => a * b, 1), mse: s.num / (s.den || 1), absMse: s.num / (s.count || 1) }));
}

/** The layer probe on one batch of inputs. */
export function probeSensitivity(g: Graph, calibration: Record<string, Tensor>, onLayer?: (name: string) => void, quantize: LayerQuantizer = plainQuantizer, maxRows = PROBE_ROWS): LayerSensitivity[] {
  const sums = new Map<string, ErrorSums>();
  probeRun(g, calibration, quantize, sums, onLayer, maxRows);
  return sensitivities(sums);
}

/** The layer probe over a calibration set in chunks; `graphFor(batch)` builds the float model. */
export function probeLayers(graphFor: (batch: number) => Graph, cal: Feeds, quantize: LayerQuantizer, chunk = CALIBRATION_CHUNK, onChunk?: (done: number, total: number) => void, maxRows = PROBE_ROWS): LayerSensitivity[] {
  const sums = new Map<string, ErrorSums>();
  const n = calibrationSize(cal);
  const cached = cachedQuantizer(quantize);
  forEachChunk(cal, chunk, (feeds, first) => {
    probeRun(graphFor(calibrationSize(feeds)), feeds, cached, sums, undefined, maxRows);
    onChunk?.(Math.min(n, first + chunk), n);
  });
  return sensitivities(sums);
}

/**
 * The model probe: each named weight alone at 4 bits (with the compile's techniques, through the
 * palettize pass itself), the whole model run on the calibration set, and the mean square error
 * of its velocity against the float model's. `mse` is normalized by the velocity's energy.
 * Float constants are loaded once and shared by every run when they fit `cacheBytes`. A forward
 * per layer and record is costly, so at most MODEL_PROBE_RECORDS records, evenly spaced over the
 * set (over the trajectory's timesteps), are used.
 */
export function probeModel(graphFor: (batch: number) => Graph, all: Feeds, names: readonly string[], options: Omit<PalettizeOptions, "bits">, chunk = CALIBRATION_CHUNK, onLayer?: (done: number, total: number) => void, cacheBytes = 2 ** 30): LayerSensitivity[] {
  const cal = evenlySpaced(all, MODEL_PROBE_RECORDS);
  const n = calibrationSize(cal);
  const chunks: { first: number; count: number }[] = [];
  for (let first = 0; first < n; first += chunk) chunks.push({ first, count: Math.min(chunk, n - first) });
  const base = graphFor(chunks[0]!.count);
  const weightBytes = base.nodes.reduce((s, x) => s + (x.kind === "const" ? 4 * x.attrs.value.type.shape.reduce((a, b) => a * b, 1) : 0), 0);
  const shared = weightBytes <= cacheBytes ? new Map<ConstValue, Tensor>() : undefined;
  const reference = chunks.map(({ first, count }) => asFloat(runGraph(graphFor(count), calibrationSlice(cal, first, count), shared ? { constants: shared } : {}).velocity!).data);
  let den = 0, count = 0;
  for (const r of reference) for (const v of r) (den += v * v), count++;
  const shapes = new Map(palettizableWeights(base).map((w) => [w.name, w.shape]));
  const out: LayerSensitivity[] = [];
  names.forEach((name, i) => {
    const quantized = new Map<number, Graph>();
    let num = 0;
    chunks.forEach(({ first, count: b }, c) => {
      let g = quantized.get(b);
      if (!g) quantized.set(b, (g = palettizeWeights.run(graphFor(b), { ...options, bits: { [name]: 4 } })));
      const v = asFloat(runGraph(g, calibrationSlice(cal, first, b), shared ? { constants: new Map(shared) } : {}).velocity!).data;
      const ref = reference[c]!;
      for (let j = 0; j < v.length; j++) num += (v[j]! - ref[j]!) ** 2;
    });
    const shape = shapes.get(name) ?? [];
    out.push({ name, shape, params: shape.reduce((a, x) => a * x, 1), mse: num / (den || 1), absMse: num / (count || 1) });
    onLayer?.(i + 1, names.length);
  });
  return out;
}

export const MODEL_PROBE_RECORDS = 64;

/** How far two probes agree: the layers each would raise to 8 bits at the same target. */
export interface RankingOverlap {
  layer8: number;
  model8: number;
  shared: number;
  /** shared / union */
  jaccard: number;
}

export function rankingOverlap(a: Record<string, 4 | 8>, b: Record<string, 4 | 8>): RankingOverlap {
  const A = new Set(Object.keys(a).filter((k) => a[k] === 8)), B = new Set(Object.keys(b).filter((k) => b[k] === 8));
  const shared = [...A].filter((k) => B.has(k)).length, union = new Set([...A, ...B]).size;
  return { layer8: A.size, model8: B.size, shared, jaccard: union ? +(shared / union).toFixed(4) : 1 };
}

export interface BitAllocation {
  bits: Record<string, 4 | 8>;
  averageBits: number;
}

/** Uniform allocation. */
export function uniformBits(layers: { name: string }[], bits: 4 | 8): Record<string, 4 | 8> {
  return Object.fromEntries(layers.map((l) => [l.name, bits]));
}

export function averageBits<L extends { name: string; params: number }>(layers: L[], bits: Record<string, 4 | 8>, key: (l: L) => string = (l) => l.name): number {
  const total = layers.reduce((s, l) => s + l.params, 0);
  return layers.reduce((s, l) => s + l.params * (bits[key(l)] ?? 4), 0) / (total || 1);
}

/**
 * Layers are ranked by their unnormalized probe MSE per parameter: the output error an 8-bit
 * upgrade removes per bit it costs. Measured on mini (4 model/input seeds), ranking by the
 * energy-normalized MSE spent the budget on a few large layers and in one case did no better
 * than random choices of the same budget; normalizing by the layer's own output energy also
 * hides that a small-output layer adds little error to the residual stream. The unnormalized,
 * per-parameter ranking beat the random mean in all four (by 0.3 to 1.5 dB).
 * In that order a layer goes to 8 bits when that keeps the average at most `target + tolerance`;
 * a layer too large to fit is skipped and the walk goes on until the average reaches the target,
 * so it lands within the tolerance whenever layer sizes allow.
 */
export function allocateBits(layers: LayerSensitivity[], target: number, tolerance = 0.05): BitAllocation {
  const total = layers.reduce((s, l) => s + l.params, 0);
  const bits = uniformBits(layers, 4);
  let avg = 4;
  for (const l of [...layers].sort((a, b) => b.absMse / b.params - a.absMse / a.params || a.name.localeCompare(b.name))) {
    if (avg >= target) break;
    const next = avg + (4 * l.params) / total;
    if (next <= target + tolerance) {
      bits[l.name] = 8;
      avg = next;
    }
  }
  return { bits, averageBits: avg };
}
