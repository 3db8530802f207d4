// LiteRT, the real runtime the TFLite artifacts are checked against: LiteRT.js (npm
// @litertjs/core) in a child process (litert-worker.ts). Any "ERROR:" line the runtime prints
// while loading or running a model fails that run, because a kernel that fails to prepare
// returns garbage instead of throwing.
import { fork, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { compiledModule } from "../../src/io/project.js";
import { toolTimeoutSeconds } from "../../src/io/tool-process.js";
import { floatTensor, type FloatTensor } from "../../src/kernels/tensor.js";

export interface LiteRtRun {
  outputs: Record<string, FloatTensor>;
  /** every line the runtime printed while loading and running this model */
  log: string[];
  /** the "ERROR:" lines among them */
  errors: string[];
  loadMs: number;
  runMs: number[];
}

interface Reply {
  id?: number;
  ready?: boolean;
  error?: string;
  log: string[];
  outputs?: Record<string, { shape: number[]; data: Float32Array }>;
  loadMs?: number;
  runMs?: number[];
}

export function litertUnavailable(): string | undefined {
  try {
    createRequire(import.meta.url).resolve("@litertjs/core/package.json");
    return undefined;
  } catch {
    return "@litertjs/core is not installed (npm ci installs it)";
  }
}

/**
 * One LiteRT.js process running models one after another. Each run (with the process' start, for
 * the first) has a deadline, `timeoutSeconds` or DITC_TOOL_TIMEOUT_SECONDS (src/io/tool-process.ts):
 * past it the process is killed and the run, and every later one, fails saying so.
 */
export class LiteRtProcess {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private nextId = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private exited: string | undefined;
  /** why this side killed the process (a run past its deadline) */
  private stopped: string | undefined;

  constructor(private readonly o: { timeoutSeconds?: number } = {}) {
    const worker = compiledModule("targets/tflite/litert-worker.js");
    // relaxed SIMD selects LiteRT's faster SIMD build; without the flag Node 20 gets the compat build
    this.child = fork(worker, [], { execArgv: ["--experimental-wasm-relaxed-simd"], serialization: "advanced", stdio: ["ignore", "ignore", "pipe", "ipc"] });
    let stderr = "";
    this.child.stderr!.on("data", (d) => (stderr = (stderr + String(d)).slice(-4000)));
    this.ready = new Promise((resolve, reject) => {
      this.child.once("message", (m: Reply) => (m.ready ? resolve() : reject(new Error("LiteRT worker did not start"))));
      this.child.once("exit", (code) => reject(new Error(this.stopped ?? `LiteRT worker exited (${code}) while starting: ${stderr.trim()}`)));
    });
    this.ready.catch(() => {}); // run() reports it
    this.child.on("message", (m: Reply) => {
      if (m.id === undefined) return;
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
    this.child.on("exit", (code, signal) => {
      this.exited = this.stopped ?? `LiteRT worker exited (${signal ?? code})${stderr ? `: ${stderr.trim().split("\n").slice(-3).join(" ")}` : ""}`;
      for (const done of this.waiting.values()) done({ error: this.exited, log: [] });
      this.waiting.clear();
    });
  }

  /** Runs `model`; with `keep` the process keeps it compiled for the next run of the same file. */
  async run(model: string, inputs: Record<string, FloatTensor>, repeat = 0, keep = false): Promise<LiteRtRun> {
    if (this.exited) throw new Error(this.exited);
    const seconds = this.o.timeoutSeconds ?? toolTimeoutSeconds();
    const deadline = setTimeout(() => {
      this.stopped = `LiteRT did not finish within ${seconds} s and was stopped (DITC_TOOL_TIMEOUT_SECONDS sets the limit)`;
      this.child.kill("SIGKILL");
    }, seconds * 1000);
    let reply: Reply;
    try {
      await this.ready;
      if (this.exited) throw new Error(this.exited);
      const id = this.nextId++;
      reply = await new Promise<Reply>((resolve) => {
        this.waiting.set(id, resolve);
        const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { shape: [...t.shape], data: t.data }]));
        this.child.send({ id, model, inputs: feeds, repeat, keep });
      });
    } finally {
      clearTimeout(deadline);
    }
    if (reply.error) throw new Error(reply.error === this.stopped ? reply.error : `LiteRT: ${reply.error}`);
    const outputs = Object.fromEntries(Object.entries(reply.outputs ?? {}).map(([k, t]) => [k, floatTensor(t.shape, t.data)]));
    return { outputs, log: reply.log, errors: reply.log.filter((l) => /^ERROR:/m.test(l)), loadMs: reply.loadMs ?? 0, runMs: reply.runMs ?? [] };
  }

  close(): void {
    this.child.kill();
  }
}

/** Runs one model in a fresh LiteRT process; a printed ERROR: line is a failure. */
export async function runLiteRt(model: string, inputs: Record<string, FloatTensor>): Promise<Record<string, FloatTensor>> {
  const p = new LiteRtProcess();
  try {
    const r = await p.run(model, inputs);
    if (r.errors.length) throw new Error(`LiteRT reported: ${r.errors[0]}`);
    return r.outputs;
  } finally {
    p.close();
  }
}
