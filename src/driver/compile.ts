// `ditc compile`: for every width and target, build the sub-network, run the target's pipeline,
// emit the artifact under DIR/w{375,500,1000}/, and write report.json and report.html.
import { mkdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fail } from "../diagnostics.js";
import { writeAll, writeFileAtomic } from "../io/atomic.js";
import { buildModel } from "../model/build.js";
import { widthTag, type Width } from "../model/config.js";
import { paramCount } from "../model/params.js";
import type { WeightSource } from "../model/weights.js";
import { configJson } from "./init.js";
import { graphStats } from "./inspect.js";
import { applyPipeline, BACKENDS, pipelinePasses } from "./pipelines.js";
import { renderReportHtml } from "./report-html.js";

export type Precision = "fp32" | "fp16";

/** Where the float model came from, so `verify` can rebuild the reference. */
export type ModelRef = { preset: string; seed: number } | { checkpoint: string };

export interface CompileOptions {
  source: WeightSource;
  ref: ModelRef;
  targets: string[];
  widths: Width[];
  latentSize?: [number, number];
  precision: Precision;
  out: string;
  externalData?: "auto" | "always" | "never";
  onProgress?: (message: string) => void;
}

export interface ArtifactRecord {
  target: string;
  width: Width;
  path: string;
  files: string[];
  bytes: number;
  precision: Precision;
  params: number;
  pipeline: string[];
  opsBefore: Record<string, number>;
  opsAfter: Record<string, number>;
  transposes: { total: number; inBlocks: number };
  maxRank: number;
  seconds: number;
}

export interface CompileReport {
  ditc: string;
  model: ModelRef & { config: unknown };
  latentSize: [number, number];
  contextTokens: number;
  precision: Precision;
  tolerances: { fp32: { maxRelErr: number }; fp16: { relL2: number } };
  artifacts: ArtifactRecord[];
}

export const TOLERANCES = { fp32: { maxRelErr: 1e-4 }, fp16: { relL2: 1e-2 } };

export function compile(o: CompileOptions): { report: CompileReport; reportPath: string } {
  for (const t of o.targets) if (!BACKENDS[t]) throw fail("badOption", { option: "target", value: t, expected: `one of ${Object.keys(BACKENDS).join(", ")} (the other backends have not landed)` });
  if (!o.widths.length) throw fail("badOption", { option: "width", value: "(none)", expected: "at least one width" });
  mkdirSync(o.out, { recursive: true });
  const artifacts: ArtifactRecord[] = [];
  let latentSize: [number, number] = o.latentSize ?? o.source.config.latentSize;
  for (const width of o.widths) {
    const model = buildModel(o.source, { width, ...(o.latentSize ? { latentSize: o.latentSize } : {}) });
    latentSize = model.latentSize;
    const before = graphStats(model.graph).ops;
    for (const target of o.targets) {
      const backend = BACKENDS[target]!;
      const t0 = performance.now();
      o.onProgress?.(`${target} w${width}: lowering`);
      const g = applyPipeline(model.graph, target, { fp16: o.precision === "fp16" });
      const stats = graphStats(g);
      const dir = join(o.out, widthTag(width));
      mkdirSync(dir, { recursive: true });
      const path = join(dir, backend.artifact);
      o.onProgress?.(`${target} w${width}: writing ${path}`);
      const r = backend.emit(g, path, {
        ...(o.externalData ? { externalData: o.externalData } : {}),
        metadata: { "ditc.width": String(width), "ditc.precision": o.precision, "ditc.config": configJson(o.source.config) },
      });
      artifacts.push({
        target, width, path: relative(o.out, path), files: r.files.map((f) => relative(o.out, f)), bytes: r.bytes, precision: o.precision,
        params: paramCount(o.source.config, width), pipeline: [...pipelinePasses(target), ...(o.precision === "fp16" ? ["precision-fp16"] : [])],
        opsBefore: before, opsAfter: stats.ops, transposes: stats.transposes, maxRank: stats.maxRank, seconds: +((performance.now() - t0) / 1000).toFixed(3),
      });
    }
  }
  const report: CompileReport = {
    ditc: "0.1.0",
    model: { ...o.ref, config: JSON.parse(configJson(o.source.config)) },
    latentSize,
    contextTokens: o.source.config.contextTokens,
    precision: o.precision,
    tolerances: TOLERANCES,
    artifacts,
  };
  const reportPath = join(o.out, "report.json");
  writeFileAtomic(reportPath, (fd) => writeAll(fd, Buffer.from(JSON.stringify(report, null, 2) + "\n")));
  writeFileAtomic(join(o.out, "report.html"), (fd) => writeAll(fd, Buffer.from(renderReportHtml(report))));
  return { report, reportPath };
}
