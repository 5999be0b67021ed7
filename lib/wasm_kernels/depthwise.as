// AssemblyScript source of depthwise.wasm and depthwise_shared.wasm
// (rebuild: deno run -A scripts/build_wasm_kernels.ts).
//
// Depthwise convolution kernels for ConvNeXt on tfjs-backend-wasm: float32, NHWC, stride 1,
// dilation 1, "same" zero padding with an odd square kernel k, channel multiplier 1.
// Every pointer is a byte offset into the linear memory the module imports (tfjs-wasm's own
// heap), so tensors are read and written where tfjs keeps them, without copies. The module keeps
// nothing in that memory itself: no data segments, no stack, no allocator.
//
// The channels are the vector axis (f32x4): NHWC keeps them contiguous, so one v128 load reads
// four channels of one pixel and the same weight vector applies to all four.
//   - Any k: each output pixel accumulates blocks of eight vectors (32 channels) in registers
//     over all its taps (clipped at the borders), then single vectors, then scalars, so any C works.
//   - k = 7 (ConvNeXt): the pixels whose 7 taps along x are all inside the row go four at a time
//     through a sliding window in registers (forwardTile7, gradTile7), which loads each input
//     and weight vector once per row of taps instead of once per multiply-add.
// wasm SIMD has no fused multiply-add outside relaxed-simd, whose results vary by CPU; the
// kernels multiply and add (relaxed_madd measured no clear gain on the Zen 3 this was tuned on).
//
// The file is named .as (not .ts) so that deno check/lint leave it alone: its v128, usize and
// @inline are AssemblyScript, not TypeScript. The build copies it to a .ts name for asc.

// ---------------------------------------------------------------------------------------------
// Forward: out[b,y,x,c] = bias[c] + sum_{ky,kx} in[b, y+ky-p, x+kx-p, c] * w[ky,kx,c], p = k/2.
// With flip != 0 the filter is read rotated by 180 degrees (w[k-1-ky, k-1-kx, c]): that turns
// the forward pass into the input gradient (the same 'same' conv of dy with the flipped filter).
// bias == 0 means no bias.
// ---------------------------------------------------------------------------------------------

/** One output pixel, channels cStart..channels-1, over nky x nkx taps from inP (input) and wP (filter). */
@inline
function forwardPixel(
  inP: usize, wP: usize, oP: usize, bP: usize, cStart: i32, channels: i32,
  nky: i32, nkx: i32, rowBytes: usize, pix: usize, wKy: usize, wKx: usize,
): void {
  let c: i32 = cStart;
  for (; c + 32 <= channels; c += 32) {
    const off = <usize>c << 2;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    if (bP != 0) {
      const q = bP + off;
      a0 = v128.load(q, 0); a1 = v128.load(q, 16); a2 = v128.load(q, 32); a3 = v128.load(q, 48);
      a4 = v128.load(q, 64); a5 = v128.load(q, 80); a6 = v128.load(q, 96); a7 = v128.load(q, 112);
    }
    let ir = inP + off;
    let wr = wP + off;
    for (let i = 0; i < nky; i++) {
      let ip = ir;
      let wp = wr;
      for (let j = 0; j < nkx; j++) {
        a0 = f32x4.add(a0, f32x4.mul(v128.load(ip, 0), v128.load(wp, 0)));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(ip, 16), v128.load(wp, 16)));
        a2 = f32x4.add(a2, f32x4.mul(v128.load(ip, 32), v128.load(wp, 32)));
        a3 = f32x4.add(a3, f32x4.mul(v128.load(ip, 48), v128.load(wp, 48)));
        a4 = f32x4.add(a4, f32x4.mul(v128.load(ip, 64), v128.load(wp, 64)));
        a5 = f32x4.add(a5, f32x4.mul(v128.load(ip, 80), v128.load(wp, 80)));
        a6 = f32x4.add(a6, f32x4.mul(v128.load(ip, 96), v128.load(wp, 96)));
        a7 = f32x4.add(a7, f32x4.mul(v128.load(ip, 112), v128.load(wp, 112)));
        ip += pix;
        wp += wKx;
      }
      ir += rowBytes;
      wr += wKy;
    }
    const q = oP + off;
    v128.store(q, a0, 0); v128.store(q, a1, 16); v128.store(q, a2, 32); v128.store(q, a3, 48);
    v128.store(q, a4, 64); v128.store(q, a5, 80); v128.store(q, a6, 96); v128.store(q, a7, 112);
  }
  for (; c + 4 <= channels; c += 4) {
    const off = <usize>c << 2;
    let a0 = bP != 0 ? v128.load(bP + off) : f32x4.splat(0);
    let ir = inP + off;
    let wr = wP + off;
    for (let i = 0; i < nky; i++) {
      let ip = ir;
      let wp = wr;
      for (let j = 0; j < nkx; j++) {
        a0 = f32x4.add(a0, f32x4.mul(v128.load(ip), v128.load(wp)));
        ip += pix;
        wp += wKx;
      }
      ir += rowBytes;
      wr += wKy;
    }
    v128.store(oP + off, a0);
  }
  for (; c < channels; c++) {
    const off = <usize>c << 2;
    let a: f32 = bP != 0 ? load<f32>(bP + off) : 0;
    let ir = inP + off;
    let wr = wP + off;
    for (let i = 0; i < nky; i++) {
      let ip = ir;
      let wp = wr;
      for (let j = 0; j < nkx; j++) {
        a += load<f32>(ip) * load<f32>(wp);
        ip += pix;
        wp += wKx;
      }
      ir += rowBytes;
      wr += wKy;
    }
    store<f32>(oP + off, a);
  }
}

