// Child process for the palettization benchmarks (peak RSS measured alone).
//   ditc   CKPT OUT BITS WORKERS : palettize every weight with ditc (histogram + DP, workers)
//   sorted CKPT BITS             : the coremltools way: sort each weight's fp16 values, unique, DP
import { palettizeCheckpoint } from "../src/quant/palettize-file.js";
import { kmeans1d } from "../src/quant/kmeans.js";
import { openCheckpoint } from "../src/model/weights.js";
import { paramSpecs } from "../src/model/params.js";
import { roundToF16InPlace } from "../src/kernels/fp16.js";

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
