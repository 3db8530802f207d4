// The write-behind thread (src/io/write-behind.ts): files get the bytes in the order given, the
// caller may reuse its buffers at once, a failed write surfaces (with its code) before the file
// is committed, and a helper that never starts (or ends part way) leaves the caller writing everything itself.
// Whole blocks go to the disk directly where the file system takes O_DIRECT: the bytes are the
// same whatever the split between direct and buffered writes.
import fc from "fast-check";
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { writeAll, writeAt, writeFileAtomic } from "../../src/io/atomic.js";
import { ALIGN, SLOT_BYTES, SLOTS, STAGE_MIN_BYTES, withWriteBehind, WriteBehind } from "../../src/io/write-behind.js";
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

test("a helper that ends part way (its heap ran out, say): the caller writes what it left, and everything after, in order", async () => {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const { writeFileSync } = await import("node:fs");
  const io = new URL("../../dist/src/io/", import.meta.url).href;
  const helper = join(dir, "dying-helper.mjs");
  writeFileSync(helper, `
    import { workerData } from "node:worker_threads";
    const { recordThreadId } = await import("${io}thread-liveness.js");
    const { SLOT, START, STARTED } = await import("${io}write-behind.js");
    const m = workerData;
    recordThreadId(m.threadId);
    Atomics.compareExchange(m.state, STARTED, START.WAITING, START.RUNNING);
    Atomics.notify(m.state, STARTED);
    // takes the first slot and ends without writing it
    while (Atomics.load(m.state, 0) === SLOT.EMPTY) Atomics.wait(m.state, 0, SLOT.EMPTY);
    process.exit(1);
  `);
  // in a child process: were the caller to wait for the helper forever, the timeout ends it and the test fails
  const script = `
    const { openSync, closeSync, readFileSync } = await import("node:fs");
    const { WriteBehind, SLOTS, SLOT_BYTES } = await import("${io}write-behind.js");
    const w = new WriteBehind({ helper: ${JSON.stringify(helper)} });
    const path = ${JSON.stringify(join(dir, "dying-helper-output"))}, fd = openSync(path, "w");
    const want = new Uint8Array(SLOTS * SLOT_BYTES + 3 * SLOT_BYTES + 12345);
    for (let i = 0; i < want.length; i++) want[i] = (i * 7 + (i >> 12)) & 255;
    for (let off = 0; off < want.length; off += 1000003) w.write(fd, want.subarray(off, off + 1000003));
    w.settle(fd);
    closeSync(fd);
    w.stop();
    console.log(Buffer.from(readFileSync(path)).equals(Buffer.from(want)) ? "same bytes" : "different bytes");
  `;
  const r = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 30_000 });
  expect(r.stdout.trim()).toBe("same bytes");
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

/** Whether the test folder's file system takes O_DIRECT (tmpfs does not): then the direct path must be taken. */
function directPossible(): boolean {
  if (process.platform !== "linux") return false;
  const fd = openSync(join(dir, "probe"), "w");
  try {
    closeSync(openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Chunk sizes that start and end anywhere in a block: a few bytes, about a block, up to two slots. */
const chunkSize = fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: ALIGN - 70, max: 3 * ALIGN + 70 }), fc.integer({ min: 0, max: 2 * SLOT_BYTES + ALIGN }));
const step = fc.record({ file: fc.integer({ min: 0, max: 2 }), size: chunkSize, settle: fc.boolean() });

/** Runs the steps through `w` (writes to three files in any order, settles between some), checks every file, returns the bytes written. */
function runSteps(w: WriteBehind, steps: { file: number; size: number; settle: boolean }[], seed: number): number {
  const paths = [0, 1, 2].map((i) => join(dir, `steps-${seed}-${i}`));
  const fds = paths.map((p) => openSync(p, "w"));
  const want: Buffer[][] = [[], [], []];
  const rng = new Rng(seed, "bytes");
  let total = 0;
  for (const s of steps) {
    const chunk = new Uint8Array(s.size);
    for (let j = 0; j < s.size; j += 61) chunk[j] = Math.floor(rng.uniform() * 256);
    want[s.file]!.push(Buffer.from(chunk));
    w.write(fds[s.file]!, chunk);
    total += s.size;
    if (s.settle) w.settle();
  }
  fds.forEach((fd) => w.settle(fd));
  fds.forEach((fd) => closeSync(fd));
  paths.forEach((p, i) => expect(readFileSync(p).equals(Buffer.concat(want[i]!)), p).toBe(true));
  paths.forEach((p) => rmSync(p));
  return total;
}

