// A preset compiled end to end with its weights kept once drawn (src/model/weights.ts
// withSynthesisCache), against the same compile drawing them on every read (a source without a
// seed, which compile does not cache): what `ditc compile --preset` gained, interleaved.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, parseQuantize } from "../src/driver/compile.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource, type WeightSource } from "../src/model/weights.js";

export function benchPresetCompile(preset = "mini", reps = 3) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-preset-"));
  const config = presetConfig(preset);
  const run = (cached: boolean, out: string) => {
    const src = syntheticSource(config, 0);
    const { seed: _, ...drawnEachRead } = src;
    const t0 = performance.now();
    compile({ source: cached ? src : (drawnEachRead as WeightSource), ref: { preset, seed: 0 }, targets: ["coreml", "tflite", "onnx"], widths: [...config.widths], precision: "auto", quantize: parseQuantize("mixed"), out: join(dir, out) });
    return (performance.now() - t0) / 1000;
  };
  const t = { cached: [] as number[], drawnEachRead: [] as number[] };
  try {
    for (let i = 0; i < reps; i++) (t.cached.push(run(true, "cached")), t.drawnEachRead.push(run(false, "drawn")));
    const same = ["w375/model.onnx", "w1000/model.tflite", "report.json"].every((f) => readFileSync(join(dir, "cached", f)).equals(readFileSync(join(dir, "drawn", f))));
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
    const r = { preset, widths: config.widths, cachedSeconds: +median(t.cached).toFixed(2), drawnEachReadSeconds: +median(t.drawnEachRead).toFixed(2), speedup: +(median(t.drawnEachRead) / median(t.cached)).toFixed(2), identicalArtifacts: same };
    console.log(`compile --preset ${preset} (3 targets, widths ${config.widths.join(", ")}, mixed): weights kept once drawn ${r.cachedSeconds} s, drawn on every read ${r.drawnEachReadSeconds} s (${r.speedup}x), artifacts identical: ${same}`);
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
