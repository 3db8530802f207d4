// Child process for the init benchmark, so its peak RSS is measured alone.
import { rmSync } from "node:fs";
import { writeSyntheticCheckpoint } from "../src/driver/init.js";
import { presetConfig } from "../src/model/config.js";

const [preset = "full", dtype = "f16", out = "/tmp/ditc-bench-init.safetensors"] = process.argv.slice(2);
const t0 = performance.now();
const r = writeSyntheticCheckpoint(presetConfig(preset), 0, out, dtype as "f32" | "f16");
const seconds = (performance.now() - t0) / 1000;
rmSync(out, { force: true });
process.stdout.write(JSON.stringify({ seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024, bytes: r.bytes, tensors: r.tensors }));
