// `ditc compile`: for every width and target, build the sub-network, run the target's pipeline,
// emit the artifact under DIR/w{375,500,1000}/, and write report.json and report.html.
import { lstatSync, mkdirSync, readlinkSync, rmSync } from "node:fs";
import { totalmem } from "node:os";
import { join, relative } from "node:path";
import { fail, oneOf } from "../diagnostics.js";
import { makeOutputFolder, writeAll, writeFileAtomic } from "../io/atomic.js";
import { withWriteBehind } from "../io/write-behind.js";
import { buildSupernetwork, checkWidth } from "../model/build.js";
import { sliceWidth } from "../../passes/slice-width.js";
import { widthTag, type Width } from "../model/config.js";
import { paramCount, paramSpecs, specsForWidth } from "../model/params.js";
import { float32Bytes, isSynthetic, makeWidthSlices, withReadCache, withSynthesisCache, type Checkpoint, type WeightSource } from "../model/weights.js";
import { timedRead, weightReadClock } from "../model/read-clock.js";
import { SliceStore } from "../model/slice-store.js";
import { configJson } from "./init.js";
import { graphStats } from "./inspect.js";
import { BACKENDS, pipelinePasses, sharedPrefixLowering } from "./pipelines.js";
import { renderReportHtml } from "./report-html.js";
import type { ConstValue, Graph } from "../ir/graph.js";
import { storedBytes } from "../ir/dtype.js";
import { kernelBuild, type KernelBuild } from "../kernels/fast.js";
import { numel, type FloatTensor } from "../kernels/tensor.js";
import type { PipelineEntry } from "../pipeline/pass.js";
import { averageBits, layerClusterJobs, type RankingOverlap } from "../quant/probe.js";
import { calibrationSize, checkCalibration, type CalibrationSet, type ChannelStats } from "../quant/calibration.js";
import { startClustering, type ClusterRun } from "../quant/cluster-pool.js";
import { WholeWeightClusterings } from "../quant/whole-weights.js";
import { engineInfo } from "../kernels/simd/engine.js";
import { DEFAULT_TECHNIQUES, planWidth, writeStatistics, type QuantizedLayerPlan, type Techniques } from "./quantize-plan.js";
import { syntheticInputs } from "./init.js";
import { KMEANS_REVISION } from "../quant/kmeans.js";
import { clusteringClock } from "../quant/layer.js";
import type { PalettizeOptions, SharedQuantization } from "../../passes/palettize.js";
import type { ProgressFn } from "./progress.js";
import type { SamplingReport } from "./sample-report.js";
import { DITC_VERSION } from "../version.js";

export type Precision = "fp32" | "fp16";

/** Where the float model came from, so `verify` can rebuild the reference. */
export type ModelRef = { preset: string; seed: number } | { checkpoint: string; rename?: string; configFile?: string; allowUnused?: boolean };

/** k-means palettes (k4, k8, mixed), or symmetric per-channel int8 (TFLite and ONNX). */
export type QuantizeMode = { mode: "none" } | { mode: "k4" } | { mode: "k8" } | { mode: "mixed"; target: number } | { mode: "int8" };

/** Parses --quantize none|k4|k8|mixed[:BITS]|int8 (default target 4.3, docs/toolchain.md). */
export function parseQuantize(s: string): QuantizeMode {
  const m = /^(none|k4|k8|mixed|int8)(?::(\d+(?:\.\d+)?))?$/.exec(s);
  const target = m?.[2] !== undefined ? Number(m[2]) : 4.3;
  if (!m || (m[2] !== undefined && m[1] !== "mixed") || !(target >= 4 && target <= 8))
    throw fail("badOption", { option: "quantize", value: s, expected: "none, k4, k8, mixed, mixed:BITS with 4 <= BITS <= 8 (e.g. mixed:4.3), or int8" });
  return m[1] === "mixed" ? { mode: "mixed", target } : { mode: m[1] as "none" | "k4" | "k8" | "int8" };
}

