/**
 * Product image preprocessing for the image tower, matching torchvision's
 * `Resize(size) + CenterCrop(size) + ToTensor() + Normalize(mean, std)` on `Image.open(p).convert("RGB")`
 * as closely as sharp (libvips) allows:
 * - the shorter side becomes `size`, the longer `floor(size * long / short)` (torchvision's rule);
 * - sharp (libvips) only decodes; the resize is a port of PIL's BILINEAR resampler (what
 *   torchvision runs on PIL images), so the output matches torchvision to the byte when the
 *   decoders agree (PNG; JPEG decoded by libjpeg-turbo on both sides);
 * - the crop offset is `round((h - size) / 2)` with Python's round-half-to-even;
 * - alpha is dropped (not composited), grayscale is repeated to RGB, CMYK converted to sRGB,
 *   EXIF orientation is ignored (PIL does not apply it either);
 * - output is HWC float32 `(x / 255 - mean) / std`.
 * A missing image gives zeros and status "missing"; an undecodable one zeros and status "corrupt".
 */
import sharp from "sharp";
import { tf } from "../tf.ts";

/** ImageNet channel means (RGB), as used by timm's convnext_tiny. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (RGB). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Preprocessing settings: target square size and per-channel normalisation. */
export interface ImagePreprocessConfig {
  size: number;
  mean?: readonly number[];
  std?: readonly number[];
}

/** One preprocessed image: HWC float32 pixels (size*size*3) and how loading went. */
export interface ProductImage {
  pixels: Float32Array;
  status: "ok" | "missing" | "corrupt";
  /** Why the image is missing or corrupt (file name and decoder message). */
  message?: string;
}

/** Python's round(): half to even. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** torchvision `Resize(size)` output size for an int size: [width, height]. */
export function resizedSize(width: number, height: number, size: number): [number, number] {
  if (width <= height) return [size, Math.floor((size * height) / width)];
  return [Math.floor((size * width) / height), size];
}

/** PIL's fixed-point precision for 8-bit resampling coefficients. */
const PRECISION_BITS = 32 - 8 - 2;

/**
 * PIL's `precompute_coeffs` for the bilinear (triangle) filter: for each output pixel, the first
 * input index and the fixed-point weights (the filter is widened by the scale when shrinking).
 */
function bilinearCoefficients(inSize: number, outSize: number): { first: Int32Array; weights: number[][] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1.0 * filterScale;
  const first = new Int32Array(outSize);
  const weights: number[][] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    const row: number[] = [];
    let total = 0;
    for (let x = xmin; x < xmax; x++) {
      const distance = Math.abs((x - center + 0.5) / filterScale);
      const weight = distance < 1 ? 1 - distance : 0;
      row.push(weight);
      total += weight;
    }
    const fixed = row.map((weight) => {
      const value = total !== 0 ? weight / total : weight;
      return value < 0 ? Math.trunc(-0.5 + value * 2 ** PRECISION_BITS) : Math.trunc(0.5 + value * 2 ** PRECISION_BITS);
    });
    first[xx] = xmin;
    weights.push(fixed);
  }
  return { first, weights };
}

function clip8(accumulator: number): number {
  const value = Math.floor(accumulator / 2 ** PRECISION_BITS);
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

/**
 * Resizes interleaved RGB uint8 exactly as PIL's `Image.resize(..., BILINEAR)` does (Pillow's
 * Resample.c: separable, horizontal pass then vertical, 22-bit fixed-point weights, uint8 between
 * passes), which is what torchvision's `Resize` runs on PIL images.
 */
export function resizeBilinearLikePIL(
  rgb: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  const half = 2 ** (PRECISION_BITS - 1);
  let current = rgb;
  let currentWidth = width;
  if (outWidth !== width) {
    const { first, weights } = bilinearCoefficients(width, outWidth);
    const next = new Uint8Array(outWidth * height * 3);
    for (let y = 0; y < height; y++) {
      const rowIn = y * width * 3;
      const rowOut = y * outWidth * 3;
      for (let xx = 0; xx < outWidth; xx++) {
        const taps = weights[xx];
        const start = rowIn + first[xx] * 3;
        let r = half, g = half, b = half;
        for (let k = 0; k < taps.length; k++) {
          const at = start + k * 3;
          r += current[at] * taps[k];
          g += current[at + 1] * taps[k];
          b += current[at + 2] * taps[k];
        }
        next[rowOut + xx * 3] = clip8(r);
        next[rowOut + xx * 3 + 1] = clip8(g);
        next[rowOut + xx * 3 + 2] = clip8(b);
      }
    }
    current = next;
    currentWidth = outWidth;
  }
  if (outHeight !== height) {
    const { first, weights } = bilinearCoefficients(height, outHeight);
    const stride = currentWidth * 3;
    const next = new Uint8Array(currentWidth * outHeight * 3);
    for (let yy = 0; yy < outHeight; yy++) {
      const taps = weights[yy];
      const start = first[yy] * stride;
      for (let i = 0; i < stride; i++) {
        let sum = half;
        for (let k = 0; k < taps.length; k++) sum += current[start + k * stride + i] * taps[k];
        next[yy * stride + i] = clip8(sum);
      }
    }
    current = next;
  }
  return current;
}

/** Decodes an image with sharp to interleaved RGB uint8 (alpha dropped, gray repeated, CMYK to sRGB). */
export async function decodeRGB(
  input: string | Uint8Array,
): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const image = sharp(input, { failOn: "error", limitInputPixels: 1e8 });
  const meta = await image.metadata();
  let pipeline = image;
  if (meta.space === "cmyk") pipeline = pipeline.toColourspace("srgb");
  const { data, info } = await pipeline.removeAlpha().raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  const count = info.width * info.height;
  if (info.channels === 3) return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), ...info };
  const rgb = new Uint8Array(count * 3);
  for (let i = 0; i < count; i++) {
    const from = i * info.channels;
    if (info.channels >= 3) {
      rgb[i * 3] = data[from];
      rgb[i * 3 + 1] = data[from + 1];
      rgb[i * 3 + 2] = data[from + 2];
    } else {
      rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = data[from];
    }
  }
  return { rgb, width: info.width, height: info.height };
}

