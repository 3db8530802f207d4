import fc from "fast-check";
import { expect, test } from "vitest";
import { binary, binaryFns, broadcastShapes, unaryFns } from "../../src/kernels/elementwise.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { randomTensor } from "../helpers.js";

test("broadcasting follows numpy: each output element reads the clamped index of each operand", () => {
  const dimsArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 });
  fc.assert(
    fc.property(dimsArb, fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 4 }), fc.nat(100), (full, ones, drop, seed) => {
      const bShape = full.map((d, i) => (ones[i] ? 1 : d)).slice(Math.min(drop, full.length));
      const a = randomTensor(full, seed), b = randomTensor(bShape, seed + 1);
      const out = binary(a, b, binaryFns.sub);
      expect(out.shape).toEqual(broadcastShapes(full, bShape));
      const n = out.data.length;
      for (let flat = 0; flat < n; flat++) {
        let rem = flat;
        const idx = full.map(() => 0);
        for (let d = full.length - 1; d >= 0; d--) {
          idx[d] = rem % full[d]!;
          rem = Math.floor(rem / full[d]!);
        }
        const bIdx = idx.slice(full.length - bShape.length).map((v, k) => (bShape[k] === 1 ? 0 : v));
        let bo = 0;
        bShape.forEach((d, k) => (bo = bo * d + bIdx[k]!));
        expect(out.data[flat]).toBeCloseTo(a.data[flat]! - b.data[bo]!, 6);
      }
    }),
    { numRuns: 80 },
  );
});

test("incompatible shapes are refused", () => {
  expect(broadcastShapes([2, 3], [4])).toBeUndefined();
  expect(() => binary(floatTensor([2, 3]), floatTensor([4]), binaryFns.add)).toThrow(/broadcast/);
});

test("unary functions at hand-checked points", () => {
  expect(unaryFns.gelu_tanh(0)).toBe(0);
  expect(unaryFns.gelu_tanh(1)).toBeCloseTo(0.8411920, 6); // 0.5(1+tanh(√(2/π)(1+0.044715)))
  expect(unaryFns.silu(2)).toBeCloseTo(2 / (1 + Math.exp(-2)), 12);
  expect(unaryFns.sigmoid(0)).toBe(0.5);
  expect(unaryFns.rsqrt(4)).toBe(0.5);
});
