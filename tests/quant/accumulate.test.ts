// A linear's activation statistics (accumulate) sweep four rows at a time: each channel's sums
// must still take the rows one by one, in order, so the statistics — and every clustering and
// corrected bias weighted by them — keep their bits.
import fc from "fast-check";
import { expect, test } from "vitest";
import { accumulate, type ChannelSums } from "../../src/quant/calibration.js";
import { floatTensor } from "../../src/kernels/tensor.js";

const empty = (C: number): ChannelSums => ({ sum: new Float64Array(C), sumSq: new Float64Array(C), count: 0 });

/** The plain form: one element at a time, rows in order, onto the running sums. */
function rowByRow(d: Float32Array, C: number, into: ChannelSums): void {
  for (let i = 0; i < d.length; i += C)
    for (let c = 0; c < C; c++) {
      into.sum[c] += d[i + c]!;
      into.sumSq[c] += d[i + c]! * d[i + c]!;
    }
  into.count += d.length / C;
}

test("linear statistics: the same bits as row by row, for any row count (tails of 1-3 rows) and onto earlier sums", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 37 }), fc.integer({ min: 1, max: 11 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (C, rows, batch, seed) => {
      let s = seed >>> 0;
      const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
      // magnitudes 2^-30 … 2^30: sums of float32 values that close in size are exact in float64
      // whatever their order, so only spread-out ones show an order changed
      const rand = () => (next() * 2 - 1) * 2 ** Math.floor(next() * 61 - 30);
      const got = empty(C), want = empty(C);
      // two calls, the second adding to the first's sums, as a calibration set's chunks do
      for (let k = 0; k < 2; k++) {
        const d = Float32Array.from({ length: batch * rows * C }, rand);
        accumulate(floatTensor([batch, rows, C], d), "linear", got);
        rowByRow(d, C, want);
      }
      expect(got.sum).toEqual(want.sum);
      expect(got.sumSq).toEqual(want.sumSq);
      expect(got.count).toBe(want.count);
    }),
    { numRuns: 200 },
  );
});
