// Calibration for compression (docs/toolchain.md, "Calibration"): a set of model inputs
// (latent, timestep, context), usually recorded along the float sampler's trajectory by
// `ditc calibrate`, fed to the model in chunks of any size; and the per-input-channel activation
// statistics of every palettizable layer that weighted k-means and bias correction use.
import { fail } from "../diagnostics.js";
import { producers, type Graph } from "../ir/graph.js";
import { runGraph } from "../interp/interpreter.js";
import { asFloat, floatTensor, type FloatTensor } from "../kernels/tensor.js";
import type { ModelConfig } from "../model/config.js";

/** Model inputs, N of each along axis 0. */
export type CalibrationSet = Record<"latent" | "timestep" | "context", FloatTensor>;

/** Samples per forward when the graph is built at a free batch size. */
export const CALIBRATION_CHUNK = 8;

/** Checks a calibration set against the model's inputs; `file` names where it came from. */
export function checkCalibration(file: string, t: Record<string, FloatTensor>, config: ModelConfig, latentSize: readonly [number, number]): CalibrationSet {
  const want: Record<string, number[]> = { latent: [config.latentChannels, latentSize[0], latentSize[1]], timestep: [], context: [config.contextTokens, config.contextDim] };
  let n: number | undefined;
  for (const [name, rest] of Object.entries(want)) {
    const x = t[name];
    if (!x) throw fail("inputTensor", { file, tensor: name, problem: `is missing; a calibration file holds latent (N, ${want.latent!.join(", ")}), timestep (N) and context (N, ${want.context!.join(", ")})` });
    if (x.shape.length !== rest.length + 1 || rest.some((d, i) => x.shape[i + 1] !== d) || x.shape[0]! < 1)
      throw fail("inputTensor", { file, tensor: name, problem: `has shape (${x.shape.join(", ")}), the model at this resolution takes (N, ${rest.join(", ")}) with N >= 1` });
    if (n !== undefined && x.shape[0] !== n) throw fail("inputTensor", { file, tensor: name, problem: `holds ${x.shape[0]} samples, latent holds ${n}` });
    n = x.shape[0]!;
    for (const v of x.data) if (!Number.isFinite(v)) throw fail("inputTensor", { file, tensor: name, problem: "holds a non-finite value" });
  }
  return { latent: t.latent!, timestep: t.timestep!, context: t.context! };
}

/** Any graph's inputs, N samples of each along axis 0 (a CalibrationSet for the model). */
export type Feeds = Record<string, FloatTensor>;

export function calibrationSize(c: Feeds): number {
  return Object.values(c)[0]?.shape[0] ?? 0;
}

/** Samples [from, from + count) of every input. */
export function calibrationSlice<F extends Feeds>(c: F, from: number, count: number): F {
  const take = (t: FloatTensor) => {
    const per = t.data.length / t.shape[0]!;
    return floatTensor([count, ...t.shape.slice(1)], t.data.slice(from * per, (from + count) * per));
  };
  return Object.fromEntries(Object.entries(c).map(([k, t]) => [k, take(t)])) as F;
}

/** At most `max` records, evenly spaced over the set (all of them when it is no larger). */
export function evenlySpaced<F extends Feeds>(c: F, max: number): F {
  const n = calibrationSize(c);
  if (n <= max) return c;
  const pick = Array.from({ length: max }, (_, i) => Math.floor((i * n) / max));
  const take = (t: FloatTensor) => {
    const per = t.data.length / n, out = new Float32Array(max * per);
    pick.forEach((r, i) => out.set(t.data.subarray(r * per, (r + 1) * per), i * per));
    return floatTensor([max, ...t.shape.slice(1)], out);
  };
  return Object.fromEntries(Object.entries(c).map(([k, t]) => [k, take(t)])) as F;
}

/** Runs `fn` on consecutive chunks of at most `chunk` samples (the last one may be smaller). */
export function forEachChunk<F extends Feeds>(c: F, chunk: number, fn: (feeds: F, first: number) => void): void {
  const n = calibrationSize(c);
  for (let first = 0; first < n; first += chunk) fn(calibrationSlice(c, first, Math.min(chunk, n - first)), first);
}

/** Per input channel of one layer: E[x] and E[x²] over every sample, token and position. */
export interface ChannelStats {
  mean: Float64Array;
  meanSq: Float64Array;
}

