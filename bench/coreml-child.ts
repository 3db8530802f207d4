// Child process for the CoreML benchmark: compile the full preset to a .mlpackage (fp16) and
// report time and peak RSS; then coremltools loads it and counts ops in the written program.
import { compile, type QuantizeMode } from "../src/driver/compile.js";
import { latentForResolution } from "../src/model/build.js";
import { presetConfig } from "../src/model/config.js";
import { syntheticSource } from "../src/model/weights.js";

const [out, res, quant] = process.argv.slice(2);
const t0 = performance.now();
const quantize: QuantizeMode = quant === "k4" ? { mode: "k4" } : { mode: "none" };
const { report } = compile({ source: syntheticSource(presetConfig("full"), 0), ref: { preset: "full", seed: 0 }, targets: ["coreml"], widths: [1], latentSize: latentForResolution(Number(res)), precision: "fp16", out: out!, quantize });
const a = report.artifacts[0]!;
process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssBytes: process.resourceUsage().maxRSS * 1024, bytes: a.bytes, path: a.path, transposesInBlocksIR: a.transposes.inBlocks, maxRankIR: a.maxRank }));
