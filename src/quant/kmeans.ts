// Globally optimal 1-D k-means for palettizing a weight tensor (docs/toolchain.md, k-means weight
// palettization).
//
// Weights are clustered as fp16 values, so a tensor has at most 65,536 distinct values: one pass
// counts the fp16 bit patterns, the histogram is walked in value order, and the exact dynamic
// programme runs over distinct values with their counts as weights, never over the raw
// elements. The programme D[m][i] = min_j D[m-1][j-1] + SSE(j..i) is solved layer by layer with
// divide and conquer (SSE of contiguous sorted runs satisfies the quadrangle inequality, so the
// optimal split point is monotone in i): O(k · n log n) for n distinct values.
// Index assignment is a lookup from bit pattern to cluster.
import { encodeF16, f16BitsToF32, f32ToF16Bits } from "../kernels/fp16.js";
import { Arena, lookupIndices, weightedCounts, type KmeansModule } from "./element-passes.js";

/**
 * Changes whenever the programme may pick another of several equally good clusterings (ties in
 * rounding). `verify` rebuilds the quantized reference with this code, so a report records the
 * revision its artifacts were clustered with. 2: the division-free candidate test. 3: the
 * candidate's value summed as S2[i+1] + (prev[j-1] − S2[j]). 4: the best so far kept as a
 * fraction, candidates compared with it by cross-multiplying.
 */
export const KMEANS_REVISION = 4;

export interface Histogram {
  /** distinct fp16 values, ascending (−0 merged into +0) */
  values: Float64Array;
  counts: Float64Array;
  /** for each fp16 bit pattern present, its position in `values` */
  patternIndex: Int32Array;
}

/** Counts fp16 bit patterns of `data` (rounded to half precision) into a sorted histogram. */
export function fp16Histogram(data: Float32Array, counts: Uint32Array = new Uint32Array(65536)): Histogram {
  return histogramOfBits(encodeF16(data), counts);
}

/** Four interleaved count tables: neighbouring equal values (common near zero) do not wait on each other's increments. */
const LANES = new Uint32Array(4 * 65536);

/** The same from fp16 bit patterns directly (an f16 checkpoint's bytes need no conversion). */
export function histogramOfBits(bits: Uint16Array, counts: Uint32Array = new Uint32Array(65536)): Histogram {
  LANES.fill(0);
  const m = bits.length & ~3;
  for (let i = 0; i < m; i += 4) {
    LANES[bits[i]!]!++;
    LANES[65536 + bits[i + 1]!]!++;
    LANES[131072 + bits[i + 2]!]!++;
    LANES[196608 + bits[i + 3]!]!++;
  }
  for (let i = m; i < bits.length; i++) LANES[bits[i]!]!++;
  for (let p = 0; p < 65536; p++) counts[p] = LANES[p]! + LANES[65536 + p]! + LANES[131072 + p]! + LANES[196608 + p]!;
  return sortedHistogram(counts);
}

/** A weight holding NaN or an infinity in half precision; its name crosses threads, so callers can name the weight (src/quant/layer.ts). */
export class NonFiniteWeight extends RangeError {
  static readonly errorName = "NonFiniteWeight";
  override name = NonFiniteWeight.errorName;
}

/**
 * The distinct values of a per-pattern table of (possibly fractional) counts, in value order.
 * Throws NonFiniteWeight on a NaN or infinity (an fp16 one: float32 magnitudes past 65504 round
 * to it): clustering would otherwise leave those elements out and give them some index.
 */
function sortedHistogram(counts: Uint32Array | Float64Array): Histogram {
  for (let p = 0x7c00; p < 0x10000; p = p === 0x7fff ? 0xfc00 : p + 1)
    if (counts[p]) throw new NonFiniteWeight(`holds ${p & 0x3ff ? "NaN" : `${p & 0x8000 ? "-" : ""}Infinity in half precision (it holds magnitudes up to 65504)`}`);
  counts[0] = counts[0]! + counts[0x8000]!; // −0 and +0 are one value
  counts[0x8000] = 0;
  const values: number[] = [], cs: number[] = [];
  const patternIndex = new Int32Array(65536).fill(-1);
  const visit = (p: number) => {
    const c = counts[p]!;
    if (!c) return;
    const v = f16BitsToF32(p);
    patternIndex[p] = values.length;
    values.push(v);
    cs.push(c);
  };
  for (let p = 0xfbff; p >= 0x8001; p--) visit(p); // negatives, most negative first
  for (let p = 0; p <= 0x7bff; p++) visit(p);
  patternIndex[0x8000] = patternIndex[0]!;
  return { values: Float64Array.from(values), counts: Float64Array.from(cs), patternIndex };
}

