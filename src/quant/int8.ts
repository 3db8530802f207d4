// Symmetric per-channel int8 weights: one scale per output channel (axis-0 row), zero point 0,
// q = round(w / scale) with scale = max |w_row| / 127, so every row uses the full [-127, 127].
import { fail } from "../diagnostics.js";

export interface Int8Weights {
  q: Int8Array;
  scale: Float32Array;
}

/** `weight` names the weight in the error for a NaN or an infinity, which no scale stands for. */
export function quantizeInt8PerChannel(w: Float32Array, rows: number, weight = "weight"): Int8Weights {
  const per = w.length / rows;
  const q = new Int8Array(w.length), scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = r * per; j < (r + 1) * per; j++) m = Math.max(m, Math.abs(w[j]!));
    if (!Number.isFinite(m)) throw fail("weightValue", { tensor: weight, problem: `holds ${Number.isNaN(m) ? "NaN" : "an infinity"} in row ${r}` });
    const s = m > 0 ? m / 127 : 1;
    scale[r] = s;
    for (let j = r * per; j < (r + 1) * per; j++) q[j] = Math.max(-127, Math.min(127, Math.round(w[j]! / s)));
  }
  return { q, scale };
}
