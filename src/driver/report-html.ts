// report.html: one self-contained page (no network) summarizing a compile and, when present,
// its verification. Tables first; the charts of the interfaces issue extend this page.
import type { CompileReport } from "./compile.js";
import type { VerifyResult } from "./verify.js";

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

function table(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

export function renderReportHtml(r: CompileReport, verify?: VerifyResult[]): string {
  const model = "preset" in r.model ? `preset ${r.model.preset}, seed ${r.model.seed}` : r.model.checkpoint;
  const artifacts = table(
    ["target", "width", "precision", "params", "size", "transposes (in blocks)", "max rank", "path"],
    r.artifacts.map((a) => [a.target, a.width, a.precision, a.params.toLocaleString("en-US"), mib(a.bytes), `${a.transposes.total} (${a.transposes.inBlocks})`, a.maxRank, a.path]),
  );
  const kinds = [...new Set(r.artifacts.flatMap((a) => [...Object.keys(a.opsBefore), ...Object.keys(a.opsAfter)]))].sort();
  const ops = r.artifacts.length
    ? table(["op", ...r.artifacts.flatMap((a) => [`${a.target} w${a.width} before`, "after"])], kinds.map((k) => [k, ...r.artifacts.flatMap((a) => [a.opsBefore[k] ?? 0, a.opsAfter[k] ?? 0])]))
    : "";
  const parity = verify?.length
    ? `<h2>Parity</h2>${table(["target", "width", "engine", "max abs err", "max rel err", "rel L2", "pass"], verify.map((v) => [v.target, v.width, v.engine, v.maxAbsErr?.toExponential(2) ?? "(check)", v.maxRelErr?.toExponential(2) ?? "", v.relL2?.toExponential(2) ?? "", v.pass ? "yes" : "NO"]))}`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ditc compile report</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}</style>
</head><body>
<h1>ditc compile report</h1>
<p>Model: ${esc(model)}; latent ${r.latentSize.join("×")}, ${r.contextTokens} text tokens; precision ${r.precision}.</p>
<h2>Artifacts</h2>${artifacts}
${parity}
<h2>Op histogram before and after each pipeline</h2>${ops}
</body></html>
`;
}
