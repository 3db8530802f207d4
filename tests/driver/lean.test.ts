// An artifact's bytes are its weights: position tables are computed once per (head dim, grid)
// and shared by every head and layer, every distinct array is stored once, and the constants
// beyond the model's parameters stay under 1 % of the parameters' bytes — counted in the written
// files for micro and mini (256² and 1024²), and from the lowered graph for the full preset.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { constantBytes } from "../../src/driver/compile.js";
import { applyPipeline } from "../../src/driver/pipelines.js";
import { buildModel } from "../../src/model/build.js";
import { presetConfig } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { decodeCoremlModel } from "../../targets/coreml/proto.js";
import { decodeModel } from "../../targets/onnx/proto.js";
import { operatorCounts, parseTflite } from "../../targets/tflite/parse.js";

const BIN = new URL("../../bin/ditc.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-lean-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Uint8Array) => createHash("sha1").update(b).digest("hex");

/**
 * Every constant array a written file stores, as bytes (external or appended data read back); the
 * bytes of its data arrays (float, palette and int8 arrays; int32/int64 arrays are the graph's
 * shapes, axes and indices, which ONNX and TFLite store as tensors); and its cos operators.
 */
function storedArrays(target: string, path: string): { arrays: Uint8Array[]; payload: number; cosOps: number; bytesPerOp?: number } {
  if (target === "onnx") {
    const m = decodeModel(readFileSync(path));
    const arrays = m.graph!.initializer!.map((t) => {
      if (t.rawData) return t.rawData;
      const kv = new Map((t.externalData ?? []).map((e) => [e.key!, e.value!]));
      const buf = new Uint8Array(Number(kv.get("length")));
      const fd = openSync(join(path, "..", kv.get("location")!), "r");
      readSync(fd, buf, 0, buf.length, Number(kv.get("offset") ?? 0));
      closeSync(fd);
      return buf;
    });
    const isData = m.graph!.initializer!.map((t) => t.dataType !== 6 && t.dataType !== 7);
    return { arrays, payload: arrays.reduce((n, a, i) => n + (isData[i] ? a.length : 0), 0), cosOps: m.graph!.node!.filter((n) => n.opType === "Cos").length };
  }
  if (target === "tflite") {
    const p = parseTflite(path);
    try {
      const intBuffers = new Set(p.model.subgraphs[0]!.tensors.filter((t) => t.type === 2 || t.type === 4).map((t) => t.buffer));
      let payload = 0;
      const arrays = p.model.buffers.flatMap((b, i) => {
        let data: Uint8Array;
        if (b.kind === "inline") data = b.data;
        else if (b.kind === "appended") {
          data = new Uint8Array(b.size);
          readSync(p.fd, data, 0, b.size, b.offset);
        } else return [];
        if (!intBuffers.has(i)) payload += data.length;
        return data.length ? [data] : [];
      });
      return { arrays, payload, cosOps: operatorCounts(p.model).ops.COS ?? 0 };
    } finally {
      p.close();
    }
  }
  // CoreML: every blob record of the weight files, and every immediate const value
  const data = join(path, "Data", "com.apple.CoreML");
  const arrays: Uint8Array[] = [];
  let payload = 0;
  for (const f of readdirSync(join(data, "weights"))) {
    const bytes = readFileSync(join(data, "weights", f));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 64;
    for (let i = 0, n = view.getUint32(0, true); i < n; i++) {
      const size = Number(view.getBigUint64(at + 8, true)), offset = Number(view.getBigUint64(at + 16, true));
      arrays.push(bytes.subarray(offset, offset + size));
      if (view.getUint32(at + 4, true) !== 14) payload += size; // 14: Int32
      at = Math.ceil((offset + size) / 64) * 64;
    }
  }
  const m = decodeCoremlModel(readFileSync(join(data, "model.mlmodel")));
  const ops = Object.values(Object.values(m.mlProgram!.functions!)[0]!.blockSpecializations!)[0]!.operations!;
  for (const op of ops) {
    const t = op.type === "const" ? op.attributes?.val?.immediateValue?.tensor : undefined;
    if (t) arrays.push(new TextEncoder().encode(JSON.stringify({ type: op.attributes!.val!.type, t })));
  }
  const programBytes = statSync(join(data, "model.mlmodel")).size;
  return { arrays, payload, cosOps: ops.filter((o) => o.type === "cos").length, bytesPerOp: programBytes / ops.length };
}

function compileMicroOrMini(preset: string, resolution: number, mode: "fp16" | "k4"): string {
  const out = join(dir, `${preset}-${resolution}-${mode}`);
  execFileSync(process.execPath, [BIN, "compile", "--preset", preset, "--resolution", String(resolution), "--target", "coreml,tflite,onnx", "--width", "1", ...(mode === "fp16" ? ["--precision", "fp16"] : ["--quantize", "k4"]), "--out", out], { stdio: "ignore" });
  return out;
}

describe("written files", () => {
  const cases: [string, number, "fp16" | "k4"][] = [["micro", 128, "fp16"], ["micro", 128, "k4"], ["mini", 256, "fp16"], ["mini", 256, "k4"], ["mini", 1024, "fp16"], ["mini", 1024, "k4"]];
  test.each(cases)("%s at %d², %s: every array stored once, RoPE tables computed once per grid for every head and layer, constants beyond the parameters under 1 %%", (preset, resolution, mode) => {
    const out = compileMicroOrMini(preset, resolution, mode);
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
    for (const a of report.artifacts) {
      const { arrays, payload, cosOps, bytesPerOp } = storedArrays(a.target, join(out, a.path));
      // the MIL program is names and types: short value names keep it near 160 bytes an op (220 with scope__kind_id names)
      if (bytesPerOp !== undefined) expect(bytesPerOp, `${a.path}: MIL bytes per op`).toBeLessThan(180);
      const hashes = arrays.map(sha);
      expect(new Set(hashes).size, `${a.path}: an array stored twice`).toBe(hashes.length);
      // two grids (Down/Up and Middle) with RoPE, plus the timestep sinusoid: three cos ops in the whole model
      expect(cosOps, a.path).toBe(3);
      const c = a.constants;
      const params = c.weights + c.palettes + c.luts;
      expect(payload, `${a.path}: stored data arrays vs the parameters' ${params} bytes`).toBeLessThanOrEqual(1.01 * params);
      expect(c.constantOverhead, a.path).toBeLessThan(0.01);
      expect(c.structure + c.weights + c.palettes + c.luts + c.tables + c.other).toBe(a.bytes);
      if (mode === "fp16") expect(c.fp32Island, a.path).toBeGreaterThan(0); // the timestep embedding stays f32
    }
  }, 180_000);
});

test("the full preset at 1024² (counted from the lowered graph): constants beyond the parameters under 1 %, fp16 and k4, every target", () => {
  const g0 = buildModel(syntheticSource(presetConfig("full"), 0), { width: 1, latentSize: [128, 128] }).graph;
  const bits: Record<string, 4> = {};
  for (const n of g0.nodes) if (n.kind === "const" && n.attrs.value.role === "weight" && n.attrs.value.type.shape.length >= 2) bits[n.attrs.value.source] = 4;
  for (const target of ["coreml", "tflite", "onnx"])
    for (const mode of ["fp16", "k4"] as const) {
      const g = applyPipeline(g0, target, mode === "fp16" ? { fp16: true } : { before: [{ pass: "palettize", options: { bits, groupSize: 0 } }] });
      const c = constantBytes(g, mode === "fp16" ? "fp16" : "fp32", 0);
      expect(c.constantOverhead, `${target} ${mode}`).toBeLessThan(0.01);
      expect(c.tables, `${target} ${mode}`).toBeLessThan(64 * 1024);
      if (mode === "k4") expect(c.palettes).toBeGreaterThan(0.7e9);
    }
}, 300_000);

