// One layer of the exact 1-D k-means programme (src/quant/kmeans.ts kmeans1d), in WebAssembly:
// the same divide and conquer, the same candidate test and the same float64 operations in the
// same order as the JavaScript it replaces (WebAssembly neither fuses nor reorders them), so the
// clusterings are identical. JavaScript lays the arrays out in this module's own memory and
// calls `layer` once per cluster count; pointers are byte offsets.

/** Grows the memory to at least `bytes`; returns false when it cannot. */
export function reserve(bytes: usize): bool {
  const have = <usize>memory.size() << 16;
  if (bytes <= have) return true;
  return memory.grow(<i32>((bytes - have + 0xffff) >> 16)) >= 0;
}

/**
 * Layer c: out[i] = min over j of prev[j-1] + SSE(j..i) for rows i in [from, n), with the best j
 * in arg[i]. R holds (W[j], S1[j], prev[j-1] - S2[j]) per j; Wp, S1p, S2p the prefix sums at
 * i + 1; below the previous layer's best j (a lower bound); stack 4 × 32 i32 of scratch.
 */
export function layer(c: i32, from: i32, n: i32, R: usize, Wp: usize, S1p: usize, S2p: usize, below: usize, out: usize, arg: usize, stack: usize): void {
  let sp = 0;
  store<i32>(stack, from);
  store<i32>(stack + 4, n - 1);
  store<i32>(stack + 8, c);
  store<i32>(stack + 12, n - 1);
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
      if (f < c) f = c;
      if (f > to) f = to;
      let r = R + <usize>f * 24;
      let s1 = S1i - load<f64>(r, 8);
      let best = S2i + load<f64>(r, 16) - (s1 * s1) / (Wi - load<f64>(r)), bestJ = f;
      for (let j = f + 1; j <= to; j++) {
        r += 24;
        s1 = S1i - load<f64>(r, 8);
        const w = Wi - load<f64>(r), a = S2i + load<f64>(r, 16);
        if ((a - best) * w < s1 * s1) {
          best = a - (s1 * s1) / w;
          bestJ = j;
        }
      }
      store<f64>(out + (<usize>mid << 3), best);
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
