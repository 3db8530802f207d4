// Clusters many weights on worker threads while the calling thread reads the next ones (clusterAll:
// returns when all are done), or while it does other work (startClustering, then finish), so a
// synchronous caller (compile) gets the machine's cores for its k-means without becoming
// asynchronous. Everything comes back through shared memory: each
// job carries shared buffers for its indices and LUT and a status word, the worker fills them
// and bumps a shared counter, and the caller, blocked on that counter (Atomics.wait), collects
// finished jobs — no message has to reach a thread that is not running its event loop. A
// weight's clustering is the same function on any thread (src/quant/layer.ts clusterGroups), so
// results do not depend on the worker count, nor on which thread took a job: a caller that would
// otherwise sleep takes a job still queued for a worker (the one it waits for, if no worker has
// started it) and clusters it itself, so its core does not idle while the workers have work.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { rememberPackedU4 } from "../io/encode.js";
import { JOB } from "../io/helper-jobs.js";
import { compiledModule } from "../io/project.js";
import { LIVENESS_CHECK_MS, recordThreadId, threadAlive, threadIdCell, type ThreadIdCell } from "../io/thread-liveness.js";
import type { Palettized } from "./kmeans.js";
import { addClusteringSeconds, clusterGroups, clusteringClock, clusteringFailure, correctedBias, planElements, type ClusterPlan } from "./layer.js";
import { timedRead } from "../model/read-clock.js";
import { threadsBesideEngine } from "../kernels/simd/engine.js";

export interface ClusterJob {
  /** the weight's checkpoint name: the key its clustering is stored under */
  source: string;
  plan: ClusterPlan;
  /** reads the weight (on the calling thread): float32, or fp16 bit patterns */
  load: () => Float32Array | Uint16Array;
  /** the biases corrected for this weight's clustering (src/quant/layer.ts correctedBias), computed by the worker that has the weight */
  corrections?: BiasCorrection[];
}

/** One layer's bias correction: stored under `source` in `into`. */
export interface BiasCorrection {
  source: string;
  /** E[x] per input channel */
  mean: Float64Array;
  /** the layer's bias before correction, when it has one */
  old?: () => Float32Array;
  into: Map<string, Float32Array>;
}

/** Bytes of an error's text a worker can hand back. */
export const ERROR_BYTES = 1024;

/** What a worker is sent: the weight and where its answer goes, all in shared memory. */
export interface JobMessage {
  data: Float32Array | Uint16Array;
  plan: ClusterPlan;
  /** [status], then the error's byte length */
  status: Int32Array;
  /** [sse] */
  sse: Float64Array;
  indices: Uint8Array;
  /** 4-bit indices also packed two per byte as the files store them (empty for 8-bit) */
  nibbles: Uint8Array;
  lut: Float32Array;
  /** bias corrections: E[x] and each layer's old bias (empty without), results one after another */
  corrections: { mean: Float64Array; old: (Float32Array | undefined)[]; out: Float32Array } | undefined;
  /** the error's name and message as UTF-8, "name\nmessage" */
  error: Uint8Array;
  /** the pool's counter: bumped when the job is done, waking the caller */
  signal: Int32Array;
}

/**
 * Claims a job for this thread; false when another thread has it. A job's status word takes the
 * states of src/io/helper-jobs.ts: FREE until the worker it was sent to, or the caller taking it
 * over, claims it (compare-and-exchange), then DONE or FAILED.
 */
export const claimJob = (m: JobMessage): boolean => Atomics.compareExchange(m.status, 0, JOB.FREE, JOB.CLAIMED) === JOB.FREE;

