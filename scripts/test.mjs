#!/usr/bin/env node
// Runs the vitest suite and closes with a plain "N passed, N failed" line that CI log readers
// recognise; exits non-zero when anything failed or the suite did not run.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "ditc-test-"));
const report = join(dir, "results.json");
const vitest = spawnSync(
  process.execPath,
  ["node_modules/vitest/vitest.mjs", "run", "--reporter=default", "--reporter=json", `--outputFile=${report}`, ...process.argv.slice(2)],
  { stdio: "inherit" },
);
let results;
try {
  results = JSON.parse(readFileSync(report, "utf8"));
} catch {
  console.error("test: vitest wrote no results (it crashed before finishing)");
  process.exit(vitest.status || 1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const skipped = results.numPendingTests + results.numTodoTests;
console.log(`\nTests: ${results.numPassedTests} passed, ${results.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(vitest.status !== 0 ? vitest.status || 1 : results.numTotalTests === 0 ? 1 : 0);
