// The digest of ditc's built code that the plugin's cache keys on: it follows every byte and
// name of the code that makes artifacts, and nothing else.
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { buildFingerprint } from "../../src/io/project.js";
import { cacheKey } from "../../src/plugin/index.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-fingerprint-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dist(name: string): string {
  const root = join(dir, name);
  for (const [file, text] of [["src/quant/kmeans.js", "export const a = 1;"], ["passes/cse.js", "export const b = 2;"], ["targets/onnx/emit.js", "export const c = 3;"], ["wasm/kmeans.wasm", "\0asm"], ["bench/run.js", "bench"]]) {
    mkdirSync(join(root, file, ".."), { recursive: true });
    writeFileSync(join(root, file), text!);
  }
  return root;
}

test("the build fingerprint changes with the code that makes artifacts, and only with it", () => {
  const a = dist("a"), same = buildFingerprint(a);
  expect(buildFingerprint(dist("b"))).toBe(same); // the same files elsewhere
  const copy = join(dir, "copy");
  cpSync(a, copy, { recursive: true });
  writeFileSync(join(copy, "src/quant/kmeans.js"), "export const a = 2;");
  expect(buildFingerprint(copy)).not.toBe(same);
  writeFileSync(join(copy, "src/quant/kmeans.js"), "export const a = 1;");
  expect(buildFingerprint(copy)).toBe(same);
  writeFileSync(join(copy, "wasm/kmeans.wasm"), "\0asn");
  expect(buildFingerprint(copy)).not.toBe(same);
  writeFileSync(join(copy, "wasm/kmeans.wasm"), "\0asm");
  renameSync(join(copy, "passes/cse.js"), join(copy, "passes/cse2.js"));
  expect(buildFingerprint(copy)).not.toBe(same);
  renameSync(join(copy, "passes/cse2.js"), join(copy, "passes/cse.js"));
  // the benchmarks' code and files that are not code do not make artifacts
  writeFileSync(join(copy, "bench/run.js"), "another bench");
  writeFileSync(join(copy, "src/quant/kmeans.d.ts"), "declare const a: number;");
  expect(buildFingerprint(copy)).toBe(same);
  // nothing built: the digest of nothing, not an error
  expect(buildFingerprint(join(dir, "missing"))).toMatch(/^[0-9a-f]{64}$/);
});

test("the plugin's cache keys on this build's fingerprint: another build is another entry", async () => {
  const request: Parameters<typeof cacheKey>[0] = { description: join(dir, "dit.ditc.json"), model: { preset: "micro", seed: 3 }, target: "onnx", width: 1, quantize: "none", precision: "auto" };
  const cache = join(dir, "cache");
  expect(await cacheKey(request, cache)).toBe(await cacheKey(request, cache, buildFingerprint()));
  expect(await cacheKey(request, cache, "another build")).not.toBe(await cacheKey(request, cache));
});
