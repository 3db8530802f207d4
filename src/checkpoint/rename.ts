// Rename tables: training code names tensors its own way (a `transformer.` prefix, `to_q` /
// `to_out.0`, a fused `qkv`); an ordered list of rules maps them onto ditc's names
// (docs/checkpoints.md). A rule either rewrites the name and passes it on —
//   {"match": "^transformer\\.", "replace": ""}
// — or splits a fused tensor along an axis into named pieces, which ends the chain for it —
//   {"match": "^(.*)\\.attn\\.qkv\\.weight$", "split": {"axis": 0, "into": ["$1.attn.q.weight", ...], "sizes": "from the config"}}
// Patterns are JavaScript regular expressions, templates use $1 / $<name>. "from the config" takes
// each piece's size from the shape ditc expects for its name.
import { fail } from "../diagnostics.js";
import { decodeBF16, decodeF16 } from "../kernels/fp16.js";
import { FLOAT_DTYPES, ST_DTYPE_BYTES, type TensorEntry } from "./safetensors.js";
import { readJsonFile, type TensorStore } from "./store.js";

export type RenameRule =
  | { match: RegExp; replace: string }
  | { match: RegExp; split: { axis: number; into: string[]; sizes: "from the config" | number[] } };

export function loadRenameRules(path: string): RenameRule[] {
  const json = readJsonFile(path, "the rename table");
  const bad = (i: number, problem: string) => fail("renameInvalid", { file: path, problem: `rule ${i + 1} ${problem}` });
  const list = Array.isArray(json) ? json : (json as { rules?: unknown })?.rules;
  if (!Array.isArray(list)) throw fail("renameInvalid", { file: path, problem: "must be a JSON array of rules (or {\"rules\": [...]})" });
  return list.map((r, i): RenameRule => {
    if (typeof r !== "object" || r === null) throw bad(i, "is not an object");
    const { match, replace, split } = r as Record<string, unknown>;
    if (typeof match !== "string") throw bad(i, "needs \"match\", a regular expression string");
    let re: RegExp;
    try {
      re = new RegExp(match);
    } catch (e) {
      throw bad(i, `has an invalid pattern ${JSON.stringify(match)} (${(e as Error).message})`);
    }
    if (typeof replace === "string" && split === undefined) return { match: re, replace };
    if (split === undefined || typeof split !== "object" || split === null) throw bad(i, "needs either \"replace\" (a template) or \"split\" ({axis, into, sizes})");
    const { axis, into, sizes } = split as Record<string, unknown>;
    if (!Number.isInteger(axis) || (axis as number) < 0) throw bad(i, "split needs \"axis\", a non-negative integer");
    if (!Array.isArray(into) || into.length < 2 || !into.every((t) => typeof t === "string")) throw bad(i, "split needs \"into\", two or more name templates");
    if (sizes !== "from the config" && !(Array.isArray(sizes) && sizes.length === into.length && sizes.every((n) => Number.isInteger(n) && n > 0)))
      throw bad(i, `split needs "sizes": "from the config" or ${into.length} positive integers`);
    return { match: re, split: { axis: axis as number, into: into as string[], sizes: sizes as "from the config" | number[] } };
  });
}

/** Where a ditc tensor comes from: a stored tensor, or a slice of one along an axis. */
export interface MappedTensor {
  from: string;
  slice?: { axis: number; start: number; size: number };
}

export interface RenameResult {
  /** ditc name -> source */
  map: Map<string, MappedTensor>;
  /** stored names no rule output landed on a ditc name (they map to themselves) */
  unchanged: string[];
}

/**
 * Applies the rules to every stored name. `expected` gives the shape ditc expects for a name
 * (for "from the config" sizes). Two stored tensors mapping onto one name, and splits whose
 * sizes do not add up, are errors naming both sides.
 */
export function applyRenames(store: TensorStore, rules: readonly RenameRule[], rulesFile: string, expected: (name: string) => readonly number[] | undefined): RenameResult {
  const map = new Map<string, MappedTensor>();
  const unchanged: string[] = [];
  const claim = (target: string, src: MappedTensor) => {
    const prev = map.get(target);
    if (prev) throw fail("renameInvalid", { file: rulesFile, problem: `maps both "${prev.from}" and "${src.from}" onto "${target}"` });
    map.set(target, src);
  };
  for (const name of store.names().sort()) {
    let cur = name;
    let done = false;
    for (const r of rules) {
      if (!r.match.test(cur)) continue;
      if ("replace" in r) {
        cur = cur.replace(r.match, r.replace);
        continue;
      }
      const shape = store.entry(name).shape;
      const { axis, into } = r.split;
      if (axis >= shape.length) throw fail("renameInvalid", { file: rulesFile, problem: `splits "${name}" (shape (${shape.join(", ")})) along axis ${axis}, which it does not have` });
      const targets = into.map((t) => cur.replace(r.match, t));
      const sizes = r.split.sizes === "from the config"
        ? targets.map((t) => {
          const s = expected(t);
          if (!s) throw fail("renameInvalid", { file: rulesFile, problem: `splits "${name}" into "${t}", which is not a parameter of the model, so its size cannot come from the config` });
          return s[axis]!;
        })
        : r.split.sizes;
      const total = sizes.reduce((a, b) => a + b, 0);
      if (total !== shape[axis]) throw fail("renameInvalid", { file: rulesFile, problem: `splits "${name}" along axis ${axis} into sizes ${sizes.join(" + ")} = ${total}, but that axis has ${shape[axis]}` });
      let start = 0;
      targets.forEach((t, i) => {
        claim(t, { from: name, slice: { axis, start, size: sizes[i]! } });
        start += sizes[i]!;
      });
      done = true;
      break;
    }
    if (done) continue;
    if (cur === name) unchanged.push(name);
    claim(cur, { from: name });
  }
  return { map, unchanged };
}

