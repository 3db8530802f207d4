// ONNX benchmarks: the onnx pipeline against the unoptimized baseline on onnxruntime-node, ditc's
// reader-interpreter against onnxruntime on the same file, and the full preset end to end.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PASSES } from "../passes/index.js";
import { syntheticInputs } from "../src/driver/init.js";
import { compile, type QuantizeMode } from "../src/driver/compile.js";
import { writeTensorFile } from "../src/checkpoint/tensors.js";
import { runGraph } from "../src/interp/interpreter.js";
import { buildModel } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";
import { buildPipeline } from "../src/pipeline/pass.js";
import { runPipeline } from "../src/pipeline/run.js";
import { emitOnnx } from "../targets/onnx/emit.js";
import { openOrtSession } from "../targets/onnx/ort.js";
import { onnxBaselinePipeline, onnxPipeline } from "../targets/onnx/pipeline.js";
import { readOnnx } from "../targets/onnx/read.js";

const here = dirname(fileURLToPath(import.meta.url));

async function median(fn: () => Promise<unknown> | unknown, reps: number): Promise<number> {
  await fn(); // warm-up
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push((performance.now() - t0) / 1000);
  }
  return t.sort((a, b) => a - b)[Math.floor(reps / 2)]!;
}

/** ORT latency of the onnx pipeline against the no-pass baseline, runs interleaved so load drift hits both. */
async function ortPair(dir: string, resolution: number, reps: number) {
  const c = presetConfig("mini");
  const latentSize: [number, number] = [resolution / 8, resolution / 8];
  const inputs = syntheticInputs(c, 0, { batch: 1, latentSize, contextTokens: c.contextTokens });
  const g = buildModel(syntheticSource(c, 0), { width: 1, latentSize }).graph;
  const sessions = [];
  for (const p of [onnxPipeline, onnxBaselinePipeline]) {
    const path = join(dir, `${p.name}-${resolution}.onnx`);
    emitOnnx(runPipeline(g, buildPipeline(p, PASSES)), path, { externalData: "never" });
    const s = await openOrtSession(path);
    await s.run(inputs);
    sessions.push({ name: p.name, s, times: [] as number[], path });
  }
  for (let i = 0; i < reps; i++)
    for (const x of sessions) {
      const t0 = performance.now();
      await x.s.run(inputs);
      x.times.push((performance.now() - t0) / 1000);
    }
  const med = (t: number[]) => +[...t].sort((a, b) => a - b)[Math.floor(t.length / 2)]!.toFixed(4);
  for (const x of sessions) await x.s.release();
  const [fast, base] = sessions.map((x) => med(x.times)) as [number, number];
  return { resolution, tokens: (resolution / 16) ** 2, onnxPipeline: fast, noPassesBaseline: base, speedup: +(base / fast).toFixed(2), path: sessions[0]!.path, inputs };
}

export async function benchOnnxMini(quick: boolean) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-onnx-"));
  try {
    const rows = [];
    for (const res of quick ? [256] : [256, 512, 1024]) {
      const r = await ortPair(dir, res, quick ? 5 : res >= 1024 ? 5 : 15);
      console.log(`ORT mini @${res} (${r.tokens} tokens): onnx pipeline ${r.onnxPipeline}s vs baseline ${r.noPassesBaseline}s (${r.speedup}x)`);
      rows.push(r);
    }
    const first = rows[0]!;
    const read = readOnnx(first.path);
    const interp = await median(() => runGraph(read.graph, first.inputs), quick ? 1 : 3);
    read.close();
    const r = {
      model: "mini, width 1, batch 1, fp32",
      ortLatency: rows.map(({ path: _p, inputs: _i, ...x }) => x),
      readerInterpreter: { resolution: first.resolution, seconds: +interp.toFixed(3), ortSeconds: first.onnxPipeline, throughputVsOrt: +(first.onnxPipeline / interp).toFixed(3) },
    };
    console.log(`reader-interpreter @${first.resolution}: ${r.readerInterpreter.seconds}s = ${(100 * r.readerInterpreter.throughputVsOrt).toFixed(1)}% of ORT's throughput`);
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function benchOnnxFull(res = 256) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-full-"));
  try {
    const child = (...a: string[]) => JSON.parse(execFileSync(process.execPath, [join(here, "onnx-child.js"), ...a], { encoding: "utf8", maxBuffer: 1 << 20 }));
    const compiled = child("compile-full", dir, String(res));
    console.log(`full -> ONNX fp32 @${res}: ${compiled.seconds.toFixed(1)} s, ${(compiled.bytes / 2 ** 30).toFixed(2)} GiB, peak RSS ${(compiled.maxRssBytes / 2 ** 30).toFixed(2)} GiB`);
    const ran = child("ort-run", join(dir, "w1000", "model.onnx"), String(res));
    console.log(`  onnxruntime: load ${ran.loadSeconds.toFixed(1)} s, forward ${ran.runSeconds.toFixed(2)} s, peak RSS ${(ran.maxRssBytes / 2 ** 30).toFixed(2)} GiB, finite ${ran.finite}`);
    return { resolution: res, compile: compiled, onnxruntime: ran };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Palettized ONNX on ORT: the Cast+Gather LUT chain, run with ORT's default constant folding
 * (which expands it to dense fp32 weights at load) and with folding off (weights stay 4-bit in
 * memory and are decoded on every run), against the dense fp32 model. Each in its own process.
 */
export function benchOnnxPalettized() {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-pal-"));
  try {
    const c = presetConfig("mini");
    const src = syntheticSource(c, 0);
    const inputsPath = join(dir, "in.safetensors");
    writeTensorFile(inputsPath, syntheticInputs(c, 0, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens }));
    const rows: Record<string, unknown>[] = [];
    for (const quantize of [{ mode: "none" }, { mode: "k4" }] as QuantizeMode[]) {
      const out = join(dir, quantize.mode);
      const { report } = compile({ source: src, ref: { preset: "mini", seed: 0 }, targets: ["onnx"], widths: [1], precision: "fp32", out, quantize });
      const model = join(out, report.artifacts[0]!.path);
      for (const folding of quantize.mode === "none" ? ["on"] : ["on", "off"]) {
        const r = JSON.parse(execFileSync(process.execPath, [join(here, "onnx-child.js"), "ort-session", model, inputsPath, folding], { encoding: "utf8" }));
        const row = { weights: quantize.mode === "none" ? "fp32" : "k4 LUT (Cast+Gather)", constantFolding: folding, fileBytes: statSync(model).size, ...r };
        rows.push(row);
        console.log(`ORT mini ${row.weights}, folding ${folding}: file ${(row.fileBytes / 2 ** 20).toFixed(1)} MiB, load ${r.loadSeconds.toFixed(2)} s, session +${(r.sessionBytes / 2 ** 20).toFixed(0)} MiB, run ${(r.runSeconds * 1000).toFixed(1)} ms`);
      }
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
