// weight.bin files: identical blobs are stored once, and a file's name follows every byte it holds.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { BLOB_DTYPE, BlobFolderWriter, BlobReader } from "../../targets/coreml/blob.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-blob-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let folders = 0;
/** Writes the blobs into a fresh folder; returns the file names and each blob's reference. */
function write(blobs: { dtype: number; data: Uint8Array; padding?: number }[]) {
  const d = join(dir, String(folders++));
  mkdirSync(d);
  const w = new BlobFolderWriter(d, (n) => n);
  const refs = blobs.map((b) => w.write(b.dtype, b.data, b.padding ?? 0));
  w.close();
  return { dir: d, files: readdirSync(d).filter((f) => f.startsWith("weight-")), refs };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

test("identical blobs share one record; different dtype or padding does not", () => {
  const a = bytes(1000, 1);
  const { dir: d, files, refs } = write([
    { dtype: BLOB_DTYPE.UInt8, data: a },
    { dtype: BLOB_DTYPE.UInt8, data: a.slice() },
    { dtype: BLOB_DTYPE.UInt4, data: a, padding: 4 },
    { dtype: BLOB_DTYPE.UInt8, data: bytes(1000, 2) },
  ]);
  expect(refs[1]).toBe(refs[0]);
  expect(new Set(refs.map((r) => r.offset)).size).toBe(3);
  const r = new BlobReader(join(d, files[0]!), (p) => new Error(p));
  expect(r.data(r.record(refs[0]!.offset))).toEqual(a);
  expect(r.record(refs[2]!.offset).paddingBits).toBe(4);
  expect(r.data(r.record(refs[3]!.offset))).toEqual(bytes(1000, 2));
  r.close();
});

test("a weight file's name is the same for the same blobs and changes with any byte, dtype or padding", () => {
  const blobs = () => [
    { dtype: BLOB_DTYPE.Float16, data: bytes(4096, 3) },
    { dtype: BLOB_DTYPE.UInt4, data: bytes(300, 4), padding: 0 },
  ];
  const name = (change?: (b: ReturnType<typeof blobs>) => void) => {
    const b = blobs();
    change?.(b);
    return write(b).files[0];
  };
  const base = name();
  expect(base).toMatch(/^weight-[0-9a-f]{16}\.bin$/);
  expect(name()).toBe(base);
  expect(name((b) => (b[1]!.data[299] ^= 1))).not.toBe(base);
  expect(name((b) => (b[0]!.data[0] ^= 0x80))).not.toBe(base);
  expect(name((b) => (b[0]!.dtype = BLOB_DTYPE.UInt8))).not.toBe(base);
  expect(name((b) => (b[1]!.padding = 4))).not.toBe(base);
  expect(name((b) => b.reverse())).not.toBe(base);
});
