// The reference engine against the runtime it checks, in one run: gemm throughput at the model's
// shapes, the mini model at 256² and 1024² (IR interpreter, each reader-interpreter, the old scalar
// kernels) against onnxruntime-node on ditc's ONNX of the same weights, interleaved, and the full
// preset at 1024² in child processes (one float forward; a mixed-bit compile with its I/O floor).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { syntheticInputs } from "../src/driver/init.js";
import { applyPipeline, BACKENDS } from "../src/driver/pipelines.js";
import { runGraph } from "../src/interp/interpreter.js";
import { setKernelMode } from "../src/kernels/fast.js";
import { gemmNT } from "../src/kernels/gemm.js";
import { engineInfo, setThreads } from "../src/kernels/simd/engine.js";
import { gemmFast } from "../src/kernels/simd/gemm.js";
import { buildModel } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { paramSpecs } from "../src/model/params.js";
import { syntheticSource, type WeightSource } from "../src/model/weights.js";
import { loadOrt } from "../targets/onnx/ort.js";
import type { Machine } from "./machine.js";

const here = dirname(fileURLToPath(import.meta.url));
const med = (t: number[]) => [...t].sort((a, b) => a - b)[Math.floor(t.length / 2)]!;
const r3 = (x: number) => +x.toFixed(3);

/** gemm GFLOP/s at the shapes the models run (M tokens x N outputs x K inputs), 1 and 2 threads, and the scalar kernel. */
export function benchEngineGemm(m: Machine, quick: boolean) {
  const shapes: [string, number, number, number][] = [
    ["mini fc1 @1024", 4096, 1024, 256], ["mini fc2 @1024", 4096, 256, 1024], ["mini q @1024", 4096, 256, 256],
    ["full q @1024", 4096, 2048, 2048], ["full fc1 @1024", 4096, 8192, 2048], ["full mid fc1 @1024", 1024, 6144, 2048],
  ];
  const rows = [];
  for (const [name, M, N, K] of quick ? shapes.slice(0, 3) : shapes) {
    const A = Float32Array.from({ length: M * K }, () => Math.random() - 0.5), W = Float32Array.from({ length: N * K }, () => Math.random() - 0.5);
    const C = new Float32Array(M * N);
    const flops = 2 * M * N * K;
    const run = () => gemmFast(M, N, K, { data: A, off: 0, rs: K, cs: 1 }, { kind: "f32", data: W, off: 0, sK: 1, sN: K }, { data: C, off: 0, rs: N, cs: 1 });
    const gf: Record<number, number> = {};
    for (const t of [1, 2]) {
      setThreads(t);
      run();
      const times = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        run();
        times.push((performance.now() - t0) / 1000);
      }
      gf[t] = flops / med(times) / 1e9;
    }
    setThreads(m.cores);
    const s0 = performance.now();
    if (M * N * K <= 2 ** 31) gemmNT(A, 0, W, 0, C, 0, M, N, K);
    const scalar = M * N * K <= 2 ** 31 ? flops / ((performance.now() - s0) / 1000) / 1e9 : null;
    rows.push({
      shape: name, M, N, K,
      gflops1: +gf[1]!.toFixed(1), gflops2: +gf[2]!.toFixed(1),
      shareOfPeak1: +(gf[1]! / m.peakGflopsPerCore).toFixed(3), shareOfPeak2: +(gf[2]! / (2 * m.peakGflopsPerCore)).toFixed(3),
      scalarGflops: scalar === null ? null : +scalar.toFixed(2),
    });
    console.log(`gemm ${name} (${M}x${N}x${K}): ${gf[1]!.toFixed(1)} GFLOP/s on 1 thread, ${gf[2]!.toFixed(1)} on 2 (${((100 * gf[2]!) / (2 * m.peakGflopsPerCore)).toFixed(0)}% of 2 cores' FMA peak)${scalar ? `; scalar JS ${scalar.toFixed(2)}` : ""}`);
  }
  return { relaxedSimd: engineInfo().relaxedSimd, rows };
}

/**
 * The mini model (width 1, batch 1) at 256² and 1024²: ditc's IR interpreter and reader-
 * interpreters against onnxruntime-node on ditc's ONNX of the same weights, 2 threads each, runs
 * interleaved, median of `reps`. The scalar kernels (the engine before this work) are timed once at 256².
 */
