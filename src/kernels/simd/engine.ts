// The fast engine: one shared WebAssembly memory holding the fast kernels' operands, the kernel
// module instantiated on it in this thread and in every worker of a pool started once per
// process. A kernel call takes its operands' pointers (copying in those that live outside the
// memory), runs the kernel's export on all threads (each computes its own share, decided inside
// the kernel), and leaves its result in the memory or copies it out. The calling thread works
// too and blocks until the others finish (Atomics), so to JavaScript every kernel is an ordinary
// synchronous function. A job's shares are claimed, not assigned: whichever thread comes first
// takes the next one, so the caller never waits on a thread that has not started (one the OS has
// not scheduled yet, or one still waking up); share s computes the same bits on any thread.
//
// Inside a resident scope (the interpreter opens one per graph run) kernels write their results
// into blocks of the memory and hand them out as views, so the next kernel reads them in place:
// a forward pass copies nothing between ops. The scope's owner frees each block when its last
// user is done (`drop`), and closing the scope frees the rest.
//
// The module is built from src/kernels/simd/assembly by scripts/build-wasm.mjs, twice: the build
// with relaxed SIMD's fused multiply-add is used unless the running engine cannot validate it
// (or DITC_FMA=0 asks for the plain one). Independence: nothing here calls a runtime ditc checks.
import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import { builtWasm, compiledModule } from "../../io/project.js";
import { LIVENESS_CHECK_MS, threadAlive, threadIdCell, type ThreadIdCell } from "../../io/thread-liveness.js";

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit
const ALIGN = 64;

/** The module's exports, as JavaScript calls them (pointers and sizes are plain numbers). */
export interface KernelExports {
  gemm(tid: number, nt: number, M: number, N: number, K: number, a: number, rsA: number, ksA: number, bp: number, c: number, ldc: number, bias: number, rowBias: number, scratch: number): void;
  packed_bytes(N: number, K: number): number;
  pack_f32(tid: number, nt: number, N: number, K: number, src: number, sN: number, sK: number, bp: number): void;
  pack_f16(tid: number, nt: number, N: number, K: number, src: number, sN: number, sK: number, bp: number): void;
  pack_lut(tid: number, nt: number, N: number, K: number, idx: number, sN: number, sK: number, lut: number, entries: number, nPerGroup: number, bp: number): void;
  attention_pack(tid: number, nt: number, k: number, ldk: number, v: number, ldv: number, kvHeads: number, dh: number, dv: number, tasks: number, nTasks: number): void;
  attention(tid: number, nt: number, q: number, ldq: number, out: number, ldo: number,
    heads: number, kvHeads: number, dh: number, dv: number, scale: number, tasks: number, nTasks: number, scratch: number, counter: number): void;
  attention_pack_bytes(nk: number, dh: number, dv: number, values: number): number;
  attention_scratch_bytes(dh: number, dv: number): number;
  unary(tid: number, nt: number, kind: number, src: number, dst: number, n: number): void;
  binary(tid: number, nt: number, kind: number, a: number, b: number, out: number, shape: number, rank: number): void;
  layer_norm(tid: number, nt: number, x: number, out: number, outer: number, n: number, inner: number, eps: number, w: number, b: number): void;
  softmax(tid: number, nt: number, x: number, out: number, outer: number, n: number, inner: number, scratch: number): void;
  softmax_scratch_bytes(): number;
  copy_strided(tid: number, nt: number, src: number, dst: number, desc: number, rank: number): void;
  reduce(tid: number, nt: number, kind: number, x: number, out: number, outer: number, n: number, inner: number): void;
  rope(tid: number, nt: number, x: number, out: number, rows: number, L: number, heads: number, dh: number, cosT: number, sinT: number): void;
  depthwise(tid: number, nt: number, x: number, out: number, w: number, bias: number, B: number, C: number, mult: number, Ho: number, Wo: number, KH: number, KW: number, sh: number, sw: number,
    xsB: number, xsC: number, xsH: number, xsW: number, osB: number, osC: number, osH: number, osW: number): void;
  heap_base(): number;
}

