// Child processes of the engine benchmark, so each peak RSS is measured alone.
//   init CK                 : write the full preset's synthetic checkpoint in f16
//   forward CK RES          : one float forward in the IR interpreter (batch 1)
//   compile-onnx CK RES DIR : the fp32 ONNX of the same weights (external data)
//   ort MODEL RES           : load it in onnxruntime-node, one forward
import { syntheticInputs, writeSyntheticCheckpoint } from "../src/driver/init.js";
import { compile } from "../src/driver/compile.js";
import { runFloatModel } from "../src/driver/run.js";
import { latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { openCheckpoint } from "../src/model/weights.js";
import { openOrtSession } from "../targets/onnx/ort.js";

const [mode, path, res, out] = process.argv.slice(2);
const rss = () => process.resourceUsage().maxRSS * 1024;
const latentSize = latentForResolution(Number(res ?? 1024));
const print = (o: unknown) => process.stdout.write(JSON.stringify(o));
if (mode === "init") {
  const t0 = performance.now();
  const r = writeSyntheticCheckpoint(presetConfig("full"), 0, path!, "f16");
  print({ seconds: (performance.now() - t0) / 1000, fileBytes: r.bytes, weightBytesF16: r.params["1"]! * 2 });
} else if (mode === "forward") {
  const ck = openCheckpoint(path!);
  const inputs = syntheticInputs(ck.config, 0, { batch: 1, latentSize, contextTokens: ck.config.contextTokens });
  const t0 = performance.now();
  let tenth = -1; // the events come every 1 % of the nodes: a line each time a tenth is passed
  const v = runFloatModel(ck, 1, inputs, "fp32", (e) => {
    if (Math.floor((10 * e.done) / e.total) === tenth) return;
    tenth = Math.floor((10 * e.done) / e.total);
    process.stderr.write(`  ${e.step}: ${e.done}/${e.total} ${e.unit} after ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  });
  print({ seconds: (performance.now() - t0) / 1000, maxRssBytes: rss(), finite: v.data.every(Number.isFinite) });
} else if (mode === "compile-onnx") {
  const ck = openCheckpoint(path!);
  const t0 = performance.now();
  const { report } = compile({ source: ck, ref: { checkpoint: path! }, targets: ["onnx"], widths: [1], latentSize, precision: "fp32", out: out!, externalData: "always" });
  print({ seconds: (performance.now() - t0) / 1000, path: `${out}/${report.artifacts[0]!.path}`, bytes: report.artifacts[0]!.bytes });
} else if (mode === "ort") {
  const t0 = performance.now();
  const s = await openOrtSession(path!);
  const loadSeconds = (performance.now() - t0) / 1000;
  const inputs = syntheticInputs(presetConfig("full"), 0, { batch: 1, latentSize, contextTokens: presetConfig("full").contextTokens });
  const t1 = performance.now();
  await s.run(inputs);
  print({ loadSeconds, runSeconds: (performance.now() - t1) / 1000, maxRssBytes: rss() });
}
