// Lean artifacts: the full preset at 1024² lowered for CoreML (fp16 and 4-bit palettes), TFLite
// and ONNX (fp32), its constants by what they are, against the parameters' bytes: as ditc lowers
// it now, and as it did before (RoPE tables stored per channel, no constant deduplication), in
// one run. Counted from the lowered graphs (every distinct constant is written once); then the
// CoreML fp16 package written, for its whole bytes with the MIL program.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constantBytes } from "../src/driver/compile.js";
import { graphStats } from "../src/driver/inspect.js";
import { applyPipeline, BACKENDS, TARGET_PIPELINES } from "../src/driver/pipelines.js";
import type { Graph } from "../src/ir/graph.js";
import { buildModel } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";
import { PASSES } from "../passes/index.js";
import { buildPipeline, type PipelineEntry } from "../src/pipeline/pass.js";
import { runPipeline } from "../src/pipeline/run.js";

export function benchLeanFull() {
  const g0 = buildModel(syntheticSource(presetConfig("full"), 0), { width: 1, latentSize: [128, 128] }).graph;
  const bits: Record<string, 4> = {};
  for (const n of g0.nodes) if (n.kind === "const" && n.attrs.value.role === "weight" && n.attrs.value.type.shape.length >= 2) bits[n.attrs.value.source] = 4;
  const rows = [];
  for (const [target, mode] of [["coreml", "fp16"], ["coreml", "k4"], ["tflite", "fp32"], ["onnx", "fp32"]] as const) {
    const t = TARGET_PIPELINES[target]!;
    const before: PipelineEntry[] = mode === "k4" ? [{ pass: "palettize", options: { bits, groupSize: 0 } }] : [];
    const precision = target === "coreml" ? "fp16" : "fp32";
    const variant = (baseline: boolean) => {
      const entries = [
        ...before,
        ...t.pipeline.entries.map((e) => (baseline && e.pass === "lower-rope" ? { ...e, options: { ...e.options, tables: "stored-per-channel" } } : e)),
        ...(precision === "fp16" ? [t.fp16] : []),
        ...(baseline ? [] : [{ pass: "dedupe-constants" }, { pass: "cse" }]),
      ];
      return constantBytes(runPipeline(g0, buildPipeline({ name: target, entries }, PASSES)), precision, 0);
    };
    const [was, now] = [variant(true), variant(false)];
    const params = now.weights + now.palettes + now.luts;
    const row = {
      target, mode, parameterBytes: params, fp32IslandBytes: now.fp32Island,
      before: { tables: was.tables, other: was.other, constantOverhead: was.constantOverhead },
      after: { tables: now.tables, other: now.other, constantOverhead: now.constantOverhead },
    };
    console.log(`full @1024 ${target} ${mode}: parameters ${(params / 2 ** 20).toFixed(1)} MiB (fp32 island ${(now.fp32Island / 2 ** 20).toFixed(1)} MiB); tables + other constants ${((was.tables + was.other) / 2 ** 20).toFixed(2)} MiB before (${(100 * was.constantOverhead).toFixed(2)} %), ${((now.tables + now.other) / 2 ** 20).toFixed(3)} MiB now (${(100 * now.constantOverhead).toFixed(3)} %)`);
    rows.push(row);
  }
  return { rows, written: writtenCoremlFp16(g0) };
}

/** The CoreML fp16 package written: its whole bytes, its MIL program, and the rest against the parameters. */
function writtenCoremlFp16(g0: Graph) {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-lean-"));
  try {
    const g = applyPipeline(g0, "coreml", { fp16: true });
    const path = join(dir, "model.mlpackage");
    const r = BACKENDS.coreml!.emit(g, path, { metadata: {} });
    const c = constantBytes(g, "fp16", r.bytes);
    const program = statSync(join(path, "Data", "com.apple.CoreML", "model.mlmodel")).size;
    const ops = graphStats(g).nodes;
    console.log(`full @1024 coreml fp16 written: ${r.bytes} bytes, MIL program ${program} bytes for ${ops} IR nodes, structure ${c.structure} bytes, whole file ${(100 * c.fileOverhead).toFixed(2)} % beyond the parameters`);
    return { bytes: r.bytes, programBytes: program, irNodes: ops, structureBytes: c.structure, fileOverhead: c.fileOverhead, constantOverhead: c.constantOverhead };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
