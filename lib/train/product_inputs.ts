/**
 * The model inputs of a set of products, prepared once: each image resized and centre-cropped
 * (kept as uint8 RGB, normalised when a batch is made), names and descriptions tokenised.
 * A batch is then a cheap gather, and each product is preprocessed once however many pairs it
 * appears in.
 */
import { tf } from "../tf.ts";
import { IMAGENET_MEAN, IMAGENET_STD, resizeAndCrop } from "../model/preprocess.ts";
import type { ProductTokenizer } from "../text/tokenizer.ts";
import type { ProductBatch, TextBatch } from "../model/siamese.ts";

export type { ProductBatch, TextBatch };
import { Progress } from "../notebook/progress.ts";
import pLimit from "p-limit";
import { sha256Hex } from "../fs.ts";

/** What the model needs to know of a product. */
export interface ProductRecord {
  sku: string;
  name: string;
  description: string;
  /** Local image file, or null when the product has none. */
  imagePath: string | null;
}

export interface ProductInputsOptions {
  tokenizer: ProductTokenizer;
  imageSize: number;
  maxTokens?: number;
  mean?: readonly number[];
  std?: readonly number[];
  concurrency?: number;
  progress?: boolean;
}

/** Per-product problems met while preparing inputs (missing or unreadable images). */
export interface ImageIssue {
  sku: string;
  status: "missing" | "corrupt";
  message: string;
}

/** Disposes every tensor of a product batch. */
export function disposeProductBatch(batch: ProductBatch | TextBatch): void {
  for (const tensor of Object.values(batch)) (tensor as tf.Tensor).dispose();
}

export class ProductInputs {
  readonly skus: string[];
  readonly imageSize: number;
  readonly maxTokens: number;
  readonly issues: ImageIssue[];
  private readonly index: Map<string, number>;
  private readonly pixels: Uint8Array;
  /** 1 where the product's image was read; 0 where it is missing or corrupt (a zero tensor). */
  private readonly hasImage: Uint8Array;
  private readonly nameIds: Int32Array;
  private readonly nameMask: Int32Array;
  private readonly descIds: Int32Array;
  private readonly descMask: Int32Array;
  /** 1 where the product has a description text (else its description tokens encode ""). */
  private readonly withDescription: Uint8Array;
  private readonly mean: readonly number[];
  private readonly std: readonly number[];

  private constructor(fields: {
    skus: string[];
    imageSize: number;
    maxTokens: number;
    issues: ImageIssue[];
    pixels: Uint8Array;
    hasImage: Uint8Array;
    nameIds: Int32Array;
    nameMask: Int32Array;
    descIds: Int32Array;
    descMask: Int32Array;
    withDescription: Uint8Array;
    mean: readonly number[];
    std: readonly number[];
  }) {
    this.skus = fields.skus;
    this.imageSize = fields.imageSize;
    this.maxTokens = fields.maxTokens;
    this.issues = fields.issues;
    this.pixels = fields.pixels;
    this.hasImage = fields.hasImage;
    this.nameIds = fields.nameIds;
    this.nameMask = fields.nameMask;
    this.descIds = fields.descIds;
    this.descMask = fields.descMask;
    this.withDescription = fields.withDescription;
    this.mean = fields.mean;
    this.std = fields.std;
    this.index = new Map(fields.skus.map((sku, i) => [sku, i]));
    if (this.index.size !== fields.skus.length) throw new Error("ProductInputs: duplicate SKUs in the product list");
  }

  /** Reads and preprocesses every product's image and text. Unreadable images become zeros and are listed in `issues`. */
  static async build(products: readonly ProductRecord[], options: ProductInputsOptions): Promise<ProductInputs> {
    const size = options.imageSize;
    const maxTokens = options.maxTokens ?? 77;
    const pixels = new Uint8Array(products.length * size * size * 3);
    const hasImage = new Uint8Array(products.length);
    const issues: ImageIssue[] = [];
    const limit = pLimit(options.concurrency ?? 4);
    const bar = new Progress({
      total: products.length,
      label: "preprocess images",
      unit: "images",
      silent: options.progress === false,
    });
    // The workers never throw (an unreadable image becomes an issue): the bar ends with done().
    await Promise.all(products.map((product, i) =>
      limit(async () => {
        if (!product.imagePath) {
          issues.push({ sku: product.sku, status: "missing", message: "no image" });
        } else {
          try {
            pixels.set(await resizeAndCrop(product.imagePath, size), i * size * size * 3);
            hasImage[i] = 1;
          } catch (error) {
            const missing = error instanceof Deno.errors.NotFound ||
              /no such file|ENOENT|Input file is missing/i.test(String(error));
            issues.push({
              sku: product.sku,
              status: missing ? "missing" : "corrupt",
              message: `${product.imagePath}: ${String((error as Error).message ?? error).split("\n")[0]}`,
            });
          }
        }
        await bar.tick();
      })
    ));
    await bar.done();
    const names = options.tokenizer.encode(products.map((p) => p.name ?? ""), { maxLength: maxTokens });
    const descriptions = options.tokenizer.encode(products.map((p) => p.description ?? ""), { maxLength: maxTokens });
    issues.sort((a, b) => a.sku.localeCompare(b.sku));
    return new ProductInputs({
      skus: products.map((p) => String(p.sku)),
      imageSize: size,
      maxTokens,
      issues,
      pixels,
      hasImage,
      nameIds: names.inputIds,
      nameMask: names.attentionMask,
      descIds: descriptions.inputIds,
      descMask: descriptions.attentionMask,
      withDescription: Uint8Array.from(products, (p) => ((p.description ?? "").trim() !== "" ? 1 : 0)),
      mean: options.mean ?? IMAGENET_MEAN,
      std: options.std ?? IMAGENET_STD,
    });
  }

