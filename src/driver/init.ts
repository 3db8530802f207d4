// `ditc init` and `ditc inputs`: seeded synthetic checkpoints and model inputs, streamed to disk.
import { dirname, join } from "node:path";
import { byName, writeSafetensors } from "../checkpoint/safetensors.js";
import { makeOutputFolder, writeAll, writeFileAtomic } from "../io/atomic.js";
import { writeTensorFile } from "../checkpoint/tensors.js";
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";
import type { ModelConfig } from "../model/config.js";
import { paramCounts, paramSpecs, type ParamSpec } from "../model/params.js";
import { Rng } from "../model/synthetic.js";
import { synthesisBytes, synthesizeMany } from "../model/synthesis-jobs.js";
import { engineInfo } from "../kernels/simd/engine.js";

/** Config JSON with keys in docs/checkpoints.md's order, so files are byte-identical across runs. */
export function configJson(c: ModelConfig): string {
  const keys: (keyof ModelConfig)[] = [
    "hidden", "heads", "kvHeads", "crossDim", "crossHeads", "contextDim", "contextTokens", "depths", "ffnRatio",
    "bnaBlocks", "bnaRadius", "bnaPartition", "bnaEdge", "kvCompress", "qkNorm", "rope", "posEmbed", "patch",
    "latentChannels", "latentSize", "widths",
  ];
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, c[k]])));
}

export interface InitResult {
  path: string;
  tensors: number;
  bytes: number;
  params: Record<string, number>;
}

/** Float32 bytes of tensors drawn at once, ahead of the writer (the draws of a batch are split over two threads). */
const DRAW_BATCH_BYTES = 256 * 2 ** 20;

/**
 * Each spec's values for a writer that asks for them in name order (writeSafetensors): drawn a
 * batch at a time on the engine's threads (src/model/synthesis-jobs.ts) when the writer first
 * asks for one of the batch, into memory the next batch reuses (the writer copies or writes what
 * it is given before it asks again). Drawing is most of `ditc init`'s time.
 */
export function drawnInBatches(specs: readonly ParamSpec[], seed: number, batchBytes = DRAW_BATCH_BYTES): Map<string, (emit: (chunk: Float32Array) => void) => void> {
  const sorted = byName(specs);
  const batchOf = new Map<string, ParamSpec[]>();
  let batch: ParamSpec[] = [], bytes = Infinity;
  for (const s of sorted) {
    const b = synthesisBytes([s]);
    if (bytes + b > batchBytes) (batch = []), (bytes = 0);
    batch.push(s);
    batchOf.set(s.name, batch);
    bytes += b;
  }
  // every batch is drawn into the same memory: the writer is done with the last when it asks for the next
  let memory: SharedArrayBuffer | undefined;
  const drawn = new Map<string, Float32Array>();
  return new Map(sorted.map((s) => [s.name, (emit) => {
    if (!drawn.has(s.name)) {
      const todo = batchOf.get(s.name)!, need = synthesisBytes(todo);
      if (!memory || memory.byteLength < need) memory = new SharedArrayBuffer(Math.max(need, Math.min(batchBytes, synthesisBytes(sorted))));
      drawn.clear();
      synthesizeMany(todo, seed, engineInfo().threads, memory).forEach((v, i) => drawn.set(todo[i]!.name, v));
    }
    emit(drawn.get(s.name)!);
    drawn.delete(s.name);
  }]));
}

export function writeSyntheticCheckpoint(config: ModelConfig, seed: number, out: string, dtype: "f32" | "f16" = "f32"): InitResult {
  const specs = paramSpecs(config);
  const st = dtype === "f32" ? "F32" : "F16";
  const produce = drawnInBatches(specs, seed);
  writeSafetensors(
    out,
    specs.map((s) => ({ name: s.name, dtype: st, shape: s.shape, produce: produce.get(s.name)! })),
    { config: configJson(config), format: "pt", generator: `ditc init, seed ${seed}` },
  );
  const elems = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  return { path: out, tensors: specs.length, bytes: elems * (dtype === "f32" ? 4 : 2), params: paramCounts(config) as Record<string, number> };
}

/** Parses a shard size: bytes, or a number with KB/MB/GB (powers of 1000) or KiB/MiB/GiB. */
export function parseSize(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "B").toLowerCase();
  const mult: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };
  const n = Math.floor(Number(m[1]) * mult[unit]!);
  return n > 0 ? n : undefined;
}

export interface ShardedInitResult extends InitResult {
  shards: string[];
}

/**
 * The synthetic checkpoint as Hugging Face-style shards: tensors in name order, each shard filled
 * up to `shardBytes` (a tensor larger than that gets a shard of its own), `model-0000i-of-0000N
 * .safetensors` beside `model.safetensors.index.json` and the config in `config.json`
 * (docs/checkpoints.md). `out` is the index's path or its folder.
 */
export function writeShardedSyntheticCheckpoint(config: ModelConfig, seed: number, out: string, dtype: "f32" | "f16", shardBytes: number): ShardedInitResult {
  const index = out.endsWith(".index.json") ? out : join(out, "model.safetensors.index.json");
  const dir = dirname(index);
  makeOutputFolder(dir);
  const specs = [...paramSpecs(config)].sort((a, b) => (a.name < b.name ? -1 : 1));
  const per = dtype === "f32" ? 4 : 2;
  const groups: ParamSpec[][] = [];
  let size = Infinity;
  for (const s of specs) {
    const bytes = s.shape.reduce((a, b) => a * b, per);
    if (size + bytes > shardBytes) (groups.push([]), (size = 0));
    groups[groups.length - 1]!.push(s);
    size += bytes;
  }
  const pad = (n: number) => String(n).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const shards = groups.map((g, i) => {
    const name = `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    const produce = drawnInBatches(g, seed);
    writeSafetensors(join(dir, name), g.map((s) => ({ name: s.name, dtype: dtype === "f32" ? "F32" : "F16", shape: s.shape, produce: produce.get(s.name)! })), { format: "pt", generator: `ditc init, seed ${seed}` });
    for (const s of g) weightMap[s.name] = name;
    return join(dir, name);
  });
  const total = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, per), 0);
  writeFileAtomic(join(dir, "config.json"), (fd) => writeAll(fd, Buffer.from(configJson(config) + "\n")));
  // the index last: it is what makes the shards a checkpoint
  writeFileAtomic(index, (fd) => writeAll(fd, Buffer.from(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n")));
  return { path: index, tensors: specs.length, bytes: total, params: paramCounts(config) as Record<string, number>, shards };
}

export interface InputShapes {
  batch: number;
  latentSize: [number, number];
  contextTokens: number;
}

/** Seeded model inputs: latent and context ~ N(0, 1), timestep ~ U(0, 1). */
export function syntheticInputs(config: ModelConfig, seed: number, shapes: InputShapes): Record<string, FloatTensor> {
  const rng = new Rng(seed, "inputs");
  const fill = (shape: number[], draw: () => number) => floatTensor(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, draw));
  const { batch: B, latentSize: [Hl, Wl], contextTokens: S } = shapes;
  return {
    latent: fill([B, config.latentChannels, Hl, Wl], () => rng.normal()),
    timestep: fill([B], () => rng.uniform()),
    context: fill([B, S, config.contextDim], () => rng.normal()),
  };
}

export function writeInputs(path: string, inputs: Record<string, FloatTensor>): void {
  writeTensorFile(path, inputs);
}
