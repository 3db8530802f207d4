// Where a model's weights come from (a checkpoint file or the synthetic generator) and how one
// stored tensor becomes the constant of a width-w sub-network (docs/model.md, elastic widths slicing).
import { fail } from "../diagnostics.js";
import { openCheckedStore, type CheckpointOptions } from "../checkpoint/open.js";
import { prefetchInto } from "../checkpoint/prefetch.js";
import type { TensorStore } from "../checkpoint/store.js";
import type { ConstValue } from "../ir/graph.js";
import { floatTensor, halfTensor, numel } from "../kernels/tensor.js";
import { widthTag, type ModelConfig, type Width } from "./config.js";
import { axisRanges, isolatedSpecs, keptIndices, paramSpecs, slicedShape, specsForWidth, type ParamSpec } from "./params.js";
import { synthesisBytes, synthesizeMany } from "./synthesis-jobs.js";
import { synthesize } from "./synthetic.js";
import { timedRead } from "./read-clock.js";
import { makeSlices, sliceRuns, type SliceJob } from "./slice-jobs.js";
import type { SliceStore } from "./slice-store.js";

export interface WeightSource {
  readonly config: ModelConfig;
  /** e.g. the checkpoint path, or "preset mini, seed 0" */
  readonly origin: string;
  /** The stored (unsliced) tensor as float32. */
  read(spec: ParamSpec): Float32Array;
  /** The same as fp16 bit patterns, read-only, when that is how it is stored (an f16 checkpoint). */
  readF16?(spec: ParamSpec): Uint16Array | undefined;
  /**
   * Where narrower widths' fp16 slices are kept once made (key: name@width), in shared memory,
   * for as long as the owner wants them: compile keeps a width's while it compiles that width.
   */
  readonly slices?: SliceStore;
}

/** A preset's weights: drawn from the seed on every read (src/model/synthetic.ts). */
export interface SyntheticSource extends WeightSource {
  readonly seed: number;
}

export function syntheticSource(config: ModelConfig, seed: number, origin = `synthetic, seed ${seed}`): SyntheticSource {
  return { config, origin, seed, read: (spec) => synthesize(spec, seed) };
}

export const isSynthetic = (src: WeightSource): src is SyntheticSource => typeof (src as Partial<SyntheticSource>).seed === "number";

/** Bytes of every stored parameter of a model in float32 (a preset's weights as drawn). */
export const float32Bytes = (config: ModelConfig): number => synthesisBytes(paramSpecs(config));

/** A source whose tensors can be fetched into its cache ahead of their reads; returns the bytes fetched. */
export interface PrefetchingSource extends WeightSource {
  prefetch(names: readonly string[], threads?: number): number;
}

/**
 * A synthetic source that keeps each tensor once drawn. Compile reads every weight several times
 * (statistics, probe, clustering, each target's writing: 21 reads of some of the mini preset's),
 * and a draw costs 40-80 ns a value against a copy's fraction of one. Reads return copies (the
 * kept values stay intact); `prefetch` draws a width's tensors on two threads.
 */
export function withSynthesisCache(src: SyntheticSource): PrefetchingSource & SyntheticSource {
  const cache = new Map<string, Float32Array>();
  const specs = new Map(paramSpecs(src.config).map((s) => [s.name, s]));
  return {
    ...src,
    read: (spec) => {
      let v = cache.get(spec.name);
      if (!v) cache.set(spec.name, (v = src.read(spec)));
      return v.slice();
    },
    prefetch: (names, threads = 1) => {
      const todo = [...new Set(names)].filter((n) => !cache.has(n)).map((n) => specs.get(n)!);
      const drawn = synthesizeMany(todo, src.seed, threads);
      todo.forEach((s, i) => cache.set(s.name, drawn[i]!));
      return drawn.reduce((n, a) => n + a.byteLength, 0);
    },
  };
}

export interface Checkpoint extends WeightSource {
  readonly file: TensorStore;
  close(): void;
}

/** A checkpoint with a read cache; `prefetch` reads tensors into it on two threads when `threads` > 1 (src/checkpoint/prefetch.ts). */
export interface CachedCheckpoint extends Checkpoint, PrefetchingSource {}

/**
 * A checkpoint that keeps each tensor's stored bytes after the first read, so compiling several
 * widths reads every weight from disk once. The cache holds the file's own encoding (f16 stays
 * f16): at most one copy of the stored weights, never a second float32 one.
 */
export function withReadCache(ck: Checkpoint): CachedCheckpoint {
  const cache = new Map<string, Uint8Array>();
  return {
    ...ck,
    read: (spec) => ck.file.readFloat(spec.name, cache),
    readF16: (spec) => ck.file.readF16(spec.name, cache),
    prefetch: (names, threads) => prefetchInto(ck.file.prefetchItems(names), cache, threads),
    close: () => (cache.clear(), ck.close()),
  };
}

/**
 * Opens and fully validates a checkpoint — a file, a shard index or a folder, renamed if asked
 * (src/checkpoint/open.ts): config, every tensor's presence, shape and dtype.
 */
export function openCheckpoint(path: string, opts: CheckpointOptions = {}): Checkpoint {
  const { store, config } = openCheckedStore(path, opts);
  return { config, origin: path, file: store, read: (spec) => store.readFloat(spec.name), readF16: (spec) => store.readF16(spec.name), close: () => store.close() };
}

