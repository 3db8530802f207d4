// Google's native LiteRT interpreter (PyPI ai-edge-litert, set up by scripts/setup-litert.sh),
// for models LiteRT.js cannot load: its wasm32 heap stops at 2 GB, the full preset at fp32 is 6 GB.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../../src/io/project.js";
import { runTool } from "../../src/io/tool-process.js";
import { floatTensor, type FloatTensor } from "../../src/kernels/tensor.js";

const PYTHON = join(PROJECT_ROOT, ".venv-litert", "bin", "python");
const SCRIPT = join(PROJECT_ROOT, "scripts", "litert_run.py");

export interface NativeRun {
  velocity: FloatTensor;
  loadSeconds: number;
  runSeconds: number[];
  peakRssBytes: number;
}

export function nativeLiteRtUnavailable(): string | undefined {
  return existsSync(PYTHON) ? undefined : "the native LiteRT interpreter is not set up (bash scripts/setup-litert.sh)";
}

export function runNativeLiteRt(model: string, inputs: Record<string, FloatTensor>, opts: { repeat?: number; threads?: number } = {}): NativeRun {
  const why = nativeLiteRtUnavailable();
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(tmpdir(), "ditc-litert-"));
  try {
    const specs: Record<string, { path: string; shape: number[] }> = {};
    for (const [name, t] of Object.entries(inputs)) {
      const path = join(dir, `${name}.f32`);
      writeFileSync(path, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      specs[name] = { path, shape: [...t.shape] };
    }
    const out = join(dir, "velocity.f32"), req = join(dir, "request.json");
    writeFileSync(req, JSON.stringify({ model, inputs: specs, out, repeat: opts.repeat ?? 1, threads: opts.threads ?? 2 }));
    const r = runTool("native LiteRT", PYTHON, [SCRIPT, req], { maxBuffer: 1 << 24 });
    if (!r.ok) throw new Error(r.why);
    const line = r.stdout.trim().split("\n").pop() ?? "";
    let doc: { error?: string; shape?: number[]; loadSeconds?: number; runSeconds?: number[]; peakRssBytes?: number };
    try {
      doc = JSON.parse(line);
    } catch {
      throw new Error(`native LiteRT printed no JSON: ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ")}`);
    }
    if (doc.error) throw new Error(`native LiteRT: ${doc.error}`);
    const bytes = readFileSync(out);
    const velocity = floatTensor(doc.shape!, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice());
    return { velocity, loadSeconds: doc.loadSeconds!, runSeconds: doc.runSeconds!, peakRssBytes: doc.peakRssBytes! };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
