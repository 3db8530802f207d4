// `npm run bench`: kernel and model timings written to bench/results.json, each compared with a
// baseline measured in the same run. Flags: --quick (small sizes only), --skip-full (no 1.6B init),
// --only=a,b (run those sections and merge them into the existing file, each with its date).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { syntheticInputs } from "../src/driver/init.js";
import { gemmNaive, gemmNN } from "../src/kernels/gemm.js";
import { runGraph } from "../src/interp/interpreter.js";
import { buildModel } from "../src/model/build.js";
import { presetConfig, WIDTHS } from "../src/model/config.js";
import { paramSpecs } from "../src/model/params.js";
import { syntheticSource, type WeightSource } from "../src/model/weights.js";
import { machine } from "./machine.js";
import { benchOnnxFull, benchOnnxMini, benchOnnxPalettized } from "./onnx.js";
import { benchQuantFull, benchQuantQuality } from "./quant.js";
import { benchCoremlFull } from "./coreml.js";
import { benchTfliteFull, benchTfliteWeights } from "./tflite.js";
import { benchEngineFull, benchEngineGemm, benchEngineMini } from "./engine.js";
import { benchSamplingQuality } from "./sampling.js";
import { benchLeanFull } from "./lean.js";
import { benchShardsFull } from "./shards.js";
import { benchCompileFullMixed } from "./compile-full.js";
import { benchTechniques } from "./techniques.js";
import { benchProbeFull } from "./probe-full.js";
import { benchPresetCompile } from "./preset-compile.js";
import { graphStats } from "../src/driver/inspect.js";
import { applyPipeline, PIPELINE_NAMES } from "../src/driver/pipelines.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const args = new Set(process.argv.slice(2));
const quick = args.has("--quick");

function timeIt(fn: () => void, reps: number): number {
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t.push((performance.now() - t0) / 1000);
  }
  return t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!; // median
}

function benchMatmul(peak: number) {
  const rows = [];
  for (const n of quick ? [128, 256] : [128, 256, 512, 1024]) {
    const A = Float32Array.from({ length: n * n }, Math.random), B = Float32Array.from({ length: n * n }, Math.random);
    const C = new Float32Array(n * n);
    const flops = 2 * n ** 3;
    gemmNN(A, 0, B, 0, C, 0, n, n, n); // warm up the JIT
    const blocked = timeIt(() => gemmNN(A, 0, B, 0, C, 0, n, n, n), 3);
    const naive = n <= 512 ? timeIt(() => gemmNaive(A, B, C, n, n, n), n <= 256 ? 3 : 1) : undefined;
    const g = flops / blocked / 1e9;
    rows.push({
      size: `${n}x${n}x${n}`,
      blockedGflops: +g.toFixed(2),
      naiveGflops: naive ? +(flops / naive / 1e9).toFixed(2) : null,
      speedupOverNaive: naive ? +(naive / blocked).toFixed(1) : null,
      fractionOfCorePeak: +(g / peak).toFixed(3),
    });
    console.log(`matmul ${n}^3: ${g.toFixed(2)} GFLOP/s${naive ? `, ${(naive / blocked).toFixed(1)}x the naive loop` : ""}, ${((100 * g) / peak).toFixed(1)}% of one core's peak`);
  }
  return rows;
}

/** Weights generated once and kept, so forward timings measure the interpreter alone. */
function cachedSource(src: WeightSource): WeightSource {
  const cache = new Map<string, Float32Array>();
  for (const s of paramSpecs(src.config)) cache.set(s.name, src.read(s));
  return { ...src, read: (s) => cache.get(s.name)! };
}

