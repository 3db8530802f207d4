// Runs scripts/coreml_check.py in the pinned coremltools virtualenv (scripts/setup-coremltools.sh).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../src/io/project.js";
import { runTool } from "../../src/io/tool-process.js";

const PYTHON = join(PROJECT_ROOT, ".venv-coremltools", "bin", "python");
const SCRIPT = join(PROJECT_ROOT, "scripts", "coreml_check.py");

export interface CoremltoolsCheck {
  ok: boolean;
  error?: string;
  ops?: Record<string, number>;
  transposesInBlocks?: number;
  maxRank?: number;
  specificationVersion?: number;
}

/** Why the checker cannot run here, or undefined when it can. */
export function coremltoolsUnavailable(): string | undefined {
  return existsSync(PYTHON) ? undefined : `no coremltools virtualenv at ${join(PROJECT_ROOT, ".venv-coremltools")}; run scripts/setup-coremltools.sh`;
}

export function checkWithCoremltools(path: string): CoremltoolsCheck {
  return checkManyWithCoremltools([path])[0]!;
}

/** One Python start for many packages (importing coremltools takes seconds). */
export function checkManyWithCoremltools(paths: string[]): CoremltoolsCheck[] {
  const run = runTool("coremltools", PYTHON, [SCRIPT, ...paths]);
  const lines = run.stdout.trim().split("\n").filter((l) => l.startsWith("{"));
  // the packages checked before a failed run stopped keep their answers
  return paths.map((_, i) => {
    try {
      return JSON.parse(lines[i] ?? "") as CoremltoolsCheck;
    } catch {
      return { ok: false, error: run.ok ? `checker printed no JSON: ${run.stdout.slice(0, 300)}` : run.why };
    }
  });
}
