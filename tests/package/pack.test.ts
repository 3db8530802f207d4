// The npm package as a user gets it: `npm pack`, installed into an empty project, then the CLI's
// main job and the README's first API example run from node_modules. The tarball must hold what
// they need and nothing that only the tests use.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";

const ROOT = new URL("../../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-pack-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" } });

test("the packed tarball installs into an empty project and compiles, verifies and runs the API example", () => {
  // dist/ is already built by `npm test`; --ignore-scripts keeps pack from rebuilding it under the running suite
  const packed = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", dir], ROOT)) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  expect(files).toContain("bin/ditc.js");
  expect(files).toContain("dist/src/api/index.js");
  expect(files).toContain("dist/src/api/index.d.ts");
  expect(files).toContain("scripts/setup-coremltools.sh");
  expect(files.filter((f) => /^(tests|fixtures|bench|dist\/tests|dist\/bench)\//.test(f) || f === "scripts/test.mjs")).toEqual([]);

  const app = join(dir, "app");
  execFileSync("mkdir", ["-p", app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  npm(["install", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", join(dir, packed[0]!.filename)], app);
  expect(existsSync(join(app, "node_modules", "ditc", "dist", "src", "api", "index.js"))).toBe(true);

  const ditc = join(app, "node_modules", ".bin", "ditc");
  const compiled = JSON.parse(execFileSync(ditc, ["compile", "--preset", "micro", "--target", "tflite,onnx", "--width", "0.5", "--quantize", "k4", "--out", "out", "--json"], { cwd: app, encoding: "utf8" }));
  expect(compiled.artifacts.map((a: { target: string }) => a.target).sort()).toEqual(["onnx", "tflite"]);
  const verified = JSON.parse(execFileSync(ditc, ["verify", "out", "--json"], { cwd: app, encoding: "utf8" }));
  expect(verified.results.length).toBeGreaterThanOrEqual(4);
  expect(verified.results.every((r: { pass: boolean }) => r.pass)).toBe(true);

  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const api = readme.split(/^## /m).find((s) => s.startsWith("Programmatic API"))!;
  const first = /```js\n([\s\S]*?)```/.exec(api)![1]!;
  writeFileSync(join(app, "example.mjs"), first);
  const out = execFileSync(process.execPath, ["example.mjs"], { cwd: app, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  expect(out).toMatch(/average bits/);
  expect(readdirSync(join(app, "out-api", "w500")).sort()).toEqual(["model.onnx", "model.tflite"]);
}, 300_000);
