import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { compile } from "../../src/driver/compile.js";
import { writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { presetConfig } from "../../src/model/config.js";
import { openCheckpoint, syntheticSource, type SyntheticSource } from "../../src/model/weights.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-compile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("compiling all three widths from one checkpoint, or quantizing one, reads each weight from disk once", () => {
  const ckPath = join(dir, "micro16.safetensors");
  writeSyntheticCheckpoint(presetConfig("micro"), 1, ckPath, "f16");
  const ck = openCheckpoint(ckPath);
  const { report } = compile({ source: ck, ref: { checkpoint: ckPath }, targets: ["onnx"], widths: [0.375, 0.5, 1], precision: "fp32", out: join(dir, "out"), quantize: { mode: "k4" } });
  expect(report.artifacts.length).toBe(3);
  expect(report.checkpointReads!.cached).toBe(true);
  expect(report.checkpointReads!.bytesRead).toBe(ck.file.dataBytes);
  ck.close();
  // one width: a quantized compile reads every weight for statistics, clustering and writing, so it caches too
  for (const quantize of [{ mode: "k4" }, { mode: "none" }] as const) {
    const one = openCheckpoint(ckPath);
    const r = compile({ source: one, ref: { checkpoint: ckPath }, targets: ["onnx"], widths: [0.5], precision: "fp32", out: join(dir, `one-${quantize.mode}`), quantize }).report;
    expect(r.checkpointReads!.cached).toBe(quantize.mode !== "none");
    // (width 0.5 leaves some tensors unread; uncached, statistics and writing would read each one twice)
    if (quantize.mode !== "none") expect(r.checkpointReads!.bytesRead).toBeLessThanOrEqual(one.file.dataBytes);
    one.close();
  }
  // the same compile twice gives byte-identical artifacts and reports (no timestamps or timings)
  const again = openCheckpoint(ckPath);
  compile({ source: again, ref: { checkpoint: ckPath }, targets: ["onnx"], widths: [0.375, 0.5, 1], precision: "fp32", out: join(dir, "out2"), quantize: { mode: "k4" } });
  again.close();
  for (const f of ["w375/model.onnx", "w1000/model.onnx", "report.json", "report.html"]) {
    const a = readFileSync(join(dir, "out", f)), b = readFileSync(join(dir, "out2", f));
    expect(a.equals(b), f).toBe(true);
  }
});

test("a preset's weights are drawn once per compile (and the artifacts are those of drawing them on every read)", () => {
  const config = presetConfig("micro");
  const draws = new Map<string, number>();
  const counted = (): SyntheticSource => {
    const src = syntheticSource(config, 2);
    return { ...src, read: (spec) => (draws.set(spec.name, (draws.get(spec.name) ?? 0) + 1), src.read(spec)) };
  };
  const opts = { ref: { preset: "micro", seed: 2 }, targets: ["onnx"], widths: [0.5, 1], precision: "fp32", quantize: { mode: "k4" } } as const;
  compile({ ...opts, source: counted(), out: join(dir, "preset") });
  // prefetched on two threads: what this thread still draws through read() it draws once
  expect(Math.max(0, ...draws.values())).toBeLessThanOrEqual(1);
  // a source that is not a preset's (no seed) is read as it is, every time
  draws.clear();
  const { seed: _, ...plain } = counted();
  compile({ ...opts, source: plain, out: join(dir, "preset-uncached") });
  expect(Math.max(...draws.values())).toBeGreaterThan(1);
  for (const f of ["w500/model.onnx", "w1000/model.onnx"]) expect(readFileSync(join(dir, "preset", f)).equals(readFileSync(join(dir, "preset-uncached", f))), f).toBe(true);
});

test("the phases split the weight reads by where they fell, each read counted once", () => {
  const ckPath = join(dir, "micro-reads.safetensors");
  writeSyntheticCheckpoint(presetConfig("micro"), 3, ckPath, "f16");
  const ck = openCheckpoint(ckPath);
  // every read of the file takes a while longer (a prefetch 20 ms, a tensor 1 ms), so each window's share is measurable
  const wait = (ms: number) => {
    for (const until = performance.now() + ms; performance.now() < until; );
  };
  const slowed = new Map<PropertyKey, number>([["prefetchItems", 20], ["readFloat", 1], ["readF16", 1]]);
  const file = new Proxy(ck.file, {
    get(t, key) {
      const v: unknown = Reflect.get(t, key, t);
      if (typeof v !== "function") return v;
      const ms = slowed.get(key) ?? 0;
      return (...args: unknown[]) => (wait(ms), (v as (...a: unknown[]) => unknown).apply(t, args));
    },
  });
  const { phases } = compile({ source: { ...ck, file }, ref: { checkpoint: ckPath }, targets: ["onnx"], widths: [0.5, 1], precision: "fp32", out: join(dir, "reads"), quantize: { mode: "k4" } });
  ck.close();
  const r = phases.reads;
  // the cache's reads, width 0.5's slices, the statistics' reads, and the clustering's and emitters' after them
  for (const [k, v] of Object.entries(r)) expect(v, k).toBeGreaterThan(0.005);
  // the four windows are timed apart and cover every read (four parts, each rounded to the ms)
  expect(Math.abs(r.cacheSeconds + r.slicesSeconds + r.inProbeSeconds + r.afterProbeSeconds - phases.readSeconds)).toBeLessThanOrEqual(0.0025);
  expect(r.inProbeSeconds).toBeLessThanOrEqual(phases.statisticsSeconds + phases.probeSeconds);
});