export async function benchEngineMini(quick: boolean) {
  const ort = loadOrt();
  const c = presetConfig("mini");
  const src = cached(syntheticSource(c, 0));
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-engine-"));
  const reps = quick ? 3 : 5;
  const rows = [];
  try {
    setThreads(2);
    for (const res of [256, 1024]) {
      const latentSize: [number, number] = [res / 8, res / 8];
      const model = buildModel(src, { width: 1, latentSize });
      const inputs = syntheticInputs(c, 1, { batch: 1, latentSize, contextTokens: c.contextTokens });
      // constants loaded once, so every engine times its forward and nothing else
      const graph = model.graph;
      const engines: { name: string; run: () => Promise<unknown> | unknown; times: number[] }[] = [];
      engines.push({ name: "ditc IR interpreter", run: () => runGraph(graph, inputs), times: [] });
      for (const target of ["onnx", "tflite", "coreml"] as const) {
        const b = BACKENDS[target]!;
        const path = join(dir, `mini-${res}-${b.artifact}`);
        b.emit(applyPipeline(graph, target, {}), path, { metadata: {}, externalData: "never" });
        const read = b.read(path);
        engines.push({ name: `ditc ${target} reader-interpreter`, run: () => runGraph(read.graph, inputs), times: [] });
        if (target === "onnx") {
          const s = await ort.InferenceSession.create(path, { intraOpNumThreads: 2, logSeverityLevel: 3, extra: { session: { "intra_op.allow_spinning": "0" } } });
          const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, new ort.Tensor("float32", t.data, [...t.shape])]));
          engines.push({ name: "onnxruntime-node", run: () => s.run(feeds), times: [] });
        }
      }
      for (const e of engines) await e.run(); // warm-up
      for (let i = 0; i < reps; i++)
        for (const e of engines) {
          const t0 = performance.now();
          await e.run();
          e.times.push((performance.now() - t0) / 1000);
        }
      const ortSeconds = med(engines.find((e) => e.name === "onnxruntime-node")!.times);
      const row: Record<string, unknown> = { resolution: res, tokens: (res / 16) ** 2, ortSeconds: r3(ortSeconds), engines: {} as Record<string, unknown> };
      for (const e of engines) {
        if (e.name === "onnxruntime-node") continue;
        const s = med(e.times);
        (row.engines as Record<string, unknown>)[e.name] = { seconds: r3(s), throughputVsOrt: r3(ortSeconds / s) };
        console.log(`mini @${res}: ${e.name} ${s.toFixed(3)} s = ${(ortSeconds / s).toFixed(3)}x onnxruntime's throughput (${ortSeconds.toFixed(3)} s)`);
      }
      if (res === 256 || !quick) {
        setKernelMode("scalar");
        const t0 = performance.now();
        runGraph(graph, inputs);
        const s = (performance.now() - t0) / 1000;
        setKernelMode("simd");
        row.scalarKernelsSeconds = r3(s);
        console.log(`mini @${res}: the scalar kernels (before) ${s.toFixed(2)} s`);
      }
      rows.push(row);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { model: "mini, width 1, batch 1, fp32, 2 threads", reps, rows };
}

/** Weights generated once and kept, so the IR interpreter's forward is timed without the generator. */
function cached(src: WeightSource): WeightSource {
  const cache = new Map(paramSpecs(src.config).map((s) => [s.name, src.read(s)]));
  return { ...src, read: (s) => cache.get(s.name)! };
}

/** One float forward of the full preset at 1024² (f16 checkpoint) in the IR interpreter, and ORT on its ONNX. */
export function benchEngineFull() {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-full-"));
  try {
    const child = (args: string[]) => JSON.parse(execFileSync(process.execPath, [join(here, "engine-child.js"), ...args], { encoding: "utf8", maxBuffer: 1 << 24, stdio: ["ignore", "pipe", "inherit"] }));
    const ck = join(dir, "full-f16.safetensors");
    const init = child(["init", ck]);
    const ditc = child(["forward", ck, "1024"]);
    console.log(`full @1024 IR interpreter: ${ditc.seconds.toFixed(0)} s, peak RSS ${(ditc.maxRssBytes / 2 ** 30).toFixed(2)} GiB = ${(ditc.maxRssBytes / init.weightBytesF16).toFixed(2)}x the fp16 weight bytes`);
    const onnx = child(["compile-onnx", ck, "1024", join(dir, "onnx")]);
    const ort = child(["ort", onnx.path, "1024"]);
    console.log(`full @1024 onnxruntime-node: ${ort.runSeconds.toFixed(1)} s (load ${ort.loadSeconds.toFixed(1)} s); ditc/ORT throughput ${(ort.runSeconds / ditc.seconds).toFixed(3)}`);
    return { weightBytesF16: init.weightBytesF16, ditc, ort, throughputVsOrt: r3(ort.runSeconds / ditc.seconds), rssOverF16Weights: r3(ditc.maxRssBytes / init.weightBytesF16) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
