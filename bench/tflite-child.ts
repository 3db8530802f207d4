// Child process for the TFLite benchmark, so its peak RSS is measured alone.
//   compile-full OUT RES : compile the full preset to TFLite (fp32, weights after the flatbuffer) at RES pixels
import { compile } from "../src/driver/compile.js";
import { latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";

const [mode, path, res] = process.argv.slice(2);
if (mode === "compile-full") {
  const t0 = performance.now();
  const { report } = compile({ source: syntheticSource(presetConfig("full"), 0), ref: { preset: "full", seed: 0 }, targets: ["tflite"], widths: [1], latentSize: latentForResolution(Number(res)), precision: "fp32", out: path! });
  const a = report.artifacts[0]!;
  process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssBytes: process.resourceUsage().maxRSS * 1024, bytes: a.bytes, path: a.path }));
}