export interface QuantizedLayer {
  name: string;
  width: Width;
  shape: number[];
  params: number;
  bits: 4 | 8;
  /** probe MSE at 4 bits (relative to output energy); null when no probe ran (or for int8) */
  mse: number | null;
  bytes: number;
}

export interface CompileOptions {
  source: WeightSource;
  ref: ModelRef;
  targets: string[];
  widths: Width[];
  latentSize?: [number, number];
  /** "auto": each target's default (fp16 for CoreML, fp32 for ONNX and TFLite) */
  precision: Precision | "auto";
  out: string;
  externalData?: "auto" | "always" | "never";
  /** CoreML: iOS17 (CoreML7, default) or iOS18 (CoreML8) */
  deployment?: "iOS17" | "iOS18";
  quantize?: QuantizeMode;
  /** palettized modes: probe scope, k-means weighting, bias correction, LUT groups (default DEFAULT_TECHNIQUES) */
  techniques?: Partial<Techniques>;
  /** calibration inputs (latent, timestep, context; any number of samples, run in chunks); default: one seeded sample at the compiled shapes */
  calibration?: Record<string, FloatTensor>;
  /** where the calibration came from, for the report */
  calibrationFile?: string;
  onProgress?: ProgressFn;
}

export interface ArtifactRecord {
  target: string;
  width: Width;
  path: string;
  files: string[];
  bytes: number;
  precision: Precision;
  params: number;
  pipeline: string[];
  opsBefore: Record<string, number>;
  opsAfter: Record<string, number>;
  transposes: { total: number; inBlocks: number };
  /** the same counted in the written file, for formats ditc can count in (TFLite, ONNX) */
  fileTransposes?: { total: number; inBlocks: number };
  maxRank: number;
  /** what the artifact's bytes are (see constantBytes) */
  constants: ConstantBytes;
}

/**
 * An artifact's bytes by what they hold, counted over the distinct constants of the lowered graph
 * (each is written once): dense weights as stored (fp32 islands at 4 bytes), palette indices (and
 * int8 weights), LUTs (and int8 scales), position tables, other constants (shapes, axes, gather
 * indices, scalars), and the rest of the file (the graph itself, headers, alignment).
 */
export interface ConstantBytes {
  weights: number;
  palettes: number;
  luts: number;
  tables: number;
  other: number;
  /** weights kept in float32 in an fp16 artifact (the timestep embedding); part of `weights` */
  fp32Island: number;
  /** the file's bytes beyond its constants: max(0, bytes − all constants) */
  structure: number;
  /** (tables + other) / (weights + palettes + luts): what constants cost beyond the model's parameters */
  constantOverhead: number;
  /** (bytes − weights − palettes − luts) / (weights + palettes + luts), the structure included */
  fileOverhead: number;
}

export function constantBytes(g: Graph, precision: Precision, fileBytes: number): ConstantBytes {
  const seen = new Set<ConstValue>();
  const b = { weights: 0, palettes: 0, luts: 0, tables: 0, other: 0, fp32Island: 0 };
  for (const n of g.nodes) {
    if (n.kind !== "const" || seen.has(n.attrs.value)) continue;
    const c = n.attrs.value;
    seen.add(c);
    const bytes = storedBytes(c.type);
    if (c.role === "weight") {
      b.weights += bytes;
      if (precision === "fp16" && c.type.dtype === "f32") b.fp32Island += bytes;
    } else if (c.role === "palette") b.palettes += bytes;
    else if (c.role === "lut") b.luts += bytes;
    else if (c.role === "table") b.tables += bytes;
    else b.other += bytes;
  }
  const params = b.weights + b.palettes + b.luts;
  const all = params + b.tables + b.other;
  return { ...b, structure: Math.max(0, fileBytes - all), constantOverhead: +((b.tables + b.other) / params).toFixed(6), fileOverhead: +((fileBytes - params) / params).toFixed(6) };
}

