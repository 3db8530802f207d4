import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validOptionCombos } from "../helpers.js";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { compile } from "../../src/driver/compile.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { runFloatModel } from "../../src/driver/run.js";
import { compareOutputs } from "../../src/driver/verify.js";
import { runGraph } from "../../src/interp/interpreter.js";
import type { FloatTensor } from "../../src/kernels/tensor.js";
import type { Graph } from "../../src/ir/graph.js";
import { presetConfig, WIDTHS, type ModelConfig } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { checkManyWithCoremltools, coremltoolsUnavailable } from "../../targets/coreml/coremltools.js";
import { decodeCoremlModel, encodeCoremlModel } from "../../targets/coreml/proto.js";
import { readCoreml } from "../../targets/coreml/read.js";
import { emitCoreml } from "../../targets/coreml/emit.js";
import { applyPipeline } from "../../src/driver/pipelines.js";
import { buildModel } from "../../src/model/build.js";
import { PASSES } from "../../passes/index.js";
import { buildPipeline } from "../../src/pipeline/pass.js";
import { runPipeline } from "../../src/pipeline/run.js";
import { palettizableWeights } from "../../src/quant/probe.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-coreml-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const packages: string[] = [];

function roundTrip(config: ModelConfig, width: (typeof WIDTHS)[number], seed: number, name: string, precision: "fp32" | "fp16") {
  const source = syntheticSource(config, seed);
  const out = join(dir, name);
  compile({ source, ref: { preset: "custom", seed }, targets: ["coreml"], widths: [width], precision, out });
  const path = join(out, `w${width * 1000}`, "model.mlpackage");
  packages.push(path);
  const inputs = syntheticInputs(config, seed + 1, { batch: 1, latentSize: config.latentSize, contextTokens: config.contextTokens });
  const read = readCoreml(path);
  const mine = runGraph(read.graph, inputs).velocity as FloatTensor;
  read.close();
  return compareOutputs(mine.data, runFloatModel(source, width, inputs).data);
}

const combos = validOptionCombos();

describe("CoreML: MIL reader-interpreter vs IR interpreter", () => {
  test.each(combos.map((c, i) => [i, c] as const))("micro option set %i, fp32 (<= 1e-4) and fp16 (rel L2 <= 1e-2)", (i, opts) => {
    const c = presetConfig("micro", opts);
    const f32 = roundTrip(c, WIDTHS[i % 3]!, i, `c${i}-32`, "fp32");
    expect(f32.maxRelErr).toBeLessThanOrEqual(1e-4);
    const f16 = roundTrip(c, WIDTHS[(i + 1) % 3]!, i, `c${i}-16`, "fp16");
    expect(f16.finite).toBe(true);
    expect(f16.relL2).toBeLessThanOrEqual(1e-2);
  });

  test.each([["fp32"], ["fp16"]] as const)("mini, %s", (precision) => {
    const r = roundTrip(presetConfig("mini"), 0.5, 3, `mini-${precision}`, precision);
    if (precision === "fp32") expect(r.maxRelErr).toBeLessThanOrEqual(1e-4);
    else expect(r.finite && r.relL2! <= 1e-2).toBe(true);
  });

  test("palettized (mixed) packages: constexpr_lut_to_dense round-trips exactly", async () => {
    const out = join(dir, "pal");
    compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["coreml"], widths: [1], precision: "fp32", out, quantize: { mode: "mixed", target: 4.3 } });
    const path = join(out, "w1000", "model.mlpackage");
    packages.push(path);
    const m = decodeCoremlModel(readFileSync(join(path, "Data/com.apple.CoreML/model.mlmodel")));
    const ops = m.mlProgram!.functions!.main!.blockSpecializations!.CoreML7!.operations!;
    expect(ops.filter((o) => o.type === "constexpr_lut_to_dense").length).toBeGreaterThan(10);
    let stdout = "";
    expect(await main(["verify", out, "--json"], { out: (s) => (stdout += s), err: () => {} })).toBe(0);
    const results = JSON.parse(stdout).results;
    expect(results.find((r: { engine: string }) => r.engine === "ditc").maxRelErr).toBeLessThanOrEqual(1e-4);
  });
});