test("any sequence of writes to three files, settled anywhere, gives each file its bytes; whole blocks go direct where the file system takes it", () => {
  const w = new WriteBehind();
  let seed = 0, total = 0;
  try {
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), (steps) => void (total += runSteps(w, steps, seed++))), { numRuns: 40, seed: 14 });
    if (directPossible()) expect(w.directBytes).toBeGreaterThan(total / 2);
  } finally {
    w.stop();
  }
});

test("chunks at any source offset (so at any skew to their place in a slot) and of any size around the realigning threshold get exactly their bytes", () => {
  const w = new WriteBehind();
  const source = new Uint8Array(SLOT_BYTES + 64);
  const rng = new Rng(16, "bytes");
  for (let j = 0; j < source.length; j++) source[j] = Math.floor(rng.uniform() * 256);
  const piece = fc.record({ offset: fc.integer({ min: 0, max: 15 }), size: fc.oneof(fc.integer({ min: STAGE_MIN_BYTES - 9, max: STAGE_MIN_BYTES + 9 }), fc.integer({ min: 0, max: 3 * STAGE_MIN_BYTES }), fc.integer({ min: SLOT_BYTES - 20, max: SLOT_BYTES })) });
  let run = 0;
  try {
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 10 }), (pieces) => {
        const path = join(dir, `skew-${run++}`), fd = openSync(path, "w");
        for (const p of pieces) w.write(fd, source.subarray(p.offset, p.offset + p.size));
        w.settle(fd);
        closeSync(fd);
        const want = Buffer.concat(pieces.map((p) => source.subarray(p.offset, p.offset + p.size)));
        expect(readFileSync(path).equals(want)).toBe(true);
        rmSync(path);
      }),
      { numRuns: 30, seed: 16 },
    );
  } finally {
    w.stop();
  }
});

test("a block size the file system refuses: the refused direct write and every later one go through the page cache, same bytes", () => {
  const w = new WriteBehind({ direct: true, align: 16 }); // 16-byte aligned offsets: O_DIRECT answers EINVAL
  try {
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 8 }), (steps) => void runSteps(w, steps, 1000)), { numRuns: 10, seed: 15 });
    expect(w.directBytes).toBe(0);
  } finally {
    w.stop();
  }
});

test("a file patched after its queued bytes (writeAt), and an fd number reused without settle(fd), get the right bytes", () => {
  withWriteBehind(() => {
    const path = join(dir, "patched"), body = new Uint8Array(3 * ALIGN + 5).fill(7);
    writeFileAtomic(path, (fd) => {
      writeAll(fd, body);
      writeAt(fd, Buffer.from("head"), 0);
      writeAll(fd, Buffer.from("tail"));
    });
    expect(readFileSync(path)).toEqual(Buffer.concat([Buffer.from("head"), body.subarray(4), Buffer.from("tail")]));
  });
  const w = new WriteBehind();
  try {
    const a = join(dir, "reused-a"), b = join(dir, "reused-b");
    const fdA = openSync(a, "w");
    w.write(fdA, new Uint8Array(2 * ALIGN + 3).fill(1));
    w.settle(); // not settle(fdA): the write-behind still knows the number
    closeSync(fdA);
    // the lowest free number comes next: hold the lower ones until b gets fdA's
    const held: number[] = [];
    let fdB = openSync(b, "w");
    while (fdB !== fdA && held.length < 256) {
      held.push(fdB);
      fdB = openSync(b, "w");
    }
    held.forEach((fd) => closeSync(fd));
    expect(fdB).toBe(fdA);
    w.write(fdB, new Uint8Array(ALIGN).fill(2));
    w.settle(fdB);
    closeSync(fdB);
    expect(readFileSync(a)).toEqual(Buffer.alloc(2 * ALIGN + 3, 1));
    expect(readFileSync(b)).toEqual(Buffer.alloc(ALIGN, 2));
    // and a file that already has bytes is refused, not overwritten from its start
    const fdC = openSync(join(dir, "non-empty"), "w");
    writeSync(fdC, "x");
    expect(() => w.write(fdC, new Uint8Array(1))).toThrow(/not an empty file/);
    closeSync(fdC);
  } finally {
    w.stop();
  }
});