/** The rows [start, start + size) of `axis` of a row-major array of `bytesPer`-byte elements. */
function sliceAxisBytes(src: Uint8Array, shape: readonly number[], bytesPer: number, axis: number, start: number, size: number): Uint8Array {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1) * bytesPer;
  const out = new Uint8Array(new ArrayBuffer(outer * size * inner));
  for (let o = 0; o < outer; o++) out.set(src.subarray((o * shape[axis]! + start) * inner, (o * shape[axis]! + start + size) * inner), o * size * inner);
  return out;
}

/** A store seen through a rename table: ditc's names, split pieces read as slices of the fused tensor. */
export function renamedStore(inner: TensorStore, r: RenameResult): TensorStore {
  const entries = new Map<string, TensorEntry>();
  const sourceOf = new Map<TensorEntry, MappedTensor>();
  for (const [name, m] of r.map) {
    const e = inner.entry(m.from);
    const shape = m.slice ? e.shape.map((d, i) => (i === m.slice!.axis ? m.slice!.size : d)) : [...e.shape];
    const bytes = shape.reduce((a, b) => a * b, ST_DTYPE_BYTES[e.dtype]);
    const entry: TensorEntry = { name, dtype: e.dtype, shape, begin: 0, end: bytes };
    entries.set(name, entry);
    sourceOf.set(entry, m);
  }
  const get = (n: string) => {
    const e = entries.get(n);
    if (!e) throw fail("tensorMissing", { file: inner.path, tensor: n, shape: "(any)" });
    return e;
  };
  /** stored bytes of a ditc tensor: the source's (through `cache`, keyed by source name), sliced */
  const bytesOf = (e: TensorEntry, cache?: Map<string, Uint8Array>): Uint8Array => {
    const m = sourceOf.get(e)!;
    const src = inner.entry(m.from);
    let raw = cache?.get(m.from);
    if (!raw) {
      raw = inner.readBytes(src);
      cache?.set(m.from, raw);
    }
    return m.slice ? sliceAxisBytes(raw, src.shape, ST_DTYPE_BYTES[src.dtype], m.slice.axis, m.slice.start, m.slice.size) : raw;
  };
  return {
    path: inner.path, files: inner.files, metadata: inner.metadata,
    names: () => [...entries.keys()],
    has: (n) => entries.has(n),
    entry: get,
    fileOf: (n) => inner.fileOf(sourceOf.get(get(n))!.from),
    readFloat: (n, cache) => {
      const e = get(n);
      const m = sourceOf.get(e)!;
      // an unsliced tensor reads exactly as the inner store does (same widening, same cache entry)
      if (!m.slice) return inner.readFloat(m.from, cache);
      const b = bytesOf(e, cache);
      return decodeFloat(b, e.dtype, inner.fileOf(m.from), n);
    },
    readF16: (n, cache) => {
      const e = get(n);
      const m = sourceOf.get(e)!;
      if (!m.slice) return inner.readF16(m.from, cache);
      if (e.dtype !== "F16") return undefined;
      const b = bytesOf(e, cache); // a fresh, aligned slice
      return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
    },
    readBytes: (e) => bytesOf(e),
    // the source tensors, under the source names bytesOf and the inner store cache them by
    prefetchItems: (names) => inner.prefetchItems(names.map((n) => sourceOf.get(get(n))!.from)),
    get bytesRead() {
      return inner.bytesRead;
    },
    get dataBytes() {
      return inner.dataBytes;
    },
    close: () => inner.close(),
  };
}

function decodeFloat(b: Uint8Array, dtype: TensorEntry["dtype"], file: string, name: string): Float32Array {
  if (!FLOAT_DTYPES.includes(dtype)) throw fail("tensorDtype", { file, tensor: name, dtype });
  if (dtype === "F32") return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const u16 = new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return dtype === "F16" ? decodeF16(u16) : decodeBF16(u16);
}