/** Kernels the pool can run, by index in the control block. Each takes (share, nt, ...args): share s of nt. */
export const PARALLEL_KERNELS = ["gemm", "pack_f32", "pack_f16", "pack_lut", "attention_pack", "attention", "unary", "binary", "layer_norm", "softmax", "rope", "copy_strided", "reduce", "depthwise"] as const;
export type ParallelKernel = (typeof PARALLEL_KERNELS)[number];

/**
 * The control block. GEN: the job number (low 16 bits) and its share count (high 16); PENDING:
 * shares not finished; CLAIM: the job number (high 16 bits) and its next unclaimed share (low 16).
 */
export const CTL = { GEN: 0, PENDING: 1, KERNEL: 2, ARGC: 3, FAILED: 4, READY: 5, SPIN_US: 6, CLAIM: 7 } as const;
export const CTL_INTS = 8;

/**
 * Claims the next share of job `job` (of `nt` shares): its index, or -1 when all are claimed or
 * another job has been posted since (a thread that read the job late must not take a share of
 * the next one: it would run it with this job's share count).
 */
export function claimShare(ctl: Int32Array, job: number, nt: number): number {
  for (;;) {
    const c = Atomics.load(ctl, CTL.CLAIM), share = c & 0xffff;
    if (c >>> 16 !== job || share >= nt) return -1;
    if (Atomics.compareExchange(ctl, CTL.CLAIM, c, c + 1) === c) return share;
  }
}

/**
 * How long a thread polls for a job or a result before it sleeps (CTL.SPIN_US holds the current
 * value): waking a sleeping thread took about 4 ms on the 2-core VM the benchmarks ran on (the
 * idle core has to be brought back), while a forward pass posts a job every few milliseconds.
 */
export const SPIN_MS = 20;
/**
 * The same while other threads share the cores (the cluster pool beside the probe's forward): a
 * thread polling for 20 ms then takes a core from one with work. Compiling the full preset at
 * 32² latents, the probe's forwards took 8 % less with 0.5 ms.
 */
export const SHARED_SPIN_MS = 0.5;
export const MAX_ARGS = 24;

const wasmFile = (relaxed: boolean) => (relaxed ? "simd-relaxed.wasm" : "simd.wasm");

/**
 * Whether the engine runs the relaxed-SIMD build (fused multiply-add: one thread's gemm 1.2-1.5x,
 * a whole forward 1.1-1.15x on an x64 with FMA3; docs/performance.md). Node 22 validates it as
 * is. Node 20's V8 has the feature behind --experimental-wasm-relaxed-simd, a flag that only
 * widens what WebAssembly validation accepts, so the engine turns it on itself (process-wide).
 * DITC_FMA=0 keeps the plain build: a multiply, then an add.
 */