/** Decodes, resizes (shorter side to `size`) and center-crops to `size`x`size` RGB uint8 (HWC). Throws on undecodable input. */
export async function resizeAndCrop(input: string | Uint8Array, size: number): Promise<Uint8Array> {
  const { rgb, width, height } = await decodeRGB(input);
  const [outWidth, outHeight] = resizedSize(width, height, size);
  const resized = resizeBilinearLikePIL(rgb, width, height, outWidth, outHeight);
  const top = roundHalfEven((outHeight - size) / 2);
  const left = roundHalfEven((outWidth - size) / 2);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const from = ((y + top) * outWidth + left) * 3;
    out.set(resized.subarray(from, from + size * 3), y * size * 3);
  }
  return out;
}

/** `(x / 255 - mean) / std` per channel, HWC. */
export function normalizePixels(rgb: Uint8Array, mean: readonly number[], std: readonly number[]): Float32Array {
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) {
    const channel = i % 3;
    out[i] = (rgb[i] / 255 - mean[channel]) / std[channel];
  }
  return out;
}

/**
 * Loads one product image (a path or encoded bytes; null when the product has none) as
 * normalised HWC float32 pixels. Never throws for a bad image: a missing file gives zeros with
 * status "missing", an undecodable one zeros with status "corrupt" and a message naming it.
 */
export async function loadProductImage(
  input: string | Uint8Array | null | undefined,
  config: ImagePreprocessConfig,
): Promise<ProductImage> {
  const { size } = config;
  const mean = config.mean ?? IMAGENET_MEAN;
  const std = config.std ?? IMAGENET_STD;
  if (!Number.isInteger(size) || size <= 0) {
    throw new Error(`loadProductImage: size must be a positive integer, got ${size}`);
  }
  const zeros = (): Float32Array => new Float32Array(size * size * 3);
  if (input === null || input === undefined) return { pixels: zeros(), status: "missing", message: "no image" };
  const name = typeof input === "string" ? input : `<${input.byteLength} bytes>`;
  if (typeof input === "string") {
    try {
      const stat = await Deno.stat(input);
      if (!stat.isFile) return { pixels: zeros(), status: "missing", message: `${input}: not a file` };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        return { pixels: zeros(), status: "missing", message: `${input}: no such image file` };
      }
      throw error;
    }
  }
  let rgb: Uint8Array;
  try {
    rgb = await resizeAndCrop(input, size);
  } catch (error) {
    return {
      pixels: zeros(),
      status: "corrupt",
      message: `${name}: cannot decode image (${(error as Error).message}); using a blank image`,
    };
  }
  return { pixels: normalizePixels(rgb, mean, std), status: "ok" };
}

/** Stacks preprocessed images (each size*size*3, HWC) into an NHWC float32 tensor. */
export function imageBatchTensor(images: readonly (ProductImage | Float32Array)[], size: number): tf.Tensor4D {
  const plane = size * size * 3;
  const batch = new Float32Array(images.length * plane);
  images.forEach((image, index) => {
    const pixels = image instanceof Float32Array ? image : image.pixels;
    if (pixels.length !== plane) {
      throw new Error(
        `imageBatchTensor: image ${index} has ${pixels.length} values, expected ${size}x${size}x3 = ${plane}`,
      );
    }
    batch.set(pixels, index * plane);
  });
  return tf.tensor4d(batch, [images.length, size, size, 3], "float32");
}
