// Child process of the end-to-end compile benchmark, so each peak RSS is measured alone.
//   init CK           : the full preset's synthetic f16 checkpoint, synced to the disk
//   compile CK OUT    : compile --target coreml,tflite,onnx --width 0.375,0.5,1 --quantize mixed at 1024²
//   plain CK OUT      : compile --target coreml at width 1, fp16, no quantization (the checkpoint's
//                       fp16 weights written as they are)
//   floor CK OUT COPY : the I/O floor: read CK once, then copy every file under OUT into COPY
//                       (without OUT and COPY: only the read, which warms the page cache)
//   direct CK OUT COPY: the same with the copies' whole 4 KiB blocks written with O_DIRECT, as
//                       compile writes its artifacts on Linux (README, "Atomic outputs")
import { closeSync, constants, copyFileSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from "node:fs";
import { join, relative } from "node:path";
import { compile, parseQuantize } from "../src/driver/compile.js";
import { writeSyntheticCheckpoint } from "../src/driver/init.js";
import { presetConfig } from "../src/model/config.js";
import { openCheckpoint } from "../src/model/weights.js";

const [mode, ck, out, copy] = process.argv.slice(2);

/** One page-aligned buffer for every direct copy (a fresh one per file would add its first-touch faults to the floor). */
const chunk = 64 << 20;
let directBuffer: Uint8Array | undefined;
const t0 = performance.now();
const done = (o: object) => process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...o }));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

if (mode === "init") {
  const { bytes } = writeSyntheticCheckpoint(presetConfig("full"), 0, ck!, "f16");
  // on the disk before anything is timed: its 3 GB of dirty pages otherwise go out while the
  // compile reads them (the kernel's flusher on one of the two cores), and not while the floor
  // does, minutes later (at 32² latents the compile's first read took 2.6 s during the flush and
  // 1.2 s after a sync, one run each)
  const fd = openSync(ck!, "r");
  fsyncSync(fd);
  closeSync(fd);
  done({ bytes });
} else if (mode === "compile") {
  const source = openCheckpoint(ck!);
  const { report, phases, timings } = compile({
    source, ref: { checkpoint: ck! }, targets: ["coreml", "tflite", "onnx"], widths: [0.375, 0.5, 1], latentSize: [128, 128],
    precision: "auto", quantize: parseQuantize("mixed"), out: out!,
  });
  source.close();
  done({ phases, timings, averageBits: report.quantization!.averageBits, artifacts: report.artifacts.map((a) => ({ target: a.target, width: a.width, bytes: a.bytes })) });
} else if (mode === "plain") {
  const source = openCheckpoint(ck!);
  const { report, phases } = compile({ source, ref: { checkpoint: ck! }, targets: ["coreml"], widths: [1], latentSize: [128, 128], precision: "fp16", quantize: { mode: "none" }, out: out! });
  source.close();
  done({ phases, bytes: report.artifacts[0]!.bytes });
} else if (mode === "floor" || mode === "direct") {
  // plain reads of the checkpoint's bytes in 64 MiB chunks, then plain copies of what compile wrote
  const buf = Buffer.allocUnsafe(64 << 20);
  const readAll = (path: string) => {
    const fd = openSync(path, "r");
    let read = 0;
    for (let got; (got = readSync(fd, buf, 0, buf.length, read)) > 0; ) read += got;
    closeSync(fd);
    return read;
  };
  // the floor writes the artifacts' bytes, it does not read them back: compile wrote them with
  // O_DIRECT, so they are not in the page cache; read them there first, untimed (before that,
  // the floor's copies read them from the disk, 12-17 s instead of 4-7 s)
  for (const f of out ? filesUnder(out) : []) readAll(f);
  const start = performance.now();
  const read = readAll(ck!);
  const readSeconds = (performance.now() - start) / 1000;
  let written = 0;
  for (const f of out ? filesUnder(out) : []) {
    const to = join(copy!, relative(out!, f));
    mkdirSync(join(to, ".."), { recursive: true });
    if (mode === "direct") copyDirect(f, to);
    else copyFileSync(f, to);
    written += statSync(f).size;
  }
  const writeSeconds = (performance.now() - start) / 1000 - readSeconds;
  done({ readBytes: read, readSeconds, writtenBytes: written, writeSeconds, freshMemorySecondsPerGiB: freshTouchSeconds() });
}

/**
 * Seconds to first-touch 1 GiB of fresh memory, one byte per 4 KiB page, after the timed copies:
 * what the compile's reads into its cache (~3.7 GiB with the slices) pay per GiB besides the
 * copy. On this VM it moves with how much memory the host has reclaimed: 0.4–3.8 s in trials.
 */
function freshTouchSeconds(): number {
  const t = performance.now();
  for (let k = 0; k < 16; k++) {
    const a = new Uint8Array(64 << 20);
    for (let i = 0; i < a.length; i += 4096) a[i] = 1;
  }
  return (performance.now() - t) / 1000;
}

/** Copies `from` to `to`, reading through the page cache and writing whole blocks with O_DIRECT (the tail buffered). */
function copyDirect(from: string, to: string): void {
  const buf = (directBuffer ??= new Uint8Array(new WebAssembly.Memory({ initial: chunk >> 16, maximum: chunk >> 16 }).buffer)); // page-aligned
  const src = openSync(from, "r"), dst = openSync(to, "w"), direct = openSync(to, constants.O_WRONLY | constants.O_DIRECT);
  try {
    for (let at = 0; ; ) {
      let got = 0;
      for (let n; got < chunk && (n = readSync(src, buf, got, chunk - got, at + got)) > 0; ) got += n;
      if (!got) break;
      const whole = got - (got % 4096);
      for (let w = 0; w < whole; ) w += writeSync(direct, buf, w, whole - w, at + w);
      for (let w = whole; w < got; ) w += writeSync(dst, buf, w, got - w, at + w);
      at += got;
    }
  } finally {
    [src, dst, direct].forEach((fd) => closeSync(fd));
  }
}