function relaxedSupported(): boolean {
  if (process.env.DITC_FMA === "0") return false;
  try {
    const bytes = builtWasm(wasmFile(true));
    if (WebAssembly.validate(bytes)) return true;
    setFlagsFromString("--experimental-wasm-relaxed-simd");
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

export interface EngineInfo {
  threads: number;
  relaxedSimd: boolean;
  /** the shared memory's size: the most its blocks have needed at once, plus the module */
  memoryBytes: number;
  /** the most the kernels' own working memory (operand copies, packed weights, scratch) has taken at once */
  scratchPeakBytes: number;
  /** bytes of results held in resident scopes right now */
  residentBytes: number;
}

/** A tensor's block of memory, handed out inside a resident scope. */
interface Block {
  readonly ptr: number;
  readonly bytes: number;
  /** the scope's live values holding it */
  refs: number;
  /** allocation order, so a scope can sweep what one step made and nobody kept */
  readonly seq: number;
}

/** Free memory between `heap_base` and the top, kept sorted by address and coalesced. */
class FreeList {
  private readonly spans: { ptr: number; bytes: number }[] = [];

  /** First fit; undefined when no span is large enough. */
  take(bytes: number): number | undefined {
    const i = this.spans.findIndex((s) => s.bytes >= bytes);
    if (i < 0) return undefined;
    const s = this.spans[i]!;
    const ptr = s.ptr;
    if (s.bytes === bytes) this.spans.splice(i, 1);
    else this.spans[i] = { ptr: ptr + bytes, bytes: s.bytes - bytes };
    return ptr;
  }

  give(ptr: number, bytes: number): void {
    let i = 0;
    while (i < this.spans.length && this.spans[i]!.ptr < ptr) i++;
    this.spans.splice(i, 0, { ptr, bytes });
    const next = this.spans[i + 1];
    if (next && ptr + bytes === next.ptr) this.spans.splice(i, 2, { ptr, bytes: bytes + next.bytes });
    const prev = this.spans[i - 1], cur = this.spans[i]!;
    if (prev && prev.ptr + prev.bytes === cur.ptr) this.spans.splice(i - 1, 2, { ptr: prev.ptr, bytes: prev.bytes + cur.bytes });
  }

  /** Removes and returns the span ending at `top`, if any (so the top can come down). */
  takeEndingAt(top: number): { ptr: number; bytes: number } | undefined {
    const last = this.spans[this.spans.length - 1];
    if (last && last.ptr + last.bytes === top) return this.spans.pop();
    return undefined;
  }
}

/**
 * The most threads ditc starts for its kernels (and its k-means): each is a Node worker with its
 * own heap, so a mistyped --threads 100000 would exhaust memory rather than run anything faster.
 */
export const MAX_THREADS = 256;

class Engine {
  readonly memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  readonly kernels: KernelExports;
  readonly relaxed: boolean;
  private readonly module: WebAssembly.Module;
  // the workers' control block and arguments: replaced, with the workers, when one of them ends
  private ctl = new Int32Array(new SharedArrayBuffer(CTL_INTS * 4));
  private args = new Float64Array(new SharedArrayBuffer(MAX_ARGS * 8));
  private workers: { worker: Worker; tid: ThreadIdCell }[] = [];
  private threads = Math.min(MAX_THREADS, Math.max(1, availableParallelism()));
  /** end of the memory handed out so far; everything above is free */
  private top: number;
  private readonly free = new FreeList();
  /** the kernels' working memory of the current call, freed by `release` */
  private readonly temps: { ptr: number; bytes: number }[] = [];
  private tempBytes = 0;
  private scratchPeak = 0;
  /** resident scopes, innermost last; each maps a block's pointer to the block */
  private readonly scopes: Map<number, Block>[] = [];
  private seq = 0;
  private residentBytes = 0;
  /** every SharedArrayBuffer object the memory has been seen through (one per size it grew to) */
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  constructor() {
    this.relaxed = relaxedSupported();
    this.module = new WebAssembly.Module(builtWasm(wasmFile(this.relaxed)));
    const instance = new WebAssembly.Instance(this.module, { env: { memory: this.memory, abort: wasmAbort } });
    this.kernels = instance.exports as unknown as KernelExports;
    this.top = alignUp(this.kernels.heap_base(), ALIGN);
    this.setSpin();
  }

  /** Stores how long its threads poll before they sleep (read by each wait, here and in the workers). */
  setSpin(): void {
    Atomics.store(this.ctl, CTL.SPIN_US, engineSpinMicros());
  }

  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) throw new Error(`internal: thread count must be an integer from 1 to ${MAX_THREADS}, got ${n}`);
    this.threads = n;
  }

  info(): EngineInfo {
    return { threads: this.threads, relaxedSimd: this.relaxed, memoryBytes: this.memory.buffer.byteLength, scratchPeakBytes: this.scratchPeak, residentBytes: this.residentBytes };
  }

  /** `bytes` (rounded up to 64) of the memory, growing it when no free span fits. */
  private reserve(bytes: number): { ptr: number; bytes: number } {
    const size = alignUp(Math.max(bytes, 1), ALIGN);
    const ptr = this.free.take(size);
    if (ptr !== undefined) return { ptr, bytes: size };
    // extend the top, starting from a free span that ends there
    const tail = this.free.takeEndingAt(this.top);
    const at = tail ? tail.ptr : this.top;
    const end = at + size;
    if (end > MAX_PAGES * PAGE) {
      if (tail) this.free.give(tail.ptr, tail.bytes);
      throw new RangeError(`a kernel needs ${(end / 2 ** 30).toFixed(2)} GiB of working memory, past the 4 GiB a WebAssembly memory can hold`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return { ptr: at, bytes: size };
  }

  private unreserve(ptr: number, bytes: number): void {
    if (ptr + bytes === this.top) {
      this.top = ptr;
      const tail = this.free.takeEndingAt(this.top);
      if (tail) this.top = tail.ptr;
    } else this.free.give(ptr, bytes);
  }

  /** Working memory for the current kernel call (64-byte aligned), freed by `release`. */
  alloc(bytes: number): number {
    const r = this.reserve(bytes);
    this.temps.push(r);
    this.tempBytes += r.bytes;
    this.scratchPeak = Math.max(this.scratchPeak, this.tempBytes);
    return r.ptr;
  }

  /** Position to return to when a kernel call is done. */
  mark(): number {
    return this.temps.length;
  }

  /** Frees the working memory taken since `mark`. */
  release(mark: number): void {
    while (this.temps.length > mark) {
      const r = this.temps.pop()!;
      this.tempBytes -= r.bytes;
      this.unreserve(r.ptr, r.bytes);
    }
  }

  /** Starts a resident scope: until `closeScope`, `output` hands out blocks of the memory. */
  openScope(): void {
    this.scopes.push(new Map());
  }

  /** Frees every block the innermost scope still holds; views of them must not be used after. */
  closeScope(): void {
    const scope = this.scopes.pop();
    if (!scope) throw new Error("internal: closeScope without openScope");
    for (const b of scope.values()) this.freeBlock(b, scope);
  }

  /**
   * A float array for a kernel's result: a block of the memory inside a resident scope (the
   * kernel writes it in place; its contents start undefined), a fresh zeroed array otherwise.
   */
  output(n: number): Float32Array {
    const scope = this.scopes[this.scopes.length - 1];
    if (!scope) return new Float32Array(n);
    const r = this.reserve(n * 4);
    scope.set(r.ptr, { ...r, refs: 0, seq: this.seq++ });
    this.residentBytes += r.bytes;
    return this.f32(r.ptr, n);
  }

  /** The block of the innermost scope a view lies in, if it is one. */
  private blockOf(data: ArrayBufferView): Block | undefined {
    if (!this.buffers.has(data.buffer)) return undefined;
    const scope = this.scopes[this.scopes.length - 1];
    if (!scope) return undefined;
    const exact = scope.get(data.byteOffset);
    if (exact) return exact;
    for (const b of scope.values()) if (data.byteOffset >= b.ptr && data.byteOffset < b.ptr + b.bytes) return b;
    return undefined;
  }

  /** Allocation count so far: `sweep(since)` frees what was handed out after it and never kept. */
  allocations(): number {
    return this.seq;
  }

  /** A live value now holds `data` (no-op unless it is a block of the innermost scope). */
  keep(data: ArrayBufferView): void {
    const b = this.blockOf(data);
    if (b) b.refs++;
  }

  /** A live value let go of `data`: its block is freed with its last holder. */
  drop(data: ArrayBufferView): void {
    const b = this.blockOf(data);
    if (b && --b.refs <= 0) this.freeBlock(b);
  }

  /** Frees the innermost scope's blocks handed out since `since` that no live value holds. */
  sweep(since: number): void {
    const scope = this.scopes[this.scopes.length - 1];
    if (!scope) return;
    for (const b of [...scope.values()]) if (b.seq >= since && b.refs <= 0) this.freeBlock(b);
  }

  /** Whether `data` is a view of this memory (a kernel can use it in place). */
  holds(data: ArrayBufferView): boolean {
    return this.buffers.has(data.buffer);
  }

  private freeBlock(b: Block, scope = this.scopes[this.scopes.length - 1]!): void {
    scope.delete(b.ptr);
    this.residentBytes -= b.bytes;
    this.unreserve(b.ptr, b.bytes);
  }

  private view<T>(make: (buf: ArrayBufferLike) => T): T {
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    return make(buf);
  }

  f32(ptr: number, n: number): Float32Array {
    return this.view((b) => new Float32Array(b, ptr, n));
  }

  i32(ptr: number, n: number): Int32Array {
    return this.view((b) => new Int32Array(b, ptr, n));
  }

  u8(ptr: number, n: number): Uint8Array {
    return this.view((b) => new Uint8Array(b, ptr, n));
  }

  u16(ptr: number, n: number): Uint16Array {
    return this.view((b) => new Uint16Array(b, ptr, n));
  }

  /** Copies a float array into working memory; returns its pointer. */
  put(data: Float32Array): number {
    const p = this.alloc(data.length * 4);
    this.f32(p, data.length).set(data);
    return p;
  }

  /** The pointer of a float array: in place when it is a view of the memory, else a working copy. */
  input(data: Float32Array): number {
    return this.holds(data) ? data.byteOffset : this.put(data);
  }

  /**
   * Where a kernel writes `n` floats meant for `out`: `out` itself when it lives in the memory,
   * else working memory that `done` copies into it.
   */
  target(out: Float32Array): { ptr: number; done: () => void } {
    if (this.holds(out)) return { ptr: out.byteOffset, done: () => {} };
    const ptr = this.alloc(out.length * 4);
    return { ptr, done: () => out.set(this.f32(ptr, out.length)) };
  }

  /**
   * Runs a kernel as `threads` shares (this thread takes part): each share is one call with its
   * share index in place of a thread id, the kernel decides what a share computes. Small jobs
   * pass threads = 1.
   */
  parallel(kernel: ParallelKernel, args: readonly number[], threads = this.threads): void {
    const fn = this.kernels[kernel] as (...a: number[]) => void;
    const nt = Math.max(1, Math.min(threads, this.threads));
    if (nt === 1) {
      fn(0, 1, ...args);
      return;
    }
    this.ensureWorkers(nt - 1);
    if (args.length > MAX_ARGS) throw new Error(`internal: ${kernel} takes ${args.length} arguments, the pool passes ${MAX_ARGS}`);
    const ctl = this.ctl;
    this.args.set(args);
    Atomics.store(ctl, CTL.KERNEL, PARALLEL_KERNELS.indexOf(kernel));
    Atomics.store(ctl, CTL.ARGC, args.length);
    Atomics.store(ctl, CTL.FAILED, 0);
    Atomics.store(ctl, CTL.PENDING, nt);
    // the job's shares open only now, after everything they read
    const job = (Atomics.load(ctl, CTL.GEN) + 1) & 0xffff;
    Atomics.store(ctl, CTL.CLAIM, job << 16);
    Atomics.store(ctl, CTL.GEN, job | (nt << 16));
    Atomics.notify(ctl, CTL.GEN);
    let error: unknown;
    for (let share = claimShare(ctl, job, nt); share >= 0; share = claimShare(ctl, job, nt)) {
      try {
        fn(share, nt, ...args);
      } catch (e) {
        error ??= e;
      }
      Atomics.sub(ctl, CTL.PENDING, 1);
    }
    const until = performance.now() + Atomics.load(ctl, CTL.SPIN_US) / 1000;
    for (let p = Atomics.load(ctl, CTL.PENDING); p !== 0; p = Atomics.load(ctl, CTL.PENDING))
      if (performance.now() > until && Atomics.wait(ctl, CTL.PENDING, p, LIVENESS_CHECK_MS) === "timed-out") this.checkWorkers(kernel);
    if (error) throw error;
    if (Atomics.load(ctl, CTL.FAILED)) throw new Error(`internal: a kernel thread failed in ${kernel}`);
  }

  private ensureWorkers(n: number): void {
    const start = this.workers.length;
    if (start >= n) return;
    for (let i = start; i < n; i++) {
      // no inherited execArgv: `node -e` or a test runner's loader flags are not the worker's business
      // (V8 flags such as --experimental-wasm-relaxed-simd are process-wide and apply anyway)
      const threadId = threadIdCell();
      const w = new Worker(kernelThreadModule ?? compiledModule("src/kernels/simd/worker.js"), {
        workerData: { module: this.module, memory: this.memory, ctl: this.ctl, args: this.args, threadId } satisfies KernelThreadData,
        execArgv: [],
      });
      w.unref();
      // one that fails is noticed by its silence (READY) or its absence (checkWorkers); heard here,
      // its error would end the process with a stack trace once this thread's event loop runs
      w.on("error", () => {});
      this.workers.push({ worker: w, tid: threadId });
    }
    // block until every new worker has instantiated the module (workers start on their own threads)
    const deadline = Date.now() + 30_000;
    while (Atomics.load(this.ctl, CTL.READY) < n) {
      if (Date.now() > deadline) throw new Error("internal: the kernel worker threads did not start within 30 s");
      Atomics.wait(this.ctl, CTL.READY, Atomics.load(this.ctl, CTL.READY), 100);
    }
  }

  /**
   * Throws if a worker has ended while the running kernel waits on a share: it may have claimed
   * it (one that ends before claiming holds nothing up: the others take its shares). The workers
   * are let go with their control block, so one still running cannot take a later job; the next
   * parallel kernel starts new ones.
   */
  private checkWorkers(kernel: ParallelKernel): void {
    if (this.workers.every((w) => threadAlive(w.tid))) return;
    for (const w of this.workers) void w.worker.terminate();
    const spin = Atomics.load(this.ctl, CTL.SPIN_US);
    this.workers = [];
    this.ctl = new Int32Array(new SharedArrayBuffer(CTL_INTS * 4));
    this.args = new Float64Array(new SharedArrayBuffer(MAX_ARGS * 8));
    Atomics.store(this.ctl, CTL.SPIN_US, spin);
    throw new Error(`a kernel thread stopped while it ran ${kernel} (out of memory?): its share of the result is missing`);
  }
}

/** What a kernel thread is started with (src/kernels/simd/worker.ts). */
export interface KernelThreadData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: Int32Array;
  args: Float64Array;
  threadId: ThreadIdCell;
}

let kernelThreadModule: string | undefined;

/** Tests: the module kernel threads started from now on run (one that ends as a thread out of memory would); undefined for worker.js. */
export function useKernelThreadModule(path: string | undefined): void {
  kernelThreadModule = path;
}

function wasmAbort(): never {
  throw new Error("internal: a WebAssembly kernel aborted");
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

let engine: Engine | undefined;

/** The process's engine, created at first use. */
export function simdEngine(): Engine {
  engine ??= new Engine();
  return engine;
}

/** Threads of other pools running now (module-wide: the engine may be created after they start). */
let threadsBeside = 0;

/**
 * Other threads start (`delta` > 0) or stop running beside the engine: while any run, the
 * engine's threads poll for SHARED_SPIN_MS instead of SPIN_MS before they sleep.
 */
export function threadsBesideEngine(delta: number): void {
  threadsBeside = Math.max(0, threadsBeside + delta);
  engine?.setSpin();
}

/** How long the engine's threads poll before they sleep now, in microseconds. */
export function engineSpinMicros(): number {
  return Math.round((threadsBeside > 0 ? SHARED_SPIN_MS : SPIN_MS) * 1000);
}

/** Threads the fast kernels use from now on (default: the machine's cores). */
export function setThreads(n: number): void {
  simdEngine().setThreads(n);
}

export function engineInfo(): EngineInfo {
  return simdEngine().info();
}

export type { Engine };
