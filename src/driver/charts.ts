// Inline SVG bar charts for report.html: one primitive (grouped vertical bars, linear or log
// axis, an optional reference line), no scripts, no fonts or files from anywhere else.

export interface BarChartSpec {
  title: string;
  yLabel: string;
  categories: string[];
  series: { name: string; color: string }[];
  /** values[category][series]; null draws nothing */
  values: (number | null)[][];
  log?: boolean;
  /** a dashed horizontal line (a tolerance, say) */
  ref?: { value: number; label: string };
  /** overrides a bar's color (pass/fail) */
  color?: (category: number, series: number, value: number) => string | undefined;
  /** tooltip text per bar */
  tip?: (category: number, series: number, value: number) => string;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
const fmt = (v: number) => (v !== 0 && (Math.abs(v) < 1e-2 || Math.abs(v) >= 1e5) ? v.toExponential(0) : String(+v.toPrecision(3)));

/** Tick values for an axis from lo to hi: powers of ten on a log axis, 1-2-5 steps on a linear one. */
function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const raw = (hi - lo) / 5 || 1, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= hi + step / 2; v += step) out.push(+v.toPrecision(12));
  return out;
}

export function barChart(c: BarChartSpec): string {
  const vals = c.values.flat().filter((v): v is number => v !== null && Number.isFinite(v) && (!c.log || v > 0));
  if (!vals.length) return `<p class="empty">${esc(c.title)}: nothing to show.</p>`;
  const all = c.ref ? [...vals, c.ref.value] : vals;
  const t = ticks(c.log ? Math.min(...all) : 0, Math.max(...all), !!c.log);
  const lo = t[0]!, hi = t[t.length - 1]!;
  const ns = c.series.length, bar = Math.max(3, Math.min(18, Math.floor(520 / (c.categories.length * ns)))), gap = Math.max(4, bar);
  const longest = Math.max(...c.categories.map((s) => s.length));
  const left = 64, top = 34, plotH = 200, bottom = Math.min(150, 16 + longest * 5.5);
  const pitch = ns * bar + gap, plotW = c.categories.length * pitch + gap;
  const width = Math.max(left + plotW + 20, 40 + c.title.length * 8, left + 150 * c.series.length), height = top + plotH + bottom + 22;
  // crowded axes label every k-th category (the tooltip still names every bar)
  const every = Math.ceil(12 / pitch);
  const y = (v: number) => top + plotH - (plotH * (c.log ? Math.log10(v / lo) / Math.log10(hi / lo) : (v - lo) / (hi - lo || 1)));
  const parts: string[] = [];
  parts.push(`<text x="${left}" y="18" class="t">${esc(c.title)}</text>`);
  for (const v of t) parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" class="g"/><text x="${left - 6}" y="${y(v) + 4}" class="yl">${fmt(v)}</text>`);
  parts.push(`<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" class="ax">${esc(c.yLabel)}</text>`);
  c.categories.forEach((cat, i) => {
    const x0 = left + gap + i * (ns * bar + gap);
    c.series.forEach((s, j) => {
      const v = c.values[i]?.[j];
      if (v === null || v === undefined || !Number.isFinite(v) || (c.log && v <= 0)) return;
      const yv = y(Math.max(v, lo)), color = c.color?.(i, j, v) ?? s.color;
      parts.push(`<rect x="${x0 + j * bar}" y="${yv}" width="${bar - 1}" height="${Math.max(1, top + plotH - yv)}" fill="${color}"><title>${esc(c.tip?.(i, j, v) ?? `${cat} ${s.name}: ${fmt(v)}`)}</title></rect>`);
    });
    const cx = x0 + (ns * bar) / 2;
    if (i % every === 0) parts.push(`<text transform="translate(${cx} ${top + plotH + 10}) rotate(45)" class="xl">${esc(cat)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" class="a"/>`);
  if (c.ref) parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(c.ref.value)}" y2="${y(c.ref.value)}" class="r"/><text x="${left + plotW}" y="${y(c.ref.value) - 4}" class="rl">${esc(c.ref.label)}</text>`);
  const legend = c.series.length > 1 || c.color
    ? c.series.map((s, j) => `<rect x="${left + j * 150}" y="${height - 14}" width="10" height="10" fill="${s.color}"/><text x="${left + 14 + j * 150}" y="${height - 5}" class="lg">${esc(s.name)}</text>`).join("")
    : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(c.title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join("")}${legend}</svg>`;
}

/** The chart styles, once per page. */
export const CHART_CSS = "svg{display:block;margin:1em 0;font:11px system-ui,sans-serif}svg .t{font-weight:600;font-size:13px}svg .g{stroke:#e4e4e4}svg .a{stroke:#888}svg .yl{text-anchor:end;fill:#555}svg .xl{fill:#333}svg .ax{text-anchor:middle;fill:#555}svg .r{stroke:#c00;stroke-dasharray:5 3}svg .rl{text-anchor:end;fill:#c00}svg .lg{fill:#333}";