test("weights past the per-file limit are split across content-named files (Core ML cannot load a weight file over 2 GiB)", () => {
  const c = presetConfig("micro");
  const src = syntheticSource(c, 5);
  const g = applyPipeline(buildModel(src, { width: 1 }).graph, "coreml");
  const path = join(dir, "split.mlpackage");
  emitCoreml(g, path, { deployment: "iOS17", maxWeightFileBytes: 1 << 20 });
  packages.push(path);
  const files = readdirSync(join(path, "Data/com.apple.CoreML/weights")).sort();
  expect(files.length).toBeGreaterThan(2);
  for (const f of files) expect(f).toMatch(/^weight-[0-9a-f]{16}\.bin$/);
  for (const f of files) expect(statSync(join(path, "Data/com.apple.CoreML/weights", f)).size).toBeLessThanOrEqual(1 << 20);
  const inputs = syntheticInputs(c, 1, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
  const read = readCoreml(path);
  expect(runGraph(read.graph, inputs).velocity!.data).toEqual(runGraph(g, inputs).velocity!.data);
  read.close();
});

test("an emit that fails after writing weights leaves no folder and no open weight file behind", () => {
  const g = applyPipeline(buildModel(syntheticSource(presetConfig("micro"), 5), { width: 1 }).graph, "coreml");
  // an op the CoreML emitter has no mapping for, after every weight was written
  const unmapped = { id: g.nodes.length, kind: "bna_attention", inputs: [], attrs: {}, outputs: [{ id: 1e6, type: { dtype: "f32", shape: [1] } }] } as unknown as Graph["nodes"][number];
  const path = join(dir, "failing.mlpackage");
  const openUnder = (p: string) => (process.platform === "linux" ? readdirSync("/proc/self/fd").filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`).includes(p); } catch { return false; } }) : []);
  expect(() => emitCoreml({ ...g, nodes: [...g.nodes, unmapped] }, path, { deployment: "iOS17" })).toThrow(/without a mapping/);
  expect(readdirSync(dir).filter((f) => f.includes("failing"))).toEqual([]);
  expect(openUnder("failing")).toEqual([]);
});

test("iOS18 deployment: spec 9 / CoreML8 with the input-form LUT; the reader runs it exactly", () => {
  for (const precision of ["fp32", "fp16"] as const) {
    const out = join(dir, `ios18-${precision}`);
    const src = syntheticSource(presetConfig("micro"), 8);
    // plain palettes, compared below with the palettize pass run by hand
    compile({ source: src, ref: { preset: "micro", seed: 8 }, targets: ["coreml"], widths: [0.5], precision, out, quantize: { mode: "k4" }, techniques: { kmeans: "plain", biasCorrection: false }, deployment: "iOS18" });
    const path = join(out, "w500", "model.mlpackage");
    packages.push(path);
    const m = decodeCoremlModel(readFileSync(join(path, "Data/com.apple.CoreML/model.mlmodel")));
    expect(m.specificationVersion).toBe(9);
    const ops = m.mlProgram!.functions!.main!.blockSpecializations!.CoreML8!.operations!;
    const lut = ops.find((o) => o.type === "constexpr_lut_to_dense")!;
    expect(Object.keys(lut.inputs!).sort()).toEqual(["indices", "lut"]);
    const read = readCoreml(path);
    const c = presetConfig("micro");
    const inputs = syntheticInputs(c, 3, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
    const g = runPipeline(buildModel(src, { width: 0.5 }).graph, buildPipeline({ name: "p", entries: [{ pass: "palettize", options: { bits: Object.fromEntries(palettizableWeights(buildModel(src, { width: 0.5 }).graph).map((w) => [w.name, 4])) } }] }, PASSES));
    const err = compareOutputs(runGraph(read.graph, inputs).velocity!.data as Float32Array, runGraph(g, inputs).velocity!.data as Float32Array);
    read.close();
    expect(precision === "fp32" ? err.maxRelErr! : err.relL2!).toBeLessThanOrEqual(precision === "fp32" ? 1e-4 : 1e-2);
  }
});

test("iOS18 per-grouped-channel LUTs: one palette per 32 output channels, [G, 1, …, 16, 1], read back exactly", async () => {
  const out = join(dir, "ios18-grouped");
  const src = syntheticSource(presetConfig("micro"), 9);
  compile({ source: src, ref: { preset: "micro", seed: 9 }, targets: ["coreml"], widths: [1], precision: "fp32", out, quantize: { mode: "k4" }, deployment: "iOS18", techniques: { lutGroupSize: 32 } });
  const path = join(out, "w1000", "model.mlpackage");
  packages.push(path);
  const ops = decodeCoremlModel(readFileSync(join(path, "Data/com.apple.CoreML/model.mlmodel"))).mlProgram!.functions!.main!.blockSpecializations!.CoreML8!.operations!;
  const q = ops.find((o) => o.type === "constexpr_lut_to_dense" && o.outputs![0]!.type!.tensorType!.dimensions![0]!.constant!.size === 128)!;
  const lutDims = q.inputs!.lut!.arguments![0]!.value!.type!.tensorType!.dimensions!.map((d) => Number(d.constant!.size));
  expect(lutDims[0]).toBe(4); // 128 output channels / 32
  expect(lutDims.slice(-2)).toEqual([16, 1]);
  let stdout = "";
  expect(await main(["verify", out, "--json"], { out: (x) => (stdout += x), err: () => {} })).toBe(0);
  expect(JSON.parse(stdout).results.find((r: { engine: string }) => r.engine === "ditc").maxRelErr).toBeLessThanOrEqual(1e-4);
  expect(() => compile({ source: src, ref: { preset: "micro", seed: 9 }, targets: ["coreml"], widths: [1], precision: "fp32", out: join(dir, "nope"), quantize: { mode: "k4" }, techniques: { lutGroupSize: 32 } })).toThrow(/deployment iOS18/);
});

describe("coremltools (Apple's loader) accepts every package", () => {
  test("load and rebuild the MIL program of every package written above; no transposes in blocks, rank <= 4", () => {
    const why = coremltoolsUnavailable();
    if (why) throw new Error(why); // CI sets the virtualenv up; a missing one is a failure, not a skip
    expect(packages.length).toBeGreaterThan(90);
    const results = checkManyWithCoremltools(packages);
    for (const [i, r] of results.entries()) {
      expect(r.ok, `${packages[i]}: ${r.error}`).toBe(true);
      expect(r.transposesInBlocks).toBe(0);
      expect(r.maxRank).toBeLessThanOrEqual(4);
    }
  }, 600_000);
});

describe("malformed packages exit 2 with a clear message", () => {
  const good = join(dir, "good");
  compile({ source: syntheticSource(presetConfig("micro"), 2), ref: { preset: "micro", seed: 2 }, targets: ["coreml"], widths: [0.5], precision: "fp32", out: good });
  const src = join(good, "w500", "model.mlpackage");
  const variant = (name: string, edit: (pkg: string) => void) => {
    const p = join(dir, `${name}.mlpackage`);
    cpSync(src, p, { recursive: true });
    edit(p);
    return p;
  };
  const weights = (p: string) => {
    const d = join(p, "Data/com.apple.CoreML/weights");
    return join(d, readdirSync(d)[0]!);
  };
  const modelFile = (p: string) => join(p, "Data/com.apple.CoreML/model.mlmodel");
  const editModel = (p: string, f: (m: ReturnType<typeof decodeCoremlModel>) => void) => {
    const m = decodeCoremlModel(readFileSync(modelFile(p)));
    f(m);
    writeFileSync(modelFile(p), encodeCoremlModel(m));
  };
  const cases: [string, () => string, RegExp][] = [
    ["missing weight file", () => variant("noweights", (p) => rmSync(weights(p))), /references weight-[0-9a-f]{16}\.bin, which the package does not contain/],
    ["blob file name outside the weights folder", () => variant("blobname", (p) => editModel(p, (m) => {
      const op = m.mlProgram!.functions!.main!.blockSpecializations!.CoreML7!.operations!.find((o) => o.attributes?.val?.blobFileValue)!;
      op.attributes!.val!.blobFileValue!.fileName = "@model_path/../../../../etc/passwd";
    })), /is not @model_path\/weights\/weight\[_N\|-HASH\]\.bin/],
    ["blob offset out of range", () => variant("offset", (p) => editModel(p, (m) => {
      const op = m.mlProgram!.functions!.main!.blockSpecializations!.CoreML7!.operations!.find((o) => o.attributes?.val?.blobFileValue)!;
      op.attributes!.val!.blobFileValue!.offset = 64 * 1_000_000;
    })), /has no blob record at offset 64000000/],
    ["bad sentinel", () => variant("sentinel", (p) => {
      const b = readFileSync(weights(p));
      b.writeUInt32LE(0x12345678, 64);
      writeFileSync(weights(p), b);
    }), /sentinel 0x12345678, not 0xdeadbeef/],
    ["unknown op", () => variant("unknown", (p) => editModel(p, (m) => {
      m.mlProgram!.functions!.main!.blockSpecializations!.CoreML7!.operations!.find((o) => o.type === "softmax")!.type = "softermax";
    })), /op "softermax" is not supported/],
    ["manifest path leaving the package", () => variant("escape", (p) => {
      const man = JSON.parse(readFileSync(join(p, "Manifest.json"), "utf8"));
      man.itemInfoEntries[man.rootModelIdentifier].path = "../../../etc/passwd";
      writeFileSync(join(p, "Manifest.json"), JSON.stringify(man));
    }), /must be relative and stay inside the package/],
    ["truncated model.mlmodel", () => variant("trunc", (p) => writeFileSync(modelFile(p), readFileSync(modelFile(p)).subarray(0, 777))), /not a valid CoreML protobuf|has no ML Program|reads|operation/],
    ["not a package", () => variant("nomanifest", (p) => rmSync(join(p, "Manifest.json"))), /Manifest\.json is missing or not JSON/],
  ];
  test.each(cases)("%s", async (_, make, message) => {
    const inp = join(dir, "in.safetensors");
    if (!existsSync(inp)) await main(["inputs", "--preset", "micro", "--out", inp], { out: () => {}, err: () => {} });
    let err = "";
    expect(await main(["run", make(), "--inputs", inp], { out: () => {}, err: (s) => (err += s) })).toBe(2);
    expect(err).toMatch(message);
    expect(err).not.toMatch(/\n\s+at /);
  });
});
