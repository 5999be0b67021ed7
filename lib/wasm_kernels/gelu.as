// AssemblyScript source of gelu.wasm and gelu_shared.wasm
// (rebuild: deno run -A scripts/build_wasm_kernels.ts).
//
// Exact (erf) GELU for tfjs-backend-wasm, forward and backward in one pass each, f32x4 SIMD:
//   geluForward:  out = x * Phi(x),                 Phi(x) = 0.5 * (1 + erf(x / sqrt 2))
//   geluBackward: dx  = dy * (Phi(x) + x * phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
// tfjs computes the same with a scalar Erf kernel and three more elementwise passes (and as many
// temporaries); here each element is read once and written once. Every pointer is a byte offset
// into the imported memory (tfjs-wasm's heap); the module keeps nothing in it (no data segments,
// no stack, no allocator). Any n: the last n % 4 elements go through the same vector code one
// lane at a time, so a result never depends on where an element sits.
//
// erf: Arm optimized-routines' erff (math/erff.c, coefficients math/erff_data.c, MIT), worst case
// 1.09 ulp with fma. wasm SIMD has no fma outside relaxed-simd (whose results vary by CPU), so
// every step here is a rounded multiply then a rounded add; measured against a float64 erf over
// every float32 in [0, 5] (erf is computed odd, and is exactly +-1 beyond, within 1.6e-8), the max
// abs error is 7.67e-8 at x = 0.88025 (1.3 ulp of 1; tests/wasm_gelu.test.ts checks a dense grid).
// Both of its branches are computed and one is selected per lane:
//   |x| < 0.875:  erf(x) = x + x * A(x^2)
//   |x| >= 0.875: erf(x) = sign(x) * (1 - exp(-(a + a * B(a)))),  a = min(|x|, 4)
// (erf(4) rounds to 1 in float32, so the clamp is exact for |x| >= 4, and for +-Inf.)
// exp: Cephes' expf (Moshier): n = round(x log2 e), r = x - n ln2 (in two parts, C1 + C2), a
// degree-7 polynomial, then scaled by 2^n through the exponent bits. Measured max error 0.98 ulp
// over every float32 in [-87, 0] (at -81.39); arguments below -87 are clamped to -87 (exp(-87) ~ 1.6e-38, still normal), which
// only the backward's phi could reach and which it masks off (below).
//
// Special values (same as Math-based formulas, except where they would give NaN):
//   gelu(NaN) = NaN, gelu(+Inf) = +Inf, gelu(-Inf) = -0 (the limit; 0.5 * x * (1 + erf) is NaN there),
//   gelu(+-0) = +-0, and -0 wherever Phi(x) rounds to 0 (x < ~-5.6, where |gelu| < 1e-8).
//   gelu'(NaN) = NaN; for |x| > 13, x * phi(x) < 1.2e-36 is taken as 0, so gelu'(+Inf) = 1 and
//   gelu'(-Inf) = 0 exactly.
//
// The file is named .as (not .ts) so that deno check/lint leave it alone: its v128, usize and
// @inline are AssemblyScript, not TypeScript. The build copies it to a .ts name for asc.

// erf(x) = x + x * A(x^2) on |x| < 0.875 (optimized-routines' erff_poly_A).
const A0: f32 = 0.12837915122509003; // 0x1.06eba6p-03
const A1: f32 = -0.37612485885620117; // -0x1.8126e0p-02
const A2: f32 = 0.11281802505254745; // 0x1.ce1a46p-04
const A3: f32 = -0.026766734197735786; // -0x1.b68bd2p-06
const A4: f32 = 0.004993395879864693; // 0x1.473f48p-08
const A5: f32 = -0.0005991049692966044; // -0x1.3a1a82p-11
// erf(a) = 1 - exp(-(a + a * B(a))) on 0.875 <= a <= 4 (erff_poly_B).
const B0: f32 = 0.12871751189231873; // 0x1.079d0cp-3
const B1: f32 = 0.6348466873168945; // 0x1.450aa0p-1
const B2: f32 = 0.1067778468132019; // 0x1.b55cb0p-4
const B3: f32 = -0.024254560470581055; // -0x1.8d6300p-6
const B4: f32 = 0.003883934346958995; // 0x1.fd1336p-9
const B5: f32 = -0.00038320868043228984; // -0x1.91d2ccp-12
const B6: f32 = 0.00001729489304125309; // 0x1.222900p-16

// Cephes expf.
const LOG2E: f32 = 1.4426950408889634;
const LN2_HI: f32 = 0.693359375; // 355/512: n * LN2_HI is exact for |n| < 2^15
const LN2_LO: f32 = -2.12194440e-4;
const E0: f32 = 1.9875691500e-4;
const E1: f32 = 1.3981999507e-3;
const E2: f32 = 8.3334519073e-3;
const E3: f32 = 4.1665795894e-2;
const E4: f32 = 1.6666665459e-1;
const E5: f32 = 5.0000001201e-1;
const EXP_MIN: f32 = -87.0;

const SQRT1_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
/** Beyond this |x|, x * phi(x) < 1.2e-36: the backward takes it as 0 (and never sees Inf * 0). */
const PHI_CUTOFF: f32 = 13.0;

/** a * b + c, lane-wise, rounded twice (no fma in plain wasm SIMD). */
@inline
function madd(a: v128, b: v128, c: f32): v128 {
  return f32x4.add(f32x4.mul(a, b), f32x4.splat(c));
}

