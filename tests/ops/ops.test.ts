import fc from "fast-check";
import { expect, test } from "vitest";
import { transpose } from "../../src/kernels/layout.js";
import type { Tensor } from "../../src/kernels/tensor.js";
import { opDef } from "../../src/ops/index.js";
import { at, randomTensor, relErr } from "../helpers.js";

test("matmul's transpose flags equal transposing the operand first", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.boolean(), fc.boolean(), fc.nat(99), (M, K, N, ta, tb, seed) => {
      const a = randomTensor(ta ? [2, K, M] : [2, M, K], seed), b = randomTensor(tb ? [1, N, K] : [1, K, N], seed + 1);
      const mm = opDef("matmul");
      const got = mm.kernel([a, b], { transposeA: ta, transposeB: tb })[0]!;
      const want = mm.kernel([ta ? transpose(a, [0, 2, 1]) : a, tb ? transpose(b, [0, 2, 1]) : b], { transposeA: false, transposeB: false })[0]!;
      expect(got.shape).toEqual([2, M, N]);
      expect(mm.infer([a, b], { transposeA: ta, transposeB: tb })[0]!.shape).toEqual([2, M, N]);
      expect(relErr(got.data as Float32Array, want.data as Float32Array)).toBeLessThan(1e-6);
    }),
    { numRuns: 40 },
  );
});

test("conv2d and pixel_shuffle in NHWC are their NCHW forms seen through transposes (conv: same sums, other order)", () => {
  const x = randomTensor([1, 4, 6, 6], 1), w = randomTensor([8, 2, 2, 2], 2), bias = randomTensor([8], 3);
  const conv = opDef("conv2d");
  const attrs = { stride: [2, 2] as [number, number], pads: [0, 0, 0, 0] as [number, number, number, number], groups: 2 };
  const nchw = conv.kernel([x, w, bias], { ...attrs, layout: "NCHW" })[0]!;
  const nhwc = conv.kernel([transpose(x, [0, 2, 3, 1]), transpose(w, [0, 2, 3, 1]), bias], { ...attrs, layout: "NHWC" })[0]!;
  expect(relErr((transpose(nhwc as never, [0, 3, 1, 2]) as typeof nchw).data as Float32Array, nchw.data as Float32Array)).toBeLessThan(1e-6);
  expect(conv.infer([{ dtype: "f32", shape: [1, 6, 6, 4] }, { dtype: "f32", shape: [8, 2, 2, 2] }, { dtype: "f32", shape: [8] }], { ...attrs, layout: "NHWC" })[0]!.shape).toEqual([1, 3, 3, 8]);
  const ps = opDef("pixel_shuffle");
  const y = ps.kernel([x], { factor: 2, layout: "NCHW", order: "CRD" })[0]!;
  const yh = ps.kernel([transpose(x, [0, 2, 3, 1])], { factor: 2, layout: "NHWC", order: "CRD" })[0]!;
  expect([...transpose(yh as never, [0, 3, 1, 2]).data]).toEqual([...y.data]);
});

test("pixel_shuffle orders: CRD reads channel c*r*r + i*r + j, DCR reads (i*r + j)*C + c", () => {
  const r = 2, C = 3, H = 2, W = 3;
  const x = randomTensor([1, C * r * r, H, W], 4);
  const ps = opDef("pixel_shuffle");
  for (const order of ["CRD", "DCR"] as const) {
    const y = ps.kernel([x], { factor: r, layout: "NCHW", order })[0]!;
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H * r; h++)
        for (let w = 0; w < W * r; w++) {
          const i = h % r, j = w % r;
          const ch = order === "CRD" ? c * r * r + i * r + j : (i * r + j) * C + c;
          expect(y.data[at(y.shape, 0, c, h, w)]).toBe(x.data[at(x.shape, 0, ch, Math.floor(h / r), Math.floor(w / r))]);
        }
  }
});

test("depthwise_conv2d (NHWC, 1HWC filter) is the grouped NCHW conv with filters moved", () => {
  const C = 6, M = 2;
  const x = randomTensor([1, 4, 4, C], 5), w = randomTensor([1, 2, 2, C * M], 6), bias = randomTensor([C * M], 7);
  const y = opDef("depthwise_conv2d").kernel([x, w, bias], { stride: [2, 2], pads: [0, 0, 0, 0] })[0]!;
  const ref = opDef("conv2d").kernel([transpose(x, [0, 3, 1, 2]), transpose(w, [3, 0, 1, 2]), bias], { stride: [2, 2], pads: [0, 0, 0, 0], groups: C, layout: "NCHW" })[0]!;
  expect(relErr(transpose(y as never, [0, 3, 1, 2]).data as Float32Array, ref.data as Float32Array)).toBeLessThan(1e-6);
  expect(opDef("depthwise_conv2d").infer([{ dtype: "f32", shape: [1, 4, 4, C] }, { dtype: "f32", shape: [1, 2, 2, C * M] }], { stride: [2, 2], pads: [0, 0, 0, 0] })[0]!.shape).toEqual([1, 2, 2, C * M]);
});

test("cast to int32 converts every integer dtype as Int32Array stores it (int64 wraps to 32 bits)", () => {
  const cast = opDef("cast");
  const i32 = (t: Tensor) => [...cast.kernel([t], { to: "i32" })[0]!.data];
  expect(i32({ dtype: "u8", shape: [3], data: Uint8Array.of(0, 7, 255) })).toEqual([0, 7, 255]);
  expect(i32({ dtype: "i8", shape: [2], data: Int8Array.of(-128, 5) })).toEqual([-128, 5]);
  expect(i32({ dtype: "i64", shape: [4], data: BigInt64Array.of(-3n, 2n ** 31n, 2n ** 32n + 5n, -(2n ** 40n) - 1n) })).toEqual([-3, -(2 ** 31), 5, -1]);
  const own = Int32Array.of(1, -2);
  const out = cast.kernel([{ dtype: "i32", shape: [2], data: own }], { to: "i32" })[0]!;
  expect([...out.data]).toEqual([1, -2]);
  expect(out.data).not.toBe(own); // a result of its own, as every kernel's
});