/** a + b * c, lane-wise (wasm SIMD has no fused multiply-add outside relaxed-simd). */
@inline
function madd(a: v128, b: v128, c: v128): v128 {
  return f32x4.add(a, f32x4.mul(b, c));
}

/**
 * Four consecutive output pixels x..x+3 (all 7 kx taps in range), one vector of 4 channels, k = 7.
 * Each ky row loads its 7 weights once and 10 input pixels once, each used by up to 4 outputs
 * (a sliding window in registers): 17 loads for 28 multiply-adds, against 56 in forwardPixel.
 * ip: input pixel x-3 of the first valid row; wp: filter tap (ky0, 0).
 */
@inline
function forwardTile7(
  ip: usize, wp: usize, oP: usize, bP: usize, nky: i32, rowBytes: usize, pix: usize, wKy: usize, wKx: usize,
): void {
  let a0 = bP != 0 ? v128.load(bP) : f32x4.splat(0);
  let a1 = a0, a2 = a0, a3 = a0;
  for (let i = 0; i < nky; i++) {
    let q = wp;
    const w0 = v128.load(q); q += wKx;
    const w1 = v128.load(q); q += wKx;
    const w2 = v128.load(q); q += wKx;
    const w3 = v128.load(q); q += wKx;
    const w4 = v128.load(q); q += wKx;
    const w5 = v128.load(q); q += wKx;
    const w6 = v128.load(q);
    let r = ip;
    let v = v128.load(r); r += pix; // x-3
    a0 = madd(a0, v, w0);
    v = v128.load(r); r += pix; // x-2
    a0 = madd(a0, v, w1); a1 = madd(a1, v, w0);
    v = v128.load(r); r += pix; // x-1
    a0 = madd(a0, v, w2); a1 = madd(a1, v, w1); a2 = madd(a2, v, w0);
    v = v128.load(r); r += pix; // x
    a0 = madd(a0, v, w3); a1 = madd(a1, v, w2); a2 = madd(a2, v, w1); a3 = madd(a3, v, w0);
    v = v128.load(r); r += pix; // x+1
    a0 = madd(a0, v, w4); a1 = madd(a1, v, w3); a2 = madd(a2, v, w2); a3 = madd(a3, v, w1);
    v = v128.load(r); r += pix; // x+2
    a0 = madd(a0, v, w5); a1 = madd(a1, v, w4); a2 = madd(a2, v, w3); a3 = madd(a3, v, w2);
    v = v128.load(r); r += pix; // x+3
    a0 = madd(a0, v, w6); a1 = madd(a1, v, w5); a2 = madd(a2, v, w4); a3 = madd(a3, v, w3);
    v = v128.load(r); r += pix; // x+4
    a1 = madd(a1, v, w6); a2 = madd(a2, v, w5); a3 = madd(a3, v, w4);
    v = v128.load(r); r += pix; // x+5
    a2 = madd(a2, v, w6); a3 = madd(a3, v, w5);
    v = v128.load(r); // x+6
    a3 = madd(a3, v, w6);
    ip += rowBytes;
    wp += wKy;
  }
  v128.store(oP, a0);
  v128.store(oP + pix, a1);
  v128.store(oP + 2 * pix, a2);
  v128.store(oP + 3 * pix, a3);
}

