// The loops of a weight's clustering in WebAssembly: one layer of the exact 1-D k-means programme
// (src/quant/kmeans.ts kmeans1d), the penalized programme its bound from the right comes from,
// and the passes over a weight's elements around it (the activation-weighted count, the index
// lookup, the bias correction's sums; src/quant/element-passes.ts).
// Each does the same float64 operations in the same order as the JavaScript kept as its oracle
// (WebAssembly neither fuses nor reorders them), so results are identical bit for bit.
// JavaScript lays the arrays out in this module's own memory; pointers are byte offsets.
//
// The layer is scalar on purpose: a bounded layer's row scans about ten candidates (the divide
// and conquer's ranges), and f64x2 forms of it (two lanes with a branch, four without one) ran
// 20-35 % slower on the full preset's 8-bit weights: setting the lanes up and merging them costs
// more per row than the lanes save.

/** Grows the memory to at least `bytes`; returns false when it cannot. */
export function reserve(bytes: usize): bool {
  const have = <usize>memory.size() << 16;
  if (bytes <= have) return true;
  return memory.grow(<i32>((bytes - have + 0xffff) >> 16)) >= 0;
}

/**
 * One layer: out[i] = min over lowest ≤ j ≤ cap of prev[j-1] + SSE(j..i) for rows i in
 * [from, last], with the best j in arg[i]. R holds (W[j], S1[j], prev[j-1] - S2[j]) per j; Wp,
 * S1p, S2p the prefix sums at i + 1; below a lower bound on each row's best j (the previous
 * layer's, or layer 0's zeros); stack 4 × 32 i32 of scratch.
 */
export function layer(lowest: i32, from: i32, last: i32, cap: i32, R: usize, Wp: usize, S1p: usize, S2p: usize, below: usize, out: usize, arg: usize, stack: usize): void {
  let sp = 0;
  store<i32>(stack, from);
  store<i32>(stack + 4, last);
  store<i32>(stack + 8, lowest);
  store<i32>(stack + 12, cap);
  sp = 4;
  while (sp > 0) {
    sp -= 4;
    let lo = load<i32>(stack + (<usize>sp << 2));
    const hi = load<i32>(stack + (<usize>(sp + 1) << 2));
    let jlo = load<i32>(stack + (<usize>(sp + 2) << 2));
    const jhi = load<i32>(stack + (<usize>(sp + 3) << 2));
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const Wi = load<f64>(Wp + (<usize>(mid + 1) << 3));
      const S1i = load<f64>(S1p + (<usize>(mid + 1) << 3));
      const S2i = load<f64>(S2p + (<usize>(mid + 1) << 3));
      const to = jhi < mid ? jhi : mid;
      let f = load<i32>(below + (<usize>mid << 2));
      if (f < jlo) f = jlo;
      if (f < lowest) f = lowest;
      if (f > to) f = to;
      // the best value so far as a fraction num / den (den = its cluster's weight > 0): a
      // candidate is compared by cross-multiplying, so no division waits on the one before
      let r = R + <usize>f * 24;
      let s1 = S1i - load<f64>(r, 8);
      let den = Wi - load<f64>(r);
      let num = (S2i + load<f64>(r, 16)) * den - s1 * s1, bestJ = f;
      for (let j = f + 1; j <= to; j++) {
        r += 24;
        s1 = S1i - load<f64>(r, 8);
        const w = Wi - load<f64>(r), v = (S2i + load<f64>(r, 16)) * w - s1 * s1;
        if (v * den < num * w) {
          num = v;
          den = w;
          bestJ = j;
        }
      }
      store<f64>(out + (<usize>mid << 3), num / den);
      store<i32>(arg + (<usize>mid << 2), bestJ);
      if (lo < mid) {
        const at = stack + (<usize>sp << 2);
        store<i32>(at, lo);
        store<i32>(at + 4, mid - 1);
        store<i32>(at + 8, jlo);
        store<i32>(at + 12, bestJ);
        sp += 4;
      }
      lo = mid + 1;
      jlo = bestJ;
    }
  }
}

/** The penalized programme's value of a last cluster s..q of the reversed order after E[s] (penalizedSuffix). */
// @ts-ignore: decorator
@inline function penalizedValue(E: usize, W: usize, S1: usize, S2: usize, n: i32, lambda: f64, s: i32, q: i32): f64 {
  const hi = <usize>(n - s) << 3, lo = <usize>(n - 1 - q) << 3;
  const w = load<f64>(W + hi) - load<f64>(W + lo), t = load<f64>(S1 + hi) - load<f64>(S1 + lo);
  return load<f64>(E + (<usize>s << 3)) + max<f64>(0, load<f64>(S2 + hi) - load<f64>(S2 + lo) - (t * t) / w) + lambda;
}

/**
 * The penalized suffix programme of src/quant/kmeans.ts penalizedSuffix, its operations in its
 * order: E[0..n] over the reversed values from the prefix sums W, S1, S2 (n + 1 each), with the
 * queue of candidates in cand and from (n i32 each).
 */
