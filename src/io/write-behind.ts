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
import { Worker } from "node:worker_threads";
import { compiledModule } from "./project.js";
import { writeChunked } from "./write.js";

/** A slot's state word. */
export const SLOT = { EMPTY: 0, FULL: 1, STOP: 2 } as const;
export const SLOTS = 8;
export const SLOT_BYTES = 4 << 20;
/** Bytes of a failure's text the helper can hand back ("code\nmessage"). */
export const FAILURE_BYTES = 1024;

/** After the slots' state words: the failure's text length (0: none), and the helper's start word. */
export const FAILED = SLOTS, STARTED = SLOTS + 1;
/** The start word: the helper claims it (RUNNING) or the caller, tired of waiting, does (ABANDONED). */
export const START = { WAITING: 0, RUNNING: 1, ABANDONED: 2 } as const;

/** The shared memory both threads see. */
export interface WriteBehindMemory {
  /** per slot its state word; then FAILED and STARTED */
  state: Int32Array;
  /** per slot: fd, byte count */
  meta: Int32Array;
  data: Uint8Array;
  failure: Uint8Array;
}

export function writeBehindMemory(): WriteBehindMemory {
  return {
    state: new Int32Array(new SharedArrayBuffer(4 * (SLOTS + 2))),
    meta: new Int32Array(new SharedArrayBuffer(8 * SLOTS)),
    data: new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT_BYTES)),
    failure: new Uint8Array(new SharedArrayBuffer(FAILURE_BYTES)),
  };
}

/** How long the caller waits for the helper's first sign of life before writing itself. */
const START_MS = 10_000;

export interface WriteBehindOptions {
  /** the helper's module (tests give one that cannot start) */
  helper?: string;
  startMs?: number;
}

export class WriteBehind {
  private readonly m = writeBehindMemory();
  private readonly worker: Worker;
  /** the slot being filled (not yet handed over), its fd and fill */
  private slot = 0;
  private fd = -1;
  private used = 0;
  /** the helper did not start: the caller writes every slot itself */
  private alone = false;

  private readonly startMs: number;

  constructor(o: WriteBehindOptions = {}) {
    this.startMs = o.startMs ?? START_MS;
    this.worker = new Worker(o.helper ?? compiledModule("src/io/write-behind-worker.js"), { workerData: this.m, execArgv: [] });
    this.worker.unref();
    this.worker.on("error", () => {}); // one that fails to start is noticed by its silence (waitEmpty)
  }

  /** Queues `bytes` for the fd's current position; throws an earlier write's failure. */
  write(fd: number, bytes: Uint8Array): void {
    this.throwFailure();
    if (fd !== this.fd && this.used) this.handOver();
    this.fd = fd;
    for (let off = 0; off < bytes.length; ) {
      if (this.used === SLOT_BYTES) this.handOver();
      if (!this.used) this.waitEmpty(this.slot);
      const n = Math.min(bytes.length - off, SLOT_BYTES - this.used);
      this.m.data.set(bytes.subarray(off, off + n), this.slot * SLOT_BYTES + this.used);
      this.used += n;
      off += n;
    }
  }

  /** Waits until every queued byte is written; throws the first failure since the last one thrown. */
  settle(): void {
    this.drain();
    this.throwFailure();
  }

  /** The same, forgetting any failure (the file is being abandoned anyway). */
  discard(): void {
    this.drain();
    Atomics.store(this.m.state, FAILED, 0);
  }

  stop(): void {
    this.drain();
    // the helper waits on the slot after the last one it wrote, which is the next to fill
    Atomics.store(this.m.state, this.slot, SLOT.STOP);
    Atomics.notify(this.m.state, this.slot);
  }

  private drain(): void {
    if (this.used) this.handOver();
    for (let s = 0; s < SLOTS; s++) this.waitEmpty(s);
  }

  private handOver(): void {
    const s = this.slot;
    this.m.meta[2 * s] = this.fd;
    this.m.meta[2 * s + 1] = this.used;
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
    if (Atomics.compareExchange(this.m.state, STARTED, START.WAITING, START.ABANDONED) === START.WAITING) {
      this.alone = true;
      void this.worker.terminate();
      for (let k = 0; k < SLOTS; k++) {
        const q = (this.slot + k) % SLOTS; // oldest first: the slots were handed over in turn
        if (Atomics.load(this.m.state, q) === SLOT.FULL) writeSlot(this.m, q);
      }
      return;
    }
    while (Atomics.load(this.m.state, s) === SLOT.FULL) Atomics.wait(this.m.state, s, SLOT.FULL);
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
 * Writes slot `s` to its fd and marks it empty. A failure is kept (the first one until the
 * caller takes it) and the slot still emptied: the caller throws it at its next write.
 */
export function writeSlot(m: WriteBehindMemory, s: number): void {
  const fd = m.meta[2 * s]!, len = m.meta[2 * s + 1]!;
  try {
    writeChunked(fd, m.data, s * SLOT_BYTES, len);
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
