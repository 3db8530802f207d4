// Opening a checkpoint the way users have them (docs/checkpoints.md): a safetensors file, a shard
// index, or a folder holding one of them; the config from __metadata__.config, a config.json
// beside it, or --config; tensor names through an optional rename table. The result is checked
// against the config (every parameter present with its shape and a float dtype; no stray tensor
// unless allowed), listing every tensor at fault, before anything is read.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fail, type DitcError } from "../diagnostics.js";
import { shapeStr } from "../kernels/tensor.js";
import { validateConfig, type ModelConfig } from "../model/config.js";
import { paramSpecs, type ParamSpec } from "../model/params.js";
import { applyRenames, loadRenameRules, renamedStore } from "./rename.js";
import { FLOAT_DTYPES } from "./safetensors.js";
import { readJsonFile, shardedStore, singleFileStore, type TensorStore } from "./store.js";

export interface CheckpointOptions {
  /** a rename table (JSON rules) applied to the stored names */
  rename?: string;
  /** the config as a JSON file; used before __metadata__.config and config.json when given */
  config?: string;
  /** tolerate stored tensors that are not parameters of the model (they are listed, not read) */
  allowUnused?: boolean;
}

/** The store a path names: a file, an index, or a folder with exactly one index or one safetensors file. */
export function openStore(path: string): TensorStore {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw fail("fileUnreadable", { file: path, problem: "it does not exist" });
  }
  if (st.isDirectory()) {
    const files = readdirSync(path);
    const indexes = files.filter((f) => f.endsWith(".safetensors.index.json"));
    const singles = files.filter((f) => f.endsWith(".safetensors"));
    if (indexes.length === 1) return shardedStore(join(path, indexes[0]!));
    if (indexes.length > 1) throw fail("checkpointIndex", { file: path, problem: `holds ${indexes.length} shard indexes (${indexes.join(", ")}); name the one to use` });
    if (singles.length === 1) return singleFileStore(join(path, singles[0]!));
    throw fail("checkpointIndex", { file: path, problem: singles.length ? `holds ${singles.length} safetensors files and no *.safetensors.index.json saying how they fit together` : "holds no *.safetensors file and no *.safetensors.index.json" });
  }
  return path.endsWith(".index.json") ? shardedStore(path) : singleFileStore(path);
}

/** The config: --config when given, else __metadata__.config, else config.json beside the checkpoint. */
export function loadConfig(store: TensorStore, configFile?: string): { config: ModelConfig; from: string } {
  const parse = (raw: string, where: string) => {
    try {
      return JSON.parse(raw) as unknown;
    } catch (e) {
      throw fail("configJson", { where, problem: (e as Error).message });
    }
  };
  if (configFile !== undefined) return { config: validateConfig(readJsonFile(configFile, "the config"), configFile), from: configFile };
  const raw = store.metadata.config;
  if (raw !== undefined) {
    const where = `${store.path} (__metadata__.config)`;
    return { config: validateConfig(parse(raw, where), where), from: where };
  }
  const beside = join(dirname(store.path), "config.json");
  if (existsSync(beside)) return { config: validateConfig(readJsonFile(beside, "the config"), beside), from: beside };
  throw fail("configMissing", { file: store.path });
}

/** What a checkpoint holds against what the model needs, every problem listed. */
export interface CheckpointMapping {
  store: TensorStore;
  config: ModelConfig;
  configFrom: string;
  /** ditc names the checkpoint provides that the model uses */
  mapped: string[];
  /** stored (renamed) names that are not parameters of the model */
  unmapped: string[];
  /** parameters the checkpoint does not provide */
  missing: string[];
  /** dtype and shape disagreements, one message each */
  mismatched: string[];
}

/** Opens and maps a checkpoint without refusing it: `ditc inspect` shows what maps and what does not. */
export function mapCheckpoint(path: string, opts: CheckpointOptions = {}): CheckpointMapping {
  const store = openStore(path);
  try {
    const { config, from } = loadConfig(store, opts.config);
    const specs = paramSpecs(config);
    const expected = new Map(specs.map((s) => [s.name, s]));
    const view = opts.rename ? renamedStore(store, applyRenames(store, loadRenameRules(opts.rename), opts.rename, (n) => expected.get(n)?.shape)) : store;
    const mapped: string[] = [], missing: string[] = [], mismatched: string[] = [];
    for (const s of specs) {
      if (!view.has(s.name)) {
        missing.push(s.name);
        continue;
      }
      mapped.push(s.name);
      const e = view.entry(s.name);
      if (!FLOAT_DTYPES.includes(e.dtype)) mismatched.push(`"${s.name}" (in ${view.fileOf(s.name)}) has dtype ${e.dtype}; ditc reads F32, F16 and BF16`);
      else if (e.shape.length !== s.shape.length || e.shape.some((d, i) => d !== s.shape[i])) mismatched.push(`"${s.name}" (in ${view.fileOf(s.name)}) has shape ${shapeStr(e.shape)}, the config needs ${shapeStr(s.shape)}`);
    }
    const unmapped = view.names().filter((n) => !expected.has(n)).sort();
    return { store: view, config, configFrom: from, mapped, unmapped, missing: missing.sort(), mismatched };
  } catch (e) {
    store.close();
    throw e;
  }
}

const list = (names: string[]) => (names.length > 12 ? `${names.slice(0, 12).join(", ")} and ${names.length - 12} more` : names.join(", "));

/** The mapping's first kind of problem as an error listing every tensor at fault, or undefined. */
export function mappingError(m: CheckpointMapping, opts: CheckpointOptions = {}): DitcError | undefined {
  const problem = (p: string) => fail("checkpointTensors", { file: m.store.path, problem: p });
  const n = (k: number, one: string, many: string) => (k > 1 ? many : one);
  if (m.missing.length) return problem(`${m.missing.length} ${n(m.missing.length, "tensor", "tensors")} the config needs ${n(m.missing.length, "is", "are")} missing: ${list(m.missing)}${opts.rename ? ` (after the rename table ${opts.rename})` : ""}`);
  if (m.mismatched.length) return problem(m.mismatched.join("; "));
  if (m.unmapped.length && !opts.allowUnused)
    return problem(`${m.unmapped.length} stored ${n(m.unmapped.length, "tensor is not a parameter", "tensors are not parameters")} of the model its config describes: ${list(m.unmapped)}; map ${n(m.unmapped.length, "it", "them")} with --rename, or pass --allow-unused to leave ${n(m.unmapped.length, "it", "them")} out`);
  return undefined;
}

/** Opens a checkpoint for use: every problem of the mapping is an error listing what is at fault. */
export function openCheckedStore(path: string, opts: CheckpointOptions = {}): { store: TensorStore; config: ModelConfig; specs: ParamSpec[] } {
  const m = mapCheckpoint(path, opts);
  const err = mappingError(m, opts);
  if (err) {
    m.store.close();
    throw err;
  }
  return { store: m.store, config: m.config, specs: paramSpecs(m.config) };
}