export function penalizedSuffix(W: usize, S1: usize, S2: usize, n: i32, lambda: f64, E: usize, cand: usize, from: usize): void {
  store<f64>(E, 0);
  let head = 0, tail = 0;
  for (let q = 0; q < n; q++) {
    while (tail > head) {
      const b = load<i32>(cand + (<usize>(tail - 1) << 2));
      let f = load<i32>(from + (<usize>(tail - 1) << 2));
      if (f < q) f = q;
      if (penalizedValue(E, W, S1, S2, n, lambda, q, f) <= penalizedValue(E, W, S1, S2, n, lambda, b, f)) tail--;
      else break;
    }
    if (tail == head) {
      store<i32>(cand + (<usize>tail << 2), q);
      store<i32>(from + (<usize>tail << 2), q);
      tail++;
    } else {
      const b = load<i32>(cand + (<usize>(tail - 1) << 2));
      let lo = load<i32>(from + (<usize>(tail - 1) << 2));
      if (lo < q) lo = q;
      lo++;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (penalizedValue(E, W, S1, S2, n, lambda, q, mid) <= penalizedValue(E, W, S1, S2, n, lambda, b, mid)) hi = mid;
        else lo = mid + 1;
      }
      if (lo < n) {
        store<i32>(cand + (<usize>tail << 2), q);
        store<i32>(from + (<usize>tail << 2), lo);
        tail++;
      }
    }
    while (tail - head > 1 && load<i32>(from + (<usize>(head + 1) << 2)) <= q) head++;
    store<f64>(E + (<usize>(q + 1) << 3), penalizedValue(E, W, S1, S2, n, lambda, load<i32>(cand + (<usize>head << 2)), q));
  }
}

/** R[3j + 2] = prev[j - 1] - S2[j] for j in max(1, from)..to: the previous layer's row costs beside each candidate start. */
export function refill(R: usize, prev: usize, S2p: usize, from: i32, to: i32): void {
  for (let j = from > 1 ? from : 1; j <= to; j++) store<f64>(R + <usize>j * 24, load<f64>(prev + (<usize>(j - 1) << 3)) - load<f64>(S2p + (<usize>j << 3)), 16);
}

/**
 * The activation-weighted count: sums[bits[i]] += w[rowBase[r] + c] for element i of row r,
 * input channel c (each channel over `spatial` consecutive elements), rows and elements in order.
 * Returns the number of elements visited.
 */
export function weightedCounts(bits: usize, w: usize, rowBase: usize, rows: i32, inPerRow: i32, spatial: i32, sums: usize): usize {
  let i: usize = 0;
  for (let r = 0; r < rows; r++) {
    const wr = w + (<usize>load<i32>(rowBase + (<usize>r << 2)) << 3);
    if (spatial == 1) {
      // a linear's row, without the one-element inner loop
      for (let c: usize = 0; c < <usize>inPerRow; c++) {
        const at = sums + (<usize>load<u16>(bits + (i << 1)) << 3);
        store<f64>(at, load<f64>(at) + load<f64>(wr + (c << 3)));
        i++;
      }
      continue;
    }
    for (let c: usize = 0; c < <usize>inPerRow; c++) {
      const x = load<f64>(wr + (c << 3));
      for (let s = 0; s < spatial; s++) {
        const at = sums + (<usize>load<u16>(bits + (i << 1)) << 3);
        store<f64>(at, load<f64>(at) + x);
        i++;
      }
    }
  }
  return i;
}

/**
 * indices[i] = byPattern[bits[i]] for n elements (`bits` 4-byte aligned); with nibbles != 0 also
 * two per byte, low nibble first (an odd last element is left to the caller).
 */
export function lookupIndices(bits: usize, n: usize, byPattern: usize, indices: usize, nibbles: usize): void {
  const pairs = n >> 1;
  for (let j: usize = 0; j < pairs; j++) {
    const v = load<u32>(bits + (j << 2));
    const a = <u32>load<u8>(byPattern + <usize>(v & 0xffff)), b = <u32>load<u8>(byPattern + <usize>(v >> 16));
    store<u16>(indices + (j << 1), <u16>(a | (b << 8)));
    if (nibbles) store<u8>(nibbles + j, <u8>(a | (b << 4)));
  }
  if (n & 1) store<u8>(indices + n - 1, load<u8>(byPattern + <usize>load<u16>(bits + ((n - 1) << 1))));
}

/**
 * Rows r0..r1-1 of the bias correction: acc[r] += Σ_c (Σ_s err[bits[i]]) · mean[rowBase[r] + c]
 * over the row's elements in order, starting at element i0 (acc holds the old bias, or 0).
 * `err` is the group's table of w − ŵ per fp16 pattern. Returns the next element.
 */
export function biasSums(bits: usize, i0: usize, err: usize, mean: usize, rowBase: usize, r0: i32, r1: i32, inPerRow: i32, spatial: i32, acc: usize): usize {
  let i = i0;
  for (let r = r0; r < r1; r++) {
    const mr = mean + (<usize>load<i32>(rowBase + (<usize>r << 2)) << 3);
    let a = load<f64>(acc + (<usize>r << 3));
    if (spatial == 1) {
      for (let c: usize = 0; c < <usize>inPerRow; c++) {
        a += load<f64>(err + (<usize>load<u16>(bits + (i << 1)) << 3)) * load<f64>(mr + (c << 3));
        i++;
      }
    } else {
      for (let c: usize = 0; c < <usize>inPerRow; c++) {
        let d = 0.0;
        for (let s = 0; s < spatial; s++) {
          d += load<f64>(err + (<usize>load<u16>(bits + (i << 1)) << 3));
          i++;
        }
        a += d * load<f64>(mr + (c << 3));
      }
    }
    store<f64>(acc + (<usize>r << 3), a);
  }
  return i;
}
