import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validOptionCombos } from "../helpers.js";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { compile } from "../../src/driver/compile.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { runFloatModel } from "../../src/driver/run.js";
import { compareOutputs, verify } from "../../src/driver/verify.js";
import { runGraph } from "../../src/interp/interpreter.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";
import { presetConfig, WIDTHS, type ModelConfig } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { decodeModel, encodeModel } from "../../targets/onnx/proto.js";
import { openOrtSession } from "../../targets/onnx/ort.js";
import { readOnnx } from "../../targets/onnx/read.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-onnx-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ortRun(path: string, inputs: Record<string, FloatTensor>): Promise<FloatTensor> {
  const s = await openOrtSession(path);
  try {
    return (await s.run(inputs)).velocity!;
  } finally {
    await s.release();
  }
}

/** Compiles one config to ONNX and returns IR reference, ORT and reader outputs. */
async function roundTrip(config: ModelConfig, width: (typeof WIDTHS)[number], seed: number, name: string, precision: "fp32" | "fp16" = "fp32") {
  const source = syntheticSource(config, seed);
  const out = join(dir, name);
  compile({ source, ref: { preset: "custom", seed }, targets: ["onnx"], widths: [width], precision, out });
  const inputs = syntheticInputs(config, seed + 1, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
  const path = join(out, `w${width * 1000}`, "model.onnx");
  const ref = runFloatModel(source, width, inputs);
  const ort = await ortRun(path, inputs);
  const read = readOnnx(path);
  const mine = runGraph(read.graph, inputs).velocity as FloatTensor;
  read.close();
  return { ref, ort: compareOutputs(ort.data, ref.data), reader: compareOutputs(mine.data, ref.data), readerVsOrt: compareOutputs(mine.data, ort.data), path };
}

describe("ONNX parity, fp32 (onnxruntime-node vs IR interpreter <= 1e-4; the reader agrees with both)", () => {
  const combos = validOptionCombos();

  test.each(combos.map((c, i) => [i, c] as const))("micro option set %i", async (i, opts) => {
    const r = await roundTrip(presetConfig("micro", opts), WIDTHS[i % 3]!, i, `combo${i}`);
    expect(r.ort.maxRelErr).toBeLessThanOrEqual(1e-4);
    expect(r.reader.maxRelErr).toBeLessThanOrEqual(1e-4);
    expect(r.readerVsOrt.maxRelErr).toBeLessThanOrEqual(1e-4);
  });

  test.each(WIDTHS.map((w) => [w]))("mini at width %s", async (w) => {
    const r = await roundTrip(presetConfig("mini"), w, 7, `mini${w}`);
    expect(r.ort.maxRelErr).toBeLessThanOrEqual(1e-4);
    expect(r.reader.maxRelErr).toBeLessThanOrEqual(1e-4);
  });
});

describe("ONNX fp16", () => {
  for (const preset of ["micro", "mini"] as const)
    test(`${preset}: finite everywhere, relative L2 <= 1e-2 against the fp32 IR, fp16 I/O but an fp32 timestep`, async () => {
      const r = await roundTrip(presetConfig(preset), 0.5, 3, `${preset}-fp16`, "fp16");
      expect(r.ort.finite && r.reader.finite).toBe(true);
      expect(r.ort.relL2).toBeLessThanOrEqual(1e-2);
      expect(r.reader.relL2).toBeLessThanOrEqual(1e-2);
      const m = decodeModel(readFileSync(r.path));
      const types = Object.fromEntries(m.graph!.input!.map((i) => [i.name, i.type!.tensorType!.elemType]));
      expect(types).toEqual({ latent: 10, timestep: 1, context: 10 });
    });
});

test("ONNX int8 per-channel weights (DequantizeLinear, axis 0) run in onnxruntime within the float tolerance", async () => {
  const out = join(dir, "int8");
  compile({ source: syntheticSource(presetConfig("micro"), 3), ref: { preset: "micro", seed: 3 }, targets: ["onnx"], widths: [0.5], precision: "fp32", out, quantize: { mode: "int8" } });
  const results = await verify(out);
  expect(results.map((r) => r.engine)).toEqual(["ditc", "onnxruntime"]);
  for (const r of results) expect(r.maxRelErr).toBeLessThanOrEqual(1e-4);
  const m = decodeModel(readFileSync(join(out, "w500", "model.onnx")));
  expect(m.graph!.node!.filter((n) => n.opType === "DequantizeLinear").length).toBeGreaterThan(30);
  expect(m.graph!.initializer!.filter((t) => t.dataType === 3).length).toBeGreaterThan(30);
});

describe("ONNX external data", () => {
  const out = join(dir, "ext");
  const config = presetConfig("micro");
  const inputs = syntheticInputs(config, 2, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
  compile({ source: syntheticSource(config, 1), ref: { preset: "micro", seed: 1 }, targets: ["onnx"], widths: [1], precision: "fp32", out, externalData: "always" });
  const model = join(out, "w1000", "model.onnx");
  const dataFile = readdirSync(join(out, "w1000")).find((f) => f.endsWith(".data"))!;

  test("weights go to a content-named model.onnx.<hash>.data with aligned offsets and relative locations; int64 shapes stay inline", async () => {
    expect(dataFile).toMatch(/^model\.onnx\.[0-9a-f]{16}\.data$/);
    const m = decodeModel(readFileSync(model));
    const ext = m.graph!.initializer!.filter((t) => t.dataLocation === 1);
    expect(ext.length).toBeGreaterThan(50);
    for (const t of ext) {
      const kv = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
      expect(kv.location).toBe(dataFile);
      expect(Number(kv.offset) % 64).toBe(0);
      expect(t.dataType).toBe(1);
    }
    expect(m.graph!.initializer!.filter((t) => t.dataType === 7).every((t) => t.dataLocation !== 1)).toBe(true);
    const ref = runFloatModel(syntheticSource(config, 1), 1, inputs);
    expect(compareOutputs((await ortRun(model, inputs)).data, ref.data).maxRelErr).toBeLessThan(1e-4);
  });

  /** A copy of the model whose first external tensor points at `location`. */
  function withLocation(name: string, location: string): string {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    const m = decodeModel(readFileSync(model));
    const t = m.graph!.initializer!.find((x) => x.dataLocation === 1)!;
    t.externalData = t.externalData!.map((e) => (e.key === "location" ? { key: "location", value: location } : e));
    writeFileSync(join(d, "model.onnx"), encodeModel(m));
    return join(d, "model.onnx");
  }

  const refused: [string, () => string, RegExp][] = [
    ["a missing external data file", () => withLocation("missing", "model.onnx.data"), /external data file "model\.onnx\.data" does not exist/],
    ["a location with ..", () => withLocation("dotdot", `../ext/w1000/${dataFile}`), /leaves the model's folder/],
    ["an absolute location", () => withLocation("abs", join(out, "w1000", dataFile)), /leaves the model's folder/],
    ["a symlink leading out of the folder", () => {
      const p = withLocation("link", "data.bin");
      symlinkSync(join(out, "w1000", dataFile), join(dir, "link", "data.bin"));
      return p;
    }, /resolves outside the model's folder/],
  ];
  test.each(refused)("%s is refused with exit 2", async (_, make, message) => {
    const path = make();
    let err = "";
    const inp = join(dir, "in.safetensors");
    expect(await main(["inputs", "--preset", "micro", "--out", inp], { out: () => {}, err: () => {} })).toBe(0);
    expect(await main(["run", path, "--inputs", inp], { out: () => {}, err: (s) => (err += s) })).toBe(2);
    expect(err).toMatch(message);
    expect(err).not.toMatch(/\n\s+at /);
  });
});

describe("malformed .onnx files exit 2 with the node or field named", () => {
  const good = join(dir, "good");
  compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["onnx"], widths: [0.5], precision: "fp32", out: good });
  const model = join(good, "w500", "model.onnx");
  const edited = (name: string, edit: (m: ReturnType<typeof decodeModel>) => void) => {
    const m = decodeModel(readFileSync(model));
    edit(m);
    const p = join(dir, `${name}.onnx`);
    writeFileSync(p, encodeModel(m));
    return p;
  };
  const cases: [string, () => string, RegExp][] = [
    ["truncated", () => { const p = join(dir, "trunc.onnx"); writeFileSync(p, readFileSync(model).subarray(0, 5000)); return p; }, /not a valid ONNX protobuf|reads|no graph|has no data|raw_data/],
    ["random bytes", () => { const p = join(dir, "junk.onnx"); writeFileSync(p, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255))); return p; }, /not a valid ONNX protobuf|opset|no graph/],
    ["unknown op", () => edited("unknown-op", (m) => (m.graph!.node![3]!.opType = "FrobnicateV2")), /node 3 .*op type "FrobnicateV2" is not supported/],
    ["unsupported opset", () => edited("opset", (m) => (m.opsetImport = [{ domain: "", version: 99 }])), /opset 99 is not supported/],
    ["foreign domain", () => edited("domain", (m) => (m.graph!.node![0]!.domain = "com.example")), /uses domain "com\.example"/],
    ["raw_data size mismatch", () => edited("raw", (m) => (m.graph!.initializer![0]!.dims = [9999])), /declares \d+ bytes .* but raw_data holds/],
    ["undefined input", () => edited("undef", (m) => (m.graph!.node![5]!.input![0] = "nowhere")), /reads "nowhere", which no graph input/],
    ["a weight of the wrong shape", () => edited("shape", (m) => {
      const t = m.graph!.initializer!.find((x) => x.name === "down.0.ffn.fc1.weight")!;
      t.dims = [t.dims![1]!, t.dims![0]!]; // same bytes, transposed shape
    }), /node \d+ .*\(Gemm\) linear: weight \(64, 128\) expects 128 input features, x has 64/],
  ];
  test.each(cases)("%s", async (_, make, message) => {
    let err = "";
    const inp = join(dir, "in2.safetensors");
    await main(["inputs", "--preset", "micro", "--out", inp], { out: () => {}, err: () => {} });
    const code = await main(["run", make(), "--inputs", inp], { out: () => {}, err: (s) => (err += s) });
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err).not.toMatch(/\n\s+at /);
  });
});

test("ditc compile + verify on micro: every artifact passes with both engines", async () => {
  const out = join(dir, "cv");
  let stdout = "";
  expect(await main(["compile", "--preset", "micro", "--target", "onnx", "--out", out, "--json"], { out: (s) => (stdout += s), err: () => {} })).toBe(0);
  const doc = JSON.parse(stdout);
  expect(doc.artifacts.map((a: { width: number }) => a.width)).toEqual([0.375, 0.5, 1]);
  stdout = "";
  expect(await main(["verify", out, "--json"], { out: (s) => (stdout += s), err: () => {} })).toBe(0);
  const results = JSON.parse(stdout).results;
  expect(results.map((r: { engine: string }) => r.engine).sort()).toEqual(["ditc", "ditc", "ditc", "onnxruntime", "onnxruntime", "onnxruntime"]);
  expect(results.every((r: { pass: boolean }) => r.pass)).toBe(true);
  const direct = await verify(out);
  expect(direct.length).toBe(6);
  // a corrupted artifact makes verify fail loudly rather than pass
  copyFileSync(join(out, "w375", "model.onnx"), join(out, "w500", "model.onnx"));
  expect(await main(["verify", out], { out: () => {}, err: () => {} })).not.toBe(0);
});
