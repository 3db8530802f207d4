import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { compile, type QuantizeMode } from "../../src/driver/compile.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { runFloatModel } from "../../src/driver/run.js";
import { compareOutputs, verify } from "../../src/driver/verify.js";
import { runGraph } from "../../src/interp/interpreter.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";
import { presetConfig, WIDTHS, type ModelConfig } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { LiteRtProcess, runLiteRt } from "../../targets/tflite/litert.js";
import { operatorCounts, parseTflite } from "../../targets/tflite/parse.js";
import { readTflite } from "../../targets/tflite/read.js";
import { OP, TENSOR_TYPE, type TflModel } from "../../targets/tflite/schema.js";
import { serializeModel } from "../../targets/tflite/write.js";
import { validOptionCombos } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-tflite-"));
const litert = new LiteRtProcess();
afterAll(() => {
  litert.close();
  rmSync(dir, { recursive: true, force: true });
});

/** LiteRT's output; any ERROR: line the runtime printed fails the test (a kernel that fails to prepare does not throw). */
async function litertRun(path: string, inputs: Record<string, FloatTensor>): Promise<FloatTensor> {
  const r = await litert.run(path, inputs);
  expect(r.errors).toEqual([]);
  return r.outputs.velocity!;
}

function parsed(path: string): TflModel {
  const p = parseTflite(path);
  p.close();
  return p.model;
}