/**
 * How a weight's elements meet its input channels: row r of the weight (an output channel) reads
 * input channels rowBase[r] + 0 … inPerRow − 1, each over `spatial` consecutive elements (a
 * linear (O, I): rowBase 0, inPerRow I, spatial 1; a conv (O, I/g, kh, kw): rowBase of its group).
 */
export interface ChannelLayout {
  rowBase: Int32Array;
  inPerRow: number;
  spatial: number;
}

/** The layout of a linear or (grouped) conv weight of this shape. */
export function channelLayout(shape: readonly number[], groups = 1): ChannelLayout {
  const rows = shape[0]!, inPerRow = shape[1]!, spatial = shape.slice(2).reduce((a, b) => a * b, 1);
  const perGroup = rows / groups, rowBase = new Int32Array(rows);
  // a loop, not Int32Array.from with a mapping function: plans are made for every layer of every
  // width several times over, and the generic path cost ~0.1 s of a full-preset compile
  for (let r = 0; r < rows; r++) rowBase[r] = Math.floor(r / perGroup) * inPerRow;
  return { rowBase, inPerRow, spatial };
}

/**
 * The histogram with each element counted by the importance of the input channel it multiplies
 * (E[x²] from calibration): clustering it minimizes Σ E[x_c²]·(w − ŵ)², the diagonal estimate of
 * the output's squared error, instead of the weights' own. A floor of 1e-6 of the mean importance
 * keeps channels that never fire in the programme.
 */
export function weightedHistogramOfBits(bits: Uint16Array, importance: Float64Array, layout: ChannelLayout): Histogram {
  let mean = 0;
  for (const v of importance) mean += v;
  mean /= importance.length || 1;
  const floor = 1e-6 * mean || 1e-30;
  return sortedHistogram(weightedCounts(bits, importance.map((v) => Math.max(v, floor)), layout));
}

export interface Clustering {
  /** k centroids, ascending (padded by repeating the last one when there are fewer distinct values) */
  centroids: Float64Array;
  /** for each distinct value, its cluster */
  assignment: Uint16Array;
  /** Σ count · (value − centroid)² */
  cost: number;
}

/**
 * The programme bounds itself with a feasible partition when it is large (at least
 * BOUNDED_CLUSTERS clusters over at least 4 · BOUND_RUNS distinct values, the 8-bit case): the
 * exact programme over runs of consecutive distinct values (~1–2 thousand, a few per cent of the
 * work), refined by Lloyd steps, gives a partition whose cost bounds the optimum (boundingPartition).
 */
const BOUND_RUNS = 1024;
const BOUNDED_CLUSTERS = 64;

/**
 * Cluster starts (indices into `values`) of the optimal partition of runs of consecutive distinct
 * values into m clusters; clustering the runs' means, weighted by their counts, finds it (the
 * spread inside each run adds the same to every such partition's cost). A run ends after
 * n / BOUND_RUNS values, 1 / BOUND_RUNS of the total count, or before its spread (SSE) would pass
 * `maxSpread`; undefined when that makes more than 8 · BOUND_RUNS runs.
 */
function runPartitionStarts(values: Float64Array, counts: Float64Array, m: number, engine: "wasm" | "js", maxSpread = Infinity): number[] | undefined {
  const n = values.length, step = Math.ceil(n / BOUND_RUNS);
  let total = 0;
  for (let i = 0; i < n; i++) total += counts[i]!;
  const runStarts: number[] = [], means: number[] = [], weights: number[] = [];
  for (let start = 0; start < n; ) {
    // sums about the run's first value, so the spread does not cancel far from zero
    const x0 = values[start]!;
    let w = 0, s = 0, s2 = 0, i = start;
    do {
      const x = values[i]! - x0, c = counts[i]!;
      (w += c), (s += c * x), (s2 += c * x * x);
      i++;
      if (i === n || i - start >= step || w >= total / BOUND_RUNS) break;
      const y = values[i]! - x0, d = counts[i]!, w2 = w + d, t = s + d * y;
      if (s2 + d * y * y - (t * t) / w2 > maxSpread) break;
    } while (true);
    runStarts.push(start);
    weights.push(w);
    means.push(s / w + x0);
    if (runStarts.length > 8 * BOUND_RUNS) return undefined;
    start = i;
  }
  const { assignment } = kmeans1d(Float64Array.from(means), Float64Array.from(weights), m, engine);
  const starts = [0];
  for (let r = 1; r < runStarts.length; r++) if (assignment[r] !== assignment[r - 1]) starts.push(runStarts[r]!);
  return starts;
}