  get size(): number {
    return this.skus.length;
  }

  /** Row of a SKU; an unknown SKU is an error naming it. */
  indexOf(sku: string): number {
    const i = this.index.get(String(sku));
    if (i === undefined) throw new Error(`product ${sku} is not among the ${this.skus.length} prepared products`);
    return i;
  }

  /** True when the product of `row` has a description text. */
  hasDescription(row: number): boolean {
    return this.withDescription[row] === 1;
  }

  /** True when the SKU is prepared. */
  has(sku: string): boolean {
    return this.index.has(String(sku));
  }

  /**
   * Token tensors of the given product rows, trimmed to the longest text of the batch: trailing
   * padding is masked out, so the towers' outputs are the same as at `maxTokens`, and a batch of short
   * names costs what its tokens cost. The caller disposes them.
   */
  textBatch(rows: readonly number[]): TextBatch {
    const [nameIds, nameMask] = this.textView(rows, "name");
    const [descIds, descMask] = this.textView(rows, "description");
    return { nameIds, nameMask, descIds, descMask };
  }

  /**
   * Token ids and mask of one text per row: each row's name or description (`view`, one for all rows or
   * one per row), trimmed to the longest of the batch as `textBatch`. The caller disposes them.
   */
  textView(
    rows: readonly number[],
    view: "name" | "description" | readonly ("name" | "description")[],
  ): [tf.Tensor2D, tf.Tensor2D] {
    const { ids, mask, tokens } = this.textArrays(rows, view);
    return [tf.tensor2d(ids, [rows.length, tokens], "int32"), tf.tensor2d(mask, [rows.length, tokens], "int32")];
  }

  /** `textView`'s token ids and mask as plain arrays, row-major [rows.length, tokens] (for onnxruntime). */
  textArrays(
    rows: readonly number[],
    view: "name" | "description" | readonly ("name" | "description")[],
  ): { ids: Int32Array; mask: Int32Array; tokens: number } {
    const T = this.maxTokens;
    const source = (i: number) =>
      (typeof view === "string" ? view : view[i]) === "name"
        ? { ids: this.nameIds, mask: this.nameMask }
        : { ids: this.descIds, mask: this.descMask };
    if (typeof view !== "string" && view.length !== rows.length) {
      throw new Error(`textView: ${view.length} views for ${rows.length} rows`);
    }
    let length = 1;
    rows.forEach((row, i) => {
      const { mask } = source(i);
      for (let t = T - 1; t >= length; t--) {
        if (mask[row * T + t]) {
          length = t + 1;
          break;
        }
      }
    });
    const outIds = new Int32Array(rows.length * length);
    const outMask = new Int32Array(rows.length * length);
    rows.forEach((row, i) => {
      const { ids, mask } = source(i);
      outIds.set(ids.subarray(row * T, row * T + length), i * length);
      outMask.set(mask.subarray(row * T, row * T + length), i * length);
    });
    return { ids: outIds, mask: outMask, tokens: length };
  }

  /** Model input tensors for the given product rows (tokens as `textBatch`); the caller disposes them. */
  batch(rows: readonly number[]): ProductBatch {
    const size = this.imageSize;
    return { images: tf.tensor4d(this.imagePixels(rows), [rows.length, size, size, 3]), ...this.textBatch(rows) };
  }

  /** The normalised images of the given rows, NHWC [rows.length, size, size, 3] (zeros for a missing image). */
  imagePixels(rows: readonly number[]): Float32Array {
    const size = this.imageSize;
    const pixelCount = size * size;
    const images = new Float32Array(rows.length * pixelCount * 3);
    rows.forEach((row, i) => {
      const src = row * pixelCount * 3;
      const dst = i * pixelCount * 3;
      if (!this.hasImage[row]) return; // a missing image is a zero tensor, as in the reference
      for (let p = 0; p < pixelCount; p++) {
        for (let c = 0; c < 3; c++) {
          images[dst + p * 3 + c] = (this.pixels[src + p * 3 + c] / 255 - this.mean[c]) / this.std[c];
        }
      }
    });
    return images;
  }

  /** A fingerprint of the preprocessed inputs (for feature-cache keys). */
  fingerprint(): Promise<string> {
    const parts = [
      new TextEncoder().encode(
        JSON.stringify({ skus: this.skus, size: this.imageSize, T: this.maxTokens, mean: this.mean, std: this.std }),
      ),
      this.pixels,
      this.hasImage,
      new Uint8Array(this.nameIds.buffer),
      new Uint8Array(this.descIds.buffer),
    ];
    return sha256Hex(parts);
  }
}