/** Compiles one config to TFLite and returns IR reference, LiteRT and reader outputs. */
async function roundTrip(config: ModelConfig, width: (typeof WIDTHS)[number], seed: number, name: string, extra: { precision?: "fp32" | "fp16"; externalData?: "always"; quantize?: QuantizeMode } = {}) {
  const source = syntheticSource(config, seed);
  const out = join(dir, name);
  compile({ source, ref: { preset: "custom", seed }, targets: ["tflite"], widths: [width], precision: extra.precision ?? "fp32", out, ...(extra.externalData ? { externalData: extra.externalData } : {}) });
  const inputs = syntheticInputs(config, seed + 1, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
  const path = join(out, `w${width * 1000}`, "model.tflite");
  const ref = runFloatModel(source, width, inputs);
  const rt = await litertRun(path, inputs);
  const read = readTflite(path);
  const mine = runGraph(read.graph, inputs).velocity as FloatTensor;
  read.close();
  return { litert: compareOutputs(rt.data, ref.data), reader: compareOutputs(mine.data, ref.data), readerVsLitert: compareOutputs(mine.data, rt.data), path };
}

describe("TFLite parity, fp32 (LiteRT vs IR interpreter <= 1e-4; the reader agrees with both)", () => {
  const combos = validOptionCombos();

  test.each(combos.map((c, i) => [i, c] as const))("micro option set %i", async (i, opts) => {
    const r = await roundTrip(presetConfig("micro", opts), WIDTHS[i % 3]!, i, `combo${i}`);
    expect(r.litert.maxRelErr).toBeLessThanOrEqual(1e-4);
    expect(r.reader.maxRelErr).toBeLessThanOrEqual(1e-4);
    expect(r.readerVsLitert.maxRelErr).toBeLessThanOrEqual(1e-4);
    const counts = operatorCounts(parsed(r.path));
    expect(counts.transposes.inBlocks).toBe(0);
  });

  test.each(WIDTHS.map((w) => [w]))("mini at width %s, no transposes inside blocks in the file", async (w) => {
    const r = await roundTrip(presetConfig("mini"), w, 7, `mini${w}`);
    expect(r.litert.maxRelErr).toBeLessThanOrEqual(1e-4);
    expect(r.reader.maxRelErr).toBeLessThanOrEqual(1e-4);
    const counts = operatorCounts(parsed(r.path));
    expect(counts.transposes).toEqual({ total: 2, inBlocks: 0 }); // the latent in, the velocity out
    expect(counts.ops.BATCH_MATMUL).toBeGreaterThan(0);
    expect(counts.ops.DEPTH_TO_SPACE).toBe(2);
  });
});

describe("TFLite fp16 weights (FLOAT16 constants widened by DEQUANTIZE)", () => {
  for (const preset of ["micro", "mini"] as const)
    test(`${preset}: relative L2 <= 1e-2 against the fp32 IR, f32 interface, timestep embedding kept f32`, async () => {
      const r = await roundTrip(presetConfig(preset), 0.5, 3, `${preset}-fp16`, { precision: "fp16" });
      expect(r.litert.finite && r.reader.finite).toBe(true);
      expect(r.litert.relL2).toBeLessThanOrEqual(1e-2);
      expect(r.reader.relL2).toBeLessThanOrEqual(1e-2);
      const m = parsed(r.path), g = m.subgraphs[0]!;
      expect(g.inputs.map((t) => g.tensors[t]!.type)).toEqual([TENSOR_TYPE.FLOAT32, TENSOR_TYPE.FLOAT32, TENSOR_TYPE.FLOAT32]);
      const f16 = g.tensors.filter((t) => t.type === TENSOR_TYPE.FLOAT16);
      expect(f16.some((t) => t.name === "down.0.attn.q.weight")).toBe(true);
      expect(f16.some((t) => t.name.startsWith("t_embed"))).toBe(false);
      expect(operatorCounts(m).ops.DEQUANTIZE).toBe(f16.length);
    });
});

test("weights appended after the flatbuffer (Buffer.offset/size, the > 2 GiB layout) run in LiteRT", async () => {
  const r = await roundTrip(presetConfig("micro"), 1, 5, "appended", { externalData: "always" });
  expect(r.litert.maxRelErr).toBeLessThanOrEqual(1e-4);
  expect(r.reader.maxRelErr).toBeLessThanOrEqual(1e-4);
  const m = parsed(r.path);
  const appended = m.buffers.filter((b) => b.kind === "appended") as { offset: number; size: number }[];
  expect(appended.length).toBeGreaterThan(50);
  for (const b of appended) expect(b.offset % 16).toBe(0);
  const size = readFileSync(r.path).length;
  expect(Math.max(...appended.map((b) => b.offset + b.size))).toBeLessThanOrEqual(size - 16);
});

test("the file follows the conventions LiteRT relies on", async () => {
  const r = await roundTrip(presetConfig("micro"), 0.5, 9, "conventions");
  const bytes = readFileSync(r.path);
  expect(bytes.subarray(4, 8).toString("latin1")).toBe("TFL3");
  const m = parsed(r.path);
  expect(m.version).toBe(3);
  expect(m.buffers[0]).toEqual({ kind: "empty" });
  const g = m.subgraphs[0]!;
  // every constant has data, no activation does
  for (const [i, t] of g.tensors.entries()) {
    const produced = g.operators.some((o) => o.outputs.includes(i)) || g.inputs.includes(i);
    expect(t.buffer === 0).toBe(produced);
  }
  const softmax = g.operators.filter((o) => m.operatorCodes[o.opcodeIndex]!.builtinCode === OP.SOFTMAX);
  expect(softmax.length).toBeGreaterThan(0);
  for (const o of softmax) expect(o.options).toEqual({ table: "SoftmaxOptions", values: { beta: 1 } });
  expect(m.signatures).toEqual([{
    key: "serving_default",
    inputs: ["latent", "timestep", "context"].map((name, k) => ({ name, tensor: g.inputs[k]! })),
    outputs: [{ name: "velocity", tensor: g.outputs[0]! }],
  }]);
  // the byte field of a code above 127 holds the placeholder; LiteRT reads the max of the two
  const raw = readFileSync(r.path);
  expect(m.operatorCodes.some((c) => c.builtinCode === OP.GELU)).toBe(true);
  expect(raw.includes(Buffer.from([OP.GELU & 255, 0, 0, 0]))).toBe(true);
});

describe("palettized (in-graph lookup) and int8 per-channel weights run in LiteRT within the float tolerance", () => {
  const cases: [string, QuantizeMode, number][] = [["k4", { mode: "k4" }, 0.5], ["k8", { mode: "k8" }, 1], ["mixed", { mode: "mixed", target: 4.3 }, 0.375], ["int8", { mode: "int8" }, 0.5]];
  test.each(cases)("micro %s", async (name, quantize, width) => {
    const out = join(dir, `q-${name}`);
    compile({ source: syntheticSource(presetConfig("micro"), 2), ref: { preset: "micro", seed: 2 }, targets: ["tflite"], widths: [width], precision: "fp32", out, quantize });
    const results = await verify(out);
    expect(results.map((x) => x.engine)).toEqual(["ditc", "litert"]);
    for (const x of results) {
      expect(x.pass).toBe(true);
      expect(x.maxRelErr).toBeLessThanOrEqual(1e-4);
    }
    const m = parsed(join(out, `w${width * 1000}`, "model.tflite"));
    const ops = operatorCounts(m).ops;
    if (name === "int8") expect(ops.DEQUANTIZE).toBeGreaterThan(30);
    else expect(ops.GATHER).toBeGreaterThan(30);
    // 4-bit indices stay 4 bits (two per byte, read through a 256 x 2 pair table); int8 is one byte a weight
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
    const expected = report.quantization.layers.reduce((s: number, l: { params: number; bits: number }) => s + (l.params * l.bits) / 8, 0);
    const stored = m.subgraphs[0]!.tensors.filter((t) => t.type === (name === "int8" ? TENSOR_TYPE.INT8 : TENSOR_TYPE.UINT8)).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(Math.abs(stored - expected) / expected).toBeLessThan(0.02);
    if (name === "int8") expect(m.subgraphs[0]!.tensors.filter((t) => t.type === TENSOR_TYPE.INT8).every((t) => t.quantization?.scale.length === t.shape[0] && t.quantization.quantizedDimension === 0)).toBe(true);
  });
});

describe("malformed .tflite files exit 2 with the field or operator named", () => {
  const good = join(dir, "good");
  compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["tflite"], widths: [0.5], precision: "fp32", out: good });
  const model = join(good, "w500", "model.tflite");
  const file = (name: string, bytes: Uint8Array) => {
    const p = join(dir, `${name}.tflite`);
    writeFileSync(p, bytes);
    return p;
  };
  const edited = (name: string, edit: (m: TflModel) => void) => {
    const m = parsed(model);
    edit(m);
    return file(name, serializeModel(m));
  };
  const cases: [string, () => string, RegExp][] = [
    ["truncated", () => file("trunc", readFileSync(model).subarray(0, 100_000)), /past the end of the flatbuffer|outside the file/],
    ["corrupted identifier", () => { const b = Buffer.from(readFileSync(model)); b.write("ONNX", 4, "latin1"); return file("ident", b); }, /file identifier is "ONNX", a TFLite model has "TFL3"/],
    ["random bytes", () => file("junk", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255))), /identifier|outside|past the end|vtable/],
    ["empty", () => file("empty", new Uint8Array(0)), /too short/],
    ["a buffer offset beyond the file", () => edited("offset", (m) => {
      const i = m.buffers.findIndex((b) => b.kind === "inline" && b.data.length > 1000);
      m.buffers[i] = { kind: "appended", offset: 1 << 30, size: 4096 };
    }), /buffers\[\d+\] points to bytes \[1073741824, 1073745920\) past the end of the file/],
    ["an unknown opcode", () => edited("opcode", (m) => (m.operatorCodes[0]!.builtinCode = 999)), /operator \d+ has builtin code 999, which ditc does not read/],
    ["a weight whose buffer is too small", () => edited("size", (m) => {
      const t = m.subgraphs[0]!.tensors.find((x) => x.name === "down.0.ffn.fc1.weight")!;
      t.shape = [t.shape[0]! * 2, t.shape[1]!];
    }), /tensor \d+ "down\.0\.ffn\.fc1\.weight" declares \d+ bytes .* but its buffer \d+ holds \d+/],
    ["a declared output shape the op does not compute", () => edited("outshape", (m) => {
      const g = m.subgraphs[0]!;
      g.tensors[g.operators[3]!.outputs[0]!]!.shape = [1, 2, 3];
    }), /operator 3 .* declares output tensor \d+ as f32\[1,2,3\], the operator computes/],
    ["an operand index out of range", () => edited("operand", (m) => (m.subgraphs[0]!.operators[2]!.inputs[0] = 1_000_000)), /operator 2 .*refers to tensor 1000000/],
    ["a terabyte tensor", () => edited("huge", (m) => {
      const t = m.subgraphs[0]!.tensors.find((x) => x.name === "down.0.ffn.fc1.weight")!;
      t.shape = [1 << 20, 1 << 20];
    }), /declares 4398046511104 bytes/],
  ];
  test.each(cases)("%s", async (_, make, message) => {
    let err = "";
    const inp = join(dir, "in.safetensors");
    await main(["inputs", "--preset", "micro", "--out", inp], { out: () => {}, err: () => {} });
    const code = await main(["run", make(), "--inputs", inp], { out: () => {}, err: (s) => (err += s) });
    expect(err).toMatch(message);
    expect(code).toBe(2);
    expect(err).not.toMatch(/\n\s+at /);
  });
});