/** exp(x) lane-wise (Cephes expf); x below -87 is taken as -87, NaN stays NaN. */
@inline
function exp4(x0: v128): v128 {
  const x = f32x4.max(x0, f32x4.splat(EXP_MIN));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = madd(f32x4.splat(E0), r, E1);
  p = madd(p, r, E2);
  p = madd(p, r, E3);
  p = madd(p, r, E4);
  p = madd(p, r, E5);
  const e = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1));
  // 2^n from the exponent bits: n is in [-126, 0] for x in [-87, 0] (and up to 127 for x <= 88).
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(e, scale);
}

/** erf(x) lane-wise (optimized-routines' erff without fma); NaN stays NaN, erf(+-0) = +-0. */
@inline
function erf4(x: v128): v128 {
  const a = f32x4.min(f32x4.abs(x), f32x4.splat(4));
  const a2 = f32x4.mul(a, a);
  // |x| < 0.875: a + a * A(a^2)
  let s = madd(f32x4.splat(A5), a2, A4);
  s = madd(s, a2, A3);
  s = madd(s, a2, A2);
  s = madd(s, a2, A1);
  s = madd(s, a2, A0);
  s = f32x4.add(f32x4.mul(s, a), a);
  // |x| >= 0.875: 1 - exp(-(a + a * B(a))), B in the reference's Estrin/Horner order
  let r = madd(f32x4.splat(B6), a, B5);
  const u = madd(f32x4.splat(B4), a, B3);
  r = f32x4.add(f32x4.mul(r, a2), u);
  r = madd(r, a, B2);
  r = madd(r, a, B1);
  r = madd(r, a, B0);
  r = f32x4.add(f32x4.mul(r, a), a);
  const l = f32x4.sub(f32x4.splat(1), exp4(f32x4.neg(r)));
  // Both branches are computed and one selected per lane: skipping one when no lane needs it was
  // measured slower on random data (branch mispredictions).
  const magnitude = v128.bitselect(s, l, f32x4.lt(a, f32x4.splat(0.875)));
  // copysign: the magnitude is >= 0 (or NaN), so or-ing the sign bit in is enough
  return v128.or(magnitude, v128.and(x, i32x4.splat(<i32>0x80000000)));
}

/** Phi(x) = 0.5 * (1 + erf(x / sqrt 2)), the standard normal CDF. */
@inline
function cdf4(x: v128): v128 {
  const half = f32x4.splat(0.5);
  return f32x4.add(half, f32x4.mul(half, erf4(f32x4.mul(x, f32x4.splat(SQRT1_2)))));
}

/** gelu(x) = x * Phi(x), with -0 where Phi(x) is 0 (so gelu(-Inf) is -0, not NaN). */
@inline
function gelu4(x: v128): v128 {
  const phi = cdf4(x);
  return v128.bitselect(f32x4.mul(x, phi), f32x4.splat(-0.0), f32x4.ne(phi, f32x4.splat(0)));
}

/** gelu'(x) * dy = dy * (Phi(x) + x * phi(x)); x * phi(x) is 0 for |x| > 13 (and for +-Inf). */
@inline
function geluGrad4(x: v128, dy: v128): v128 {
  const density = f32x4.mul(exp4(f32x4.mul(f32x4.mul(x, x), f32x4.splat(-0.5))), f32x4.splat(INV_SQRT_2PI));
  const inRange = f32x4.le(f32x4.abs(x), f32x4.splat(PHI_CUTOFF));
  const xphi = v128.and(f32x4.mul(x, density), inRange);
  return f32x4.mul(dy, f32x4.add(cdf4(x), xphi));
}

/** out[i] = gelu(x[i]) for i < n. */
export function geluForward(x: usize, out: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 16 <= n; i += 16) {
    const off = <usize>i << 2;
    const p = x + off;
    const q = out + off;
    const v0 = v128.load(p, 0), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
    v128.store(q, gelu4(v0), 0);
    v128.store(q, gelu4(v1), 16);
    v128.store(q, gelu4(v2), 32);
    v128.store(q, gelu4(v3), 48);
  }
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    v128.store(out + off, gelu4(v128.load(x + off)));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(out + off, f32x4.extract_lane(gelu4(f32x4.splat(load<f32>(x + off))), 0));
  }
}

/** dx[i] = dy[i] * gelu'(x[i]) for i < n. */
export function geluBackward(x: usize, dy: usize, dx: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 8 <= n; i += 8) {
    const off = <usize>i << 2;
    const p = x + off;
    const g = dy + off;
    const q = dx + off;
    const v0 = v128.load(p, 0), v1 = v128.load(p, 16);
    const d0 = v128.load(g, 0), d1 = v128.load(g, 16);
    v128.store(q, geluGrad4(v0, d0), 0);
    v128.store(q, geluGrad4(v1, d1), 16);
  }
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    v128.store(dx + off, geluGrad4(v128.load(x + off), v128.load(dy + off)));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    const v = geluGrad4(f32x4.splat(load<f32>(x + off)), f32x4.splat(load<f32>(dy + off)));
    store<f32>(dx + off, f32x4.extract_lane(v, 0));
  }
}

/** out[i] = erf(x[i]) for i < n (the approximation the GELU kernels use; for tests). */
export function erfForward(x: usize, out: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    v128.store(out + off, erf4(v128.load(x + off)));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(out + off, f32x4.extract_lane(erf4(f32x4.splat(load<f32>(x + off))), 0));
  }
}

/** out[i] = exp(x[i]) for i < n, x <= 88 (the approximation the backward uses; for tests). */
export function expForward(x: usize, out: usize, n: i32): void {
  let i: i32 = 0;
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    v128.store(out + off, exp4(v128.load(x + off)));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(out + off, f32x4.extract_lane(exp4(f32x4.splat(load<f32>(x + off))), 0));
  }
}