export function depthwiseForward(
  input: usize, filter: usize, bias: usize, output: usize,
  batch: i32, height: i32, width: i32, channels: i32, k: i32, flip: i32,
): void {
  const p = k >> 1;
  const pix = <usize>channels << 2;
  const rowBytes = pix * <usize>width;
  const imageBytes = rowBytes * <usize>height;
  // Filter strides in bytes; flipped, they run backwards from the last tap (two's complement).
  let wStart = filter;
  let wKx = pix;
  let wKy = pix * <usize>k;
  if (flip != 0) {
    wStart = filter + pix * <usize>(k * k - 1);
    wKx = 0 - pix;
    wKy = 0 - wKy;
  }
  // k = 7: outputs p..tileEnd-1 (all taps in range along x) go four at a time through
  // forwardTile7 for the channels that fill whole vectors; the rest through forwardPixel.
  const c4 = channels & ~3;
  const nTiles = k == 7 && c4 > 0 && width - 2 * p >= 4 ? (width - 2 * p) >> 2 : 0;
  const tileEnd = p + 4 * nTiles;
  for (let b = 0; b < batch; b++) {
    const inImage = input + <usize>b * imageBytes;
    const outImage = output + <usize>b * imageBytes;
    for (let y = 0; y < height; y++) {
      const ky0 = max(0, p - y);
      const ky1 = min(k, height + p - y);
      const nky = ky1 - ky0;
      const inRow = inImage + <usize>(y + ky0 - p) * rowBytes;
      const wRow = wStart + <usize>ky0 * wKy;
      const outRow = outImage + <usize>y * rowBytes;
      let x = 0;
      while (x < width) {
        if (x == p && nTiles > 0) {
          for (let t = 0; t < nTiles; t++, x += 4) {
            const ip = inRow + <usize>(x - p) * pix;
            const oP = outRow + <usize>x * pix;
            for (let c = 0; c < c4; c += 4) {
              const off = <usize>c << 2;
              forwardTile7(ip + off, wRow + off, oP + off, bias != 0 ? bias + off : 0, nky, rowBytes, pix, wKy, wKx);
            }
            if (c4 < channels) {
              for (let j = 0; j < 4; j++) {
                forwardPixel(
                  ip + <usize>j * pix, wRow, oP + <usize>j * pix, bias, c4, channels, nky, k, rowBytes, pix, wKy, wKx,
                );
              }
            }
          }
          continue;
        }
        const kx0 = max(0, p - x);
        const kx1 = min(k, width + p - x);
        forwardPixel(
          inRow + <usize>(x + kx0 - p) * pix, wRow + <usize>kx0 * wKx, outRow + <usize>x * pix, bias, 0, channels,
          nky, kx1 - kx0, rowBytes, pix, wKy, wKx,
        );
        x++;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Filter gradient: dw[ky,kx,c] = sum_{b,y,x} in[b, y+ky-p, x+kx-p, c] * dy[b,y,x,c] (zero outside).
// For each pair of rows (input row y+ky-p, dy row y) and each kx, the valid x form one run of n
// pixels; the run's dot products are accumulated in registers and added into dw once.
// ---------------------------------------------------------------------------------------------

/** Adds the sum over n pixels of in*dy to g, channels cStart..channels-1 (ip, dp: the run's first pixels). */
@inline
function gradRun(ip: usize, dp: usize, gP: usize, cStart: i32, channels: i32, n: i32, pix: usize): void {
  let c: i32 = cStart;
  for (; c + 32 <= channels; c += 32) {
    const off = <usize>c << 2;
    const q = gP + off;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    let i = ip + off;
    let d = dp + off;
    for (let t = 0; t < n; t++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load(i, 0), v128.load(d, 0)));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(i, 16), v128.load(d, 16)));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(i, 32), v128.load(d, 32)));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(i, 48), v128.load(d, 48)));
      a4 = f32x4.add(a4, f32x4.mul(v128.load(i, 64), v128.load(d, 64)));
      a5 = f32x4.add(a5, f32x4.mul(v128.load(i, 80), v128.load(d, 80)));
      a6 = f32x4.add(a6, f32x4.mul(v128.load(i, 96), v128.load(d, 96)));
      a7 = f32x4.add(a7, f32x4.mul(v128.load(i, 112), v128.load(d, 112)));
      i += pix;
      d += pix;
    }
    v128.store(q, f32x4.add(v128.load(q, 0), a0), 0);
    v128.store(q, f32x4.add(v128.load(q, 16), a1), 16);
    v128.store(q, f32x4.add(v128.load(q, 32), a2), 32);
    v128.store(q, f32x4.add(v128.load(q, 48), a3), 48);
    v128.store(q, f32x4.add(v128.load(q, 64), a4), 64);
    v128.store(q, f32x4.add(v128.load(q, 80), a5), 80);
    v128.store(q, f32x4.add(v128.load(q, 96), a6), 96);
    v128.store(q, f32x4.add(v128.load(q, 112), a7), 112);
  }
  for (; c + 4 <= channels; c += 4) {
    const off = <usize>c << 2;
    let a0 = f32x4.splat(0);
    let i = ip + off;
    let d = dp + off;
    for (let t = 0; t < n; t++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load(i), v128.load(d)));
      i += pix;
      d += pix;
    }
    v128.store(gP + off, f32x4.add(v128.load(gP + off), a0));
  }
  for (; c < channels; c++) {
    const off = <usize>c << 2;
    let a: f32 = 0;
    let i = ip + off;
    let d = dp + off;
    for (let t = 0; t < n; t++) {
      a += load<f32>(i) * load<f32>(d);
      i += pix;
      d += pix;
    }
    store<f32>(gP + off, load<f32>(gP + off) + a);
  }
}