/**
 * A parameter as the supernetwork holds it: shared tensors whole, isolated ones as width 1's set
 * (`atWidth` then gives the width-w slice, or the width-w isolated tensor, and the entries it
 * stands for). A checkpoint without width 1 has no data for width 1's isolated set: the
 * supernetwork then runs only after slicing to a width it holds.
 */
export function supernetConstant(src: WeightSource, spec: ParamSpec): ConstValue {
  const c = src.config;
  const held = (w: number): Width => {
    if (!(c.widths as readonly number[]).includes(w)) throw fail("badOption", { option: "width", value: String(w), expected: `one of the widths ${src.origin} holds: ${c.widths.join(", ")}` });
    return w as Width;
  };
  if (spec.width === undefined) {
    const rules = spec.slice!;
    return {
      type: { dtype: "f32", shape: spec.shape },
      source: spec.name,
      role: "weight",
      load: () => storedTensor(src, spec),
      atWidth: (w) => ({ value: widthConstant(src, spec, held(w)), kept: keptIndices(rules, spec.shape, c, held(w)) }),
    };
  }
  const suffix = spec.name.slice(widthTag(spec.width).length);
  const at = (w: Width) => isolatedSpecs(c, w).find((s) => s.name.slice(widthTag(w).length) === suffix)!;
  return {
    type: { dtype: "f32", shape: spec.shape },
    source: spec.name,
    role: "weight",
    load: () => {
      if (!c.widths.includes(1)) throw fail("badOption", { option: "width", value: "1", expected: `one of the widths ${src.origin} holds: ${c.widths.join(", ")} (it has no width-1 ${suffix.slice(1)})` });
      return floatTensor(spec.shape, src.read(spec));
    },
    atWidth: (w) => ({ value: widthConstant(src, at(held(w)), held(w)), kept: keptIndices(spec.keeps!, spec.shape, c, held(w)) }),
  };
}

/**
 * Makes every fp16 slice of width `w` where the source keeps slices, at once, on this thread and
 * a helper when `threads` > 1 (src/model/slice-jobs.ts): made as the probe's forward first loads
 * each weight, the slicing ran beside the cluster pool's workers, and on two cores took 2-5 s a
 * width instead of ~0.4 s. Returns how many it made.
 */
export function makeWidthSlices(src: WeightSource, w: Width, threads = 1): number {
  if (!src.slices || !src.readF16) return 0;
  const jobs: SliceJob[] = [];
  for (const spec of specsForWidth(src.config, w)) {
    if (spec.width !== undefined) continue;
    const { shape, runs } = widthSlicing(spec, src.config, w), key = sliceKey(spec, w);
    const from = runs && !src.slices.get(key) ? src.readF16(spec) : undefined;
    if (from) jobs.push({ from, shape: spec.shape, runs: runs!, into: src.slices.make(key, numel(shape)) });
  }
  makeSlices(jobs, threads);
  return jobs.length;
}

/** The width-w shape of a parameter, and the runs each axis keeps (none when it is kept whole). */
function widthSlicing(spec: ParamSpec, c: ModelConfig, w: Width): { shape: number[]; runs?: [number, number][][] } {
  const shape = slicedShape(spec, c, w);
  const whole = !spec.slice || shape.every((d, i) => d === spec.shape[i]);
  return whole ? { shape } : { shape, runs: spec.slice!.map((s, a) => axisRanges(s, spec.shape[a]!, c, w)) };
}

const sliceKey = (spec: ParamSpec, w: Width) => `${spec.name}@${w}`;

/** A stored tensor as it is stored: an f16 checkpoint's patterns kept (halfTensor), others read as float32. */
function storedTensor(src: WeightSource, spec: ParamSpec) {
  const bits = src.readF16?.(spec);
  return bits ? halfTensor(spec.shape, bits) : floatTensor(spec.shape, src.read(spec));
}

/** The width-w constant for one parameter: read lazily, sliced by the spec's axis rules. */
export function widthConstant(src: WeightSource, spec: ParamSpec, w: Width): ConstValue {
  const { shape, runs } = widthSlicing(spec, src.config, w), whole = !runs;
  const slice = <T extends Float32Array | Uint16Array>(full: T, into?: T): T => (runs ? sliceRuns(full, spec.shape, runs, into) : full);
  // a narrower width's fp16 slice is made once where the source keeps slices: compile's probe
  // graphs, cluster jobs, passes and emitters load each weight's several times, and each fresh
  // copy cost more than the slicing (first-touch page faults: 2,300 slices, 8.4 s, for the full
  // preset's two narrower widths); in shared memory, so the cluster pool lends it to a worker
  const key = sliceKey(spec, w);
  const sliceF16 = (bits: Uint16Array): Uint16Array => {
    const kept = src.slices?.get(key);
    if (kept || whole) return kept ?? bits;
    return src.slices ? slice(bits, src.slices.make(key, numel(shape))) : slice(bits);
  };
  return {
    type: { dtype: "f32", shape },
    source: spec.name,
    role: "weight",
    // an f16 tensor stays in its patterns (sliced to the width): what reads its values widens
    // them then, and what writes it in fp16 takes the patterns as they are
    load: () =>
      timedRead(() => {
        const bits = src.readF16?.(spec);
        return bits ? halfTensor(shape, sliceF16(bits)) : floatTensor(shape, slice(src.read(spec)));
      }),
  };
}