test("ditc compile + verify on micro with tflite: every artifact passes in both engines; a broken one fails", async () => {
  const out = join(dir, "cv");
  let stdout = "";
  expect(await main(["compile", "--preset", "micro", "--target", "tflite", "--out", out, "--json"], { out: (s) => (stdout += s), err: () => {} })).toBe(0);
  expect(JSON.parse(stdout).artifacts.map((a: { target: string }) => a.target)).toEqual(["tflite", "tflite", "tflite"]);
  // the report counts transposes in the written operator list too
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  for (const a of report.artifacts) expect(a.fileTransposes).toEqual({ total: 2, inBlocks: 0 });
  stdout = "";
  expect(await main(["verify", out, "--json"], { out: (s) => (stdout += s), err: () => {} })).toBe(0);
  const results = JSON.parse(stdout).results as { engine: string; pass: boolean }[];
  expect(results.map((r) => r.engine).sort()).toEqual(["ditc", "ditc", "ditc", "litert", "litert", "litert"]);
  expect(results.every((r) => r.pass)).toBe(true);
  // the 0.375 model in the 0.5 slot: both engines run it, the numbers are wrong
  writeFileSync(join(out, "w500", "model.tflite"), readFileSync(join(out, "w375", "model.tflite")));
  expect(await main(["verify", out], { out: () => {}, err: () => {} })).toBe(1);
});

