// Child process of the shard benchmark, so each peak RSS is measured alone.
//   init-single PATH | init-shards DIR N : the full preset's synthetic f16 checkpoint, one file or N shards
//   compile CK OUT                       : compile it to CoreML fp16 at 1024² (every weight read once)
import { writeShardedSyntheticCheckpoint, writeSyntheticCheckpoint } from "../src/driver/init.js";
import { compile } from "../src/driver/compile.js";
import { presetConfig } from "../src/model/config.js";
import { paramSpecs } from "../src/model/params.js";
import { openCheckpoint } from "../src/model/weights.js";

const [mode, path, arg] = process.argv.slice(2);
const full = presetConfig("full");
const t0 = performance.now();
const done = (o: object) => process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...o }));
if (mode === "init-single") done({ bytes: writeSyntheticCheckpoint(full, 0, path!, "f16").bytes });
else if (mode === "init-shards") {
  // N shards of about equal size: the f16 checkpoint's bytes over N, with room for uneven packing
  const bytes = paramSpecs(full).reduce((s, p) => s + 2 * p.shape.reduce((a, b) => a * b, 1), 0);
  const size = Math.ceil((bytes * 1.02) / Number(arg));
  done({ shards: writeShardedSyntheticCheckpoint(full, 0, path!, "f16", size).shards.length });
} else if (mode === "compile") {
  const ck = openCheckpoint(path!);
  const { report } = compile({ source: ck, ref: { checkpoint: path! }, targets: ["coreml"], widths: [1], latentSize: [128, 128], precision: "fp16", out: arg! });
  ck.close();
  done({ bytes: report.artifacts[0]!.bytes });
}
