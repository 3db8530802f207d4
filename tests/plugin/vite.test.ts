// The build plugin in a real Vite build: the first build compiles the imported model description
// and emits the artifact as an asset; the second finds it in the cache and compiles nothing.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "vite";
import { afterAll, expect, test } from "vitest";
import { ditc, type DitcPluginEvent } from "../../src/plugin/index.js";
import { syntheticInputs, writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { presetConfig } from "../../src/model/config.js";
import { openOrtSession } from "../../targets/onnx/ort.js";
import { compile } from "../../src/driver/compile.js";
import { syntheticSource } from "../../src/model/weights.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-vite-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function app(name: string, imports: string[]): string {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "dit.ditc.json"), JSON.stringify({ preset: "micro", seed: 3 }));
  writeFileSync(join(root, "index.html"), `<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>`);
  writeFileSync(join(root, "main.js"), imports.map((q, i) => `import m${i} from "./dit.ditc.json?${q}";`).join("\n") + `\nexport const models = [${imports.map((_, i) => `m${i}`).join(", ")}];\nconsole.log(models);\n`);
  return root;
}

async function viteBuild(root: string, cacheDir: string, events: DitcPluginEvent[]): Promise<number> {
  const t0 = performance.now();
  await build({ root, logLevel: "silent", configFile: false, build: { outDir: join(root, "dist"), emptyOutDir: true }, plugins: [ditc.vite({ cacheDir, onEvent: (e) => events.push(e) })] });
  return (performance.now() - t0) / 1000;
}

test("a Vite build compiles the imported model, emits it as an asset and returns its URL; a rebuild hits the cache", async () => {
  const root = app("a", ["target=onnx&width=0.5&quantize=mixed", "target=tflite&width=1"]);
  const cacheDir = join(dir, "cache");
  const first: DitcPluginEvent[] = [], second: DitcPluginEvent[] = [];
  const cold = await viteBuild(root, cacheDir, first);
  // the bundler loads modules concurrently, so events come in any order
  expect(first.map((e) => `${e.kind} ${e.target} ${e.width}`).sort()).toEqual(["compiled onnx 0.5", "compiled tflite 1"]);
  const assets = readdirSync(join(root, "dist", "assets"));
  const onnx = assets.find((f) => /^dit-onnx-w500-mixed-.*\.onnx$/.test(f)), tflite = assets.find((f) => /^dit-tflite-w1000-.*\.tflite$/.test(f));
  expect(onnx && tflite).toBeTruthy();
  const js = readFileSync(join(root, "dist", "assets", assets.find((f) => f.endsWith(".js"))!), "utf8");
  expect(js).toContain(onnx);
  expect(js).toContain(tflite);
  // the emitted asset is the artifact a direct compile writes, byte for byte, and it runs
  const direct = join(dir, "direct");
  compile({ source: syntheticSource(presetConfig("micro"), 3), ref: { preset: "micro", seed: 3 }, targets: ["onnx"], widths: [0.5], precision: "auto", out: direct, quantize: { mode: "mixed", target: 4.3 } });
  expect(readFileSync(join(root, "dist", "assets", onnx!)).equals(readFileSync(join(direct, "w500", "model.onnx")))).toBe(true);
  const s = await openOrtSession(join(root, "dist", "assets", onnx!));
  const c = presetConfig("micro");
  const out = await s.run(syntheticInputs(c, 1, { batch: 1, latentSize: c.latentSize, contextTokens: c.contextTokens }));
  await s.release();
  expect(out.velocity!.data.every(Number.isFinite)).toBe(true);

  const warm = await viteBuild(root, cacheDir, second);
  expect(second.map((e) => e.kind)).toEqual(["cached", "cached"]);
  expect(second.map((e) => e.key).sort()).toEqual(first.map((e) => e.key).sort());
  expect(readdirSync(join(root, "dist", "assets")).sort()).toEqual(assets.sort());
  console.log(`vite build with the ditc plugin: cold ${cold.toFixed(2)} s (compiles ${first.map((e) => e.seconds.toFixed(2)).join(" + ")} s), cached ${warm.toFixed(2)} s`);

  // another option is another cache entry
  const third: DitcPluginEvent[] = [];
  await viteBuild(app("b", ["target=onnx&width=0.5&quantize=k4"]), cacheDir, third);
  expect(third.map((e) => e.kind)).toEqual(["compiled"]);
});

test("a bad query or description fails the build with a message naming it", async () => {
  const root = app("bad", ["target=onnx&width=0.7"]);
  await expect(viteBuild(root, join(dir, "cache2"), [])).rejects.toThrow(/--width 0\.7 is not valid/);
  const root2 = app("bad2", ["target=tflite&colour=blue"]);
  await expect(viteBuild(root2, join(dir, "cache2"), [])).rejects.toThrow(/--colour blue is not valid: expected a query key/);
  // descriptions that are valid JSON of another shape
  const root3 = app("bad3", ["target=onnx"]);
  for (const [doc, message] of [["null", /E2002 .*dit\.ditc\.json: the config is not valid JSON \(it is not a JSON object\)/], [`{"preset": "micro", "seed": "three"}`, /E2001 .*dit\.ditc\.json: config field "seed" is "three", not an integer >= 0/]] as const) {
    writeFileSync(join(root3, "dit.ditc.json"), doc);
    await expect(viteBuild(root3, join(dir, "cache2"), []), doc).rejects.toThrow(message);
  }
});

test("a checkpoint description: keyed on the checkpoint's content (hashed once per file version), so new weights are a new entry", async () => {
  const root = app("ck", ["target=onnx&width=1"]);
  const ck = join(root, "weights.safetensors");
  writeSyntheticCheckpoint(presetConfig("micro"), 1, ck);
  writeFileSync(join(root, "dit.ditc.json"), JSON.stringify({ checkpoint: "weights.safetensors" }));
  const cacheDir = join(dir, "cache-ck");
  const runs: DitcPluginEvent[][] = [[], [], []];
  await viteBuild(root, cacheDir, runs[0]!);
  // the digest is remembered by (path, size, mtime): one memo per file version
  expect(readdirSync(join(cacheDir, "hashes"))).toHaveLength(1);
  await viteBuild(root, cacheDir, runs[1]!);
  writeSyntheticCheckpoint(presetConfig("micro"), 2, ck); // other weights, same names and shapes
  await viteBuild(root, cacheDir, runs[2]!);
  expect(runs.map((r) => r.map((e) => e.kind))).toEqual([["compiled"], ["cached"], ["compiled"]]);
  expect(runs[2]![0]!.key).not.toBe(runs[0]![0]!.key);
  expect(readdirSync(join(cacheDir, "hashes"))).toHaveLength(2);
});
