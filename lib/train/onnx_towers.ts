/**
 * A SiameseRuCLIP's three frozen towers on onnxruntime-node: the ConvNeXt (lib/model/onnx_convnext.ts) and
 * the name and description BERTs (lib/model/onnx_bert.ts), built from a snapshot of the model's weights.
 * They give the tower features of products in SiameseRuCLIP.towerFeatures' order, [image, name,
 * description], within 1e-4 of tfjs.
 *
 * @module
 */
import type { SiameseRuCLIP } from "../model/siamese.ts";
import type { ProductInputs } from "./product_inputs.ts";

/** A batch of products as the three towers read it. */
export interface OnnxTowerBatch {
  images: Float32Array;
  size: number;
  name: { ids: Int32Array; mask: Int32Array; tokens: number };
  description: { ids: Int32Array; mask: Int32Array; tokens: number };
}

/** The three towers as onnxruntime sessions; `dispose()` when done. */
export class OnnxTowers {
  private constructor(
    private readonly image: import("../model/onnx_convnext.ts").OnnxImageTower,
    private readonly name: import("../model/onnx_bert.ts").OnnxTextTower,
    private readonly description: import("../model/onnx_bert.ts").OnnxTextTower,
    /** Feature size: image + name + description. */
    readonly featureDim: number,
  ) {}

  /** Builds the towers from `model`'s current weights (onnxruntime loaded on demand). */
  static async create(model: SiameseRuCLIP, options: { threads?: number } = {}): Promise<OnnxTowers> {
    const { OnnxImageTower } = await import("../model/onnx_convnext.ts");
    const { OnnxTextTower } = await import("../model/onnx_bert.ts");
    const image = await OnnxImageTower.create(model, options);
    const built: { dispose(): Promise<void> }[] = [image];
    try {
      const name = await OnnxTextTower.create(model, "name", options);
      built.push(name);
      const description = await OnnxTextTower.create(model, "description", options);
      const dim = image.numFeatures + name.numFeatures + description.numFeatures;
      if (dim !== model.featureDim) {
        throw new Error(`OnnxTowers: the towers give ${dim} features, the model's head reads ${model.featureDim}`);
      }
      return new OnnxTowers(image, name, description, dim);
    } catch (error) {
      await Promise.all(built.map((t) => t.dispose()));
      throw error;
    }
  }

  /** Tower features [rows.length, featureDim] (row-major) of the given products. */
  features(inputs: ProductInputs, rows: readonly number[]): Promise<Float32Array> {
    return this.run(rows.length, {
      images: inputs.imagePixels(rows),
      size: inputs.imageSize,
      name: inputs.textArrays(rows, "name"),
      description: inputs.textArrays(rows, "description"),
    });
  }

  /**
   * Tower features [n, featureDim] of `n` products given as arrays: NHWC normalised images
   * [n, size, size, 3], and each text's token ids and mask [n, tokens] (int32).
   */
  async run(n: number, batch: OnnxTowerBatch): Promise<Float32Array> {
    const image = await this.image.run(batch.images, n, batch.size);
    const texts = [];
    for (const [tower, text] of [[this.name, batch.name], [this.description, batch.description]] as const) {
      texts.push({ values: await tower.run(text.ids, text.mask, n, text.tokens), width: tower.numFeatures });
    }
    const parts = [{ values: image, width: this.image.numFeatures }, ...texts];
    const out = new Float32Array(n * this.featureDim);
    for (let r = 0; r < n; r++) {
      let offset = r * this.featureDim;
      for (const part of parts) {
        out.set(part.values.subarray(r * part.width, (r + 1) * part.width), offset);
        offset += part.width;
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.image.dispose(), this.name.dispose(), this.description.dispose()]);
  }
}