/** Clusters a claimed job into its shared buffers and sets its status (an error goes into them too). */
export function runClusterJob(m: JobMessage): void {
  try {
    // indices (and 4-bit nibbles) go straight into the job's shared buffers
    const r = clusterGroups(m.data, m.plan, { indices: m.indices, ...(m.nibbles.length ? { nibbles: m.nibbles } : {}) });
    if (r.indices !== m.indices || r.lut.length !== m.lut.length) throw new Error(`internal: clustering sizes ${r.indices.length}/${r.lut.length}, expected ${m.indices.length}/${m.lut.length} in place`);
    m.lut.set(r.lut);
    const fix = m.corrections;
    if (fix) {
      const rows = m.plan.layout.rowBase.length;
      fix.old.forEach((old, k) => fix.out.set(correctedBias(m.data, r, m.plan, fix.mean, old), k * rows));
    }
    m.sse[0] = r.sse;
    Atomics.store(m.status, 0, JOB.DONE);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const text = new TextEncoder().encode(`${err.name}\n${err.message}`).subarray(0, ERROR_BYTES);
    m.error.set(text);
    m.status[1] = text.length;
    Atomics.store(m.status, 0, JOB.FAILED);
  }
}

/** Jobs in flight per worker in the foreground (clusterAll): one being clustered, one read and waiting. */
const DEPTH = 2;
/** Weight elements a background run hands its workers at once; the rest follow as jobs finish. */
const BACKGROUND_ELEMENTS = 1 << 29;
/** How long workers may take to start before the pool gives up (they load the k-means module). */
const START_MS = 30_000;

/** Clustering under way on the workers. */
export interface ClusterRun {
  /** Blocks until the job for `source` is stored in `into` (collecting the others done meanwhile). */
  waitFor(source: string): void;
  /** Blocks until every job is done and stored (a worker's error is rethrown here); the workers then stop. */
  finish(): void;
  /** Stops the workers without waiting for them (after an error elsewhere); nothing once finished. */
  cancel(): void;
  /** How many jobs this thread took over from the workers' queues while it waited. */
  readonly takenOver: number;
}

/**
 * Clusters every job whose source `into` does not hold yet and stores the results there, returning
 * when all are done. At most DEPTH weights per worker are in flight at once.
 */
export function clusterAll(jobs: readonly ClusterJob[], into: Map<string, Palettized>, workers = availableParallelism(), onProgress?: (done: number, total: number) => void): void {
  startClustering(jobs, into, workers, onProgress, { background: false }).finish();
}

const elementsOf = (j: ClusterJob) => planElements(j.plan);

/**
 * Starts clustering the jobs `into` does not hold yet. In the background (the default), every job
 * up to BACKGROUND_ELEMENTS is read and handed to the workers now, so they cluster while this
 * thread does other work; `finish` collects them (and hands on the rest). Results go to `into`
 * only in `finish`. The time counted as clustering is the time spent in this call and in
 * `finish`, less this thread's reads of the weights.
 */
export function startClustering(jobs: readonly ClusterJob[], into: Map<string, Palettized>, workers = availableParallelism(), onProgress?: (done: number, total: number) => void, { background = true } = {}): ClusterRun {
  const todo = jobs.filter((j) => !into.has(j.source));
  if (!todo.length)
    return {
      waitFor: (source) => {
        if (!into.has(source)) throw new Error(`internal: no clustering job for ${source}`);
      },
      finish: () => {},
      cancel: () => {},
      takenOver: 0,
    };
  const pool = openClusterPool(into, Math.min(workers, todo.length), onProgress, { background });
  pool.add(todo); // an error here has stopped the workers
  return pool;
}

/** Bytes of one chunk of a pool's shared arena (see sharedArena). */
const ARENA_CHUNK = 64 << 20;

type SharedArray = Int32Array | Float64Array | Float32Array | Uint8Array;

/**
 * Typed arrays in shared memory for the jobs' results and words, carved from chunks of
 * ARENA_CHUNK bytes. A SharedArrayBuffer under glibc's mmap threshold (32 MiB at most) comes from
 * the heap and is zeroed on this thread: the full preset's ~8,000 job buffers cost 0.5 s of it. A
 * chunk is mapped fresh, zero without a memset, its pages first touched by the worker writing
 * them. An array of half a chunk or more gets a mapping of its own. Each array starts on a
 * 64-byte line, so two jobs' status words never share one.
 */