/** Prefix sums of counts, count·x and count·x² (x shifted by the weighted mean, so SSE differences do not cancel), and the SSE of a run from them. */
interface PrefixSums {
  W: Float64Array;
  S1: Float64Array;
  S2: Float64Array;
  mean: number;
  /** SSE of points j..i (0-based, inclusive) */
  sse: (j: number, i: number) => number;
}

/** Fills W, S1, S2 (n + 1 each; fresh arrays by default) for the sorted values and their counts. */
function prefixSums(values: Float64Array, counts: Float64Array, W: Float64Array = new Float64Array(values.length + 1), S1: Float64Array = new Float64Array(values.length + 1), S2: Float64Array = new Float64Array(values.length + 1)): PrefixSums {
  const n = values.length;
  let mean = 0, total = 0;
  for (let i = 0; i < n; i++) (mean += counts[i]! * values[i]!), (total += counts[i]!);
  mean /= total;
  W[0] = S1[0] = S2[0] = 0;
  for (let i = 0; i < n; i++) {
    const x = values[i]! - mean, w = counts[i]!;
    W[i + 1] = W[i]! + w;
    S1[i + 1] = S1[i]! + w * x;
    S2[i + 1] = S2[i]! + w * x * x;
  }
  const sse = (j: number, i: number) => {
    const w = W[i + 1]! - W[j]!, s = S1[i + 1]! - S1[j]!;
    return Math.max(0, S2[i + 1]! - S2[j]! - (s * s) / w);
  };
  return { W, S1, S2, mean, sse };
}

/**
 * A partition into m clusters whose cost bounds the optimum: the runs' programme, with runs whose
 * spread is small against a first, rough bound (Lloyd steps from count quantiles). Runs of equal
 * length alone left bounds 7–40× the optimum on weights with sparse far tails (one run spanning
 * values the optimum gives several clusters); these are within 0.3–14 % on the full preset's.
 */
function boundingPartition(values: Float64Array, counts: Float64Array, m: number, engine: "wasm" | "js"): number[] {
  const sums = prefixSums(values, counts);
  const rough = lloydRefine(countQuantiles(sums.W, m), values, sums);
  return runPartitionStarts(values, counts, m, engine, rough / (64 * BOUND_RUNS)) ?? runPartitionStarts(values, counts, m, engine)!;
}

/** Starts of m clusters of about equal count, from the prefix counts W (a loop of its own: see the note above clusterOfPatterns). */
function countQuantiles(W: Float64Array, m: number): number[] {
  const n = W.length - 1, quantiles = [0];
  for (let c = 1, i = 0; c < m; c++) {
    while (i < n && W[i]! < (c * W[n]!) / m) i++;
    quantiles.push(Math.min(Math.max(i, quantiles[c - 1]! + 1), n - (m - c)));
  }
  return quantiles;
}

/** The programme's arrays: plain typed arrays, or views of the WebAssembly module's memory. */
interface Workspace {
  W: Float64Array;
  S1: Float64Array;
  S2: Float64Array;
  /** per candidate start j: W[j], S1[j], prev[j-1] − S2[j] side by side (one cache line serves j) */
  R: Float64Array;
  rows: [Float64Array, Float64Array];
  /** per layer, each row's best start */
  split: Int32Array[];
  /** R's third column from rows[prev], for starts j in from..to */
  refill: (prev: 0 | 1, from: number, to: number) => void;
  /**
   * solves layer c for rows from..last into rows[out] from rows[1 - out] (R already refilled),
   * starts lowest ≤ j ≤ cap; with `knuth` also j ≥ layer c − 1's start at the same row
   */
  layer: (c: number, lowest: number, from: number, last: number, out: 0 | 1, cap: number, knuth: boolean) => void;
  /** penalizedSuffix over W, S1, S2 with this λ */
  penalized: (lambda: number) => Float64Array;
}

