// Child process for the init benchmark, so its peak RSS is measured alone.
import { rmSync } from "node:fs";
import { SafetensorsFile } from "../src/checkpoint/safetensors.js";
import { writeSyntheticCheckpoint } from "../src/driver/init.js";
import { presetConfig } from "../src/model/config.js";
import { numel } from "../src/kernels/tensor.js";
import { engineInfo } from "../src/kernels/simd/engine.js";
import { paramSpecs, type ParamSpec } from "../src/model/params.js";
import { synthesizeMany } from "../src/model/synthesis-jobs.js";
import { synthesizeScalar } from "../src/model/synthetic.js";

const [preset = "full", dtype = "f16", out = "/tmp/ditc-bench-init.safetensors"] = process.argv.slice(2);
const t0 = performance.now();
const r = writeSyntheticCheckpoint(presetConfig(preset), 0, out, dtype as "f32" | "f16");
const seconds = (performance.now() - t0) / 1000;
const maxRssBytes = process.resourceUsage().maxRSS * 1024;
// the width-1 parameter count straight from the written header: shared tensors plus w1000.*
const file = SafetensorsFile.open(out);
const headerParamsWidth1 = file.names().filter((n) => !/^w(375|500)\./.test(n)).reduce((s, n) => s + file.entry(n).shape.reduce((a, b) => a * b, 1), 0);
file.close();
rmSync(out, { force: true });
// the baseline, in the same run: the first ~64 M values drawn one call per value on one thread (the
// draws before batching and the helper thread), against the batched draws on the engine's threads
const sample: ParamSpec[] = [];
for (let n = 0, i = 0, specs = paramSpecs(presetConfig(preset)); n < 64e6 && i < specs.length; i++) (sample.push(specs[i]!), (n += numel(specs[i]!.shape)));
const values = sample.reduce((n, s) => n + numel(s.shape), 0);
let t = performance.now();
for (const s of sample) synthesizeScalar(s, 0);
const perValueSeconds = (performance.now() - t) / 1000;
t = performance.now();
synthesizeMany(sample, 0, engineInfo().threads);
const batchedSeconds = (performance.now() - t) / 1000;
const draws = { values, perValueSeconds, batchedSeconds, threads: engineInfo().threads, speedup: perValueSeconds / batchedSeconds };
process.stdout.write(JSON.stringify({ seconds, maxRssBytes, bytes: r.bytes, tensors: r.tensors, headerParamsWidth1, expectedWidth1: r.params["1"], draws }));
