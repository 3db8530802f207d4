// The write-behind thread (src/io/write-behind.ts): files get the bytes in the order given, the
// caller may reuse its buffers at once, a failed write surfaces (with its code) before the file
// is committed, and a helper that never starts leaves the caller writing everything itself.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { writeAll, writeFileAtomic } from "../../src/io/atomic.js";
import { SLOT_BYTES, SLOTS, withWriteBehind, WriteBehind } from "../../src/io/write-behind.js";
import { Rng } from "../../src/model/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-write-behind-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes random chunks (a few bytes to several slots) to two files in turn through `w`; returns what each must hold. */
function interleaved(w: WriteBehind, name: string, seed: number): { paths: string[]; want: Buffer[] } {
  const rng = new Rng(seed, "chunks");
  const paths = [join(dir, `${name}-a`), join(dir, `${name}-b`)];
  const fds = paths.map((p) => openSync(p, "w"));
  const want: Buffer[][] = [[], []];
  const scratch = new Uint8Array(2 * SLOT_BYTES + 77);
  for (let i = 0; i < 60; i++) {
    const f = rng.uniform() < 0.5 ? 0 : 1;
    const size = rng.uniform() < 0.2 ? Math.floor(rng.uniform() * scratch.length) : Math.floor(rng.uniform() * 5000);
    const chunk = scratch.subarray(0, size);
    for (let j = 0; j < size; j += 997) chunk[j] = (i * 31 + j) & 255;
    chunk.fill(i & 255, 0, Math.min(size, 64));
    want[f]!.push(Buffer.from(chunk));
    w.write(fds[f]!, chunk);
    chunk.fill(0); // reused at once, as emitters' batch buffers are
  }
  w.settle();
  fds.forEach((fd) => closeSync(fd));
  return { paths, want: want.map((parts) => Buffer.concat(parts)) };
}

test("two files written in turn, chunks from a few bytes to several slots, get exactly their bytes", () => {
  const w = new WriteBehind();
  try {
    const { paths, want } = interleaved(w, "turns", 1);
    paths.forEach((p, i) => expect(readFileSync(p).equals(want[i]!), p).toBe(true));
  } finally {
    w.stop();
  }
});

test("a helper that never starts: the caller writes everything itself, in order", () => {
  const w = new WriteBehind({ helper: join(dir, "no-such-helper.js"), startMs: 50 });
  try {
    const { paths, want } = interleaved(w, "alone", 2);
    expect(want[0]!.length + want[1]!.length).toBeGreaterThan(SLOTS * SLOT_BYTES); // every slot was waited for
    paths.forEach((p, i) => expect(readFileSync(p).equals(want[i]!), p).toBe(true));
  } finally {
    w.stop();
  }
});

test("a failed write is thrown with its code before the file is settled, and later files still work", () => {
  const w = new WriteBehind();
  try {
    const readOnly = join(dir, "read-only");
    closeSync(openSync(readOnly, "w"));
    const fd = openSync(readOnly, "r");
    w.write(fd, new Uint8Array(100));
    expect(() => w.settle()).toThrow(expect.objectContaining({ code: "EBADF" }));
    closeSync(fd);
    const { paths, want } = interleaved(w, "after", 3);
    paths.forEach((p, i) => expect(readFileSync(p).equals(want[i]!), p).toBe(true));
  } finally {
    w.stop();
  }
});

test("under a write-behind, an atomic output whose write fails names the file and leaves no temp file", () => {
  const path = join(dir, "atomic-out", "model.bin"), readOnly = join(dir, "read-only-2");
  closeSync(openSync(readOnly, "w"));
  withWriteBehind(() => {
    expect(() =>
      writeFileAtomic(path, (fd) => {
        writeAll(fd, new Uint8Array(SLOT_BYTES + 10));
        // the fd's number now names a file open for reading: the helper's writes fail (EBADF),
        // while closing and renaming would succeed, so only the settled failure stops the commit
        closeSync(fd);
        expect(openSync(readOnly, "r")).toBe(fd);
      }),
    ).toThrow(/model\.bin.*bad file descriptor/i);
    writeFileAtomic(path, (fd) => writeAll(fd, Buffer.from("whole")));
  });
  expect(readFileSync(path, "utf8")).toBe("whole");
  expect(readdirSync(join(dir, "atomic-out"))).toEqual(["model.bin"]);
});