function sharedArena(): <T extends SharedArray>(Type: { new (b: SharedArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number }, length: number) => T {
  let chunk: SharedArrayBuffer | undefined, used = ARENA_CHUNK;
  return (Type, length) => {
    const bytes = length * Type.BYTES_PER_ELEMENT;
    if (bytes >= ARENA_CHUNK / 2) return new Type(new SharedArrayBuffer(bytes), 0, length);
    let at = Math.ceil(used / 64) * 64;
    if (!chunk || at + bytes > ARENA_CHUNK) [chunk, at] = [new SharedArrayBuffer(ARENA_CHUNK), 0];
    used = at + bytes;
    return new Type(chunk, at, length);
  };
}

/**
 * Clustering threads outlive their pools. A compile opens a pool for each width's probe and
 * another for its 8-bit layers, and a fresh thread loads the k-means modules and optimizes their
 * code again (~0.3 s of CPU a thread on the full preset, beside the pool's start). A pool whose
 * jobs were all collected leaves its threads here for the next one; they are unreferenced, so
 * they never keep the process alive. A pool stopped early (an error, a cancel) ends its threads:
 * messages for them may still be queued.
 */
const idleThreads: ClusterThread[] = [];
let threadsStarted = 0;

/** A clustering thread, and its OS thread id once it has started (Linux; 0 elsewhere). */
interface ClusterThread {
  worker: Worker;
  tid: ThreadIdCell;
}

/** What a clustering thread is started with. */
export interface ClusterThreadData {
  /** bumped once when the thread is ready: the counter of the pool that started it */
  ready: Int32Array;
  tid: ThreadIdCell;
}

function startClusterThread(ready: Int32Array, module: string): ClusterThread {
  const data: ClusterThreadData = { ready, tid: threadIdCell() };
  const worker = new Worker(module, { workerData: data, execArgv: [] });
  worker.unref();
  // one that fails is noticed by its silence (the ready count) or its absence (checkThreads); heard
  // here, its error would end the process with a stack trace once this thread's event loop runs
  worker.on("error", () => {});
  threadsStarted++;
  return { worker, tid: data.tid };
}

/** Called by a clustering thread as it starts: records its OS thread id (src/io/thread-liveness.ts), then says it is ready. */
export function announceClusterThread({ ready, tid }: ClusterThreadData): void {
  recordThreadId(tid);
  Atomics.add(ready, 0, 1);
  Atomics.notify(ready, 0);
}

/** How many clustering threads this process has started, and how many wait for a pool now. */
export const clusterThreads = () => ({ started: threadsStarted, idle: idleThreads.length });

/** Workers that take jobs as the caller finds them (a probe clustering each layer as its statistics are complete). */
export interface ClusterPool extends ClusterRun {
  /** Hands jobs to the workers (as many as fit; the rest follow as jobs finish). */
  add(jobs: readonly ClusterJob[]): void;
  /** Stores the jobs finished so far in `into`, without waiting. */
  poll(): void;
}

/**
 * Starts `workers` clustering threads; jobs come with `add`, results go to `into` in `poll`,
 * `waitFor` and `finish`. Time counted as clustering: the time spent in these calls, less this
 * thread's reads of the weights.
 */
export function openClusterPool(into: Map<string, Palettized>, workers = availableParallelism(), onProgress?: (done: number, total: number) => void, { background = true, thread }: { background?: boolean; /** the threads' module (tests give one that dies); such threads serve this pool only */ thread?: string } = {}): ClusterPool {
  let t0 = performance.now();
  const todo: ClusterJob[] = [];
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const size = Math.max(1, workers);
  const reused = thread ? [] : idleThreads.splice(0, size);
  const started = size - reused.length;
  const pool = [...reused, ...Array.from({ length: started }, () => startClusterThread(signal, thread ?? compiledModule("src/quant/cluster-worker.js")))].map((t) => ({
    thread: t,
    running: [] as { id: number; m: JobMessage; lent: boolean }[],
    /** elements of the jobs in `running` */
    queued: 0,
  }));
  // the probe's forward runs beside the workers: its engine then polls only briefly before sleeping
  threadsBesideEngine(size);
  let next = 0, received = 0, inFlight = 0, stopped = false;
  // this thread's reads of the weights: the caller times them as reads, so they are not clustering time
  let loading = 0;
  // Weights go to the workers through a few shared buffers reused job after job (one per job in
  // flight, grown to the largest weight): fresh memory per weight costs a page fault per 4 KiB on
  // first touch and a collection after, more than the copy itself.
  const spare: SharedArrayBuffer[] = [];
  const inputBuffer = (bytes: number) => {
    const at = spare.findIndex((b) => b.byteLength >= bytes);
    if (at >= 0) return spare.splice(at, 1)[0]!;
    // none fits: a larger one replaces the smallest, so at most one buffer per job in flight lives
    spare.sort((a, b) => a.byteLength - b.byteLength).shift();
    return new SharedArrayBuffer(Math.max(bytes, 1 << 20));
  };
  /**
   * The job's weight in shared memory: already there (the read cache's prefetched bytes, a kept
   * width slice), lent to the worker as it is; otherwise copied there, never transferred: the
   * loader's array may be a cache's own.
   */
  const loadShared = (job: ClusterJob): { data: Float32Array | Uint16Array; lent: boolean } => {
    const loaded = job.load();
    if (loaded.buffer instanceof SharedArrayBuffer) return { data: loaded, lent: true };
    const buf = inputBuffer(loaded.byteLength);
    const data = loaded instanceof Uint16Array ? new Uint16Array(buf, 0, loaded.length) : new Float32Array(buf, 0, loaded.length);
    data.set(loaded);
    return { data, lent: false };
  };
  const shared = sharedArena();
  const submit = (w: (typeof pool)[number]) => {
    const id = next++;
    const { plan } = todo[id]!;
    // a weight read (on the weight-read clock), not clustering
    const r0 = performance.now();
    const { data, lent } = timedRead(() => loadShared(todo[id]!));
    loading += performance.now() - r0;
    const m: JobMessage = {
      data, plan,
      status: shared(Int32Array, 2), sse: shared(Float64Array, 1),
      indices: shared(Uint8Array, data.length), nibbles: shared(Uint8Array, plan.bits === 4 ? Math.ceil(data.length / 2) : 0), lut: shared(Float32Array, plan.groups * (1 << plan.bits)),
      error: shared(Uint8Array, ERROR_BYTES),
      corrections: undefined,
      signal,
    };
    const fixes = todo[id]!.corrections ?? [];
    if (fixes.length) {
      const rows = plan.layout.rowBase.length;
      const r1 = performance.now();
      m.corrections = { mean: fixes[0]!.mean, old: fixes.map((f) => f.old?.()), out: shared(Float32Array, rows * fixes.length) };
      loading += performance.now() - r1;
    }
    w.thread.worker.postMessage(m);
    w.running.push({ id, m, lent });
    w.queued += data.length;
    inFlight += data.length;
  };
  // the next job goes to the worker with the least queued, while one has room for it
  const fill = () => {
    while (next < todo.length) {
      const size = elementsOf(todo[next]!);
      const room = pool.filter((w) => w.running.length < DEPTH || (background && inFlight + size <= BACKGROUND_ELEMENTS));
      if (!room.length) return;
      submit(room.reduce((a, b) => (b.queued < a.queued ? b : a)));
    }
  };
  const collect = (id: number, m: JobMessage, lent: boolean) => {
    if (Atomics.load(m.status, 0) === JOB.FAILED) {
      const [name, ...rest] = new TextDecoder().decode(m.error.slice(0, m.status[1]!)).split("\n");
      throw clusteringFailure(todo[id]!.source, { name: name!, message: rest.join("\n") });
    }
    if (!lent) spare.push(m.data.buffer as SharedArrayBuffer); // a lent buffer is the cache's: never reused
    // the indices stay in the shared buffer the worker wrote (no thread touches it again)
    into.set(todo[id]!.source, { indices: m.indices, lut: m.lut.slice(), sse: m.sse[0]! });
    // every target writes the packed form: packed once, on the worker
    if (m.nibbles.length) rememberPackedU4(m.indices, m.nibbles);
    const rows = todo[id]!.plan.layout.rowBase.length;
    todo[id]!.corrections?.forEach((f, k) => f.into.set(f.source, m.corrections!.out.slice(k * rows, (k + 1) * rows)));
    received++; // not inside the optional call below: without a callback its arguments are never evaluated
    onProgress?.(received, todo.length);
  };
  /** Stores every finished job; true if there was one. */
  const collectFinished = () => {
    let progressed = false;
    for (const w of pool)
      for (let i = 0; i < w.running.length; ) {
        const r = w.running[i]!;
        const status = Atomics.load(r.m.status, 0);
        if (status === JOB.FREE || status === JOB.CLAIMED) {
          i++;
          continue;
        }
        w.running.splice(i, 1);
        w.queued -= r.m.data.length;
        inFlight -= r.m.data.length;
        collect(r.id, r.m, r.lent);
        progressed = true;
      }
    fill();
    return progressed;
  };
  /** Ends the pool: its threads wait for the next pool when every job was collected, else they are stopped. */
  const stop = (release = false) => {
    if (stopped) return;
    stopped = true;
    threadsBesideEngine(-size);
    for (const w of pool) release && !thread ? idleThreads.push(w.thread) : void w.thread.worker.terminate();
  };
  // clustering done on this thread counts itself (src/quant/layer.ts clusterGroups)
  let clusteredHere = 0, takenOver = 0;
  const counted = () => {
    addClusteringSeconds((performance.now() - t0 - loading) / 1000 - clusteredHere);
    loading = clusteredHere = 0;
  };
  /** Runs `step` as clustering time; any error stops the workers. */
  const timed = <T>(step: () => T, last = false): T => {
    if (stopped) throw new Error("internal: a clustering pool was used after it stopped");
    t0 = performance.now();
    try {
      return step();
    } catch (e) {
      stop();
      throw e;
    } finally {
      if (last) stop(true); // after a failure the catch above has stopped them already
      counted();
    }
  };
  /**
   * A job sent to a worker that none has started, claimed for this thread: `source`'s when it is
   * one, else the one sent last (the workers take theirs first to last).
   */
  const claimQueued = (source?: string): JobMessage | undefined => {
    let last: { id: number; m: JobMessage } | undefined;
    for (const w of pool)
      for (const r of w.running) {
        if (Atomics.load(r.m.status, 0) !== JOB.FREE) continue;
        if (todo[r.id]!.source === source) return claimJob(r.m) ? r.m : undefined;
        if (!last || r.id > last.id) last = r;
      }
    return last && claimJob(last.m) ? last.m : undefined;
  };
  /** Throws if a thread with jobs has ended (its heap ran out, say): those jobs would never finish. */
  const checkThreads = () => {
    for (const w of pool)
      if (w.running.length && !threadAlive(w.thread.tid))
        throw new Error(`a clustering thread stopped while it had ${todo[w.running[0]!.id]!.source} (out of memory?); its jobs cannot finish`);
  };
  /** Blocks until `done`, clustering queued jobs on this thread rather than sleeping while there are any. */
  const waitUntil = (done: () => boolean, source?: string) => {
    while (!done()) {
      const seen = Atomics.load(signal, 0);
      if (collectFinished()) continue;
      const job = claimQueued(source);
      if (!job) {
        if (Atomics.wait(signal, 0, seen, LIVENESS_CHECK_MS) === "timed-out") checkThreads();
        continue;
      }
      const before = clusteringClock();
      takenOver++;
      runClusterJob(job);
      clusteredHere += clusteringClock() - before;
    }
  };
  timed(() => {
    // every thread started for this pool says it is ready (one bump each) before any work is sent:
    // a thread that cannot start would otherwise leave this one waiting for results that never come
    const deadline = Date.now() + START_MS;
    while (Atomics.load(signal, 0) < started) {
      if (Date.now() > deadline) throw new Error("internal: the clustering worker threads did not start within 30 s");
      Atomics.wait(signal, 0, Atomics.load(signal, 0), 100);
    }
  });
  return {
    add: (jobs) =>
      timed(() => {
        todo.push(...jobs);
        fill();
      }),
    poll: () => timed(collectFinished),
    waitFor: (source) =>
      timed(() => {
        if (!into.has(source) && !todo.some((j) => j.source === source)) throw new Error(`internal: no clustering job for ${source}`);
        waitUntil(() => into.has(source), source);
      }),
    finish: () => timed(() => waitUntil(() => received === todo.length), true),
    cancel: stop,
    get takenOver() {
      return takenOver;
    },
  };
}
