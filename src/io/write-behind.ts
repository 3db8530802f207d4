// Writes behind the calling thread: while a compile encodes the next tensor (or lowers the next
// graph), a helper thread hands the previous bytes to the kernel. Copying a tensor into the
// kernel's page cache is most of an emitter's time on a large model (a GB of fresh page-cache
// pages costs seconds on a VM), and it needs no JavaScript, so it can run on the other core.
//
// The caller copies each chunk into one of a few fixed slots of shared memory (memory reused from
// file to file, so the copy does not fault in fresh pages) and goes on; the helper writes the
// slots in order. Both sides wait on the slots' state words with Atomics, so the caller never
// needs its event loop (compile is synchronous). Bytes reach each file in the order they were
// given, so files are identical to those written directly.
//
// On Linux the helper writes each slot's whole aligned blocks with O_DIRECT, through a second
// descriptor of the same file ("twin", opened from /proc/self/fd): the device reads them from the
// slot, so no page-cache page is allocated or copied. On this VM a buffered GB cost 5 s of system
// time (fresh pages the host must supply) and a direct one 0.6 s of wall time with almost no CPU
// (README, "Atomic outputs"). A slot's bytes sit at the same offset modulo ALIGN in memory as in
// the file (the slots are page-aligned WebAssembly memory), so only a slot's partial first and
// last blocks go through the page cache. DITC_DIRECT_WRITES=0 turns it off; a file system that
// refuses O_DIRECT gets buffered writes.
import { closeSync, constants, fstatSync, openSync, writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { compiledModule } from "./project.js";
import { LIVENESS_CHECK_MS, threadAlive, threadIdCell, type ThreadIdCell } from "./thread-liveness.js";
import { writeChunked } from "./write.js";

/** A slot's state word. */
export const SLOT = { EMPTY: 0, FULL: 1, STOP: 2 } as const;
export const SLOTS = 8;
export const SLOT_BYTES = 4 << 20;
/** Chunks this large or larger are realigned before they are copied into the slots (copyIn). */
export const STAGE_MIN_BYTES = 4096;
/** Bytes of a failure's text the helper can hand back ("code\nmessage"). */
export const FAILURE_BYTES = 1024;

/** Direct writes move whole blocks of this many bytes, from addresses and to offsets it divides. */
export const ALIGN = 4096;

/**
 * After the slots' state words: the failure's text length (0: none), the helper's start word, and
 * the block size of direct writes (0 once one was refused: the file system wants another).
 */
export const FAILED = SLOTS, STARTED = SLOTS + 1, DIRECT_ALIGN = SLOTS + 2;
/** Per slot in `meta`: fd, twin (-1: none), file position, data offset in the slot, byte count; after the slots, the bytes written direct. */
const META = 5, DIRECT_BYTES = META * SLOTS;
/** The start word: the helper claims it (RUNNING) or the caller, tired of waiting, does (ABANDONED). */
export const START = { WAITING: 0, RUNNING: 1, ABANDONED: 2 } as const;

/** The shared memory both threads see. */
export interface WriteBehindMemory {
  /** per slot its state word; then FAILED, STARTED and DIRECT_ALIGN */
  state: Int32Array;
  /** per slot: META numbers */
  meta: Float64Array;
  /** SLOTS × SLOT_BYTES, page-aligned */
  data: Uint8Array;
  failure: Uint8Array;
  /** the helper's OS thread id, once it has started (src/io/thread-liveness.ts) */
  threadId: ThreadIdCell;
}

export function writeBehindMemory(): WriteBehindMemory {
  return {
    state: new Int32Array(new SharedArrayBuffer(4 * (SLOTS + 3))),
    meta: new Float64Array(new SharedArrayBuffer(8 * (META * SLOTS + 1))),
    // a WebAssembly memory starts on a page boundary (a SharedArrayBuffer's data need not)
    data: new Uint8Array(new WebAssembly.Memory({ initial: (SLOTS * SLOT_BYTES) >> 16, maximum: (SLOTS * SLOT_BYTES) >> 16, shared: true }).buffer),
    failure: new Uint8Array(new SharedArrayBuffer(FAILURE_BYTES)),
    threadId: threadIdCell(),
  };
}

/** How long the caller waits for the helper's first sign of life before writing itself. */
const START_MS = 10_000;

export interface WriteBehindOptions {
  /** the helper's module (tests give one that cannot start) */
  helper?: string;
  startMs?: number;
  /** write whole blocks with O_DIRECT where the file system takes it (default: on Linux, unless DITC_DIRECT_WRITES=0) */
  direct?: boolean;
  /** the block size assumed for direct writes (tests give one the kernel refuses) */
  align?: number;
}

/** A file being written: which it is, where its next queued byte goes, and its direct twin (undefined: not tried yet). */
interface QueuedFile {
  dev: number;
  ino: number;
  position: number;
  twin: number | undefined;
}

const directWritesWanted = () => process.platform === "linux" && constants.O_DIRECT !== undefined && process.env.DITC_DIRECT_WRITES !== "0";

export class WriteBehind {
  private readonly m = writeBehindMemory();
  private readonly worker: Worker;
  /** the slot being filled (not yet handed over): its file, where its bytes start in it and in the slot, its fill */
  private slot = 0;
  private fd = -1;
  private file: QueuedFile | undefined;
  private position = 0;
  private start = 0;
  private used = 0;
  private readonly files = new Map<number, QueuedFile>();
  /** the helper did not start: the caller writes every slot itself */
  private alone = false;
  /** where misaligned chunks are realigned on their way into the slots (copyIn) */
  private staging: Uint8Array | undefined;

  private readonly startMs: number;
  private readonly align: number;

  constructor(o: WriteBehindOptions = {}) {
    this.startMs = o.startMs ?? START_MS;
    this.align = o.align ?? ALIGN;
    this.m.state[DIRECT_ALIGN] = (o.direct ?? directWritesWanted()) ? this.align : 0;
    this.worker = new Worker(o.helper ?? compiledModule("src/io/write-behind-worker.js"), { workerData: this.m, execArgv: [] });
    this.worker.unref();
    this.worker.on("error", () => {}); // one that fails to start is noticed by its silence (waitEmpty)
  }

  /**
   * Queues `bytes` to follow the fd's earlier ones; throws an earlier write's failure. A file is
   * written from its start through here alone (writeAt may patch it after a settle), until
   * `settle(fd)` or `discard(fd)` ends it.
   */
  write(fd: number, bytes: Uint8Array): void {
    this.throwFailure();
    if (fd !== this.fd) {
      if (this.used) this.handOver();
      this.file = this.fileOf(fd);
      this.fd = fd;
    }
    for (let off = 0; off < bytes.length; ) {
      if (this.start + this.used === SLOT_BYTES) this.handOver();
      if (!this.used) {
        this.waitEmpty(this.slot);
        this.position = this.file!.position;
        this.start = this.position % this.align; // the bytes' offset modulo the block size, as in the file
      }
      const n = Math.min(bytes.length - off, SLOT_BYTES - this.start - this.used);
      this.copyIn(bytes.subarray(off, off + n), this.slot * SLOT_BYTES + this.start + this.used);
      this.used += n;
      this.file!.position += n;
      off += n;
    }
  }

  /**
   * Copies `src` into the slots at `at`. Into shared memory V8 copies word by word where source
   * and destination agree modulo 8, and byte by byte where they do not (3 against 11-14 GB/s
   * here); a slot's bytes sit where the file's alignment puts them, and a protobuf's raw bytes
   * fall anywhere, so a large misaligned chunk goes through a plain buffer (copied at memory
   * speed) placed to agree. Backing stores are at least 8-aligned, so byteOffset stands for the
   * address modulo 8; were one not, the copy would only be slower.
   */
  private copyIn(src: Uint8Array, at: number): void {
    if (((at - src.byteOffset) & 7) === 0 || src.length < STAGE_MIN_BYTES) return this.m.data.set(src, at);
    this.staging ??= new Uint8Array(SLOT_BYTES + 8);
    const k = at & 7;
    this.staging.set(src, k);
    this.m.data.set(this.staging.subarray(k, k + src.length), at);
  }

  /** Waits until every queued byte is written; throws the first failure since the last one thrown. With `fd`: that file is complete. */
  settle(fd?: number): void {
    this.drain();
    if (fd !== undefined) this.end(fd);
    this.throwFailure();
  }

  /** The same, forgetting any failure (the file is being abandoned anyway); without `fd` every file is ended. */
  discard(fd?: number): void {
    this.drain();
    for (const f of fd === undefined ? [...this.files.keys()] : [fd]) this.end(f);
    Atomics.store(this.m.state, FAILED, 0);
  }

  /** Bytes written with O_DIRECT so far, as of the last settle (tests check the path is taken). */
  get directBytes(): number {
    return this.m.meta[DIRECT_BYTES]!;
  }

  /** The fd's file; a number closed and reopened (after a settle, without settle(fd)) names a new file. */
  private fileOf(fd: number): QueuedFile {
    const st = fstatSync(fd), known = this.files.get(fd);
    if (known && known.ino === st.ino && known.dev === st.dev) return known;
    if (known) {
      this.drain(); // its queued bytes may still use its twin
      this.end(fd);
    }
    // a file with bytes already would have them overwritten: queued bytes start at 0
    if (st.size !== 0) throw new Error(`write-behind: fd ${fd} is not an empty file; files are written through it from their start`);
    const f: QueuedFile = { dev: st.dev, ino: st.ino, position: 0, twin: undefined };
    this.files.set(fd, f);
    return f;
  }

  private end(fd: number): void {
    const f = this.files.get(fd);
    if (!f) return;
    this.files.delete(fd);
    if (f.twin !== undefined && f.twin >= 0) closeSync(f.twin);
  }

  /** The file's O_DIRECT twin, opened when it first has a whole block to write; -1 where there is none. */
  private twinOf(fd: number, f: QueuedFile): number {
    if (f.twin === undefined) {
      f.twin = -1;
      if (Atomics.load(this.m.state, DIRECT_ALIGN) !== 0) {
        try {
          f.twin = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_DIRECT);
        } catch {
          /* no /proc, or a file system without O_DIRECT (tmpfs): buffered */
        }
      }
    }
    return f.twin;
  }

  stop(): void {
    this.drain();
    for (const fd of [...this.files.keys()]) this.end(fd);
    // the helper waits on the slot after the last one it wrote, which is the next to fill
    Atomics.store(this.m.state, this.slot, SLOT.STOP);
    Atomics.notify(this.m.state, this.slot);
  }

  private drain(): void {
    if (this.used) this.handOver();
    for (let s = 0; s < SLOTS; s++) this.waitEmpty(s);
    // the next write looks its file up again: the fd may have been closed and its number reused
    this.fd = -1;
    this.file = undefined;
  }

  private handOver(): void {
    const s = this.slot, meta = this.m.meta;
    meta[META * s] = this.fd;
    meta[META * s + 1] = this.start + this.used >= 2 * this.align ? this.twinOf(this.fd, this.file!) : -1;
    meta[META * s + 2] = this.position;
    meta[META * s + 3] = this.start;
    meta[META * s + 4] = this.used;
    this.used = 0;
    this.slot = (s + 1) % SLOTS;
    if (this.alone) return writeSlot(this.m, s);
    Atomics.store(this.m.state, s, SLOT.FULL);
    Atomics.notify(this.m.state, s);
  }

  private waitEmpty(s: number): void {
    if (this.alone || Atomics.load(this.m.state, s) !== SLOT.FULL) return;
    // a helper that never starts would leave the slots full forever: after startMs without it,
    // this thread claims the start word (so a late helper exits at once) and writes everything
    Atomics.wait(this.m.state, STARTED, START.WAITING, this.startMs);
    if (Atomics.compareExchange(this.m.state, STARTED, START.WAITING, START.ABANDONED) === START.WAITING) return this.writeAlone();
    // so would one that ended (its heap ran out, say): its full slots are this thread's then (a
    // slot it was part way through is written again whole, at the same positions)
    while (Atomics.load(this.m.state, s) === SLOT.FULL)
      if (Atomics.wait(this.m.state, s, SLOT.FULL, LIVENESS_CHECK_MS) === "timed-out" && !threadAlive(this.m.threadId)) return this.writeAlone();
  }

  /** From now on this thread writes every slot: first the full ones, oldest first (they were handed over in turn). */
  private writeAlone(): void {
    this.alone = true;
    void this.worker.terminate();
    for (let k = 0; k < SLOTS; k++) {
      const q = (this.slot + k) % SLOTS;
      if (Atomics.load(this.m.state, q) === SLOT.FULL) writeSlot(this.m, q);
    }
  }

  private throwFailure(): void {
    const n = Atomics.load(this.m.state, FAILED);
    if (!n) return;
    Atomics.store(this.m.state, FAILED, 0);
    const [code, ...message] = new TextDecoder().decode(this.m.failure.subarray(0, n)).split("\n");
    throw Object.assign(new Error(message.join("\n")), code ? { code } : {});
  }
}

