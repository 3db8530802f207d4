// Child processes for the ONNX benchmarks, so each peak RSS is measured alone.
//   compile-full OUT RES   : compile the full preset to ONNX (fp32, external data) at RES pixels
//   ort-run MODEL RES      : load MODEL in onnxruntime-node and run one forward
import { compile } from "../src/driver/compile.js";
import { syntheticInputs } from "../src/driver/init.js";
import { latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";
import { openOrtSession } from "../targets/onnx/ort.js";

const [mode, path, res] = process.argv.slice(2);
const config = presetConfig("full");
const latentSize = latentForResolution(Number(res ?? 256));
const rss = () => process.resourceUsage().maxRSS * 1024;
if (mode === "compile-full") {
  const t0 = performance.now();
  const { report } = compile({ source: syntheticSource(config, 0), ref: { preset: "full", seed: 0 }, targets: ["onnx"], widths: [1], latentSize, precision: "fp32", out: path! });
  const a = report.artifacts[0]!;
  process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssBytes: rss(), bytes: a.bytes, files: a.files }));
} else if (mode === "ort-run") {
  const t0 = performance.now();
  const s = await openOrtSession(path!);
  const loadSeconds = (performance.now() - t0) / 1000;
  const inputs = syntheticInputs(config, 0, { batch: 1, latentSize, contextTokens: config.contextTokens });
  const t1 = performance.now();
  const out = (await s.run(inputs)).velocity!;
  const runSeconds = (performance.now() - t1) / 1000;
  process.stdout.write(JSON.stringify({ loadSeconds, runSeconds, maxRssBytes: rss(), finite: out.data.every(Number.isFinite), shape: out.shape }));
}
