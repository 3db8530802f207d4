// The external tools ditc checks its files with (Apple's coremltools, Google's native LiteRT) run
// as child processes. A tool that hangs (a stuck import, a deadlocked interpreter) must not hang
// `verify`: each run has a deadline, after which the child is killed and the run reports why.
// LiteRT.js, a long-lived child of its own (targets/tflite/litert.ts), takes the same deadline.
import { spawnSync } from "node:child_process";

/** Seconds a tool run may take unless DITC_TOOL_TIMEOUT_SECONDS says otherwise. */
export const DEFAULT_TOOL_TIMEOUT_SECONDS = 1800;

export type ToolRun =
  | { ok: true; stdout: string; stderr: string }
  | { ok: false; stdout: string; stderr: string; why: string };

/** The deadline for one tool run, in seconds (DITC_TOOL_TIMEOUT_SECONDS, a positive number). */
export function toolTimeoutSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.DITC_TOOL_TIMEOUT_SECONDS;
  if (v === undefined || v === "") return DEFAULT_TOOL_TIMEOUT_SECONDS;
  const s = Number(v);
  if (!(s > 0) || !Number.isFinite(s)) throw new Error(`DITC_TOOL_TIMEOUT_SECONDS is ${JSON.stringify(v)}; expected a positive number of seconds`);
  return s;
}

/**
 * Runs `command args` to its end or its deadline. `tool` names it in the reasons: a run that
 * exits non-zero, dies by a signal, outlives the deadline or cannot start is `ok: false` with
 * the last lines of its error output; it never throws for the child's sake.
 */
export function runTool(tool: string, command: string, args: readonly string[], o: { timeoutSeconds?: number; maxBuffer?: number } = {}): ToolRun {
  const timeoutSeconds = o.timeoutSeconds ?? toolTimeoutSeconds();
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: o.maxBuffer ?? 64 << 20, stdio: ["ignore", "pipe", "pipe"], timeout: timeoutSeconds * 1000, killSignal: "SIGKILL" });
  const stdout = r.stdout ?? "", stderr = r.stderr ?? "";
  const tail = () => {
    const lines = (stderr || stdout).trim().split("\n").slice(-3).join(" ").slice(0, 500);
    return lines ? `: ${lines}` : "";
  };
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ETIMEDOUT") return { ok: false, stdout, stderr, why: `${tool} did not finish within ${timeoutSeconds} s and was stopped (DITC_TOOL_TIMEOUT_SECONDS sets the limit)` };
  if (r.error) return { ok: false, stdout, stderr, why: `${tool} could not run (${code ?? r.error.message})${tail()}` };
  if (r.signal) return { ok: false, stdout, stderr, why: `${tool} was stopped by ${r.signal}${tail()}` };
  if (r.status !== 0) return { ok: false, stdout, stderr, why: `${tool} exited with status ${r.status}${tail()}` };
  return { ok: true, stdout, stderr };
}
