// The fast engine: one shared WebAssembly memory holding the fast kernels' operands, the kernel
// module instantiated on it in this thread and in every worker of a pool started once per
// process. A kernel call copies its operands into an arena in that memory, runs the kernel's
// export on all threads (each computes its own share, decided inside the kernel), and copies
// the result out. The calling thread works too and blocks until the others finish (Atomics),
// so to JavaScript every kernel is an ordinary synchronous function.
//
// The module is built from src/kernels/simd/assembly by scripts/build-wasm.mjs. Where the running
// engine validates relaxed SIMD, the build with fused multiply-add is used; otherwise the plain
// one. Independence: nothing here calls a runtime ditc checks.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { compiledModule, PROJECT_ROOT } from "../../io/project.js";

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit
const ALIGN = 64;

/** The module's exports, as JavaScript calls them (pointers and sizes are plain numbers). */
export interface KernelExports {
  gemm(tid: number, nt: number, M: number, N: number, K: number, a: number, rsA: number, ksA: number, bp: number, c: number, ldc: number, bias: number, edge: number): void;
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
  softmax(tid: number, nt: number, x: number, out: number, outer: number, n: number, inner: number): void;
  rope(tid: number, nt: number, x: number, out: number, rows: number, L: number, heads: number, dh: number, cosT: number, sinT: number): void;
  heap_base(): number;
}

/** Kernels the pool can run, by index in the control block. Each takes (tid, nt, ...args). */
export const PARALLEL_KERNELS = ["gemm", "pack_f32", "pack_f16", "pack_lut", "attention_pack", "attention", "unary", "binary", "layer_norm", "softmax", "rope"] as const;
export type ParallelKernel = (typeof PARALLEL_KERNELS)[number];

// control block: [generation, pending workers, kernel index, argument count, failed], then arguments
export const CTL = { GEN: 0, PENDING: 1, KERNEL: 2, ARGC: 3, FAILED: 4, READY: 5 } as const;
export const CTL_INTS = 8;
/**
 * How long a thread polls for a job or a result before it sleeps: waking a sleeping thread took
 * about 4 ms on the 2-core VM the benchmarks ran on (the idle core has to be brought back), while
 * a forward pass posts a job every few milliseconds.
 */
export const SPIN_MS = 20;
export const MAX_ARGS = 24;

function wasmPath(relaxed: boolean): string {
  return join(PROJECT_ROOT, "dist", "wasm", relaxed ? "simd-relaxed.wasm" : "simd.wasm");
}

/** Whether this engine runs relaxed SIMD (Node 22+; Node 20 behind --experimental-wasm-relaxed-simd). */
function relaxedSupported(): boolean {
  try {
    return WebAssembly.validate(new Uint8Array(readFileSync(wasmPath(true))));
  } catch {
    return false;
  }
}

export interface EngineInfo {
  threads: number;
  relaxedSimd: boolean;
  /** the shared memory's size: the most the kernels' operands have needed at once, plus the module */
  memoryBytes: number;
}

class Engine {
  readonly memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  readonly kernels: KernelExports;
  readonly relaxed: boolean;
  private readonly module: WebAssembly.Module;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(CTL_INTS * 4));
  private readonly args = new Float64Array(new SharedArrayBuffer(MAX_ARGS * 8));
  private readonly workers: Worker[] = [];
  private threads = Math.max(1, availableParallelism());
  private readonly base: number;
  private top: number;

  constructor() {
    this.relaxed = relaxedSupported();
    const path = wasmPath(this.relaxed);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      throw new Error(`ditc's WebAssembly kernels are not built (${path} is missing); run npm run build`);
    }
    this.module = new WebAssembly.Module(new Uint8Array(bytes));
    const instance = new WebAssembly.Instance(this.module, { env: { memory: this.memory, abort: wasmAbort } });
    this.kernels = instance.exports as unknown as KernelExports;
    this.base = this.top = alignUp(this.kernels.heap_base(), ALIGN);
  }

  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new Error(`internal: thread count must be a positive integer, got ${n}`);
    this.threads = n;
  }

  info(): EngineInfo {
    return { threads: this.threads, relaxedSimd: this.relaxed, memoryBytes: this.memory.buffer.byteLength };
  }

  /** Reserves `bytes` in the arena (64-byte aligned), growing the memory when needed. */
  alloc(bytes: number): number {
    const at = alignUp(this.top, ALIGN);
    const end = at + Math.max(bytes, 0);
    if (end > MAX_PAGES * PAGE) throw new RangeError(`a kernel needs ${(end / 2 ** 30).toFixed(2)} GiB of working memory, past the 4 GiB a WebAssembly memory can hold`);
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return at;
  }

  /** Arena position to return to when a kernel call is done. */
  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }

  /** Frees everything a call left in the arena (the next call starts from the bottom). */
  reset(): void {
    this.top = this.base;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }

  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }

  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, n);
  }

  /** Copies a float array into the arena; returns its pointer. */
  put(data: Float32Array): number {
    const p = this.alloc(data.length * 4);
    this.f32(p, data.length).set(data);
    return p;
  }

  /**
   * Runs a kernel on `threads` threads (this one included): every thread calls it with its own
   * tid, the kernel decides what that thread computes. Small jobs pass threads = 1.
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
    Atomics.store(ctl, CTL.PENDING, nt - 1);
    // workers with tid < nt take part; the generation carries nt so the others skip this job
    Atomics.store(ctl, CTL.GEN, ((Atomics.load(ctl, CTL.GEN) + 1) & 0xffff) | (nt << 16));
    Atomics.notify(ctl, CTL.GEN);
    let error: unknown;
    try {
      fn(0, nt, ...args);
    } catch (e) {
      error = e;
    }
    const until = performance.now() + SPIN_MS;
    for (let p = Atomics.load(ctl, CTL.PENDING); p !== 0; p = Atomics.load(ctl, CTL.PENDING)) if (performance.now() > until) Atomics.wait(ctl, CTL.PENDING, p);
    if (error) throw error;
    if (Atomics.load(ctl, CTL.FAILED)) throw new Error(`internal: a kernel thread failed in ${kernel}`);
  }

  private ensureWorkers(n: number): void {
    const start = this.workers.length;
    if (start >= n) return;
    for (let tid = start + 1; tid <= n; tid++) {
      // no inherited execArgv: `node -e` or a test runner's loader flags are not the worker's business
      // (V8 flags such as --experimental-wasm-relaxed-simd are process-wide and apply anyway)
      const w = new Worker(compiledModule("src/kernels/simd/worker.js"), {
        workerData: { tid, module: this.module, memory: this.memory, ctl: this.ctl, args: this.args },
        execArgv: [],
      });
      w.unref();
      this.workers.push(w);
    }
    // block until every new worker has instantiated the module (workers start on their own threads)
    const deadline = Date.now() + 30_000;
    while (Atomics.load(this.ctl, CTL.READY) < n) {
      if (Date.now() > deadline) throw new Error("internal: the kernel worker threads did not start within 30 s");
      Atomics.wait(this.ctl, CTL.READY, Atomics.load(this.ctl, CTL.READY), 100);
    }
  }
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

/** Threads the fast kernels use from now on (default: the machine's cores). */
export function setThreads(n: number): void {
  simdEngine().setThreads(n);
}

export function engineInfo(): EngineInfo {
  return simdEngine().info();
}

export type { Engine };
