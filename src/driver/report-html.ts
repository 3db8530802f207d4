// report.html: one self-contained page (inline SVG charts, no scripts, no network) summarizing a
// compile and, after `ditc verify`, its parity: artifact sizes per width and target, parity error
// per target and runtime against the tolerance, per-layer probe MSE with the chosen bits, and the
// op histogram before and after each target's pipeline. Tables carry the exact numbers.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { barChart, CHART_CSS } from "./charts.js";
import type { CompileReport } from "./compile.js";
import type { VerifyResult } from "./verify.js";

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;
const TARGET_COLOR: Record<string, string> = { coreml: "#4e79a7", tflite: "#f28e2b", onnx: "#59a14f" };
const PASS = "#59a14f", FAIL = "#e15759", BITS_COLOR = { 4: "#4e79a7", 8: "#f28e2b" } as const;

function table(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

const unique = <T,>(xs: T[]) => [...new Set(xs)];

function sizeChart(r: CompileReport): string {
  const targets = unique(r.artifacts.map((a) => a.target)), widths = unique(r.artifacts.map((a) => a.width)).sort((a, b) => a - b);
  return barChart({
    title: "Artifact size per width and target",
    yLabel: "MiB",
    categories: widths.map((w) => `width ${w}`),
    series: targets.map((t) => ({ name: t, color: TARGET_COLOR[t] ?? "#999" })),
    values: widths.map((w) => targets.map((t) => {
      const a = r.artifacts.find((x) => x.width === w && x.target === t);
      return a ? a.bytes / 2 ** 20 : null;
    })),
  });
}

function parityCharts(r: CompileReport, v: VerifyResult[]): string {
  const measured = v.filter((x) => x.maxRelErr !== null);
  const byPrecision = (p: "fp32" | "fp16") => measured.filter((x) => r.artifacts.find((a) => a.path === x.path)?.precision === p);
  const chart = (rows: VerifyResult[], p: "fp32" | "fp16") => {
    if (!rows.length) return "";
    const engines = unique(rows.map((x) => x.engine)), files = unique(rows.map((x) => x.path));
    const metric = (x: VerifyResult) => (p === "fp32" ? x.maxRelErr! : x.relL2!);
    return barChart({
      title: `Parity per target and runtime (${p}: ${p === "fp32" ? "max relative error" : "relative L2"} vs the IR interpreter)`,
      yLabel: p === "fp32" ? "max rel err" : "rel L2",
      log: true,
      categories: files.map((f) => f.replace(/\/model\./, " ")),
      series: engines.map((e, i) => ({ name: e, color: ["#4e79a7", "#f28e2b", "#76b7b2"][i % 3]! })),
      values: files.map((f) => engines.map((e) => {
        const x = rows.find((y) => y.path === f && y.engine === e);
        return x && Number.isFinite(metric(x)) ? Math.max(metric(x), 1e-9) : null;
      })),
      ref: { value: p === "fp32" ? r.tolerances.fp32.maxRelErr : r.tolerances.fp16.relL2, label: "tolerance" },
      color: (i, j) => (rows.find((y) => y.path === files[i] && y.engine === engines[j])?.pass ? undefined : FAIL),
    });
  };
  const checks = v.filter((x) => x.maxRelErr === null);
  const checkList = checks.length ? `<p>${checks.map((x) => `${esc(x.path)} ${esc(x.engine)}: ${x.pass ? `<span class="ok">loaded</span> (${esc(x.detail ?? "")})` : `<span class="no">failed</span> (${esc(x.error ?? "")})`}`).join("<br>")}</p>` : "";
  const rows = v.map((x) => [x.target, x.width, x.engine, x.maxAbsErr?.toExponential(2) ?? "(check)", x.maxRelErr?.toExponential(2) ?? "", x.relL2?.toExponential(2) ?? "", x.pass ? "yes" : "NO"]);
  return `<h2>Parity</h2>${chart(byPrecision("fp32"), "fp32")}${chart(byPrecision("fp16"), "fp16")}${checkList}${table(["target", "width", "engine", "max abs err", "max rel err", "rel L2", "pass"], rows)}`;
}

function quantizationCharts(r: CompileReport): string {
  const q = r.quantization;
  if (!q) return "";
  const widths = unique(q.layers.map((l) => l.width)).sort((a, b) => a - b);
  const charts = widths.map((w) => {
    const layers = q.layers.filter((l) => l.width === w);
    const probed = layers.some((l) => l.mse !== null);
    return barChart({
      title: probed ? `Width ${w}: probe MSE per layer at 4 bits, colored by the bits chosen` : `Width ${w}: bits per layer`,
      yLabel: probed ? "probe MSE (normalized)" : "bits",
      log: probed,
      categories: layers.map((l) => l.name),
      series: [{ name: "4 bits", color: BITS_COLOR[4] }, { name: "8 bits", color: BITS_COLOR[8] }].slice(0, probed ? 2 : 1),
      values: layers.map((l) => [probed ? (l.mse !== null && l.mse > 0 ? l.mse : null) : l.bits]),
      color: (i) => BITS_COLOR[layers[i]!.bits],
      tip: (i, _j, v) => `${layers[i]!.name} (${layers[i]!.shape.join("x")}): ${probed ? `MSE ${v.toExponential(2)}, ` : ""}${layers[i]!.bits} bits, ${mib(layers[i]!.bytes)}`,
    });
  });
  const total = q.layers.reduce((s, l) => s + l.bytes, 0);
  const t = q.techniques;
  const how = t
    ? `<p>${q.mode === "mixed" ? `${esc(t.probe)} probe, ` : ""}${esc(t.kmeans)} k-means, bias correction ${t.biasCorrection ? "on" : "off"}, ${t.lutGroupSize ? `one LUT per ${t.lutGroupSize} output channels` : "one LUT per tensor"}; calibration: ${q.calibration?.file ? `${esc(q.calibration.file)} (${q.calibration.samples} records)` : "one seeded sample"}${q.calibration?.kernels ? `, its forwards on the ${esc(q.calibration.kernels)} kernels` : ""}.${(q.widths ?? []).filter((w) => w.overlap).map((w) => ` Width ${w.width}: 8-bit layers by the layer probe ${w.overlap!.layer8}, by the model probe ${w.overlap!.model8}, shared ${w.overlap!.shared}.`).join("")}</p>`
    : "";
  return `<h2>Quantization: ${esc(q.mode)}${q.target ? ` (target ${q.target} bits)` : ""}, average ${q.averageBits.toFixed(3)} bits, ${mib(total)} of weights</h2>${how}${charts.join("")}
<details><summary>per-layer table</summary>${table(["width", "layer", "shape", "params", "bits", "probe MSE", "bytes"], q.layers.map((l) => [l.width, l.name, l.shape.join("×"), l.params, l.bits, l.mse === null ? "" : l.mse.toExponential(2), l.bytes]))}</details>`;
}

function opCharts(r: CompileReport): string {
  const targets = unique(r.artifacts.map((a) => a.target));
  return targets.map((t) => {
    const a = r.artifacts.filter((x) => x.target === t).sort((x, y) => y.width - x.width)[0]!;
    const kinds = unique([...Object.keys(a.opsBefore), ...Object.keys(a.opsAfter)]).sort();
    return barChart({
      title: `${t} (width ${a.width}): ops before and after the ${a.pipeline.length}-pass pipeline`,
      yLabel: "count",
      log: true,
      categories: kinds,
      series: [{ name: "as built", color: "#bab0ac" }, { name: `after ${t} pipeline`, color: TARGET_COLOR[t] ?? "#999" }],
      values: kinds.map((k) => [a.opsBefore[k] ?? null, a.opsAfter[k] ?? null]),
    });
  }).join("");
}

/** The sample grids (embedded as data: URLs, read from the output folder) and the image PSNR table and chart. */
function samplesSection(r: CompileReport, dir: string | undefined, verify?: VerifyResult[]): string {
  const s = r.sampling;
  if (!s) return "";
  const img = (path: string) => {
    if (!dir) return "";
    try {
      return `<img alt="${esc(path)}" src="data:image/png;base64,${readFileSync(join(dir, path)).toString("base64")}" style="image-rendering:pixelated;height:96px">`;
    } catch {
      return `<em>${esc(path)} missing</em>`;
    }
  };
  const what = s.prompts ? `prompts: ${s.prompts.map((p) => `“${esc(p)}”`).join(", ")}` : `context ${esc(s.context ?? "")}`;
  const widths = unique(s.float.map((f) => f.width)).sort((a, b) => a - b);
  const engines = unique(s.results.map((x) => `${x.target} ${x.engine}`));
  const chart = barChart({
    title: "Image PSNR against the float model's samples, per width (same prompts, noise and steps)",
    yLabel: "dB",
    categories: widths.map((w) => `width ${w}`),
    series: engines.map((e, i) => ({ name: e, color: ["#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948", "#b07aa1"][i % 6]! })),
    values: widths.map((w) => engines.map((e) => s.results.find((x) => x.width === w && `${x.target} ${x.engine}` === e)?.psnr ?? null)),
    ref: { value: s.thresholds.fp32, label: `fp32 threshold ${s.thresholds.fp32} dB` },
  });
  const rows = widths.flatMap((w) => [
    `<tr><td>width ${w}</td><td>float model (IR interpreter)</td><td></td><td>${img(s.float.find((f) => f.width === w)!.image)}</td></tr>`,
    ...s.results.filter((x) => x.width === w).map((x) => {
      const v = verify?.find((y) => y.check === "images" && y.path === x.path && y.engine === x.engine);
      return `<tr><td>width ${w}</td><td>${esc(x.target)} ${esc(x.engine)}</td><td>${x.psnr.toFixed(2)} dB${v ? ` (verify: ${v.psnr?.toFixed(2)} dB, <span class="${v.pass ? "ok" : "no"}">${v.pass ? "pass" : "FAIL"}</span>)` : ""}</td><td>${img(x.image)}</td></tr>`;
    }),
  ]);
  return `<h2>Samples</h2><p>${what}; ${s.steps} Euler steps${s.shift !== 1 ? `, shift ${s.shift}` : ""}; ${s.seeds ? `seeds ${s.seeds.join(", ")}` : "noise from a file"}; decoded by ${esc(s.decode)}. PSNR is over all images' 8-bit pixels (100 = identical).</p>${chart}<table><thead><tr><th>width</th><th>engine</th><th>PSNR vs float</th><th>samples</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

export function renderReportHtml(r: CompileReport, verify?: VerifyResult[], dir?: string): string {
  const model = "preset" in r.model ? `preset ${r.model.preset}, seed ${r.model.seed}` : r.model.checkpoint;
  const artifacts = table(
    ["target", "width", "precision", "params", "size", "transposes in IR (in blocks)", "in the file (in blocks)", "max rank", "path"],
    r.artifacts.map((a) => [a.target, a.width, a.precision, a.params.toLocaleString("en-US"), mib(a.bytes), `${a.transposes.total} (${a.transposes.inBlocks})`, a.fileTransposes ? `${a.fileTransposes.total} (${a.fileTransposes.inBlocks})` : "", a.maxRank, a.path]),
  );
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
  const bytesTable = table(
    ["target", "width", "weights", "of which fp32 island", "palette indices", "LUTs", "position tables", "other constants", "rest of the file", "constants beyond parameters", "file beyond parameters"],
    r.artifacts.filter((a) => a.constants).map((a) => {
      const c = a.constants;
      return [a.target, a.width, mib(c.weights), mib(c.fp32Island), mib(c.palettes), mib(c.luts), mib(c.tables), mib(c.other), mib(c.structure), pct(c.constantOverhead), pct(c.fileOverhead)];
    }),
  );
  const kinds = unique(r.artifacts.flatMap((a) => [...Object.keys(a.opsBefore), ...Object.keys(a.opsAfter)])).sort();
  const ops = r.artifacts.length
    ? table(["op", ...r.artifacts.flatMap((a) => [`${a.target} w${a.width} before`, "after"])], kinds.map((k) => [k, ...r.artifacts.flatMap((a) => [a.opsBefore[k] ?? 0, a.opsAfter[k] ?? 0])]))
    : "";
  const passed = verify ? verify.filter((x) => x.pass).length : 0;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ditc compile report</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ok{color:${PASS}}.no{color:${FAIL};font-weight:600}figure{margin:0}${CHART_CSS}</style>
</head><body>
<h1>ditc compile report</h1>
<p>Model: ${esc(model)}; latent ${r.latentSize.join("×")}, ${r.contextTokens} text tokens; precision ${esc(r.precision)}; ${r.artifacts.length} artifacts.${verify ? ` Verification: <span class="${passed === verify.length ? "ok" : "no"}">${passed} of ${verify.length} checks passed</span>.` : " Not verified yet (run ditc verify on this folder)."}</p>
<h2>Artifacts</h2>${sizeChart(r)}${artifacts}
<h3>What the bytes are</h3><p>Every distinct constant is written once; the percentages compare what is not a model parameter with the parameters' bytes (weights, palette indices, LUTs).</p>${bytesTable}
${verify?.length ? parityCharts(r, verify.filter((x) => x.check !== "images")) : ""}
${samplesSection(r, dir, verify)}
${quantizationCharts(r)}
<h2>Op histogram before and after each pipeline</h2>${opCharts(r)}
<details><summary>all artifacts, op by op</summary>${ops}</details>
</body></html>
`;
}
