#!/usr/bin/env node
// Runs the vitest suite and closes with a plain "N passed, N failed" line that CI log readers
// recognise; exits non-zero when anything failed or the suite did not run.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

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
// a file whose worker died reports its tests "pending" (never run; a skipped test says "skipped"): name them
let unrun = 0;
for (const file of results.testResults) {
  const unfinished = file.assertionResults.filter((t) => !["passed", "skipped", "todo"].includes(t.status));
  unrun += unfinished.filter((t) => t.status === "pending").length;
  if (file.status === "passed" && unfinished.length === 0) continue;
  const state = unfinished.some((t) => t.status === "pending") ? "did not finish (its test worker exited?)" : file.status;
  console.log(`\n${relative(process.cwd(), file.name)}: ${state}${file.message ? ` (${file.message.split("\n")[0]})` : ""}`);
  for (const t of unfinished) console.log(`  ${t.status}: ${t.fullName}`);
}
console.log(`\nTests: ${results.numPassedTests} passed, ${results.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}${unrun ? `, ${unrun} never ran` : ""}`);
process.exit(vitest.status !== 0 ? vitest.status || 1 : results.numTotalTests === 0 || unrun > 0 ? 1 : 0);
