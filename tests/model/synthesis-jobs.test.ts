// A preset's tensors drawn on two threads (src/model/synthesis-jobs.ts) and kept by the synthesis
// cache (withSynthesisCache): the values synthesize gives, whichever thread drew them; reads give
// copies, so a caller that changes one does not change the next read; ditc init's batches give
// the writer each tensor's own values. The helper runs from dist/.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";
import { drawnInBatches, writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { presetConfig } from "../../src/model/config.js";
import { paramSpecs, specsForWidth } from "../../src/model/params.js";
import { synthesizeMany } from "../../src/model/synthesis-jobs.js";
import { synthesize } from "../../src/model/synthetic.js";
import { openCheckpoint, syntheticSource, withSynthesisCache, type PrefetchingSource } from "../../src/model/weights.js";
import { sourceOf } from "../../src/driver/verify.js";
import type { CompileReport } from "../../src/driver/compile.js";

const same = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

test("tensors drawn on two threads are those synthesize draws", () => {
  // the mini preset's (~0.3 s of drawing): enough for the helper to take a share
  const specs = paramSpecs(presetConfig("mini"));
  for (const threads of [1, 2]) {
    const drawn = synthesizeMany(specs, 5, threads);
    expect(drawn.length).toBe(specs.length);
    specs.forEach((s, i) => expect(same(drawn[i]!, synthesize(s, 5)), s.name).toBe(true));
  }
});

test("the synthesis cache draws a tensor once and reads out copies", () => {
  const config = presetConfig("micro");
  const src = syntheticSource(config, 9);
  let draws = 0;
  const cached = withSynthesisCache({ ...src, read: (spec) => (draws++, src.read(spec)) });
  const names = specsForWidth(config, 0.5).map((s) => s.name);
  const bytes = cached.prefetch(names, 2);
  expect(bytes).toBe(specsForWidth(config, 0.5).reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0));
  expect(cached.prefetch(names, 2)).toBe(0); // already kept
  const spec = specsForWidth(config, 0.5)[0]!;
  const first = cached.read(spec);
  first.fill(0);
  expect(same(cached.read(spec), synthesize(spec, 9))).toBe(true);
  expect(draws).toBe(0); // all prefetched
  const other = paramSpecs(config).find((s) => !names.includes(s.name))!;
  cached.read(other), cached.read(other);
  expect(draws).toBe(1);
});

test("ditc init's batches give every tensor its own draws, in the writer's order", () => {
  const specs = paramSpecs(presetConfig("micro"));
  // batches of ~64 KiB: many of them, some a single tensor larger than that
  const produce = drawnInBatches(specs, 4, 1 << 16);
  for (const s of [...specs].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const got: Float32Array[] = [];
    produce.get(s.name)!((c) => got.push(c));
    expect(got.length).toBe(1);
    expect(same(got[0]!, synthesize(s, 4)), s.name).toBe(true);
  }
});

test("a checkpoint ditc init writes holds the values synthesize draws", () => {
  const dir = mkdtempSync(join(tmpdir(), "ditc-init-"));
  try {
    const config = presetConfig("micro"), path = join(dir, "micro.safetensors");
    writeSyntheticCheckpoint(config, 6, path);
    const ck = openCheckpoint(path);
    for (const s of paramSpecs(config)) expect(same(ck.read(s), synthesize(s, 6)), s.name).toBe(true);
    ck.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("verify keeps a preset's weights once drawn, its artifacts' widths drawn up front", () => {
  const artifacts = [{ width: 0.5 }, { width: 1 }] as CompileReport["artifacts"];
  const { source } = sourceOf({ model: { preset: "micro", seed: 3, config: {} }, artifacts });
  expect("prefetch" in source && typeof source.prefetch === "function").toBe(true);
  // already drawn: a second prefetch of those widths' tensors finds nothing to draw, another width's does
  const names = (w: number) => specsForWidth(source.config, w).map((s) => s.name);
  expect((source as PrefetchingSource).prefetch([...names(0.5), ...names(1)], 1)).toBe(0);
  expect((source as PrefetchingSource).prefetch(names(0.375), 1)).toBeGreaterThan(0);
  for (const s of paramSpecs(source.config)) expect(same(source.read(s), synthesize(s, 3)), s.name).toBe(true);
});
