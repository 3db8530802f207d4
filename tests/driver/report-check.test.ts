// report.json is read back by verify: every field ditc trusts is checked first, so a report edited
// by hand or written by another tool is an error naming the field (exit 2), never a crash.
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { DitcError } from "../../src/diagnostics.js";
import { checkReport } from "../../src/driver/report-check.js";
import { readReport } from "../../src/driver/verify.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-report-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet = { out: () => {}, err: () => {} };
const out = join(dir, "out");
expect(await main(["compile", "--preset", "micro", "--target", "onnx", "--width", "0.5,1", "--quantize", "k4", "--out", out], quiet)).toBe(0);
const good = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as Record<string, any>;

/** `good` with the value at `path` (dot-separated, numbers index lists) replaced. */
function mutated(path: string, value: unknown): unknown {
  const r = structuredClone(good);
  const keys = path.split(".");
  let o = r;
  for (const k of keys.slice(0, -1)) o = o[k];
  o[keys.at(-1)!] = value;
  return r;
}

test("the report compile wrote passes as it is", () => {
  expect(checkReport(good, "report.json")).toBe(good);
  expect(readReport(out).artifacts).toHaveLength(2);
});

test("each field verify reads is checked, and the error names it", () => {
  const cases: [string, unknown, RegExp][] = [
    ["artifacts", 5, /field artifacts is not a list of artifacts/],
    ["model", "micro", /field model is not an object/],
    ["model.seed", "1", /field model\.seed is not an integer/],
    ["latentSize", [16], /field latentSize is not two positive integers/],
    ["contextTokens", -1, /field contextTokens is not a positive integer/],
    ["tolerances.fp16", null, /field tolerances\.fp16 is not an object/],
    ["artifacts.0.path", "../../elsewhere/model.onnx", /field artifacts\[0\]\.path is not a path inside the folder/],
    ["artifacts.0.path", "/abs/model.onnx", /field artifacts\[0\]\.path is not a path inside the folder/],
    ["artifacts.1.width", 0.4, /field artifacts\[1\]\.width is not one of the widths 0\.375, 0\.5, 1/],
    ["artifacts.0.precision", "int4", /field artifacts\[0\]\.precision is not "fp32" or "fp16"/],
    ["quantization.layers.2.bits", 5, /field quantization\.layers\[2\]\.bits is not 4 or 8/],
    ["quantization.kmeansRevision", "4", /field quantization\.kmeansRevision is not a positive integer/],
    ["quantization.statistics", "../stats.safetensors", /field quantization\.statistics is not a path inside the folder/],
    ["quantization.techniques", { kmeans: "weighted" }, /field quantization\.techniques\.probe is not a probe name/],
  ];
  for (const [path, value, message] of cases) {
    let err: unknown;
    try {
      checkReport(mutated(path, value), "report.json");
    } catch (e) {
      err = e;
    }
    expect(err, path).toBeInstanceOf(DitcError);
    expect((err as Error).message, path).toMatch(message);
    expect((err as Error).message).toMatch(/^E3010 report\.json: .*recompile the folder/);
  }
});

test("any value in any field verify reads: the report passes or is refused with a diagnostic", () => {
  const fields = ["model", "model.preset", "model.seed", "latentSize", "contextTokens", "tolerances", "tolerances.fp32", "tolerances.fp32.maxRelErr", "artifacts", "artifacts.0", "artifacts.0.target", "artifacts.0.width", "artifacts.0.path", "artifacts.1.precision", "quantization", "quantization.layers", "quantization.layers.0", "quantization.layers.0.width", "quantization.mode", "quantization.lutGroupSize"];
  fc.assert(
    fc.property(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 2 }), (path, value) => {
      try {
        checkReport(mutated(path, value), "report.json");
      } catch (e) {
        if (!(e instanceof DitcError)) throw e;
      }
    }),
    { numRuns: 300, seed: 7 },
  );
});

test("verify of a folder whose report is valid JSON of another shape exits 2 naming the field", async () => {
  const bad = join(dir, "bad");
  await main(["compile", "--preset", "micro", "--target", "onnx", "--width", "1", "--out", bad], quiet);
  writeFileSync(join(bad, "report.json"), JSON.stringify({ artifacts: 5 }));
  let err = "";
  expect(await main(["verify", bad], { out: () => {}, err: (s) => (err += s) })).toBe(2);
  expect(err).toMatch(/E3010 .*report\.json: field model is not an object/);
  expect(err).not.toMatch(/internal error/);
});
