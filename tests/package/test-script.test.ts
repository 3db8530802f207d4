// scripts/test.mjs, the README's test command: a test file whose worker process dies leaves its
// tests "pending" in vitest's report, neither passed nor failed; the script names them and fails.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const repo = fileURLToPath(new URL("../..", import.meta.url));

test("a test file whose worker dies is named, its tests counted as never run, and the run fails", () => {
  const r = spawnSync(process.execPath, ["scripts/test.mjs", "--root", "fixtures/dying-suite"], { cwd: repo, encoding: "utf8", timeout: 60_000 });
  expect(r.stdout).toMatch(/dies\.check\.ts: did not finish \(its test worker exited\?\)\n  pending: runs before the death\n  pending: kills its own worker process/);
  expect(r.stdout).not.toMatch(/passes\.check\.ts:/);
  expect(r.stdout).toMatch(/Tests: 1 passed, 0 failed, 2 never ran\n/);
  expect(r.status).toBe(1);
});