describe("LiteRT's silent failures are caught from its log", () => {
  /** x (1, 4) -> FULLY_CONNECTED with a (2, 4) all-ones weight stored as `type`, no bias. */
  function fcModel(name: string, type: "f32" | "f16"): string {
    const w = type === "f16" ? new Uint8Array(new Uint16Array(8).fill(0x3c00).buffer) : new Uint8Array(new Float32Array(8).fill(1).buffer);
    const m: TflModel = {
      version: 3, operatorCodes: [{ builtinCode: OP.FULLY_CONNECTED, version: 1 }], description: "", metadata: [], signatures: [],
      buffers: [{ kind: "empty" }, { kind: "inline", data: w }],
      subgraphs: [{
        name: "main", inputs: [0], outputs: [2],
        tensors: [{ shape: [1, 4], type: TENSOR_TYPE.FLOAT32, buffer: 0, name: "x" }, { shape: [2, 4], type: type === "f16" ? TENSOR_TYPE.FLOAT16 : TENSOR_TYPE.FLOAT32, buffer: 1, name: "w" }, { shape: [1, 2], type: TENSOR_TYPE.FLOAT32, buffer: 0, name: "y" }],
        operators: [{ opcodeIndex: 0, inputs: [0, 1, -1], outputs: [2], options: { table: "FullyConnectedOptions", values: {} } }],
      }],
    };
    const p = join(dir, `${name}.tflite`);
    writeFileSync(p, serializeModel(m));
    return p;
  }
  const x = { dtype: "f32" as const, shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) };

  test("a well-formed model prints no ERROR: line and computes", async () => {
    const r = await litert.run(fcModel("fc32", "f32"), { x });
    expect(r.errors).toEqual([]);
    expect([...r.outputs.y!.data]).toEqual([10, 10]);
  });

  test("a run past its deadline: the LiteRT process is killed, and that run and every later one say why", async () => {
    const slow = new LiteRtProcess({ timeoutSeconds: 0.001 }); // starting the process alone takes longer
    try {
      const why = "LiteRT did not finish within 0.001 s and was stopped (DITC_TOOL_TIMEOUT_SECONDS sets the limit)";
      await expect(slow.run(fcModel("fc32late", "f32"), { x })).rejects.toThrow(why);
      await expect(slow.run(fcModel("fc32later", "f32"), { x })).rejects.toThrow(why);
    } finally {
      slow.close();
    }
  });

  test("a kernel that fails to prepare (FC with a raw float16 filter) returns garbage without throwing; the ERROR: line fails the run", async () => {
    const path = fcModel("fc16", "f16");
    const r = await litert.run(path, { x });
    expect([...r.outputs.y!.data]).not.toEqual([10, 10]);
    expect(r.errors.some((l) => /FULLY_CONNECTED\) failed to prepare/.test(l))).toBe(true);
    await expect(runLiteRt(path, { x })).rejects.toThrow(/LiteRT reported: ERROR:/);
  });
});
