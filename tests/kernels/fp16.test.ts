import fc from "fast-check";
import { expect, test } from "vitest";
import { decodeBF16, encodeF16, f16BitsToF32, f32ToF16Bits, roundToF16InPlace } from "../../src/kernels/fp16.js";
import { roundToF16Simd } from "../../src/kernels/simd/elementwise.js";

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

test("the engine's half-precision rounding is the scalar one, bit for bit, over every kind of float32 (NaN stays NaN)", () => {
  // every exponent with mantissas at and around the rounding boundaries, both signs, plus random patterns
  const bits: number[] = [];
  for (let exp = 0; exp < 256; exp++)
    for (const mant of [0, 1, 0xfff, 0x1000, 0x1001, 0x2000, 0x3000, 0x1fff, 0x7fe000, 0x7ff000, 0x7fefff, 0x7fffff, 0x400000])
      for (const sign of [0, 0x80000000]) bits.push((sign | (exp << 23) | mant) >>> 0);
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 3000 }), (random) => {
    const all = Uint32Array.from([...bits, ...random]);
    const values = new Float32Array(all.buffer);
    const want = roundToF16InPlace(values.slice());
    const got = roundToF16Simd(values.slice());
    for (let i = 0; i < values.length; i++) {
      if (Number.isNaN(want[i]!)) expect(Number.isNaN(got[i]!)).toBe(true);
      else expect(Object.is(got[i], want[i]), `float32 bits ${all[i]!.toString(16)}: ${got[i]} vs ${want[i]}`).toBe(true);
    }
  }), { numRuns: 20 });
});

test("encodeF16's one-expression path for normal halves gives f32ToF16Bits' bits over every kind of float32", () => {
  // every exponent with mantissas at and around the rounding boundaries, both signs, the edges of
  // the fast path (2^-14 and 65520, either side), plus random patterns; a run over all 2^32
  // patterns found no difference either (2026-12-07)
  const bits: number[] = [0x38800000, 0x387fffff, 0x477fe000, 0x477fdfff, 0x477fefff, 0xc77fe000, 0xb8800000];
  for (let exp = 0; exp < 256; exp++)
    for (const mant of [0, 1, 0xfff, 0x1000, 0x1001, 0x2000, 0x3000, 0x1fff, 0x7fe000, 0x7ff000, 0x7fefff, 0x7fffff, 0x400000])
      for (const sign of [0, 0x80000000]) bits.push((sign | (exp << 23) | mant) >>> 0);
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 3000 }), fc.integer({ min: 0, max: 3 }), (random, offset) => {
    // at an offset into its buffer too (a subarray)
    const all = Uint32Array.from([...Array(offset).fill(0), ...bits, ...random]);
    const values = new Float32Array(all.buffer).subarray(offset);
    const got = encodeF16(values);
    for (let i = 0; i < values.length; i++) if (got[i] !== f32ToF16Bits(values[i]!)) expect(got[i], `float32 bits ${all[i + offset]!.toString(16)}`).toBe(f32ToF16Bits(values[i]!));
  }), { numRuns: 20 });
});