/**
 * Exact weighted 1-D k-means over sorted distinct values. The layers of the programme run in
 * WebAssembly (src/quant/assembly/kmeans.ts); `engine: "js"` runs the same layers in JavaScript,
 * the oracle the WebAssembly is tested against (identical bits: the same float64 operations in the
 * same order).
 *
 * Large programmes are bounded (`bounded`, on by default): with B at least the optimal cost, a row
 * of layer c whose cost exceeds B is on no optimal path, and every row is at least as costly as
 * the rows left of it, so layer c + 1 only considers starts j with j − 1 at or before layer c's
 * last row within B, and computes no row whose last cluster alone (from that start) exceeds B.
 * From the right, suffixBound: a row whose cost plus a lower bound for the values after it
 * exceeds B is on no optimal path either, so the next layer starts no cluster at or before it.
 * Each layer then solves exactly its own restricted problem (candidate starts an interval, so
 * the best start is still monotone in the row), and a row on an optimal path keeps every start it
 * could take and so gets the leftmost best start it gets unbounded: the clustering is the same bit
 * for bit (tests/quant/kmeans.test.ts). Knuth's bound (a row's best start at least the previous
 * layer's at that row) holds for the unrestricted programme only, so bounded layers go without
 * it. The 8-bit programme over ~23k distinct values computes ~3× fewer rows, ~1.8× faster.
 * The same bound from the right also ends each layer's useful rows early (a row past the last
 * whose cost plus the bound for the rest is within B is on no optimal path): with three
 * Lagrange multipliers, ~1.7× fewer rows again and the programme ~1.4× faster on the full
 * preset's weights, bit for bit the same clustering.
 */
