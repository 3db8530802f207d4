import { expect, test } from "vitest";
import { decodeBF16, f16BitsToF32, f32ToF16Bits, roundToF16InPlace } from "../../src/kernels/fp16.js";

test("half-precision conversion: exact values, rounding to nearest even, overflow and subnormals", () => {
  expect(f32ToF16Bits(1)).toBe(0x3c00);
  expect(f32ToF16Bits(-2)).toBe(0xc000);
  expect(f32ToF16Bits(65504)).toBe(0x7bff);
  expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds past the largest finite half
  expect(f32ToF16Bits(1e6)).toBe(0x7c00);
  expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
  expect(f32ToF16Bits(2 ** -26)).toBe(0); // below half the smallest subnormal
  expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
  expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
  expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  for (let h = 0; h < 0x7c00; h += 37) expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h); // round trip
  expect([...roundToF16InPlace(Float32Array.of(1 / 3, 70000))]).toEqual([0.333251953125, Infinity]);
});

test("bfloat16 widens by shifting into the high half", () => {
  expect([...decodeBF16(Uint16Array.of(0x3f80, 0xc000))]).toEqual([1, -2]);
});
