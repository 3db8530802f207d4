// report.html is one self-contained page with inline SVG charts; headless Chromium renders it
// with every network request refused, and the screenshot is checked for the charts.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { barChart } from "../../src/driver/charts.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-report-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CHROMIUM = "/usr/bin/chromium"; // Debian's, installed by scripts/setup-chromium.sh

test("bar charts: a log axis spans the values, the reference line and failing bars are drawn", () => {
  const svg = barChart({ title: "t", yLabel: "err", log: true, categories: ["a", "b"], series: [{ name: "x", color: "#111" }], values: [[1e-6], [3e-3]], ref: { value: 1e-4, label: "tol" }, color: (i) => (i === 1 ? "#f00" : undefined) });
  expect(svg.match(/<rect [^>]*fill="#f00"/g)?.length).toBe(1);
  expect(svg).toContain('class="r"');
  for (const tick of ["1e-6", "1e-5", "1e-4", "1e-3", "0.01"]) expect(svg).toContain(`>${tick}</text>`);
  expect(barChart({ title: "empty", yLabel: "", categories: [], series: [], values: [] })).toMatch(/nothing to show/);
});

test("report.html after compile + verify renders offline in headless Chromium with every chart", async () => {
  expect(existsSync(CHROMIUM)).toBe(true);
  const out = join(dir, "out");
  const io = { out: () => {}, err: () => {} };
  expect(await main(["compile", "--preset", "micro", "--target", "tflite,onnx", "--width", "0.5,1", "--quantize", "mixed", "--out", out], io)).toBe(0);
  expect(await main(["verify", out], io)).toBe(0);
  const html = readFileSync(join(out, "report.html"), "utf8");
  expect(html).not.toMatch(/<script|<link|src="http|href="http|@import|url\(/);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.route(/^(?!file:)/, (r) => r.abort());
    await page.goto(`file://${join(out, "report.html")}`);
    const labels = await page.$$eval("svg", (svgs) => svgs.map((s) => s.getAttribute("aria-label") ?? ""));
    expect(labels).toContain("Artifact size per width and target");
    expect(labels.some((l) => l.startsWith("Parity per target and runtime (fp32"))).toBe(true);
    expect(labels.filter((l) => /probe MSE per layer/.test(l)).length).toBe(2);
    expect(labels.filter((l) => /ops before and after/.test(l)).length).toBe(2);
    // every chart drew bars, and laid out inside the page
    const bars = await page.$$eval("svg", (svgs) => svgs.map((s) => s.querySelectorAll("rect").length));
    expect(bars.every((n) => n > 1)).toBe(true);
    const box = await page.locator("svg").first().boundingBox();
    expect(box!.width).toBeGreaterThan(200);
    const png = join(dir, "report.png");
    await page.screenshot({ path: png, fullPage: true });
    expect(statSync(png).size).toBeGreaterThan(50_000);
    expect(requests.filter((u) => !u.startsWith("file:"))).toEqual([]);
  } finally {
    await browser.close();
  }
});