/** The checkpoint name of the weight a linear/conv node reads (undefined for other nodes, or a computed weight). */
export function statsSite(n: Graph["nodes"][number], prod: ReturnType<typeof producers>): string | undefined {
  if (n.kind !== "linear" && n.kind !== "conv2d") return undefined;
  const p = prod.get(n.inputs[1]!);
  return p?.kind === "const" ? p.attrs.value.source : undefined;
}

/** Running per-channel sums of one layer's inputs. */
export interface ChannelSums {
  sum: Float64Array;
  sumSq: Float64Array;
  count: number;
}

/** Adds one observed input to the sums of its channels (linear: the last axis; NCHW conv: axis 1). */
export function accumulate(x: FloatTensor, kind: "linear" | "conv2d", sums: ChannelSums): void {
  const d = x.data;
  if (kind === "linear") {
    const C = x.shape[x.shape.length - 1]!, S = sums.sum, Q = sums.sumSq;
    // four rows per sweep: each channel's sums still take the rows one by one, in order (the
    // same bits as a row at a time), with a quarter of the loads and stores of S and Q
    const whole = d.length - (d.length % (4 * C));
    let i = 0;
    for (; i < whole; i += 4 * C)
      for (let c = 0; c < C; c++) {
        const a = d[i + c]!, b = d[i + C + c]!, e = d[i + 2 * C + c]!, f = d[i + 3 * C + c]!;
        S[c] = S[c]! + a + b + e + f;
        Q[c] = Q[c]! + a * a + b * b + e * e + f * f;
      }
    for (; i < d.length; i += C)
      for (let c = 0; c < C; c++) {
        const v = d[i + c]!;
        S[c] += v;
        Q[c] += v * v;
      }
    sums.count += d.length / C;
  } else {
    const [B, C, H, W] = x.shape as [number, number, number, number];
    const hw = H * W;
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++) {
        let s = 0, s2 = 0;
        const o = (b * C + c) * hw;
        for (let i = 0; i < hw; i++) {
          const v = d[o + i]!;
          s += v;
          s2 += v * v;
        }
        sums.sum[c] += s;
        sums.sumSq[c] += s2;
      }
    sums.count += B * hw;
  }
}

/**
 * Runs the float model over the calibration set and gathers, for every linear/conv weight (by
 * checkpoint name), its input's per-channel mean and mean square. `graphFor(batch)` builds the
 * model at a batch size; chunks are at most `chunk` samples.
 */
export function activationStats(graphFor: (batch: number) => Graph, cal: Feeds, chunk = CALIBRATION_CHUNK, onChunk?: (done: number, total: number) => void): Map<string, ChannelStats> {
  const sums = new Map<string, ChannelSums>();
  const n = calibrationSize(cal);
  forEachChunk(cal, chunk, (feeds, first) => {
    const g = graphFor(calibrationSize(feeds));
    const prod = producers(g);
    runGraph(g, feeds, {
      observe: (node, ins) => {
        const name = statsSite(node, prod);
        if (!name) return;
        let s = sums.get(name);
        if (!s) sums.set(name, (s = emptySums(node, ins[0]!)));
        accumulate(asFloat(ins[0]!), node.kind as "linear" | "conv2d", s);
      },
    });
    onChunk?.(Math.min(n, first + chunk), n);
  });
  return new Map([...sums].map(([name, s]) => [name, channelStats(s)]));
}

/** Zero sums for the channels of a linear/conv node's input `x`. */
export function emptySums(node: Graph["nodes"][number], x: { shape: readonly number[] }): ChannelSums {
  const C = node.kind === "linear" ? x.shape[x.shape.length - 1]! : x.shape[1]!;
  return { sum: new Float64Array(C), sumSq: new Float64Array(C), count: 0 };
}

export const channelStats = (s: ChannelSums): ChannelStats => ({ mean: s.sum.map((v) => v / s.count), meanSq: s.sumSq.map((v) => v / s.count) });

/** Statistics as compile uses them: rounded to float32, as the statistics file stores them (verify reads them back). */
export const storedStats = (s: ChannelStats): ChannelStats => ({ mean: Float64Array.from(Float32Array.from(s.mean)), meanSq: Float64Array.from(Float32Array.from(s.meanSq)) });
