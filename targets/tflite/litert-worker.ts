// A child process that runs .tflite files in LiteRT.js, Google's LiteRT interpreter compiled to
// WebAssembly (XNNPACK kernels), started by litert.ts. It lives in its own process so its log
// lines can be captured per model (a kernel that fails to prepare does not throw: the only sign
// is an "ERROR:" line, docs/formats/tflite.md) and its wasm heap is freed with it.
//
// Protocol (IPC, advanced serialization): parent sends {id, model, inputs: {name: {shape, data}}};
// the child answers {id, outputs?, error?, log: string[], loadMs, runMs}.
import { readFileSync } from "node:fs";
import { createRequire, Module } from "node:module";
import { dirname } from "node:path";
import vm from "node:vm";

interface Job {
  id: number;
  model: string;
  inputs: Record<string, { shape: number[]; data: Float32Array }>;
  /** timed repetitions of the run after the first (benchmarks) */
  repeat?: number;
  /** keep the compiled model for the next job on the same file (a sampler's steps) */
  keep?: boolean;
}

type Compiled = Awaited<ReturnType<typeof lrt.loadAndCompile>>;
let kept: { path: string; model: Compiled } | undefined;

// Every line the runtime prints goes to the current job's log; emscripten binds console.* when
// its glue is evaluated, so the hooks go in before LiteRT loads.
let log: string[] = [];
for (const k of ["log", "info", "warn", "error", "debug"] as const) console[k] = (...a: unknown[]) => void log.push(a.map(String).join(" "));

// LiteRT.js is written for browsers: it loads its glue with importScripts into `self`.
const g = globalThis as Record<string, unknown>;
g.self = globalThis;
g.importScripts = (url: string) => {
  const file = url.startsWith("file:") ? new URL(url).pathname : url;
  const wrapped = vm.runInThisContext(Module.wrap(readFileSync(file, "utf8")), { filename: file }) as (...a: unknown[]) => void;
  const mod = { exports: {} as unknown };
  wrapped(mod.exports, createRequire(file), mod, file, dirname(file));
  g.ModuleFactory = mod.exports;
};

const require = createRequire(import.meta.url);
const lrt = await import("@litertjs/core");
const wasmDir = dirname(require.resolve("@litertjs/core/package.json")) + "/wasm/";
await lrt.loadLiteRt(wasmDir);
const startupLog = log;

process.on("message", async (job: Job) => {
  log = [];
  const reply: Record<string, unknown> = { id: job.id };
  try {
    const t0 = performance.now();
    if (kept && (kept.path !== job.model || !job.keep)) {
      kept.model.delete();
      kept = undefined;
    }
    const model = kept?.model ?? (await lrt.loadAndCompile(new Uint8Array(readFileSync(job.model)), { accelerator: "wasm" }));
    if (job.keep) kept = { path: job.model, model };
    reply.loadMs = performance.now() - t0;
    try {
      const feeds = model.getInputDetails().map((d) => {
        const t = job.inputs[d.name];
        if (!t) throw new Error(`the model wants input "${d.name}", which was not given`);
        return new lrt.Tensor(t.data, t.shape);
      });
      let outs: InstanceType<typeof lrt.Tensor>[] = [];
      const runs: number[] = [];
      for (let i = 0; i <= (job.repeat ?? 0); i++) {
        for (const o of outs) o.delete();
        const t1 = performance.now();
        outs = await model.run(feeds);
        runs.push(performance.now() - t1);
      }
      reply.runMs = runs;
      reply.outputs = Object.fromEntries(model.getOutputDetails().map((d, i) => [d.name, { shape: Array.from(outs[i]!.type.layout.dimensions), data: Float32Array.from(outs[i]!.toTypedArray() as Float32Array) }]));
      for (const t of [...feeds, ...outs]) t.delete();
    } finally {
      if (!job.keep) model.delete();
    }
  } catch (e) {
    reply.error = (e as Error).message ?? String(e);
  }
  reply.log = log;
  process.send!(reply);
});
process.send!({ ready: true, log: startupLog });