/**
 * k = 7, one vector of 4 channels: adds to dw[ky, 0..6, c] the products of nTiles groups of four
 * dy pixels (from dp) with the input pixels 3 left to 6 right of them (from ip = dp's x - 3).
 * The 7 tap sums stay in registers over the whole run; each group loads 4 dy and 10 input
 * vectors for 28 multiply-adds. gP: dw[ky, 0, c].
 */
@inline
function gradTile7(ip: usize, dp: usize, gP: usize, nTiles: i32, pix: usize): void {
  // The run's sums start from zero and are added to dw at the end: a fresh partial sum per row
  // keeps the float32 rounding error of long reductions (batch x H x W terms) small.
  let g0 = f32x4.splat(0), g1 = g0, g2 = g0, g3 = g0, g4 = g0, g5 = g0, g6 = g0;
  for (let t = 0; t < nTiles; t++) {
    let s = dp;
    const d0 = v128.load(s); s += pix;
    const d1 = v128.load(s); s += pix;
    const d2 = v128.load(s); s += pix;
    const d3 = v128.load(s);
    let r = ip;
    let v = v128.load(r); r += pix; // x-3
    g0 = madd(g0, v, d0);
    v = v128.load(r); r += pix; // x-2
    g0 = madd(g0, v, d1); g1 = madd(g1, v, d0);
    v = v128.load(r); r += pix; // x-1
    g0 = madd(g0, v, d2); g1 = madd(g1, v, d1); g2 = madd(g2, v, d0);
    v = v128.load(r); r += pix; // x
    g0 = madd(g0, v, d3); g1 = madd(g1, v, d2); g2 = madd(g2, v, d1); g3 = madd(g3, v, d0);
    v = v128.load(r); r += pix; // x+1
    g1 = madd(g1, v, d3); g2 = madd(g2, v, d2); g3 = madd(g3, v, d1); g4 = madd(g4, v, d0);
    v = v128.load(r); r += pix; // x+2
    g2 = madd(g2, v, d3); g3 = madd(g3, v, d2); g4 = madd(g4, v, d1); g5 = madd(g5, v, d0);
    v = v128.load(r); r += pix; // x+3
    g3 = madd(g3, v, d3); g4 = madd(g4, v, d2); g5 = madd(g5, v, d1); g6 = madd(g6, v, d0);
    v = v128.load(r); r += pix; // x+4
    g4 = madd(g4, v, d3); g5 = madd(g5, v, d2); g6 = madd(g6, v, d1);
    v = v128.load(r); r += pix; // x+5
    g5 = madd(g5, v, d3); g6 = madd(g6, v, d2);
    v = v128.load(r); // x+6
    g6 = madd(g6, v, d3);
    ip += pix << 2;
    dp += pix << 2;
  }
  let q = gP;
  v128.store(q, f32x4.add(v128.load(q), g0)); q += pix;
  v128.store(q, f32x4.add(v128.load(q), g1)); q += pix;
  v128.store(q, f32x4.add(v128.load(q), g2)); q += pix;
  v128.store(q, f32x4.add(v128.load(q), g3)); q += pix;
  v128.store(q, f32x4.add(v128.load(q), g4)); q += pix;
  v128.store(q, f32x4.add(v128.load(q), g5)); q += pix;
  v128.store(q, f32x4.add(v128.load(q), g6));
}

