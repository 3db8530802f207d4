// Child process for the palettization benchmarks (peak RSS measured alone).
//   ditc   CKPT OUT BITS WORKERS : palettize every weight with ditc (histogram + DP, workers)
//   sorted CKPT BITS             : the coremltools way: sort each weight's fp16 values, unique, DP
//   mixed  CKPT OUT RES          : the MSE probe on calibration inputs at RES pixels, 4.3 bits allocated, palettized
//   io     CKPT OUT BITS         : the floor: read every weight as the palettizer does, write as many bytes as its indices take
import { palettizeCheckpoint } from "../src/quant/palettize-file.js";
import { kmeans1d } from "../src/quant/kmeans.js";
import { openCheckpoint } from "../src/model/weights.js";
import { paramSpecs } from "../src/model/params.js";
import { roundToF16InPlace } from "../src/kernels/fp16.js";
import { syntheticInputs } from "../src/driver/init.js";
import { buildModel, latentForResolution } from "../src/model/build.js";
import { allocateBits, probeSensitivity } from "../src/quant/probe.js";
import { writeAll, writeFileAtomicAsync } from "../src/io/atomic.js";

const [mode, ckpt, a, b, c] = process.argv.slice(2);
const rss = () => process.resourceUsage().maxRSS * 1024;
if (mode === "ditc") {
  const r = await palettizeCheckpoint(ckpt!, a!, () => Number(b) as 4 | 8, Number(c));
  process.stdout.write(JSON.stringify({ ...r, maxRssBytes: rss() }));
} else if (mode === "sorted") {
  const t0 = performance.now();
  const ck = openCheckpoint(ckpt!);
  const k = 1 << Number(a);
  let tensors = 0;
  for (const s of paramSpecs(ck.config).filter((p) => p.init === "weight" && p.shape.length >= 2 && !p.width)) {
    const x = roundToF16InPlace(ck.file.readFloat(s.name)).sort();
    const values: number[] = [], counts: number[] = [];
    for (let i = 0; i < x.length; i++) {
      if (i && x[i] === x[i - 1]) counts[counts.length - 1]!++;
      else values.push(x[i]!), counts.push(1);
    }
    kmeans1d(Float64Array.from(values), Float64Array.from(counts), k);
    tensors++;
  }
  ck.close();
  process.stdout.write(JSON.stringify({ tensors, seconds: (performance.now() - t0) / 1000, maxRssBytes: rss() }));
}
if (mode === "mixed") {
  const t0 = performance.now();
  const ck = openCheckpoint(ckpt!);
  const latentSize = latentForResolution(Number(b));
  const g = buildModel(ck, { width: 1, latentSize }).graph;
  const sens = probeSensitivity(g, syntheticInputs(ck.config, 0, { batch: 1, latentSize, contextTokens: ck.config.contextTokens }));
  ck.close();
  const probeSeconds = (performance.now() - t0) / 1000;
  const alloc = allocateBits(sens, 4.3);
  const r = await palettizeCheckpoint(ckpt!, a!, (n) => alloc.bits[n] ?? 4, 2);
  const eight = Object.values(alloc.bits).filter((x) => x === 8).length;
  process.stdout.write(JSON.stringify({ ...r, probeSeconds, palettizeSeconds: r.seconds, seconds: (performance.now() - t0) / 1000, calibrationResolution: Number(b), averageBits: alloc.averageBits, layers8bit: eight, layersProbed: sens.length, maxRssBytes: rss() }));
}
if (mode === "io") {
  const t0 = performance.now();
  const ck = openCheckpoint(ckpt!);
  const bits = Number(b);
  let bytes = 0;
  await writeFileAtomicAsync(a!, async (fd) => {
    for (const s of paramSpecs(ck.config).filter((p) => p.init === "weight" && p.shape.length >= 2 && !p.width)) {
      const raw = ck.file.readBytes(ck.file.entry(s.name));
      const out = raw.subarray(0, Math.ceil((raw.byteLength / 2) * bits / 8));
      writeAll(fd, out);
      bytes += out.byteLength;
    }
  });
  ck.close();
  process.stdout.write(JSON.stringify({ bytesWritten: bytes, seconds: (performance.now() - t0) / 1000, maxRssBytes: rss() }));
}
