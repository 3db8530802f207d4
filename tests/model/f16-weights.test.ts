// An f16 checkpoint's weights reach the interpreter's kernels as their stored fp16 patterns (packed
// by the gemm as it goes, src/ops/layout.ts const): the float model computes exactly what it
// computes from a float32 checkpoint holding the same values, at every width and in fp16 mode.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { SafetensorsFile, writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { buildModel } from "../../src/model/build.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { asFloat } from "../../src/kernels/tensor.js";

const TRAINED = new URL("../../fixtures/shapes-micro/model.safetensors", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-f16-weights-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a model read from fp16 patterns gives the outputs of its float32 copy bit for bit (widths 0.5 and 1, fp32 and fp16 modes)", () => {
  const f16 = join(dir, "f16.safetensors"), f32 = join(dir, "f16-as-f32.safetensors");
  const src = SafetensorsFile.open(TRAINED);
  writeSafetensors(f16, src.names().map((n) => ({ name: n, dtype: "F16", shape: src.entry(n).shape, produce: (emit) => emit(src.readFloat(n)) })), src.metadata);
  src.close();
  const back = SafetensorsFile.open(f16);
  writeSafetensors(f32, back.names().map((n) => ({ name: n, dtype: "F32", shape: back.entry(n).shape, produce: (emit) => emit(back.readFloat(n)) })), back.metadata);
  back.close();
  const [half, full] = [openCheckpoint(f16), openCheckpoint(f32)];
  const c = half.config;
  const inputs = syntheticInputs(c, 7, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens });
  for (const width of [0.5, 1] as const)
    for (const precision of ["fp32", "fp16"] as const) {
      const [a, b] = [half, full].map((s) => runGraph(buildModel(s, { width }).graph, inputs, { precision }).velocity!.data);
      expect(a, `w${width} ${precision}`).toEqual(b);
    }
  half.close();
  full.close();
});

test("an f16 checkpoint's weights reach an fp16 artifact as their stored patterns, never widened and rounded back", async () => {
  const { tensorBytes } = await import("../../src/io/encode.js");
  const { halfPrecisionConst } = await import("../../passes/fp16-weights.js");
  const { withShape } = await import("../../src/kernels/tensor.js");
  const f16 = join(dir, "patterns.safetensors");
  const src = SafetensorsFile.open(TRAINED);
  writeSafetensors(f16, src.names().map((n) => ({ name: n, dtype: "F16", shape: src.entry(n).shape, produce: (emit) => emit(src.readFloat(n)) })), src.metadata);
  src.close();
  const ck = openCheckpoint(f16);
  // element by element, quietly (expect's deep equality on every weight took seconds)
  const same = (a: Uint16Array | undefined, b: Uint16Array) => a !== undefined && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
  let weights = 0;
  for (const width of [0.5, 1] as const)
    for (const n of buildModel(ck, { width }).graph.nodes) {
      if (n.kind !== "const" || n.attrs.value.role !== "weight") continue;
      const c = n.attrs.value, stored = asFloat(c.load()).half!;
      const loaded = c.load() as { half?: Uint16Array };
      // loading keeps the patterns (sliced to the width), the fp16 copy is those patterns, a
      // reshape keeps them, and writing them in fp16 is a view on them, not an encoding
      expect(same(loaded.half, stored), c.source).toBe(true);
      const half = halfPrecisionConst(c).load() as { half?: Uint16Array; dtype: string };
      expect(half.dtype).toBe("f16");
      expect(same(half.half, stored), c.source).toBe(true);
      const flat = withShape(half as never, [stored.length]) as { half?: Uint16Array };
      expect(flat.half).toBe(half.half);
      const bytes = tensorBytes(flat as never, "f16");
      expect(bytes.buffer).toBe(half.half!.buffer);
      expect(same(new Uint16Array(bytes.buffer, bytes.byteOffset, stored.length), stored)).toBe(true);
      weights++;
    }
  ck.close();
  expect(weights).toBeGreaterThan(20);
});
