// weight.bin, MIL blob storage version 2 (docs/formats/coreml.md): a 64-byte header (count, version 2),
// then per blob a 64-byte metadata record (sentinel 0xDEADBEEF, dtype, size, data offset,
// padding bits) at a 64-aligned offset, its data right after. A const references a blob by the
// offset of its metadata record. Written streaming; the header count is patched at the end.
// Weight files are named by their content (weight-<hash prefix>.bin): a package can then be
// replaced in place by moving the new files in first and swapping model.mlmodel last, which is
// one atomic rename (emit.ts), and names stay deterministic. Each blob's bytes are hashed once
// (SHA-256): that digest finds identical blobs and stands for the blob in the file's hash, which
// covers the header, every metadata record and padding, and the blobs' digests.
import { createHash, type Hash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, renameSync } from "node:fs";
import { join } from "node:path";
import { discardWrites, settleFile, writeAll, writeAt } from "../../src/io/atomic.js";

export const BLOB_SENTINEL = 0xdeadbeef;
/** BlobDataType codes (differ from MIL.proto's DataType). */
export const BLOB_DTYPE = { Float16: 1, Float32: 2, UInt8: 3, UInt4: 11 } as const;

/**
 * Core ML fails to load a weight file over 2^31 bytes (coremltools #1807), so weights are split
 * across several files, each kept under this size; a const names its file.
 */
export const MAX_BLOB_FILE_BYTES = 2 ** 31 - 2 ** 24;

/** A blob's place: the file is known once that file is complete (its name is its content hash). */
export interface BlobRef {
  fileName: string;
  offset: number;
}

/** Writes blobs into a folder, starting a new file before one would pass MAX_BLOB_FILE_BYTES. */
export class BlobFolderWriter {
  private current: BlobWriter | undefined;
  private fd: number | undefined;
  private pending: BlobRef[] = [];
  private total = 0;
  private count = 0;
  private readonly byContent = new Map<string, BlobRef>();
  readonly files: string[] = [];
  constructor(private readonly dir: string, private readonly fileName: (name: string) => string, private readonly maxBytes = MAX_BLOB_FILE_BYTES) {}

  /** Appends a blob; its reference gets the file's name when the file is complete. */
  write(dtype: number, data: Uint8Array, paddingBits = 0): BlobRef {
    // identical bytes are one blob: every const that holds them names the same record
    const digest = createHash("sha256").update(data).digest();
    const key = `${dtype}:${paddingBits}:${digest.toString("hex")}`;
    const same = this.byContent.get(key);
    if (same) return same;
    if (!this.current || (this.current.bytes > 64 && this.current.bytes + 128 + data.length > this.maxBytes)) this.rotate();
    const ref = { fileName: "", offset: this.current!.write(dtype, data, paddingBits, digest) };
    this.pending.push(ref);
    this.byContent.set(key, ref);
    return ref;
  }

  private rotate(): void {
    this.finishFile();
    this.fd = openSync(join(this.dir, `.writing-${this.count++}`), "w");
    this.current = new BlobWriter(this.fd);
  }

  private finishFile(): void {
    if (!this.current || this.fd === undefined) return;
    const digest = this.current.finish();
    this.total += this.current.bytes;
    settleFile(this.fd);
    closeSync(this.fd);
    const name = `weight-${digest.slice(0, 16)}.bin`;
    renameSync(join(this.dir, `.writing-${this.count - 1}`), join(this.dir, name));
    for (const r of this.pending) r.fileName = this.fileName(name);
    this.pending = [];
    this.files.push(name);
    this.current = undefined;
    this.fd = undefined;
  }

  /** Closes the file being written, its queued bytes dropped, when the emit fails (the caller removes the folder). */
  abandon(): void {
    if (this.fd === undefined) return;
    discardWrites(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    this.current = undefined;
  }

  /** Total bytes written across files. */
  close(): number {
    this.finishFile();
    return this.total;
  }
}

export class BlobWriter {
  private pos = 64;
  private count = 0;
  private readonly hash: Hash = createHash("sha256");
  constructor(private readonly fd: number) {
    writeAll(fd, new Uint8Array(64)); // header, patched in finish()
  }