/**
 * Writes slot `s` to its file and marks it empty. A failure is kept (the first one until the
 * caller takes it) and the slot still emptied: the caller throws it at its next write.
 */
export function writeSlot(m: WriteBehindMemory, s: number): void {
  const at = META * s, fd = m.meta[at]!, twin = m.meta[at + 1]!, position = m.meta[at + 2]!, length = m.meta[at + 4]!;
  const offset = s * SLOT_BYTES + m.meta[at + 3]!;
  try {
    let done = 0;
    const align = Atomics.load(m.state, DIRECT_ALIGN);
    if (twin >= 0 && align) {
      // the partial block before the first boundary through the page cache, whole blocks direct
      done = Math.min(length, (align - (position % align)) % align);
      writeChunked(fd, m.data, offset, done, position);
      done += writeDirect(m, twin, offset + done, Math.floor((length - done) / align) * align, position + done);
    }
    writeChunked(fd, m.data, offset + done, length - done, position + done);
  } catch (e) {
    if (!Atomics.load(m.state, FAILED)) {
      const err = e as NodeJS.ErrnoException;
      const text = new TextEncoder().encode(`${err.code ?? ""}\n${err.message}`).subarray(0, FAILURE_BYTES);
      m.failure.set(text);
      Atomics.store(m.state, FAILED, text.length);
    }
  }
  Atomics.store(m.state, s, SLOT.EMPTY);
  Atomics.notify(m.state, s);
}

/** Writes whole blocks with O_DIRECT; returns how many bytes it wrote (fewer if the file system refused). */
function writeDirect(m: WriteBehindMemory, twin: number, offset: number, length: number, position: number): number {
  let done = 0;
  try {
    while (done < length) {
      const n = writeSync(twin, m.data, offset + done, length - done, position + done);
      done += n;
      if (n % Atomics.load(m.state, DIRECT_ALIGN)) break; // a short write leaves a partial block: the rest buffered
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EINVAL") throw e;
    Atomics.store(m.state, DIRECT_ALIGN, 0); // the file system wants another alignment: buffered from now on
  }
  m.meta[DIRECT_BYTES] += done; // only the writing thread adds; the caller reads it after a settle
  return done;
}

let active: WriteBehind | undefined;

/** The write-behind running, if one is: src/io/atomic.ts writeAll goes through it. */
export const currentWriteBehind = (): WriteBehind | undefined => active;

/** Runs `fn` with every writeAll going through a write-behind (the running one, or one started for `fn`). */
export function withWriteBehind<T>(fn: () => T): T {
  if (active) return fn();
  const w = (active = new WriteBehind());
  try {
    return fn();
  } finally {
    active = undefined;
    w.stop();
  }
}