export interface CompileReport {
  ditc: string;
  model: ModelRef & { config: unknown };
  latentSize: [number, number];
  contextTokens: number;
  precision: Precision | "auto";
  tolerances: { fp32: { maxRelErr: number }; fp16: { relL2: number } };
  artifacts: ArtifactRecord[];
  /** with a checkpoint: bytes of tensor data read from disk (each weight once when cached) */
  checkpointReads?: { bytesRead: number; checkpointDataBytes: number; cached: boolean };
  /** kmeansRevision: the k-means code the palettes came from (verify needs the same to rebuild them) */
  quantization?: QuantizationReport;
  /** with --sample: the samples of the float model and of every artifact, and their image PSNR */
  sampling?: SamplingReport;
}

export interface QuantizationReport {
  mode: string;
  target?: number;
  lutGroupSize: number;
  /** palettized modes: the techniques used (docs/toolchain.md, "Quantization") */
  techniques?: Techniques;
  /**
   * the calibration inputs: a file from ditc calibrate, or one seeded sample; `kernels`, when
   * forwards ran on them (statistics or the model probe), names the kernels that computed those
   * forwards (the fused build's other rounding can tip a close ranking)
   */
  calibration?: { file: string | null; samples: number; kernels?: KernelBuild };
  /** with weighted k-means or bias correction: the activation statistics (relative to DIR) verify rebuilds the weights from */
  statistics?: string;
  /** per width, with the model probe: its overlap with the layer probe (timings are not here: this file is byte-reproducible; compile returns them) */
  widths?: { width: Width; overlap?: RankingOverlap }[];
  kmeansRevision?: number;
  averageBits: number;
  layers: QuantizedLayer[];
}

export const TOLERANCES = { fp32: { maxRelErr: 1e-4 }, fp16: { relL2: 1e-2 } };

/**
 * Cache stored weights when a compile reads them more than once (several widths, or a quantized
 * one: statistics, probe, clustering and writing each read every weight) and they fit this
 * budget, and a quarter of the machine's memory; larger models are re-read. A preset's weights
 * are kept as drawn, in float32 (the full preset's 5.8 GiB fit on a 24 GiB machine), else drawn again.
 */
export const READ_CACHE_BYTES = 8 * 2 ** 30;
export const readCacheBudget = (): number => Math.min(READ_CACHE_BYTES, totalmem() / 4);

/** Where a palettized compile spent its calibration time, per width (not in report.json, which is reproducible). */
export interface QuantizationTimings {
  width: Width;
  statisticsSeconds: number;
  probeSeconds: number;
}

/**
 * Where a compile's wall time went. The phases in sequence are statistics, probe, lowering (while
 * the worker pool clusters the layers the probe did not) and writing (which loads each constant
 * as it writes it, waiting for its clustering if the pool has not stored it yet); `read` and
 * `kmeans` are the time spent reading weights (checkpoint reads, also a width's up-front read
 * into the cache, before its statistics and outside the phases; slicing them to the width; the
 * cluster pool's copies of them) and waiting for clusterings (disjoint: waiting on the worker pool
 * counts as k-means less this thread's reads meanwhile).
 */
export interface CompilePhases {
  totalSeconds: number;
  statisticsSeconds: number;
  probeSeconds: number;
  loweringSeconds: number;
  writingSeconds: number;
  readSeconds: number;
  /**
   * readSeconds by where they fell: reading widths' tensors into the cache, slicing them to each
   * width, inside statistics and probe (its weight reads and the cluster pool's loads), and after
   * the probes (the 8-bit clustering's loads, the emitters' reads of float weights)
   */
  reads: { cacheSeconds: number; slicesSeconds: number; inProbeSeconds: number; afterProbeSeconds: number };
  kmeansSeconds: number;
  /** the interpreter's forwards in statistics and probe: those phases less the reads and k-means inside them */
  forwardSeconds: number;
  /**
   * The process's CPU time (every thread, user + system) over the whole compile and over its
   * statistics and probes: what is left, against the wall time outside those two phases, says how
   * many cores the rest kept busy.
   */
  cpuSeconds: { total: number; statisticsAndProbe: number };
}

/**
 * The source with its reads on the weight-read clock (slicing to a width and the cluster pool's
 * loads are on it too), keeping a width's fp16 slices when `slices` is given.
 */