export function kmeans1d(values: Float64Array, counts: Float64Array, k: number, engine: "wasm" | "js" = "wasm", bounded = true): Clustering {
  const n = values.length;
  if (n === 0) return { centroids: new Float64Array(k), assignment: new Uint16Array(0), cost: 0 };
  const m = Math.min(k, n);
  // before the workspace: the bound's own programme uses the module's memory too
  const boundStarts = bounded && m >= BOUNDED_CLUSTERS && n >= 4 * BOUND_RUNS ? boundingPartition(values, counts, m, engine) : undefined;
  const { W, S1, S2, R, rows, split, refill, layer, penalized } = engine === "wasm" ? wasmWorkspace(n, m) : jsWorkspace(n, m);
  const sums = prefixSums(values, counts, W, S1, S2), { mean, sse } = sums;
  let prev: 0 | 1 = 0;
  for (let i = 0; i < n; i++) rows[0][i] = sse(0, i);
  split[0]!.fill(0); // one cluster: starts at 0
  for (let j = 0; j <= n; j++) (R[3 * j] = W[j]!), (R[3 * j + 1] = S1[j]!);
  // the bound, with room for the rounding of the programme's own sums (they differ from sse's
  // by a few ulps of the total sum of squares per layer)
  let bound = Infinity;
  if (boundStarts) {
    const cost = lloydRefine(boundStarts, values, sums);
    bound = cost * (1 + 1e-6) + 1e-12 * S2[n]!;
  }
  const rest = boundStarts ? suffixBound(boundStarts, sums, penalized) : () => 0;
  // room for rounding: the bound from the right sums up to n costs, each a few ulps of the total sum of squares off
  const margin = 1e-10 * S2[n]!;
  /** Whether row i of layer c (values 0..i in c + 1 clusters) can be on an optimal path. */
  const useful = (row: Float64Array, i: number, c: number) => row[i]! + rest(i + 1, m - 1 - c) - margin <= bound;
  /** The last start layer c + 1 may consider, from layer c's row costs (rows first..last). */
  const capAfter = (row: Float64Array, first: number, last: number, c: number) => {
    let t = last;
    while (t >= first && !useful(row, t, c)) t--;
    return t < first ? n - 1 : Math.min(n - 1, t + 1);
  };
  /** Layer c's first useful row among first..last (`first` itself should none be: no pruning). */
  const firstUseful = (row: Float64Array, first: number, last: number, c: number) => {
    for (let i = first; i <= Math.min(last, n - 2); i++) if (useful(row, i, c)) return i;
    return first;
  };
  /** The last row a layer whose starts end at `cap` needs: past it, the last cluster (cap..i at least) alone exceeds the bound. */
  const lastWithin = (cap: number) => {
    let lo = cap, hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (sse(cap, mid) <= bound) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  let cap = capAfter(rows[0], 0, n - 1, 0), low = boundStarts ? firstUseful(rows[0], 0, n - 1, 0) + 1 : 0;
  // Layer c: cur[i] = min over j of prev[j-1] + SSE(j..i); the last layer is read at one row only
  for (let c = 1; c < m; c++) {
    const lowest = Math.max(c, low);
    const first = c === m - 1 ? n - 1 : lowest, last = c === m - 1 ? n - 1 : Math.max(first, lastWithin(cap));
    refill(prev, lowest, cap);
    split[c]!.fill(0);
    layer(c, lowest, first, last, (1 - prev) as 0 | 1, cap, !boundStarts);
    prev = (1 - prev) as 0 | 1;
    cap = capAfter(rows[prev], first, last, c);
    if (boundStarts) low = firstUseful(rows[prev], first, last, c) + 1;
  }
  // walk the split points back from the last value
  const assignment = new Uint16Array(n);
  const centroids = new Float64Array(k);
  let end = n - 1;
  for (let c = m - 1; c >= 0; c--) {
    const start = c === 0 ? 0 : split[c]![end]!;
    const w = W[end + 1]! - W[start]!, s = S1[end + 1]! - S1[start]!;
    centroids[c] = s / w + mean;
    for (let i = start; i <= end; i++) assignment[i] = c;
    end = start - 1;
  }
  for (let c = m; c < k; c++) centroids[c] = centroids[m - 1]!;
  return { centroids, assignment, cost: rows[prev][n - 1]! };
}

/** Lloyd steps on a partition given by its cluster starts (in place) while they lower its cost; returns the cost. */
function lloydRefine(starts: number[], values: Float64Array, { W, S1, mean, sse }: PrefixSums, steps = 30): number {
  const n = values.length, m = starts.length;
  const costOf = (st: readonly number[]) => st.reduce((a, s, c) => a + sse(s, (st[c + 1] ?? n) - 1), 0);
  let cost = costOf(starts);
  const centre = (c: number, st: readonly number[]) => {
    const a = st[c]!, b = st[c + 1] ?? n;
    return (S1[b]! - S1[a]!) / (W[b]! - W[a]!) + mean;
  };
  for (let step = 0; step < steps; step++) {
    // each value to its nearest centre: cluster c then starts at the first value past the midpoint
    const next = [0];
    let i = 0;
    for (let c = 1; c < m; c++) {
      const mid = (centre(c - 1, starts) + centre(c, starts)) / 2;
      // the first value from i on past the midpoint (values ascend: a binary search)
      for (let hi = n; i < hi; ) {
        const h = (i + hi) >> 1;
        if (values[h]! <= mid) i = h + 1;
        else hi = h;
      }
      // no cluster empties: each keeps at least one value
      next.push(Math.min(Math.max(i, next[c - 1]! + 1), n - (m - c)));
    }
    const c2 = costOf(next);
    if (!(c2 < cost)) break;
    cost = c2;
    starts.splice(0, m, ...next);
  }
  return cost;
}

/**
 * The bound from the right: clustering values j..n−1 into r clusters costs at least
 * G(j) − λ·r for any λ > 0, where G(j) is the least cost of clustering them into any number of
 * clusters with each cluster charged λ (weak duality), and so at least the largest of these over
 * several λ. A row i of layer c (values 0..i in c + 1 clusters) is on an optimal path only if its
 * cost plus that bound for values i + 1.. in the other m − 1 − c clusters is within B, so rows
 * left of the first such row and right of the last are never needed. λ: the least cost of merging
 * two neighbouring clusters of the bounding partition (the optimum's marginal cost is of that
 * order), and half and twice it: the best λ for a rest of the values depends on how many clusters
 * it is left, and the three prune ~1.7× more rows than the one alone (any λ is valid).
 * Returns the bound for values j.. in r clusters (0 where it has nothing better).
 */
function suffixBound(starts: readonly number[], sums: PrefixSums, penalized: (lambda: number) => Float64Array): (j: number, r: number) => number {
  const n = sums.W.length - 1, sse = sums.sse;
  let lambda = Infinity;
  for (let c = 0; c + 2 <= starts.length; c++) {
    const a = starts[c]!, b = starts[c + 1]!, e = (starts[c + 2] ?? n) - 1;
    lambda = Math.min(lambda, sse(a, e) - sse(a, b - 1) - sse(b, e));
  }
  if (!(lambda > 0) || !Number.isFinite(lambda)) return () => 0;
  const lambdas = [lambda / 2, lambda, 2 * lambda], Gs = lambdas.map((l) => penalized(l));
  return (j, r) => {
    let best = 0;
    for (let q = 0; q < lambdas.length; q++) best = Math.max(best, Gs[q]![j]! - lambdas[q]! * r);
    return best;
  };
}

/**
 * G[j] (j = 0..n, G[n] = 0): the least Σ over clusters of (SSE + λ) partitioning values j..n−1,
 * from the prefix sums of kmeans1d (W, S1, S2 at 0..n). Computed forward over the reversed order,
 * where it is the textbook 1D/1D programme with a cost that satisfies the quadrangle inequality:
 * candidates kept in a queue, each the best over a range of rows found by binary search, so
 * O(n log n).
 */
export function penalizedSuffix(W: Float64Array, S1: Float64Array, S2: Float64Array, n: number, lambda: number, engine: "wasm" | "js" = "js"): Float64Array {
  if (engine === "wasm") {
    const a = new Arena();
    const pW = a.take(8 * (n + 1)), pS1 = a.take(8 * (n + 1)), pS2 = a.take(8 * (n + 1)), pE = a.take(8 * (n + 1)), pCand = a.take(4 * n), pFrom = a.take(4 * n);
    const buf = a.reserve(`the penalized programme over ${n} distinct values`);
    for (const [p, x] of [[pW, W], [pS1, S1], [pS2, S2]] as const) new Float64Array(buf, p, n + 1).set(x.subarray(0, n + 1));
    return penalizedInModule(a.wasm, buf, { W: pW, S1: pS1, S2: pS2, E: pE, cand: pCand, from: pFrom }, n, lambda);
  }
  // E[q + 1]: the reversed prefix 0..q, i.e. values n − 1 − q..n − 1; a last cluster s..q of the
  // reversed order is values n − 1 − q..n − 1 − s, whose sums are the prefix sums at n − s less n − 1 − q
  const E = new Float64Array(n + 1);
  const val = (s: number, q: number) => {
    const hi = n - s, lo = n - 1 - q, w = W[hi]! - W[lo]!, t = S1[hi]! - S1[lo]!;
    return E[s]! + Math.max(0, S2[hi]! - S2[lo]! - (t * t) / w) + lambda;
  };
  const cand = new Int32Array(n), from = new Int32Array(n);
  let head = 0, tail = 0;
  for (let q = 0; q < n; q++) {
    // the cluster starting at q is a candidate from row q on; one the newer candidate matches at
    // the start of its range is never needed again (the difference only falls with the row)
    while (tail > head) {
      const b = cand[tail - 1]!, f = Math.max(from[tail - 1]!, q);
      if (val(q, f) <= val(b, f)) tail--;
      else break;
    }
    if (tail === head) {
      cand[tail] = q;
      from[tail++] = q;
    } else {
      const b = cand[tail - 1]!;
      let lo = Math.max(from[tail - 1]!, q) + 1, hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (val(q, mid) <= val(b, mid)) hi = mid;
        else lo = mid + 1;
      }
      if (lo < n) {
        cand[tail] = q;
        from[tail++] = lo;
      }
    }
    while (tail - head > 1 && from[head + 1]! <= q) head++;
    E[q + 1] = val(cand[head]!, q);
  }
  const G = new Float64Array(n + 1);
  for (let j = 0; j <= n; j++) G[j] = E[n - j]!;
  return G;
}

