// Atomic outputs and determinism, through the real binary: a compile killed with SIGKILL at
// random moments leaves every artifact either as it was or as the new compile makes it, never a
// partial file; the same compile twice, in two processes, writes the same bytes.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { afterAll, expect, test } from "vitest";
import { decodeCoremlModel } from "../../targets/coreml/proto.js";
import { decodeModel } from "../../targets/onnx/proto.js";
import { Rng } from "../../src/model/synthetic.js";

const BIN = new URL("../../bin/ditc.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-atomic-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// plain palettes keep each compile short (the techniques' statistics pass is covered by the determinism test below)
const args = (seed: number, out: string) => ["compile", "--preset", "micro", "--seed", String(seed), "--target", "coreml,tflite,onnx", "--width", "0.5,1", "--quantize", "k4", "--kmeans", "plain", "--bias-correction", "off", "--external-data", "always", "--out", out];
const ARTIFACTS = ["w500/model.tflite", "w1000/model.tflite", "w500/model.onnx", "w1000/model.onnx", "w500/model.mlpackage", "w1000/model.mlpackage", "report.json", "report.html"];
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A package's identity: its manifest and model, and the bytes of every weight file the model names. */
function packageDigest(p: string): string {
  const model = readFileSync(join(p, "Data/com.apple.CoreML/model.mlmodel"));
  const names = new Set<string>();
  const walk = (o: unknown) => {
    if (o && typeof o === "object") for (const [k, v] of Object.entries(o)) k === "fileName" && typeof v === "string" ? names.add(v) : walk(v);
  };
  walk(decodeCoremlModel(model));
  const parts = [sha(readFileSync(join(p, "Manifest.json"))), sha(model)];
  for (const n of [...names].sort()) parts.push(n, sha(readFileSync(join(p, "Data/com.apple.CoreML", n.replace("@model_path/", "")))));
  return parts.join("|");
}

/** An ONNX model's identity: the model and the external data file it names. */
function onnxDigest(p: string): string {
  const m = decodeModel(readFileSync(p));
  const locations = new Set(m.graph!.initializer!.flatMap((t) => (t.externalData ?? []).filter((e) => e.key === "location").map((e) => e.value!)));
  return [sha(readFileSync(p)), ...[...locations].map((l) => sha(readFileSync(join(dirname(p), l))))].join("|");
}

function digest(out: string, artifact: string): string | undefined {
  const p = join(out, artifact);
  if (!existsSync(p)) return undefined;
  return statSync(p).isDirectory() ? packageDigest(p) : p.endsWith(".onnx") ? onnxDigest(p) : sha(readFileSync(p));
}

test("SIGKILL at random points: every artifact is the old one or the new one, never partial", { timeout: 300_000 }, async () => {
  const old = join(dir, "old"), fresh = join(dir, "new");
  execFileSync(process.execPath, [BIN, ...args(1, old)], { stdio: "ignore" });
  execFileSync(process.execPath, [BIN, ...args(2, fresh)], { stdio: "ignore" });
  const want = Object.fromEntries(ARTIFACTS.map((a) => [a, { old: digest(old, a)!, new: digest(fresh, a)! }]));
  for (const a of ARTIFACTS) expect(want[a]!.old, a).not.toBe(want[a]!.new);
  const t0 = performance.now();
  execFileSync(process.execPath, [BIN, ...args(2, join(dir, "timing"))], { stdio: "ignore" });
  const full = performance.now() - t0;
  const rng = new Rng(11, "kill");
  const seen = { old: 0, new: 0 };
  const kills = 10;
  for (let k = 0; k < kills; k++) {
    const out = join(dir, `kill${k}`);
    cpSync(old, out, { recursive: true });
    const child = spawn(process.execPath, [BIN, ...args(2, out)], { stdio: "ignore" });
    // listened for from the start: a compile that finishes before the kill has exited already
    const exited = new Promise((r) => child.once("exit", r));
    const delay = 150 + rng.uniform() * full; // node's start-up takes ~150 ms before anything is written
    await new Promise((r) => setTimeout(r, delay));
    child.kill("SIGKILL");
    await exited;
    for (const a of ARTIFACTS) {
      const d = digest(out, a);
      expect([want[a]!.old, want[a]!.new], `${a} after a kill at ${delay.toFixed(0)} ms`).toContain(d);
      seen[d === want[a]!.old ? "old" : "new"]++;
    }
    if (k % 3 === 0) {
      // the next compile sweeps up what the killed one left and finishes the job
      execFileSync(process.execPath, [BIN, ...args(2, out)], { stdio: "ignore" });
      for (const a of ARTIFACTS) expect(digest(out, a), a).toBe(want[a]!.new);
      const leftovers = (readdirSync(out, { recursive: true }) as string[]).filter((f) => f.includes(".tmp-") || f.includes(".writing-") || /\.onnx\.[0-9a-f]{16}\.data$/.test(f) && !readFileSync(join(out, dirname(f), "model.onnx")).includes(Buffer.from(f.split("/").pop()!)));
      expect(leftovers).toEqual([]);
    }
  }
  console.log(`SIGKILL test: ${kills} kills over a ${full.toFixed(0)} ms compile; artifacts found old ${seen.old} times, new ${seen.new} times, partial never`);
  expect(seen.old).toBeGreaterThan(0);
  expect(seen.new).toBeGreaterThan(0);
});

test("the same compile in two processes writes byte-identical artifacts and reports, with the writer thread or without", () => {
  const a = join(dir, "det-a"), b = join(dir, "det-b");
  const mixed = (out: string) => ["compile", "--preset", "micro", "--seed", "4", "--target", "coreml,tflite,onnx", "--quantize", "mixed", "--out", out];
  execFileSync(process.execPath, [BIN, ...mixed(a)], { stdio: "ignore" });
  // one thread: no write-behind thread, every byte written directly (and k-means on this thread)
  execFileSync(process.execPath, [BIN, ...mixed(b), "--threads", "1"], { stdio: "ignore" });
  const files = (readdirSync(a, { recursive: true }) as string[]).filter((f) => statSync(join(a, f)).isFile()).sort();
  expect(files.length).toBeGreaterThan(12);
  expect((readdirSync(b, { recursive: true }) as string[]).filter((f) => statSync(join(b, f)).isFile()).sort()).toEqual(files);
  for (const f of files) expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), relative(a, join(a, f))).toBe(true);
});