function timedSource<S extends WeightSource>(src: S, slices?: SliceStore): S {
  return { ...src, read: (spec) => timedRead(() => src.read(spec)), ...(src.readF16 ? { readF16: (spec) => timedRead(() => src.readF16!(spec)) } : {}), ...(slices ? { slices } : {}) };
}

const since = (t0: number) => (performance.now() - t0) / 1000;
const cpuSince = (c0: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1e6;
};
const round3 = (x: number) => +x.toFixed(3);

type CompileResult = { report: CompileReport; reportPath: string; timings: QuantizationTimings[]; phases: CompilePhases };

/** Compiles; its files are written by a helper thread (src/io/write-behind.ts) unless --threads 1 asks for this thread alone. */
export function compile(o: CompileOptions): CompileResult {
  return engineInfo().threads > 1 ? withWriteBehind(() => runCompile(o)) : runCompile(o);
}

function runCompile(o: CompileOptions): CompileResult {
  const start = performance.now(), cpuStart = process.cpuUsage(), kmeansBefore = clusteringClock();
  const readsBefore = weightReadClock(), reads = () => weightReadClock() - readsBefore;
  /** the weight-read seconds `f` took (reads it makes, timed with timedRead) */
  const readsIn = (f: () => void) => {
    const t = reads();
    f();
    return reads() - t;
  };
  const clock = { lowering: 0, writing: 0, statistics: 0, probe: 0, forward: 0, cache: 0, slices: 0, inProbe: 0, afterProbe: 0, probeCpu: 0 };
  const techniques: Techniques = { ...DEFAULT_TECHNIQUES, ...o.techniques };
  if (techniques.lutGroupSize > 0 && o.targets.includes("coreml") && o.deployment !== "iOS18")
    throw fail("usage", { detail: "--lut-group-size on CoreML is the per-grouped-channel LUT form of iOS18: add --deployment iOS18 (ONNX and TFLite take it as one lookup per group)." });
  if (o.quantize?.mode === "int8" && o.targets.includes("coreml"))
    throw fail("usage", { detail: "--quantize int8 is for --target tflite and onnx; CoreML takes palettized weights (--quantize k4, k8 or mixed)." });
  for (const t of o.targets) if (!BACKENDS[t]) throw fail("badOption", { option: "target", value: t, expected: oneOf(t, Object.keys(BACKENDS)) });
  if (!o.widths.length) throw fail("badOption", { option: "width", value: "(none)", expected: "at least one width" });
  makeOutputFolder(o.out);
  const artifacts: ArtifactRecord[] = [];
  const ck = "file" in o.source ? (o.source as Checkpoint) : undefined;
  const readBefore = ck?.file.bytesRead ?? 0;
  const quantize = o.quantize ?? { mode: "none" };
  // a preset's weights are kept as drawn (float32): drawing them is far dearer than reading a file
  const synthetic = isSynthetic(o.source) ? o.source : undefined;
  const storedBytes = ck ? ck.file.dataBytes : synthetic ? float32Bytes(synthetic.config) : Infinity;
  const cacheReads = (o.widths.length > 1 || quantize.mode !== "none") && storedBytes <= readCacheBudget();
  const cached = !cacheReads ? undefined : ck ? withReadCache(ck) : synthetic ? withSynthesisCache(synthetic) : undefined;
  // with the read cache, a narrower width's slices are kept while that width compiles (at most
  // its share of the cache's bytes: ~0.8 GB at 0.5 for the full preset), in memory the next
  // narrower width reuses
  const slices = cached ? new SliceStore() : undefined;
  const source = timedSource(cached ?? o.source, slices);
  let latentSize: [number, number] = o.latentSize ?? o.source.config.latentSize;
  const qLayers: QuantizedLayer[] = [];
  const statsByWidth = new Map<number, Map<string, ChannelStats>>();
  const widthRecords: NonNullable<QuantizationReport["widths"]> = [];
  const timings: QuantizationTimings[] = [];
  const calibration = o.calibration ? checkCalibration(o.calibrationFile ?? "calibration", o.calibration, o.source.config, o.latentSize ?? o.source.config.latentSize) : undefined;
  // one supernetwork, narrowed per width by the slice-width pass
  for (const width of o.widths) checkWidth(source, width);
  const supernetwork = buildSupernetwork(source, o.latentSize ? { latentSize: o.latentSize } : {});
  // a weight the widths keep whole is clustered once, for the first width that palettizes it so
  const stored = new Map(paramSpecs(o.source.config).filter((s) => s.width === undefined).map((s) => [s.name, numel(s.shape)]));
  const wholeWeights = new WholeWeightClusterings((name) => stored.get(name));
  for (const [at, width] of o.widths.entries()) {
    const model = { ...supernetwork, graph: sliceWidth.run(supernetwork.graph, { width }), width };
    latentSize = model.latentSize;
    // the width's tensors into the cache at once, on two threads: read between the forwards'
    // kernels, the same reads take several times longer (2 s against 6 s for the full preset's)
    if (cached) clock.cache += readsIn(() => timedRead(() => cached.prefetch(specsForWidth(o.source.config, width).map((s) => s.name), engineInfo().threads)));
    // and its slices, before the probe's forward starts the cluster pool beside it, on two threads
    clock.slices += readsIn(() => timedRead(() => makeWidthSlices(source, width, engineInfo().threads)));
    // the width's reads from the end of its statistics and probe (or from here, without them) to its end
    let afterProbeFrom = reads();
    const before = graphStats(model.graph).ops;
    let palettize: PipelineEntry[] = [];
    let background: ClusterRun | undefined;
    let keepWhole = () => {};
    if (quantize.mode !== "none") {
      const cal = calibration ?? (syntheticInputs(source.config, 0, { batch: 1, latentSize, contextTokens: o.source.config.contextTokens }) as CalibrationSet);
      const planReads = reads(), planClustering = clusteringClock(), planCpu = process.cpuUsage();
      const plan = planWidth(source, model.graph, width, latentSize, quantize, techniques, cal, (step, done, total, unit) => o.onProgress?.({ step, done, total, unit }));
      clock.probeCpu += cpuSince(planCpu);
      qLayers.push(...plan.layers.map((l) => layerRecord(l, width, quantize.mode === "int8", techniques.lutGroupSize)));
      if (plan.stats) statsByWidth.set(width, plan.stats);
      widthRecords.push({ width, ...(plan.overlap ? { overlap: plan.overlap } : {}) });
      timings.push({ width, statisticsSeconds: plan.seconds.statistics, probeSeconds: plan.seconds.probe });
      clock.statistics += plan.seconds.statistics;
      clock.probe += plan.seconds.probe;
      const probeReads = reads() - planReads;
      clock.forward += plan.seconds.statistics + plan.seconds.probe - probeReads - (clusteringClock() - planClustering);
      clock.inProbe += probeReads;
      afterProbeFrom = reads();
      // the targets of one width share each weight's clustering and corrected bias (dropped with the width)
      // (the probe clustered the 4-bit layers already: only the 8-bit ones are left)
      const shared: SharedQuantization = { clusterings: plan.clustered?.clusterings ?? new Map(), biases: plan.clustered?.biases ?? new Map() };
      palettize = [plan.entry.pass === "palettize" ? { ...plan.entry, options: { ...plan.entry.options, shared } } : plan.entry];
      if (plan.entry.pass === "palettize") {
        // the width's other clusterings (its 8-bit layers; every layer for k4 and k8) start now on
        // the workers, with the pass' own options, and run while this thread lowers and writes
        // the targets. When the probe clustered the 4-bit layers, one worker fewer than threads:
        // this thread keeps a core busy (on 2 cores, two workers made the full preset's lowering
        // and writing 2-3 s slower), and clusters queued weights itself whenever it waits
        const opts = plan.entry.options as unknown as PalettizeOptions, t0 = performance.now();
        const { jobs } = layerClusterJobs(model.graph, opts, opts.stats, (source) => opts.bits[source], shared.biases);
        const todo = wholeWeights.lend(jobs, shared);
        const workers = plan.clustered ? Math.max(1, engineInfo().threads - 1) : engineInfo().threads;
        const run = startClustering(todo, shared.clusterings, workers, (done, total) => o.onProgress?.({ step: `w${width}: clustering`, done, total, unit: "weights" }));
        // the emitters wait for each weight's clustering as they reach it, so the workers go on
        // clustering while the first target is written
        const onWorkers = new Set(todo.map((j) => j.source));
        keepWhole = () => wholeWeights.keep(jobs, shared);
        shared.ready = (source) => {
          if (onWorkers.has(source)) run.waitFor(source);
        };
        background = run;
        clock.writing += since(t0);
      }
    }
    try {
      const precisionOf = (target: string): Precision => (o.precision === "auto" ? (BACKENDS[target]!.defaultPrecision ?? "fp32") : o.precision);
      const lowering = sharedPrefixLowering(model.graph, Object.fromEntries(o.targets.map((t) => [t, { fp16: precisionOf(t) === "fp16", before: palettize }])));
      // every target is lowered before the first is written: lowering needs no clustering, so
      // the cluster workers get that long a start on the weights the first target's writing
      // waits for. Lowered graphs hold their weights lazily; each is dropped once written.
      let t0 = performance.now();
      const lowered = new Map<string, Graph>();
      for (const target of o.targets) {
        o.onProgress?.({ step: `${target} w${width}: lowering`, done: 0, total: 1, unit: "pipeline" });
        lowered.set(target, lowering.lower(target));
      }
      clock.lowering += since(t0);
      for (const target of o.targets) {
        const precision = precisionOf(target);
        const g = lowered.get(target)!;
        lowered.delete(target);
        const backend = BACKENDS[target]!;
        const stats = graphStats(g);
        const dir = outputDir(o.out, widthTag(width));
        const path = join(dir, backend.artifact);
        const step = `${target} w${width}: writing ${path}`;
        t0 = performance.now();
        const r = backend.emit(g, path, {
          onProgress: (done, total) => o.onProgress?.({ step, done, total, unit: target === "coreml" ? "ops" : "weights" }),
          ...(o.externalData ? { externalData: o.externalData } : {}),
          ...(o.deployment ? { deployment: o.deployment } : {}),
          metadata: { "ditc.width": String(width), "ditc.precision": o.precision, "ditc.config": configJson(o.source.config) },
        });
        clock.writing += since(t0);
        artifacts.push({
          target, width, path: relative(o.out, path), files: r.files.map((f) => relative(o.out, f)), bytes: r.bytes, precision,
          params: paramCount(o.source.config, width), pipeline: ["slice-width", ...palettize.map((e) => e.pass), ...pipelinePasses(target, precision === "fp16")],
          opsBefore: before, opsAfter: stats.ops, transposes: stats.transposes, maxRank: stats.maxRank,
          ...(r.transposes ? { fileTransposes: r.transposes } : {}),
          constants: constantBytes(g, precision, r.bytes),
        });
      }
      // every clustering was waited for by the emitters; this stops the workers
      t0 = performance.now();
      background?.finish();
      clock.writing += since(t0);
      keepWhole();
    } finally {
      clock.afterProbe += reads() - afterProbeFrom;
      background?.cancel();
      // the width's graphs and cluster jobs are done with its slices: a narrower width to come
      // reuses their memory, otherwise it goes
      if (o.widths.slice(at + 1).some((w) => w < 1)) slices?.reset();
      else slices?.release();
    }
  }
  const report: CompileReport = {
    ditc: DITC_VERSION,
    model: { ...o.ref, config: JSON.parse(configJson(o.source.config)) },
    latentSize,
    contextTokens: o.source.config.contextTokens,
    precision: o.precision,
    tolerances: TOLERANCES,
    artifacts,
    ...(ck ? { checkpointReads: { bytesRead: ck.file.bytesRead - readBefore, checkpointDataBytes: ck.file.dataBytes, cached: cacheReads } } : {}),
    ...(quantize.mode !== "none" ? { quantization: quantizationReport(quantize, techniques, { ...(calibration ? { file: o.calibrationFile ?? null, samples: calibrationSize(calibration) } : { file: null, samples: 1 }), ...(statsByWidth.size || quantize.mode === "mixed" ? { kernels: kernelBuild() } : {}) }, statsByWidth.size ? STATISTICS_FILE : undefined, widthRecords, qLayers) } : {}),
  };
  if (statsByWidth.size) writeStatistics(join(o.out, STATISTICS_FILE), statsByWidth);
  else rmSync(join(o.out, STATISTICS_FILE), { force: true }); // a previous compile's, which this report does not use
  const reportPath = join(o.out, "report.json");
  writeFileAtomic(reportPath, (fd) => writeAll(fd, Buffer.from(JSON.stringify(report, null, 2) + "\n")));
  writeFileAtomic(join(o.out, "report.html"), (fd) => writeAll(fd, Buffer.from(renderReportHtml(report))));
  const phases: CompilePhases = {
    totalSeconds: round3(since(start)), statisticsSeconds: round3(clock.statistics), probeSeconds: round3(clock.probe), loweringSeconds: round3(clock.lowering),
    writingSeconds: round3(clock.writing), readSeconds: round3(reads()),
    reads: { cacheSeconds: round3(clock.cache), slicesSeconds: round3(clock.slices), inProbeSeconds: round3(clock.inProbe), afterProbeSeconds: round3(clock.afterProbe) },
    kmeansSeconds: round3(clusteringClock() - kmeansBefore),
    forwardSeconds: round3(Math.max(0, clock.forward)),
    cpuSeconds: { total: round3(cpuSince(cpuStart)), statisticsAndProbe: round3(clock.probeCpu) },
  };
  return { report, reportPath, timings, phases };
}