export function depthwiseFilterGrad(
  input: usize, dy: usize, dfilter: usize,
  batch: i32, height: i32, width: i32, channels: i32, k: i32,
): void {
  const p = k >> 1;
  const pix = <usize>channels << 2;
  const rowBytes = pix * <usize>width;
  const imageBytes = rowBytes * <usize>height;
  // k = 7: dy pixels p..tileEnd-1 (all taps in range along x) go through gradTile7 for the
  // channels that fill whole vectors; the rest through gradRun.
  const c4 = channels & ~3;
  const nTiles = k == 7 && c4 > 0 && width - 2 * p >= 4 ? (width - 2 * p) >> 2 : 0;
  const tileEnd = p + 4 * nTiles;
  memory.fill(dfilter, 0, pix * <usize>(k * k));
  for (let b = 0; b < batch; b++) {
    const inImage = input + <usize>b * imageBytes;
    const dyImage = dy + <usize>b * imageBytes;
    for (let y = 0; y < height; y++) {
      const dyRow = dyImage + <usize>y * rowBytes;
      const ky0 = max(0, p - y);
      const ky1 = min(k, height + p - y);
      for (let ky = ky0; ky < ky1; ky++) {
        const inRow = inImage + <usize>(y + ky - p) * rowBytes;
        const gRow = dfilter + <usize>(ky * k) * pix;
        if (nTiles > 0) {
          for (let c = 0; c < c4; c += 4) {
            const off = <usize>c << 2;
            gradTile7(inRow + off, dyRow + <usize>p * pix + off, gRow + off, nTiles, pix);
          }
        }
        for (let kx = 0; kx < k; kx++) {
          // dy pixels x0..x1-1 meet input pixels in range; p..tileEnd-1 were tiled above.
          const x0 = max(0, p - kx);
          const x1 = min(width, width + p - kx);
          const shift = <usize>(kx - p) * pix;
          const gP = gRow + <usize>kx * pix;
          const left = min(x1, p) - x0;
          if (left > 0) gradRun(inRow + <usize>x0 * pix + shift, dyRow + <usize>x0 * pix, gP, 0, channels, left, pix);
          const from = max(x0, tileEnd);
          if (x1 > from) {
            gradRun(inRow + <usize>from * pix + shift, dyRow + <usize>from * pix, gP, 0, channels, x1 - from, pix);
          }
          if (nTiles > 0 && c4 < channels) {
            gradRun(inRow + <usize>p * pix + shift, dyRow + <usize>p * pix, gP, c4, channels, tileEnd - p, pix);
          }
        }
      }
    }
  }
}