/** penalizedSuffix in the module, its arrays at these offsets of `buf` (the module's memory): G, copied out. */
function penalizedInModule(wasm: KmeansModule, buf: ArrayBuffer, p: { W: number; S1: number; S2: number; E: number; cand: number; from: number }, n: number, lambda: number): Float64Array {
  wasm.penalizedSuffix(p.W, p.S1, p.S2, n, lambda, p.E, p.cand, p.from);
  return new Float64Array(buf, p.E, n + 1).slice().reverse(); // G[j] = E[n − j]
}

function jsWorkspace(n: number, m: number): Workspace {
  const W = new Float64Array(n + 1), S1 = new Float64Array(n + 1), S2 = new Float64Array(n + 1), R = new Float64Array(3 * (n + 1));
  const rows: [Float64Array, Float64Array] = [new Float64Array(n), new Float64Array(n)];
  const split = Array.from({ length: m }, () => new Int32Array(n));
  const stack = new Int32Array(4 * 32);
  const refill = (prev: 0 | 1, from: number, to: number) => {
    const p = rows[prev];
    for (let j = Math.max(1, from); j <= to; j++) R[3 * j + 2] = p[j - 1]! - S2[j]!;
  };
  /** Row i's best start in from..to into out and arg; returns it. */
  const scan = (i: number, from: number, to: number, out: Float64Array, arg: Int32Array) => {
    const Wi = W[i + 1]!, S1i = S1[i + 1]!, S2i = S2[i + 1]!;
    // the best value so far as num / den (den, its cluster's weight, > 0); a candidate's value
    // v / w is compared by cross-multiplying: no division in the loop
    let r = 3 * from;
    let s1 = S1i - R[r + 1]!;
    let den = Wi - R[r]!;
    let num = (S2i + R[r + 2]!) * den - s1 * s1, bestJ = from;
    for (let j = from + 1; j <= to; j++) {
      r += 3;
      s1 = S1i - R[r + 1]!;
      const w = Wi - R[r]!, v = (S2i + R[r + 2]!) * w - s1 * s1;
      if (v * den < num * w) (num = v), (den = w), (bestJ = j);
    }
    out[i] = num / den;
    arg[i] = bestJ;
    return bestJ;
  };
  // The best j is monotone in i, so divide and conquer fixes the middle row and splits the
  // candidate range; unbounded, the previous layer's best j at the same i is a lower bound too
  // (adding a cluster never moves it left). The bounds meet in theory; clamping keeps one
  // candidate should rounding ties cross them.
  const divideAndConquer = (lowest: number, first: number, last: number, out: Float64Array, arg: Int32Array, below: Int32Array, cap: number) => {
    // without recursion: each entry is rows lo..hi with best starts in jlo..jhi; a range loops on
    // its right half and stacks its left, so at most log2(n) + 1 <= 17 ranges are ever stacked
    let sp = 0;
    const push = (lo: number, hi: number, jlo: number, jhi: number) => {
      stack[sp++] = lo;
      stack[sp++] = hi;
      stack[sp++] = jlo;
      stack[sp++] = jhi;
    };
    push(first, last, lowest, cap);
    while (sp > 0) {
      sp -= 4;
      let lo = stack[sp]!, jlo = stack[sp + 2]!;
      const hi = stack[sp + 1]!, jhi = stack[sp + 3]!;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const to = jhi < mid ? jhi : mid;
        let from = below[mid]!;
        if (from < jlo) from = jlo;
        if (from < lowest) from = lowest;
        if (from > to) from = to;
        const bestJ = scan(mid, from, to, out, arg);
        if (lo < mid) push(lo, mid - 1, jlo, bestJ);
        lo = mid + 1;
        jlo = bestJ;
      }
    }
  };
  // layer 0's starts are all 0: no lower bound
  const layer = (c: number, lowest: number, first: number, last: number, o: 0 | 1, cap: number, knuth: boolean) => divideAndConquer(lowest, first, last, rows[o], split[c]!, split[knuth ? c - 1 : 0]!, cap);
  return { W, S1, S2, R, rows, split, refill, layer, penalized: (lambda) => penalizedSuffix(W, S1, S2, n, lambda) };
}

