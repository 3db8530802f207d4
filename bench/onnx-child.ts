// Child processes for the ONNX benchmarks, so each peak RSS is measured alone.
//   compile-full OUT RES   : compile the full preset to ONNX (fp32, external data) at RES pixels
//   ort-run MODEL RES      : load MODEL in onnxruntime-node and run one forward
import { compile } from "../src/driver/compile.js";
import { syntheticInputs } from "../src/driver/init.js";
import { latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";
import { openOrtSession } from "../targets/onnx/ort.js";

const [mode, path, res, folding] = process.argv.slice(2);
const config = presetConfig("full");
const latentSize = () => latentForResolution(Number(res ?? 256));
const rss = () => process.resourceUsage().maxRSS * 1024;
if (mode === "compile-full") {
  const t0 = performance.now();
  const { report } = compile({ source: syntheticSource(config, 0), ref: { preset: "full", seed: 0 }, targets: ["onnx"], widths: [1], latentSize: latentSize(), precision: "fp32", out: path! });
  const a = report.artifacts[0]!;
  process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssBytes: rss(), bytes: a.bytes, files: a.files }));
} else if (mode === "ort-run") {
  const t0 = performance.now();
  const s = await openOrtSession(path!);
  const loadSeconds = (performance.now() - t0) / 1000;
  const inputs = syntheticInputs(config, 0, { batch: 1, latentSize: latentSize(), contextTokens: config.contextTokens });
  const t1 = performance.now();
  const out = (await s.run(inputs)).velocity!;
  const runSeconds = (performance.now() - t1) / 1000;
  process.stdout.write(JSON.stringify({ loadSeconds, runSeconds, maxRssBytes: rss(), finite: out.data.every(Number.isFinite), shape: out.shape }));
}
if (mode === "ort-session") {
  // load + run a small model, with or without ORT's constant folding (which expands LUT chains)
  const ort = (await import("../targets/onnx/ort.js")).loadOrt();
  const { readTensorFile } = await import("../src/checkpoint/tensors.js");
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(path!, {
    intraOpNumThreads: 2, logSeverityLevel: 3,
    ...(folding === "off" ? { extra: { optimization: { disable_specified_optimizers: "ConstantFolding" } } } : {}),
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  const sessionBytes = process.memoryUsage().rss - before;
  const inputs = readTensorFile(res!);
  const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, new ort.Tensor("float32", t.data, [...t.shape])]));
  await s.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await s.run(feeds);
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ loadSeconds, sessionBytes, runSeconds: times[5], maxRssBytes: rss() }));
}
