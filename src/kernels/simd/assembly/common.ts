// Shared pieces of the WebAssembly kernels (AssemblyScript). Pointers are byte offsets into the
// one shared memory every thread sees; strides are in bytes.

/** c + a·b: one fused rounding where the engine has relaxed SIMD, mul then add otherwise. */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** The items [lo, hi) of `n` that thread `tid` of `nt` takes: contiguous, in order. */
@inline export function shareLo(n: i32, tid: i32, nt: i32): i32 {
  return <i32>((<i64>n * <i64>tid) / <i64>nt);
}

// exp on four lanes: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-7 polynomial (Cephes expf
// coefficients), 2^n through the exponent bits. About 1 ulp on [-87, 88]; below that it returns
// the smallest normal (never 0), so callers mask what must be exactly 0. pmin/pmax (one
// instruction each, unlike min/max with their NaN rules) clamp; NaN stays NaN through them.
@inline export function exp4(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.33654)), f32x4.splat(88.72283));
  const n = f32x4.floor(f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), f32x4.splat(0.5)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  // Horner steps through madd: fused where the build is (one rounding a step, fewer instructions
  // on the path softmax and attention spend their non-gemm time in), the same bits as before otherwise
  let y = f32x4.splat(1.9875691500e-4);
  y = madd(y, r, f32x4.splat(1.3981999507e-3));
  y = madd(y, r, f32x4.splat(8.3334519073e-3));
  y = madd(y, r, f32x4.splat(4.1665795894e-2));
  y = madd(y, r, f32x4.splat(1.6666665459e-1));
  y = madd(y, r, f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(y, r), r), r), f32x4.splat(1.0));
  // 2^n: n + 127 lands in the low mantissa bits of (n + 127 + 1.5·2^23); shifting them up by 23
  // makes the exponent field and drops the rest (cheaper than a saturating float-to-int)
  const biased = f32x4.add(n, f32x4.splat(12583039.0));
  return f32x4.mul(y, i32x4.shl(biased, 23));
}

/** IEEE half bits -> float32, exactly (subnormals, infinities and NaN included). */
@inline export function halfToFloat(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return reinterpret<f32>(sign);
    const v: f32 = <f32>mant * 5.9604644775390625e-8; // mant · 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return reinterpret<f32>(sign | 0x7f800000 | (mant << 13));
  return reinterpret<f32>(sign | ((exp + 112) << 23) | (mant << 13));
}