function benchForward(preset: "mini" | "micro") {
  const c = presetConfig(preset);
  const t0 = performance.now();
  const src = cachedSource(syntheticSource(c, 0));
  const generateSeconds = (performance.now() - t0) / 1000;
  const inputs = syntheticInputs(c, 0, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
  const out: Record<string, number> = {};
  for (const w of WIDTHS) {
    const g = buildModel(src, { width: w }).graph;
    runGraph(g, inputs); // warm-up
    out[`${w}`] = +timeIt(() => runGraph(g, inputs), quick ? 1 : 3).toFixed(3);
    console.log(`${preset} forward at width ${w}: ${out[`${w}`]} s (batch 1, latent ${c.latentSize.join("x")})`);
  }
  return { preset, batch: 1, latent: c.latentSize, syntheticWeightsSeconds: +generateSeconds.toFixed(2), forwardSeconds: out };
}

/** The inspect figures of the full model at 1024² after each pipeline, side by side. */
function benchPipelines() {
  const c = presetConfig("full");
  const out: Record<string, unknown> = {};
  for (const name of PIPELINE_NAMES) {
    const t0 = performance.now();
    const g = applyPipeline(buildModel(syntheticSource(c, 0), { width: 1, latentSize: [128, 128] }).graph, name);
    const s = graphStats(g);
    out[name] = { seconds: +((performance.now() - t0) / 1000).toFixed(2), nodes: s.nodes, transposes: s.transposes, maxRank: s.maxRank, largestTensorBytes: s.largestTensorBytes, largestScoreBytesFp16: s.largestScoreBytesFp16, ops: s.ops };
    console.log(`full @1024 --pipeline ${name}: ${s.nodes} nodes, transposes ${s.transposes.total} (${s.transposes.inBlocks} in blocks), max rank ${s.maxRank}, largest fp16 score ${(s.largestScoreBytesFp16 / 2 ** 20).toFixed(1)} MiB`);
  }
  return out;
}

function benchInitFull() {
  const out = join(tmpdir(), `ditc-bench-${process.pid}.safetensors`);
  const r = JSON.parse(execFileSync(process.execPath, [join(here, "init-child.js"), "full", "f16", out], { encoding: "utf8", maxBuffer: 1 << 20 }));
  console.log(`init --preset full --dtype f16: ${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB for ${(r.bytes / 2 ** 30).toFixed(2)} GiB written; width-1 params from the header ${r.headerParamsWidth1} (expected ${r.expectedWidth1})`);
  console.log(`  draws of ${(r.draws.values / 1e6).toFixed(0)} M values: one call per value on one thread ${r.draws.perValueSeconds.toFixed(1)} s, batched on ${r.draws.threads} threads ${r.draws.batchedSeconds.toFixed(1)} s (${r.draws.speedup.toFixed(2)}x)`);
  return { ...r, seconds: +r.seconds.toFixed(2), rssOverFileSize: +(r.maxRssBytes / r.bytes).toFixed(3) };
}

const m = machine();
console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.simd}, ~${m.peakGflopsPerCore} GFLOP/s per core peak, node ${m.node}`);
const full = !quick && !args.has("--skip-full");
const sections: Record<string, () => unknown> = {
  matmul: () => benchMatmul(m.peakGflopsPerCore),
  engineGemm: () => benchEngineGemm(m, quick),
  engineMini: () => benchEngineMini(quick),
  engineFull1024: () => (full ? benchEngineFull() : null),
  samplingQuality: () => benchSamplingQuality(quick),
  leanFull1024: () => benchLeanFull(),
  techniques: () => benchTechniques(quick),
  probeFull: () => benchProbeFull(full ? [256, 1024] : [256]),
  shardsFull: () => (full ? benchShardsFull() : null),
  compileFullMixed: () => (full ? benchCompileFullMixed() : null),
  forward: () => [benchForward("micro"), benchForward("mini")],
  pipelinesFull1024: () => benchPipelines(),
  initFullF16: () => (full ? benchInitFull() : null),
  presetCompileMini: () => benchPresetCompile("mini", quick ? 1 : 3),
  onnxMini: () => benchOnnxMini(quick),
  onnxPalettized: () => benchOnnxPalettized(),
  onnxFull256: () => (full ? benchOnnxFull(256) : null),
  quantQuality: () => benchQuantQuality(),
  quantFull: () => (full ? benchQuantFull() : null),
  coremlFull1024: () => (full ? benchCoremlFull(1024) : null),
  tfliteWeights: () => benchTfliteWeights(quick),
  tfliteFull256: () => (full ? benchTfliteFull(256) : null),
};
const only = [...args].find((a) => a.startsWith("--only="))?.slice(7).split(",");
const unknown = only?.filter((n) => !Object.hasOwn(sections, n));
if (unknown?.length) {
  console.error(`unknown bench section(s) ${unknown.join(", ")}; sections: ${Object.keys(sections).join(", ")}`);
  process.exit(2);
}
const file = join(root, "bench", "results.json");
const date = new Date().toISOString();
let results: Record<string, unknown>;
if (only) {
  // the other sections keep the numbers of the run that measured them
  results = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
  // `machine` stays the full run's: the VM moves between hosts, so each section re-measured
  // records its own
  const remeasured = { ...(results.remeasured as Record<string, string> | undefined) };
  const remeasuredOn = { ...(results.remeasuredOn as Record<string, unknown> | undefined) };
  for (const n of only) (results[n] = await sections[n]!()), (remeasured[n] = date), (remeasuredOn[n] = m);
  results.remeasured = remeasured;
  results.remeasuredOn = remeasuredOn;
  results.machine ??= m;
} else {
  results = { date, machine: m };
  for (const [n, run] of Object.entries(sections)) results[n] = await run();
}
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
console.log(`wrote ${file}`);
