// safetensors reading and writing. The format: u64 little-endian header length N, N bytes of
// JSON mapping tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
// the data section after the header) plus an optional "__metadata__" string map, then the data.
//
// Files are untrusted. The header is bounded and fully validated (offsets in range, sizes equal
// to dtype x shape, no overlaps) before any tensor is read, and tensors are read one at a time
// from disk on request, so a declared size never drives an allocation by itself.
import { closeSync, fstatSync, openSync } from "node:fs";
import { fail } from "../diagnostics.js";
import { writeAll, writeFileAtomic } from "../io/atomic.js";
import type { PrefetchItem } from "./prefetch.js";
import { readFullyAt } from "../io/read.js";
import { decodeBF16, decodeF16, encodeF16 } from "../kernels/fp16.js";

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Dtypes the format defines, with element sizes; ditc computes with the float ones. */
export const ST_DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
} as const;
export type StDType = keyof typeof ST_DTYPE_BYTES;
export const FLOAT_DTYPES: readonly StDType[] = ["F32", "F16", "BF16"];

export interface TensorEntry {
  name: string;
  dtype: StDType;
  shape: number[];
  begin: number;
  end: number;
}

/** Opens a file to read, or a DitcError naming it ("it does not exist", or the system's reason). */
export function openForReading(path: string): number {
  try {
    return openSync(path, "r");
  } catch (e) {
    throw fail("fileUnreadable", { file: path, problem: (e as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : (e as Error).message });
  }
}

export class SafetensorsFile {
  /** bytes of tensor data read so far (to check that multi-width compiles read each weight once) */
  bytesRead = 0;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly dataStart: number,
    readonly entries: Map<string, TensorEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  static open(path: string): SafetensorsFile {
    const fd = openForReading(path);
    try {
      return SafetensorsFile.parse(path, fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  private static parse(path: string, fd: number): SafetensorsFile {
    const bad = (problem: string) => fail("safetensorsHeader", { file: path, problem });
    const size = fstatSync(fd).size;
    if (size < 8) throw bad(`the file has ${size} bytes, fewer than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readFullyAt(fd, lenBuf, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) throw bad(`the header declares ${n} bytes, more than the ${MAX_HEADER_BYTES}-byte limit`);
    const headerLen = Number(n);
    if (8 + headerLen > size) throw bad(`the header declares ${headerLen} bytes but the file has only ${size - 8} after the length field (truncated?)`);
    const hbuf = Buffer.alloc(headerLen);
    readFullyAt(fd, hbuf, 8);
    let json: unknown;
    try {
      json = JSON.parse(hbuf.toString("utf8"));
    } catch (e) {
      throw bad(`the header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("the header is not a JSON object");
    const dataStart = 8 + headerLen;
    const dataSize = size - dataStart;
    const entries = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (typeof raw !== "object" || raw === null || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === "string"))
          throw bad("__metadata__ must be an object of strings");
        metadata = raw as Record<string, string>;
        continue;
      }
      entries.set(name, parseEntry(path, name, raw, dataSize));
    }
    // sorted by start, a non-empty tensor overlaps another exactly when it starts before the end of the furthest-reaching one seen so far
    const sorted = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
    for (let i = 1, reach = sorted[0]; i < sorted.length; i++) {
      const q = sorted[i]!;
      if (q.begin < reach!.end) throw bad(`tensors "${reach!.name}" [${reach!.begin}, ${reach!.end}) and "${q.name}" [${q.begin}, ${q.end}) overlap`);
      if (q.end > reach!.end) reach = q;
    }
    return new SafetensorsFile(path, fd, dataStart, entries, metadata);
  }

  /** total bytes of tensor data the header declares */
  get dataBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.end - e.begin;
    return n;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw fail("tensorMissing", { file: this.path, tensor: name, shape: "(any)" });
    return e;
  }

  /** Reads one float tensor (from disk, or from `cache` when it holds it) and widens it to float32. */
  readFloat(name: string, cache?: Map<string, Uint8Array>): Float32Array {
    const e = this.entry(name);
    if (!FLOAT_DTYPES.includes(e.dtype)) throw fail("tensorDtype", { file: this.path, tensor: name, dtype: e.dtype });
    let bytes = cache?.get(name);
    if (!bytes) {
      bytes = this.readBytes(e);
      cache?.set(name, bytes);
    }
    if (cache && e.dtype === "F32") return new Float32Array(bytes.slice().buffer); // the cached bytes stay intact
    if (e.dtype === "F32") return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    return e.dtype === "F16" ? decodeF16(u16) : decodeBF16(u16);
  }

  /**
   * An F16 tensor's stored bit patterns (from `cache` when it holds them; shared with the cache,
   * so read-only), undefined for other dtypes: palettizing clusters fp16 patterns, which need no
   * widening.
   */
  readF16(name: string, cache?: Map<string, Uint8Array>): Uint16Array | undefined {
    const e = this.entry(name);
    if (e.dtype !== "F16") return undefined;
    let bytes = cache?.get(name);
    if (!bytes) {
      bytes = this.readBytes(e);
      cache?.set(name, bytes);
    }
    return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  }

  /** What src/checkpoint/prefetch.ts needs to read a tensor, cached under `key`. */
  prefetchItem(name: string, key = name): PrefetchItem {
    const entry = this.entry(name);
    return { key, entry, file: this.path, offset: this.dataStart + entry.begin, readAgain: () => this.readBytes(entry), counted: (n) => (this.bytesRead += n) };
  }

  readBytes(e: TensorEntry): Uint8Array {
    const len = e.end - e.begin;
    this.bytesRead += len;
    const buf = new Uint8Array(new ArrayBuffer(len)); // fresh, aligned for typed-array views
    if (readFullyAt(this.fd, buf, this.dataStart + e.begin) < len) throw fail("safetensorsHeader", { file: this.path, problem: `tensor "${e.name}" ends past the end of the file` });
    return buf;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function parseEntry(file: string, name: string, raw: unknown, dataSize: number): TensorEntry {
  const bad = (problem: string) => fail("tensorEntry", { file, tensor: name, problem });
  if (typeof raw !== "object" || raw === null) throw bad("is not an object with dtype, shape and data_offsets");
  const r = raw as Record<string, unknown>;
  if (typeof r.dtype !== "string" || !Object.hasOwn(ST_DTYPE_BYTES, r.dtype))
    throw bad(`has unknown dtype ${JSON.stringify(r.dtype)} (safetensors dtypes: ${Object.keys(ST_DTYPE_BYTES).join(", ")})`);
  const dtype = r.dtype as StDType;
  if (!Array.isArray(r.shape) || r.shape.length > 8 || !r.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw bad(`has an invalid shape ${JSON.stringify(r.shape)} (a list of at most 8 non-negative integers)`);
  const shape = r.shape as number[];
  const off = r.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
    throw bad(`has invalid data_offsets ${JSON.stringify(off)} (expected [begin, end] with 0 <= begin <= end)`);
  const [begin, end] = off as [number, number];
  if (end > dataSize) throw bad(`has data_offsets [${begin}, ${end}] beyond the ${dataSize} bytes of data in the file (truncated?)`);
  // BigInt so a declared shape of terabytes cannot overflow into a plausible size
  const need = shape.reduce((s, d) => s * BigInt(d), BigInt(ST_DTYPE_BYTES[dtype]));
  if (need !== BigInt(end - begin)) throw bad(`declares ${dtype} shape (${shape.join(", ")}) = ${need} bytes, but its data_offsets span ${end - begin}`);
  return { name, dtype, shape, begin, end };
}

export interface TensorToWrite {
  name: string;
  dtype: "F32" | "F16" | "U8";
  shape: number[];
  /** Produces the values in row-major order, in as many chunks as it likes (U8: bytes). */
  produce(emit: (chunk: Float32Array | Uint8Array) => void): void;
}

/** The header bytes (JSON padded to 8-byte alignment, length prefix included) for tensors in this order. */
export function safetensorsHeader(tensors: readonly { name: string; dtype: keyof typeof ST_DTYPE_BYTES; shape: readonly number[] }[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((s, d) => s * d, ST_DTYPE_BYTES[t.dtype]);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align the data section to 8 bytes
  const body = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length));
  body.copy(out, 8);
  return out;
}

export function byName<T extends { name: string }>(tensors: readonly T[]): T[] {
  return [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Writes a safetensors file tensor by tensor, never holding more than one chunk in memory,
 * atomically (temp name + rename). Tensors are written in name order so output is deterministic.
 */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata: Record<string, string> = {}): void {
  const sorted = byName(tensors);
  const header = safetensorsHeader(sorted, metadata);
  writeFileAtomic(path, (fd) => {
    writeAll(fd, header);
    for (const t of sorted) {
      const want = t.shape.reduce((s, d) => s * d, 1);
      let wrote = 0;
      t.produce((chunk) => {
        const enc = t.dtype === "F16" ? encodeF16(chunk as Float32Array) : chunk;
        writeAll(fd, new Uint8Array(enc.buffer, enc.byteOffset, enc.byteLength));
        wrote += chunk.length;
      });
      if (wrote !== want) throw new Error(`internal: tensor ${t.name} produced ${wrote} values, its shape needs ${want}`);
    }
  });
}
