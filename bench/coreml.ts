// CoreML benchmark: the full preset at 1024², fp16, dense and 4-bit palettized; emit time and
// peak RSS against the weight bytes written, and Apple's coremltools loading the result.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkWithCoremltools, coremltoolsUnavailable } from "../targets/coreml/coremltools.js";

const here = dirname(fileURLToPath(import.meta.url));

export function benchCoremlFull(res = 1024) {
  const rows: Record<string, unknown>[] = [];
  for (const quant of ["none", "k4"]) {
    const dir = mkdtempSync(join(tmpdir(), "ditc-bench-coreml-"));
    try {
      const r = JSON.parse(execFileSync(process.execPath, [join(here, "coreml-child.js"), dir, String(res), quant], { encoding: "utf8", maxBuffer: 1 << 20 }));
      const t0 = performance.now();
      const check = coremltoolsUnavailable() ? { ok: false, error: coremltoolsUnavailable() } : checkWithCoremltools(join(dir, r.path));
      const row = { quantize: quant, ...r, rssOverWeightBytes: +(r.maxRssBytes / r.bytes).toFixed(3), coremltools: { ...check, seconds: +((performance.now() - t0) / 1000).toFixed(1) } };
      rows.push(row);
      console.log(`full -> CoreML fp16 @${res} (${quant}): ${r.seconds.toFixed(0)} s, ${(r.bytes / 2 ** 30).toFixed(2)} GiB, peak RSS ${(r.maxRssBytes / 2 ** 30).toFixed(2)} GiB (${row.rssOverWeightBytes}x the weights); coremltools ${check.ok ? `loaded it: ${check.transposesInBlocks} transposes in blocks, max rank ${check.maxRank}` : `failed: ${check.error}`}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}