/**
 * A folder inside the output folder, refusing a symbolic link there: artifacts are written (and
 * old ones deleted) only inside the folder the user named.
 */
function outputDir(out: string, sub: string): string {
  const dir = join(out, sub);
  let st: ReturnType<typeof lstatSync> | undefined;
  try {
    st = lstatSync(dir);
  } catch {
    /* does not exist yet */
  }
  if (st?.isSymbolicLink()) throw fail("outputPath", { path: dir, problem: `it is a symbolic link (to ${readlinkSync(dir)}); ditc writes only inside ${out}, remove the link or choose another --out` });
  if (st && !st.isDirectory()) throw fail("outputPath", { path: dir, problem: "it exists and is not a folder" });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The activation statistics of a compile that used them, beside report.json. */
export const STATISTICS_FILE = "calibration-stats.safetensors";

/** A planned layer as the report lists it, with its stored bytes (indices plus LUTs or scales). */
function layerRecord(l: QuantizedLayerPlan, width: Width, int8: boolean, lutGroupSize: number): QuantizedLayer {
  const rows = l.shape[0]!;
  const groups = !int8 && lutGroupSize > 0 && rows % lutGroupSize === 0 && rows > lutGroupSize ? rows / lutGroupSize : 1;
  // int8 stores one f32 scale per output channel; a palette one LUT per tensor (or group)
  const side = int8 ? 4 * rows : groups * (1 << l.bits) * 4;
  return { ...l, width, bytes: Math.ceil((l.params * l.bits) / 8) + side };
}

function quantizationReport(q: Exclude<QuantizeMode, { mode: "none" }>, t: Techniques, calibration: NonNullable<QuantizationReport["calibration"]>, statistics: string | undefined, widths: NonNullable<QuantizationReport["widths"]>, layers: QuantizedLayer[]): QuantizationReport {
  const int8 = q.mode === "int8";
  return {
    mode: q.mode, ...(q.mode === "mixed" ? { target: q.target } : {}), lutGroupSize: int8 ? 0 : t.lutGroupSize,
    ...(int8 ? {} : { techniques: { ...t, probe: q.mode === "mixed" ? t.probe : "layer" }, kmeansRevision: KMEANS_REVISION }),
    calibration, ...(statistics ? { statistics } : {}), widths,
    averageBits: averageBits(layers, Object.fromEntries(layers.map((l) => [`${l.width}:${l.name}`, l.bits])), (l) => `${l.width}:${l.name}`), layers,
  };
}
