// Runs scripts/coreml_check.py in the pinned coremltools virtualenv (scripts/setup-coremltools.sh).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../src/io/project.js";

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
  const out = execFileSync(PYTHON, [SCRIPT, ...paths], { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });
  const lines = out.trim().split("\n").filter((l) => l.startsWith("{"));
  return paths.map((_, i) => {
    try {
      return JSON.parse(lines[i] ?? "") as CoremltoolsCheck;
    } catch {
      return { ok: false, error: `checker printed no JSON: ${out.slice(0, 300)}` };
    }
  });
}
