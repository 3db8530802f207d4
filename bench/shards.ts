// Sharded checkpoints cost nothing extra: the full preset compiled to CoreML fp16 at 1024² from
// one f16 file and from 4 f16 shards (with config.json), peak RSS and time side by side in one run.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export function benchShardsFull() {
  const dir = mkdtempSync(join(tmpdir(), "ditc-bench-shards-"));
  const child = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [join(here, "shards-child.js"), ...args], { encoding: "utf8", maxBuffer: 1 << 20 }));
  try {
    child("init-single", join(dir, "single.safetensors"));
    child("init-shards", join(dir, "shards"), "4");
    const single = child("compile", join(dir, "single.safetensors"), join(dir, "out-single"));
    const shards = child("compile", join(dir, "shards"), join(dir, "out-shards"));
    const ratio = shards.maxRssBytes / single.maxRssBytes;
    console.log(`full -> CoreML fp16 @1024 from one f16 file: ${single.seconds.toFixed(0)} s, peak RSS ${(single.maxRssBytes / 2 ** 30).toFixed(2)} GiB; from 4 shards: ${shards.seconds.toFixed(0)} s, ${(shards.maxRssBytes / 2 ** 30).toFixed(2)} GiB (${ratio.toFixed(3)}x)`);
    return { single, shards, rssRatio: +ratio.toFixed(3), sameBytes: single.bytes === shards.bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
