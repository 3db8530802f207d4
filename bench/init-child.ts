// Child process for the init benchmark, so its peak RSS is measured alone.
import { rmSync } from "node:fs";
import { SafetensorsFile } from "../src/checkpoint/safetensors.js";
import { writeSyntheticCheckpoint } from "../src/driver/init.js";
import { presetConfig } from "../src/model/config.js";

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
process.stdout.write(JSON.stringify({ seconds, maxRssBytes, bytes: r.bytes, tensors: r.tensors, headerParamsWidth1, expectedWidth1: r.params["1"] }));