function wasmWorkspace(n: number, m: number): Workspace {
  const a = new Arena(), wasm = a.wasm;
  // float64 arrays, then int32 ones
  const W = a.take(8 * (n + 1)), S1 = a.take(8 * (n + 1)), S2 = a.take(8 * (n + 1)), R = a.take(24 * (n + 1)), row0 = a.take(8 * n), row1 = a.take(8 * n);
  const E = a.take(8 * (n + 1)), stack = a.take(4 * 128), cand = a.take(4 * n), from = a.take(4 * n), split = a.take(4 * n * m);
  const buf = a.reserve(`k-means over ${n} distinct values into ${m} clusters`);
  const f64 = (p: number, len: number) => new Float64Array(buf, p, len);
  const splitOf = (c: number) => 4 * n * c + split;
  return {
    W: f64(W, n + 1), S1: f64(S1, n + 1), S2: f64(S2, n + 1), R: f64(R, 3 * (n + 1)), rows: [f64(row0, n), f64(row1, n)],
    split: Array.from({ length: m }, (_, c) => new Int32Array(buf, splitOf(c), n)),
    refill: (prev, from, to) => wasm.refill(R, prev ? row1 : row0, S2, from, to),
    layer: (c, lowest, first, last, o, cap, knuth) => wasm.layer(lowest, first, last, cap, R, W, S1, S2, splitOf(knuth ? c - 1 : 0), o ? row1 : row0, splitOf(c), stack),
    penalized: (lambda) => penalizedInModule(wasm, buf, { W, S1, S2, E, cand, from }, n, lambda),
  };
}

export interface Palettized {
  /** one cluster index per element, row-major like the weight (two per byte when asked to pack 4-bit ones) */
  indices: Uint8Array;
  /** the lookup table, fp16-representable values */
  lut: Float32Array;
  /** Σ (w16 − lut[idx])² over elements, w16 the weight rounded to fp16 (weighted: each element times its importance) */
  sse: number;
  /** per LUT group, each fp16 bit pattern's cluster (65,536 entries a group), where the clustering was computed on this thread */
  clusterOf?: Uint8Array;
}

/**
 * Two 4-bit indices per byte (low nibble first) from fp16 patterns through a pattern -> cluster
 * table. Reads two patterns per 32-bit load and stores four bytes at once where `data` is
 * 4-byte aligned (it is for tensors handed over whole); the rest goes pair by pair. The word
 * order is little-endian, like the safetensors bytes these patterns come from.
 */
