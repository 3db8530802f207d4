// The README's JavaScript examples, run as written against the built package: the API examples
// as scripts, the plugin example as a real Vite project built from its own config file.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";

const ROOT = new URL("../../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-readme-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ```js blocks under a "## " heading, with the file name a leading `// name.js` comment gives. */
function examples(section: string): { file?: string; code: string }[] {
  const md = readFileSync(join(ROOT, "README.md"), "utf8");
  const body = md.split(/^## /m).find((s) => s.startsWith(section));
  if (!body) throw new Error(`README has no section "${section}"`);
  return [...body.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => {
    const code = m[1]!;
    const file = /^\/\/ ([\w.-]+\.js)\b/.exec(code)?.[1];
    return { ...(file ? { file } : {}), code };
  });
}

/** A project folder where `ditc` (this repository, built) and vite resolve as installed packages. */
function project(name: string): string {
  const p = join(dir, name);
  mkdirSync(join(p, "node_modules"), { recursive: true });
  symlinkSync(ROOT, join(p, "node_modules", "ditc"), "dir");
  symlinkSync(join(ROOT, "node_modules", "vite"), join(p, "node_modules", "vite"), "dir");
  writeFileSync(join(p, "package.json"), JSON.stringify({ type: "module", private: true }));
  return p;
}

test("the Programmatic API examples run", () => {
  const blocks = examples("Programmatic API");
  expect(blocks.length).toBe(2);
  const p = project("api");
  blocks.forEach((b, i) => {
    writeFileSync(join(p, `example${i}.mjs`), b.code);
    const out = execFileSync(process.execPath, [`example${i}.mjs`], { cwd: p, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out.length).toBeGreaterThan(0);
  });
  expect(readdirSync(join(p, "out-api", "w500")).sort()).toEqual(["model.onnx", "model.tflite"]);
  expect(readdirSync(p)).toContain("micro-w500.tflite");
});

test("the Build plugin example builds with Vite", () => {
  const blocks = examples("Build plugin");
  const p = project("plugin");
  for (const b of blocks) {
    expect(b.file).toBeDefined();
    writeFileSync(join(p, b.file!), b.code);
  }
  writeFileSync(join(p, "dit.ditc.json"), JSON.stringify({ preset: "micro", seed: 3 }));
  writeFileSync(join(p, "index.html"), `<!doctype html><script type="module" src="./main.js"></script>`);
  execFileSync(process.execPath, [join(p, "node_modules", "vite", "bin", "vite.js"), "build", "--logLevel", "error"], { cwd: p, encoding: "utf8" });
  const assets = readdirSync(join(p, "dist", "assets"));
  expect(assets.some((f) => /^dit-onnx-w500-mixed-.*\.onnx$/.test(f))).toBe(true);
});
