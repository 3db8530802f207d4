// External tools (coremltools, native LiteRT) run as child processes with a deadline: one that
// hangs, crashes or cannot start becomes a reason in verify's results, never a hung or crashed ditc.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { DEFAULT_TOOL_TIMEOUT_SECONDS, runTool, toolTimeoutSeconds } from "../../src/io/tool-process.js";
import { checkManyWithCoremltools, coremltoolsUnavailable } from "../../targets/coreml/coremltools.js";

const node = process.execPath;
const dir = mkdtempSync(join(tmpdir(), "ditc-tool-process-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a tool that never ends is stopped at its deadline and the run says so", () => {
  const r = runTool("sleeper", node, ["-e", "setInterval(() => {}, 1000)"], { timeoutSeconds: 0.5 });
  expect(r.ok).toBe(false);
  expect(!r.ok && r.why).toBe("sleeper did not finish within 0.5 s and was stopped (DITC_TOOL_TIMEOUT_SECONDS sets the limit)");
});

test("a failing, a killed and a missing tool each get a reason naming it, with its last error lines", () => {
  const failing = runTool("failer", node, ["-e", "console.error('first'); console.error('bad weights'); process.exit(3)"], { timeoutSeconds: 30 });
  expect(!failing.ok && failing.why).toBe("failer exited with status 3: first bad weights");
  const killed = runTool("crasher", node, ["-e", "process.kill(process.pid, 'SIGKILL')"], { timeoutSeconds: 30 });
  expect(!killed.ok && killed.why).toBe("crasher was stopped by SIGKILL");
  const missing = runTool("ghost", join(dir, "no-such-python"), [], { timeoutSeconds: 30 });
  expect(!missing.ok && missing.why).toMatch(/^ghost could not run \(ENOENT\)/);
  const fine = runTool("echo", node, ["-e", "console.log('{}')"], { timeoutSeconds: 30 });
  expect(fine).toEqual({ ok: true, stdout: "{}\n", stderr: "" });
});

test("DITC_TOOL_TIMEOUT_SECONDS: a positive number of seconds, or a clear error", () => {
  expect(toolTimeoutSeconds({})).toBe(DEFAULT_TOOL_TIMEOUT_SECONDS);
  expect(toolTimeoutSeconds({ DITC_TOOL_TIMEOUT_SECONDS: "2.5" })).toBe(2.5);
  for (const bad of ["0", "-1", "soon", "Infinity"]) expect(() => toolTimeoutSeconds({ DITC_TOOL_TIMEOUT_SECONDS: bad })).toThrow(/DITC_TOOL_TIMEOUT_SECONDS is .*expected a positive number of seconds/);
});

test.skipIf(coremltoolsUnavailable() !== undefined)("coremltools past its deadline: each package's check fails with the reason, nothing hangs", () => {
  const before = process.env.DITC_TOOL_TIMEOUT_SECONDS;
  process.env.DITC_TOOL_TIMEOUT_SECONDS = "0.05"; // importing coremltools alone takes seconds
  try {
    const checks = checkManyWithCoremltools([join(dir, "a.mlpackage"), join(dir, "b.mlpackage")]);
    expect(checks).toEqual([0, 1].map(() => ({ ok: false, error: "coremltools did not finish within 0.05 s and was stopped (DITC_TOOL_TIMEOUT_SECONDS sets the limit)" })));
  } finally {
    if (before === undefined) delete process.env.DITC_TOOL_TIMEOUT_SECONDS;
    else process.env.DITC_TOOL_TIMEOUT_SECONDS = before;
  }
});