function packNibbles(data: Uint16Array, byPattern: Uint8Array): Uint8Array {
  const out = new Uint8Array((data.length + 1) >> 1);
  const pairs = data.length >> 1;
  let j = 0;
  if (data.byteOffset % 4 === 0) {
    const in32 = new Uint32Array(data.buffer, data.byteOffset, pairs);
    const out32 = new Uint32Array(out.buffer, 0, pairs >> 2);
    const pair = (v: number) => byPattern[v & 0xffff]! | (byPattern[v >>> 16]! << 4);
    for (let q = 0; q < out32.length; q++, j += 4)
      out32[q] = (pair(in32[j]!) | (pair(in32[j + 1]!) << 8) | (pair(in32[j + 2]!) << 16) | (pair(in32[j + 3]!) << 24)) >>> 0;
  }
  for (; j < pairs; j++) out[j] = byPattern[data[2 * j]!]! | (byPattern[data[2 * j + 1]!]! << 4);
  if (data.length & 1) out[pairs] = byPattern[data[data.length - 1]!]!;
  return out;
}

/** Palettizes one weight tensor into 2^bits entries. */
export function palettize(data: Float32Array, bits: 4 | 8, scratch?: Uint32Array, packed = false): Palettized {
  return palettizeBits(encodeF16(data), bits, scratch, packed);
}

/** Activation-weighted palettization: `importance` per input channel, `layout` maps elements to channels. */
export function palettizeWeighted(data: Float32Array, bits: 4 | 8, importance: Float64Array, layout: ChannelLayout): Palettized {
  return palettizeWeightedBits(encodeF16(data), bits, importance, layout);
}

/** The same from fp16 bit patterns. */
export function palettizeWeightedBits(f16: Uint16Array, bits: 4 | 8, importance: Float64Array, layout: ChannelLayout, out?: IndexOutput): Palettized {
  return palettizeHistogram(f16, weightedHistogramOfBits(f16, importance, layout), bits, false, out);
}

/**
 * Where a clustering's indices go instead of a fresh array (shared memory, say): one per element,
 * and with `nibbles` (4-bit) also two per byte, low nibble first, in the same pass.
 */
export interface IndexOutput {
  indices: Uint8Array;
  nibbles?: Uint8Array;
}

/**
 * Palettizes a tensor given as fp16 bit patterns: one counting pass, the DP, one lookup pass.
 * With `packed`, 4-bit indices come two per byte (low nibble first), packed in the lookup pass.
 */
export function palettizeBits(data: Uint16Array, bits: 4 | 8, scratch?: Uint32Array, packed = false, out?: IndexOutput): Palettized {
  return palettizeHistogram(data, histogramOfBits(data, scratch), bits, packed, out);
}

function palettizeHistogram(data: Uint16Array, h: Histogram, bits: 4 | 8, packed: boolean, out?: IndexOutput): Palettized {
  const k = 1 << bits;
  const cl = kmeans1d(h.values, h.counts, k);
  const lut = Float32Array.from(cl.centroids, (c) => f16BitsToF32(f32ToF16Bits(c)));
  const byPattern = clusterOfPatterns(h, cl.assignment);
  let indices: Uint8Array;
  if (packed && bits === 4) {
    indices = packNibbles(data, byPattern);
  } else {
    const into = out ?? { indices: new Uint8Array(data.length) };
    lookupIndices(data, byPattern, into);
    indices = into.indices;
  }
  return { indices, lut, sse: histogramError(h, lut, byPattern), clusterOf: byPattern };
}

// The loops over all 65,536 patterns are functions of their own: in palettizeHistogram a first
// call optimized inside one (on-stack replacement) left the code after it without feedback, and the
// cached code deoptimized there on every later call (~100 times in a full-preset compile).

/** Each fp16 pattern's cluster (0 for patterns absent from the histogram). */
function clusterOfPatterns(h: Histogram, assignment: Uint16Array): Uint8Array {
  const byPattern = new Uint8Array(65536);
  for (let p = 0; p < 65536; p++) if (h.patternIndex[p]! >= 0) byPattern[p] = assignment[h.patternIndex[p]!]!;
  return byPattern;
}

/** The error from the histogram: Σ count · (value − its centroid)², no second pass over elements. */
function histogramError(h: Histogram, lut: Float32Array, byPattern: Uint8Array): number {
  let sse = 0;
  for (let p = 0; p < 65536; p++) {
    const at = h.patternIndex[p]!;
    if (at < 0 || p === 0x8000) continue;
    const d = h.values[at]! - lut[byPattern[p]!]!;
    sse += h.counts[at]! * d * d;
  }
  return sse;
}
