// Every artifact is written under a temporary name in its destination folder and renamed into
// place only when complete, so a crash or kill leaves the old file or the new one, never half.
// Files are not fsynced before the rename unless DITC_FSYNC=1: like compilers and converters,
// ditc leaves flushing its (reproducible) outputs to the kernel; waiting for the disk would
// bound every compile by the disk's write speed (README, "Atomic outputs").
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { fail } from "../diagnostics.js";
import { currentWriteBehind } from "./write-behind.js";
import { writeChunked } from "./write.js";

export function tempPathFor(path: string): string {
  removeStaleTemps(path);
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now().toString(36)}`);
}

/** Removes temp files (or folders) a killed writer left beside `path`; a live writer's are kept. */
export function removeStaleTemps(path: string): void {
  const prefix = `.${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split("-")[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) rmSync(join(dirname(path), n), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Creates the folder `dir` (and its parents) for outputs, or fails with an error naming it: a file
 * where the folder, or one of its parents, should be is the user's path, not ditc's bug.
 */
export function makeOutputFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem = code === "EEXIST" ? "it exists and is not a folder" : code === "ENOTDIR" ? "a part of the path before it is a file, not a folder" : (e as Error).message;
    throw fail("outputPath", { path: dir, problem });
  }
}

/** Creates the destination folder and an exclusive temp file beside `path`. */
function openTemp(path: string): { tmp: string; fd: number } {
  makeOutputFolder(dirname(path));
  try {
    const tmp = tempPathFor(path);
    return { tmp, fd: openSync(tmp, "wx") };
  } catch (e) {
    throw fail("outputPath", { path, problem: (e as Error).message });
  }
}

/** With DITC_FSYNC=1, outputs reach the disk before they are renamed into place (power-loss safe). */
export const durableWrites = (): boolean => process.env.DITC_FSYNC === "1";

/**
 * Before a complete file is closed: waits for its writes still queued behind
 * (src/io/write-behind.ts), throwing their failure, and fsyncs it when writes are durable (see
 * durableWrites).
 */
export function settleFile(fd: number): void {
  currentWriteBehind()?.settle(fd);
  if (durableWrites()) fsyncSync(fd);
}

/** Waits for queued writes, forgetting their failure: for a file being abandoned (without `fd`: every file being written). */
export function discardWrites(fd?: number): void {
  currentWriteBehind()?.discard(fd);
}

function commit(path: string, tmp: string, fd: number): void {
  settleFile(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

/** Removes the temp file and turns file-system errors into a diagnostic naming the output. */
function abandon(path: string, tmp: string, fd: number, e: unknown): never {
  discardWrites(fd);
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
  rmSync(tmp, { force: true });
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOSPC") throw fail("outputPath", { path, problem: "the disk is full" });
  if (code && /^E[A-Z]+$/.test(code)) throw fail("outputPath", { path, problem: (e as Error).message });
  throw e;
}

/** Opens a temp file beside `path`, lets `write` fill it, then renames it to `path` (fsynced first when durable). */
export function writeFileAtomic(path: string, write: (fd: number) => void): void {
  const { tmp, fd } = openTemp(path);
  try {
    write(fd);
    commit(path, tmp, fd);
  } catch (e) {
    abandon(path, tmp, fd, e);
  }
}

/**
 * Writes a file whose name depends on its content: `write` gets a `put` that writes and hashes,
 * and the finished temp file is renamed to `join(dir, nameOf(sha256 hex))`. A file of that name
 * already has these bytes, so it can sit beside older versions until a reader switches to it.
 */
export function writeContentNamedFile(dir: string, nameOf: (digest: string) => string, write: (put: (b: Uint8Array) => void) => void): string {
  const probe = join(dir, nameOf("content"));
  const { tmp, fd } = openTemp(probe);
  const hash = createHash("sha256");
  try {
    write((b) => {
      writeAll(fd, b);
      hash.update(b);
    });
    const path = join(dir, nameOf(hash.digest("hex").slice(0, 16)));
    commit(path, tmp, fd);
    return path;
  } catch (e) {
    abandon(probe, tmp, fd, e);
  }
}

/** writeFileAtomic for writers that await between writes (worker results, say). */
export async function writeFileAtomicAsync(path: string, write: (fd: number) => Promise<void>): Promise<void> {
  const { tmp, fd } = openTemp(path);
  try {
    await write(fd);
    commit(path, tmp, fd);
  } catch (e) {
    abandon(path, tmp, fd, e);
  }
}

/**
 * Writes all of `buf` at the fd's current position, or queues it there when a write-behind is
 * running (the bytes are copied: `buf` may be reused at once).
 */
export function writeAll(fd: number, buf: Uint8Array): void {
  const behind = currentWriteBehind();
  if (behind) behind.write(fd, buf);
  else writeChunked(fd, buf);
}

/** Writes `buf` at byte `position`, through the page cache (after every queued write: it may patch their bytes). */
export function writeAt(fd: number, buf: Uint8Array, position: number): void {
  currentWriteBehind()?.settle();
  writeChunked(fd, buf, 0, buf.length, position);
}

/**
 * Writes many chunks to `fd` in order, gathering small ones (headers, names, shapes) into one
 * buffer so a file of thousands of tensors is not thousands of system calls; large chunks go
 * straight through. Call `flush` at the end.
 */
export function batchedWriter(fd: number, size = 1 << 20): { put: (b: Uint8Array) => void; flush: () => void } {
  const buf = new Uint8Array(size);
  let used = 0;
  const flush = () => {
    if (used) writeAll(fd, buf.subarray(0, used));
    used = 0;
  };
  return {
    put: (b) => {
      if (b.length >= size >> 4) {
        flush();
        writeAll(fd, b);
        return;
      }
      if (used + b.length > size) flush();
      buf.set(b, used);
      used += b.length;
    },
    flush,
  };
}