  private put(b: Uint8Array): void {
    writeAll(this.fd, b);
    this.hash.update(b);
  }

  /** Appends one blob; returns the offset of its metadata record. `digest`: the data's SHA-256, when the caller has it. */
  write(dtype: number, data: Uint8Array, paddingBits = 0, digest: Uint8Array = createHash("sha256").update(data).digest()): number {
    const at = Math.ceil(this.pos / 64) * 64;
    if (at > this.pos) this.put(new Uint8Array(at - this.pos));
    const meta = Buffer.alloc(64);
    meta.writeUInt32LE(BLOB_SENTINEL, 0);
    meta.writeUInt32LE(dtype, 4);
    meta.writeBigUInt64LE(BigInt(data.length), 8);
    meta.writeBigUInt64LE(BigInt(at + 64), 16);
    meta.writeBigUInt64LE(BigInt(paddingBits), 24);
    this.put(meta);
    writeAll(this.fd, data);
    this.hash.update(digest);
    this.pos = at + 64 + data.length;
    this.count++;
    return at;
  }

  get bytes(): number {
    return this.pos;
  }

  /** Patches the header; returns the file's content hash (records and the blobs' digests as written, then the header). */
  finish(): string {
    const header = Buffer.alloc(64);
    header.writeUInt32LE(this.count, 0);
    header.writeUInt32LE(2, 4);
    writeAt(this.fd, header.subarray(0, 8), 0);
    return this.hash.update(header).digest("hex");
  }
}

export interface BlobRecord {
  dtype: number;
  size: number;
  dataOffset: number;
  paddingBits: number;
}

/** Reads and checks blob files; every offset and size is validated against the file. */
export class BlobReader {
  private readonly fd: number;
  readonly size: number;
  constructor(readonly path: string, bad: (problem: string) => Error) {
    this.bad = bad;
    this.fd = openSync(path, "r");
    this.size = fstatSync(this.fd).size;
    if (this.size < 64) throw bad(`is ${this.size} bytes, shorter than its 64-byte header`);
    const h = Buffer.alloc(8);
    readSync(this.fd, h, 0, 8, 0);
    if (h.readUInt32LE(4) !== 2) throw bad(`has storage version ${h.readUInt32LE(4)}; only version 2 is defined`);
  }
  private readonly bad: (problem: string) => Error;

  record(offset: number): BlobRecord {
    if (!Number.isSafeInteger(offset) || offset < 64 || offset % 64 !== 0 || offset + 64 > this.size) throw this.bad(`has no blob record at offset ${offset} (file is ${this.size} bytes)`);
    const m = Buffer.alloc(64);
    readSync(this.fd, m, 0, 64, offset);
    if (m.readUInt32LE(0) !== BLOB_SENTINEL) throw this.bad(`record at offset ${offset} has sentinel 0x${m.readUInt32LE(0).toString(16)}, not 0xdeadbeef`);
    const size = Number(m.readBigUInt64LE(8)), dataOffset = Number(m.readBigUInt64LE(16));
    if (dataOffset !== offset + 64 || dataOffset + size > this.size) throw this.bad(`blob at ${offset} declares data [${dataOffset}, ${dataOffset + size}) outside the file`);
    return { dtype: m.readUInt32LE(4), size, dataOffset, paddingBits: Number(m.readBigUInt64LE(24)) };
  }

  data(r: BlobRecord): Uint8Array {
    const out = new Uint8Array(r.size);
    for (let got = 0; got < r.size; ) {
      const n = readSync(this.fd, out, got, r.size - got, r.dataOffset + got);
      if (!n) throw this.bad("ended early");
      got += n;
    }
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}
