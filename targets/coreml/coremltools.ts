// Runs scripts/coreml_check.py in the pinned coremltools virtualenv (scripts/setup-coremltools.sh).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), ...(import.meta.url.endsWith(".ts") ? ["..", ".."] : ["..", "..", ".."]));
const PYTHON = join(ROOT, ".venv-coremltools", "bin", "python");
const SCRIPT = join(ROOT, "scripts", "coreml_check.py");

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
  return existsSync(PYTHON) ? undefined : `no coremltools virtualenv at ${join(ROOT, ".venv-coremltools")}; run scripts/setup-coremltools.sh`;
}

export function checkWithCoremltools(path: string): CoremltoolsCheck {
  const out = execFileSync(PYTHON, [SCRIPT, path], { encoding: "utf8", maxBuffer: 16 << 20, stdio: ["ignore", "pipe", "pipe"] });
  const line = out.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as CoremltoolsCheck;
  } catch {
    return { ok: false, error: `checker printed no JSON: ${out.slice(0, 300)}` };
  }
}
