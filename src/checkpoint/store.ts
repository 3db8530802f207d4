// Where a checkpoint's tensors live: one safetensors file, or the shards a Hugging Face-style
// `*.safetensors.index.json` lists (docs/checkpoints.md). Both answer the same questions — which
// tensors, of what dtype and shape, and their bytes on request — so nothing above this layer
// knows how a checkpoint is split. Shard headers are read when the index is opened (every name,
// shape and offset is checked before any tensor is read); tensor data is read only on request.
import { closeSync, fstatSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { fail } from "../diagnostics.js";
import { readFullyAt } from "../io/read.js";
import type { PrefetchItem } from "./prefetch.js";
import { openForReading, SafetensorsFile, type TensorEntry } from "./safetensors.js";

export interface TensorStore {
  /** the file, or the index, the user named */
  readonly path: string;
  /** every file the tensors come from (cache keys cover them all) */
  readonly files: readonly string[];
  /** __metadata__ of a single file; of a sharded checkpoint, the index's metadata (strings) and the shards' merged */
  readonly metadata: Record<string, string>;
  names(): string[];
  has(name: string): boolean;
  entry(name: string): TensorEntry;
  /** the file holding a tensor, for messages */
  fileOf(name: string): string;
  /** one float tensor widened to float32 (from `cache` when it holds the stored bytes) */
  readFloat(name: string, cache?: Map<string, Uint8Array>): Float32Array;
  /** an F16 tensor's stored bit patterns, read-only (undefined for other dtypes) */
  readF16(name: string, cache?: Map<string, Uint8Array>): Uint16Array | undefined;
  /** one tensor's stored bytes */
  readBytes(e: TensorEntry): Uint8Array;
  /** where tensors' stored bytes are, for prefetchInto (keyed as readFloat and readF16 key `cache`) */
  prefetchItems(names: readonly string[]): PrefetchItem[];
  /** bytes of tensor data read so far, and declared in all */
  readonly bytesRead: number;
  readonly dataBytes: number;
  close(): void;
}

/** A single safetensors file as a store. */
export function singleFileStore(path: string): TensorStore {
  const f = SafetensorsFile.open(path);
  return {
    path, files: [path], metadata: f.metadata,
    names: () => f.names(),
    has: (n) => f.entries.has(n),
    entry: (n) => f.entry(n),
    fileOf: () => path,
    readFloat: (n, cache) => f.readFloat(n, cache),
    readF16: (n, cache) => f.readF16(n, cache),
    readBytes: (e) => f.readBytes(e),
    prefetchItems: (names) => names.map((n) => f.prefetchItem(n)),
    get bytesRead() {
      return f.bytesRead;
    },
    get dataBytes() {
      return f.dataBytes;
    },
    close: () => f.close(),
  };
}

export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** Reads a bounded JSON file, naming it in every error. */
export function readJsonFile(path: string, what: string): unknown {
  const fd = openForReading(path);
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_INDEX_BYTES) throw fail("checkpointIndex", { file: path, problem: `${what} is ${size} bytes, more than the ${MAX_INDEX_BYTES}-byte limit` });
    const buf = Buffer.alloc(size);
    readFullyAt(fd, buf, 0);
    try {
      return JSON.parse(buf.toString("utf8"));
    } catch (e) {
      throw fail("checkpointIndex", { file: path, problem: `${what} is not valid JSON (${(e as Error).message})` });
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The shards of a `*.safetensors.index.json`: `{"metadata": {...}, "weight_map": {tensor: shard}}`.
 * A shard must be a plain relative name inside the index's folder (no absolute path, no `..`, no
 * symbolic link leading out); every tensor must be in exactly the shard the index names, and
 * every shard tensor must be in the index.
 */
export function shardedStore(indexPath: string): TensorStore {
  const json = readJsonFile(indexPath, "the index");
  const bad = (problem: string) => fail("checkpointIndex", { file: indexPath, problem });
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("is not a JSON object with a \"weight_map\"");
  const { weight_map: wm, metadata: meta } = json as Record<string, unknown>;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) throw bad("has no \"weight_map\" object (tensor name -> shard file)");
  const map = wm as Record<string, unknown>;
  for (const [t, s] of Object.entries(map)) if (typeof s !== "string" || s === "") throw bad(`maps tensor "${t}" to ${JSON.stringify(s)}, not a shard file name`);
  const metadata: Record<string, string> = {};
  if (meta !== undefined) {
    if (typeof meta !== "object" || meta === null || Array.isArray(meta)) throw bad("has a \"metadata\" that is not an object");
    for (const [k, v] of Object.entries(meta)) metadata[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  const dir = dirname(indexPath);
  const realDir = realpathSync(dir);
  const shards = new Map<string, SafetensorsFile>();
  const closeAll = () => {
    for (const s of shards.values()) s.close();
  };
  try {
    for (const name of new Set(Object.values(map) as string[])) {
      if (isAbsolute(name) || name.split(/[\\/]/).includes("..") || normalize(name).startsWith(`..${sep}`))
        throw bad(`names shard "${name}", which leaves the index's folder; shards are plain names relative to ${dir}`);
      const full = join(dir, name);
      let real: string;
      try {
        real = realpathSync(full);
      } catch {
        throw fail("checkpointIndex", { file: indexPath, problem: `names shard "${name}", which does not exist in ${dir}` });
      }
      if (!real.startsWith(realDir + sep)) throw bad(`names shard "${name}", which resolves outside the index's folder (a symbolic link?)`);
      if (!statSync(real).isFile()) throw bad(`names shard "${name}", which is not a regular file`);
      shards.set(name, SafetensorsFile.open(full));
    }
    const owner = new Map<string, string>();
    for (const [shardName, shard] of shards)
      for (const t of shard.names()) {
        const other = owner.get(t);
        if (other !== undefined) throw fail("checkpointIndex", { file: join(dir, shardName), problem: `holds tensor "${t}", which ${join(dir, other)} holds too` });
        owner.set(t, shardName);
        if (map[t] === undefined) throw fail("checkpointIndex", { file: join(dir, shardName), problem: `holds tensor "${t}", which the index ${indexPath} does not list` });
        if (map[t] !== shardName) throw fail("checkpointIndex", { file: indexPath, problem: `puts tensor "${t}" in "${map[t]}", but it is in "${shardName}"` });
      }
    for (const [t, s] of Object.entries(map) as [string, string][])
      if (!shards.get(s)!.entries.has(t)) throw fail("checkpointIndex", { file: indexPath, problem: `puts tensor "${t}" in "${s}", which does not hold it` });
  } catch (e) {
    closeAll();
    throw e;
  }
  for (const s of shards.values()) for (const [k, v] of Object.entries(s.metadata)) metadata[k] ??= v;
  const shardOf = (n: string) => {
    const s = map[n];
    if (typeof s !== "string") throw fail("tensorMissing", { file: indexPath, tensor: n, shape: "(any)" });
    return shards.get(s)!;
  };
  const byEntry = new WeakMap<TensorEntry, SafetensorsFile>();
  for (const s of shards.values()) for (const e of s.entries.values()) byEntry.set(e, s);
  return {
    path: indexPath,
    files: [...shards.keys()].sort().map((s) => join(dir, s)),
    metadata,
    names: () => Object.keys(map),
    has: (n) => Object.hasOwn(map, n),
    entry: (n) => shardOf(n).entry(n),
    fileOf: (n) => shardOf(n).path,
    readFloat: (n, cache) => shardOf(n).readFloat(n, cache),
    readF16: (n, cache) => shardOf(n).readF16(n, cache),
    readBytes: (e) => byEntry.get(e)!.readBytes(e),
    prefetchItems: (names) => names.map((n) => shardOf(n).prefetchItem(n)),
    get bytesRead() {
      let n = 0;
      for (const s of shards.values()) n += s.bytesRead;
      return n;
    },
    get dataBytes() {
      let n = 0;
      for (const s of shards.values()) n += s.dataBytes;
      return n;
    },
    close: closeAll,
  };
}
