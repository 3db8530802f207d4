// TFLite benchmarks: the same mini model with float, palettized (in-graph lookup) and int8
// per-channel weights in LiteRT.js and the native LiteRT, interleaved in one run; and the full
// preset at fp32 (> 2 GiB, weights after the flatbuffer) compiled and run by the native LiteRT.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, type QuantizeMode } from "../src/driver/compile.js";
import { syntheticInputs } from "../src/driver/init.js";
import { compareOutputs } from "../src/driver/verify.js";
import { runFloatModel } from "../src/driver/run.js";
import { latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";
import { LiteRtProcess } from "../targets/tflite/litert.js";
import { nativeLiteRtUnavailable, runNativeLiteRt } from "../targets/tflite/litert-native.js";
import { operatorCounts, parseTflite } from "../targets/tflite/parse.js";

const here = dirname(fileURLToPath(import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Which weight form LiteRT runs fastest: float32, k4 palette (GATHER every invoke), int8 (DEQUANTIZE once). */
export async function benchTfliteWeights(quick: boolean) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-tflite-"));
  const litert = new LiteRtProcess();
  try {
    const c = presetConfig("mini"), src = syntheticSource(c, 0);
    const inputs = syntheticInputs(c, 0, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
    const forms: [string, QuantizeMode][] = [["fp32", { mode: "none" }], ["k4 palette (CAST + GATHER)", { mode: "k4" }], ["k8 palette", { mode: "k8" }], ["int8 per-channel (DEQUANTIZE)", { mode: "int8" }]];
    const models = forms.map(([name, quantize]) => {
      const out = join(dir, quantize.mode);
      const { report } = compile({ source: src, ref: { preset: "mini", seed: 0 }, targets: ["tflite"], widths: [1], precision: "fp32", out, quantize });
      return { name, path: join(out, report.artifacts[0]!.path), bytes: report.artifacts[0]!.bytes };
    });
    const reps = quick ? 3 : 9;
    const wasm = new Map<string, number[]>(), load = new Map<string, number>();
    // interleaved rounds, so machine noise falls on every form alike
    for (let round = 0; round < 3; round++)
      for (const m of models) {
        const r = await litert.run(m.path, inputs, reps);
        if (r.errors.length) throw new Error(`LiteRT: ${r.errors[0]}`);
        wasm.set(m.name, [...(wasm.get(m.name) ?? []), ...r.runMs.slice(1)]);
        load.set(m.name, r.loadMs);
      }
    const rows = models.map((m) => {
      const native = nativeLiteRtUnavailable() ? undefined : runNativeLiteRt(m.path, inputs, { repeat: reps + 1 });
      return {
        weights: m.name, fileBytes: m.bytes,
        litertJs: { loadMs: +load.get(m.name)!.toFixed(1), runMs: +median(wasm.get(m.name)!).toFixed(1) },
        litertNative: native ? { loadMs: +(native.loadSeconds * 1000).toFixed(1), runMs: +(median(native.runSeconds.slice(1)) * 1000).toFixed(2), peakRssBytes: native.peakRssBytes } : null,
      };
    });
    const base = rows[0]!;
    for (const r of rows) {
      Object.assign(r, { litertJsSlowdownVsFp32: +(r.litertJs.runMs / base.litertJs.runMs).toFixed(2), ...(r.litertNative && base.litertNative ? { nativeSlowdownVsFp32: +(r.litertNative.runMs / base.litertNative.runMs).toFixed(2) } : {}) });
      console.log(`TFLite mini ${r.weights}: ${(r.fileBytes / 2 ** 20).toFixed(1)} MiB, LiteRT.js ${r.litertJs.runMs} ms${r.litertNative ? `, native LiteRT ${r.litertNative.runMs} ms` : ""}`);
    }
    const fastest = rows.slice(1).sort((a, b) => a.litertJs.runMs - b.litertJs.runMs)[0]!;
    return { preset: "mini", width: 1, rows, fastestCompressedInLiteRtJs: fastest.weights };
  } finally {
    litert.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The full preset at fp32: a > 2 GiB .tflite, its operator list, and a forward in the native LiteRT. */
export function benchTfliteFull(res = 256) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-tflite-full-"));
  try {
    const compiled = JSON.parse(execFileSync(process.execPath, [join(here, "tflite-child.js"), "compile-full", dir, String(res)], { encoding: "utf8", maxBuffer: 1 << 20 }));
    const path = join(dir, compiled.path);
    const parsed = parseTflite(path);
    parsed.close();
    const counts = operatorCounts(parsed.model);
    const appended = parsed.model.buffers.filter((b) => b.kind === "appended").length;
    console.log(`full -> TFLite fp32 @${res}: ${compiled.seconds.toFixed(1)} s, ${(compiled.bytes / 2 ** 30).toFixed(2)} GiB (${appended} buffers after the flatbuffer), peak RSS ${(compiled.maxRssBytes / 2 ** 30).toFixed(2)} GiB; TRANSPOSE ${counts.transposes.total} (${counts.transposes.inBlocks} in blocks)`);
    let native: Record<string, unknown> | null = null;
    if (!nativeLiteRtUnavailable()) {
      const c = presetConfig("full");
      const inputs = syntheticInputs(c, 0, { batch: 1, latentSize: latentForResolution(res), contextTokens: c.contextTokens });
      const r = runNativeLiteRt(path, inputs, { repeat: 2 });
      const ref = runFloatModel(syntheticSource(c, 0), 1, inputs);
      const parity = compareOutputs(r.velocity.data, ref.data);
      native = { loadSeconds: +r.loadSeconds.toFixed(1), runSeconds: r.runSeconds.map((s) => +s.toFixed(2)), peakRssBytes: r.peakRssBytes, maxRelErrVsIr: parity.maxRelErr, finite: parity.finite };
      console.log(`  native LiteRT: load ${r.loadSeconds.toFixed(1)} s, forward ${r.runSeconds.map((s) => s.toFixed(2)).join(" / ")} s, peak RSS ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB, max rel err vs the IR interpreter ${parity.maxRelErr.toExponential(2)}`);
    }
    return { resolution: res, compile: { ...compiled, appendedBuffers: appended }, operators: counts, litertNative: native };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
