// Mutation fuzzing of every reader: a malformed file must end in a DitcError with a message
// (exit 2 at the CLI), never another exception, a hang, or an allocation sized by a declared
// rather than an actual size.
import fc from "fast-check";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { DitcError } from "../../src/diagnostics.js";
import { compile } from "../../src/driver/compile.js";
import { writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { runGraph } from "../../src/interp/interpreter.js";
import type { Graph } from "../../src/ir/graph.js";
import type { Tensor } from "../../src/kernels/tensor.js";
import { presetConfig } from "../../src/model/config.js";
import { openCheckpoint, syntheticSource } from "../../src/model/weights.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { readCoreml } from "../../targets/coreml/read.js";
import { readOnnx } from "../../targets/onnx/read.js";
import { readTflite } from "../../targets/tflite/read.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let cases = 0;
// a fresh seed each run, written straight to stderr: should a case kill the process, the log still
// says how to replay the run (vitest's own console capture dies with it)
const seed = Number(process.env.DITC_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
writeSync(2, `fuzz: seed ${seed} (DITC_FUZZ_SEED=${seed} replays this run)\n`);
afterAll(() => console.log(`fuzz: ${cases} malformed inputs, each ended in a DitcError or a valid read`));

/** Truncate, flip bytes, or overwrite a run with extreme values (lengths, offsets, dims). */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant("flip" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("huge" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), value: fc.constantFrom(0xff, 0x7f, 0x80, 0x00) }),
);

function mutate(buf: Buffer, m: fc.Arbitrary<unknown> extends never ? never : { kind: string; at: number; bytes?: number[]; value?: number }, headLimit?: number): Buffer {
  const span = headLimit ? Math.min(buf.length, headLimit) : buf.length;
  const pos = Math.min(span - 1, Math.floor(m.at * span));
  if (m.kind === "truncate") return buf.subarray(0, pos);
  const out = Buffer.from(buf);
  if (m.kind === "flip") m.bytes!.forEach((b, i) => pos + i < out.length && (out[pos + i] = b));
  else for (let i = 0; i < 8 && pos + i < out.length; i++) out[pos + i] = m.value!;
  return out;
}

/** Runs `read`; success is fine, a DitcError is fine, anything else fails the property. */
function expectClean(read: () => void): void {
  cases++;
  const t0 = performance.now();
  try {
    read();
  } catch (e) {
    if (!(e instanceof DitcError)) throw new Error(`not a DitcError: ${(e as Error)?.stack ?? e}`);
    expect(e.message.length).toBeGreaterThan(10);
  }
  expect(performance.now() - t0).toBeLessThan(10_000);
}

/** A model reader run to the end: what parses is also executed, since bad data can hide behind a good header. */
function readAndRun(read: (path: string) => { graph: Graph; close(): void }, path: string, inputs: Record<string, Tensor>): void {
  const r = read(path);
  try {
    runGraph(r.graph, inputs);
  } finally {
    r.close();
  }
}

/** Seeded micro inputs at the preset's shapes. */
const microInputs = () => {
  const c = presetConfig("micro");
  return syntheticInputs(c, 1, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
};

describe("fuzzing the readers", () => {
  test("safetensors checkpoints", () => {
    const good = join(dir, "ck.safetensors");
    writeSyntheticCheckpoint(presetConfig("micro"), 1, good);
    const bytes = readFileSync(good);
    const headerLen = Number(bytes.readBigUInt64LE(0)) + 8;
    fc.assert(
      fc.property(mutation, fc.boolean(), (m, inHeader) => {
        const p = join(dir, "m.safetensors");
        writeFileSync(p, mutate(bytes, m, inHeader ? headerLen : undefined));
        expectClean(() => {
          const ck = openCheckpoint(p);
          try {
            for (const n of ck.file.names().slice(0, 5)) ck.file.readFloat(n);
          } finally {
            ck.close();
          }
        });
      }),
      { numRuns: 400, seed },
    );
  });

  test(".onnx models (and running what parses)", () => {
    const out = join(dir, "onnx");
    compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["onnx"], widths: [0.375], precision: "fp32", out });
    const bytes = readFileSync(join(out, "w375", "model.onnx"));
    const inputs = microInputs();
    fc.assert(
      fc.property(mutation, (m) => {
        const p = join(dir, "m.onnx");
        writeFileSync(p, mutate(bytes, m));
        expectClean(() => readAndRun(readOnnx, p, inputs));
      }),
      { numRuns: 300, seed },
    );
  });

  test(".onnx models with external data: the model or its data file mutated", () => {
    const out = join(dir, "onnx-ext");
    compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["onnx"], widths: [0.375], precision: "fp32", out, externalData: "always" });
    const folder = join(out, "w375");
    const data = readdirSync(folder).find((f) => f.endsWith(".data"))!;
    const inputs = microInputs();
    fc.assert(
      fc.property(mutation, fc.constantFrom("model.onnx", data), (m, file) => {
        const p = join(dir, "m-ext");
        rmSync(p, { recursive: true, force: true });
        cpSync(folder, p, { recursive: true });
        writeFileSync(join(p, file), mutate(readFileSync(join(folder, file)), m));
        expectClean(() => readAndRun(readOnnx, join(p, "model.onnx"), inputs));
      }),
      { numRuns: 200, seed },
    );
  });

  test(".tflite models, weights inline and after the flatbuffer (and running what parses)", () => {
    const inputs = microInputs();
    const files = (["never", "always"] as const).map((externalData) => {
      const out = join(dir, `tflite-${externalData}`);
      compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["tflite"], widths: [0.375], precision: "fp32", out, externalData });
      const bytes = readFileSync(join(out, "w375", "model.tflite"));
      // with appended weights the flatbuffer (where the structure is) ends at the first weight
      return { bytes, head: externalData === "always" ? bytes.length / 2 : undefined };
    });
    fc.assert(
      fc.property(mutation, fc.constantFrom(0, 1), (m, which) => {
        const p = join(dir, "m.tflite");
        writeFileSync(p, mutate(files[which]!.bytes, m, files[which]!.head));
        expectClean(() => readAndRun(readTflite, p, inputs));
      }),
      { numRuns: 300, seed },
    );
  });

  test(".mlpackage (model.mlmodel, weight file, Manifest.json)", () => {
    const out = join(dir, "coreml");
    compile({ source: syntheticSource(presetConfig("micro"), 1), ref: { preset: "micro", seed: 1 }, targets: ["coreml"], widths: [0.375], precision: "fp32", out });
    const pkg = join(out, "w375", "model.mlpackage");
    const weightFile = readdirSync(join(pkg, "Data/com.apple.CoreML/weights"))[0]!;
    const files = ["Data/com.apple.CoreML/model.mlmodel", `Data/com.apple.CoreML/weights/${weightFile}`, "Manifest.json"];
    const inputs = microInputs();
    fc.assert(
      fc.property(mutation, fc.constantFrom(...files), (m, file) => {
        const p = join(dir, "m.mlpackage");
        rmSync(p, { recursive: true, force: true });
        cpSync(pkg, p, { recursive: true });
        writeFileSync(join(p, file), mutate(readFileSync(join(pkg, file)), m, file.includes("/weights/") ? 4096 : undefined));
        expectClean(() => readAndRun(readCoreml, p, inputs));
      }),
      { numRuns: 200, seed },
    );
  });
});
