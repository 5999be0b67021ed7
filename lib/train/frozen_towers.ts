/**
 * A model's frozen towers on the runtime TOWER_RUNTIME chose (tower_runtime.ts), built once and used for
 * many batches: the embedding notebooks encode a catalog batch by batch (resumable), and onnxruntime
 * sessions are built from the weights once, not per batch.
 *
 *     const frozen = await FrozenTowers.create(model, { towerRuntime: P.TOWER_RUNTIME });
 *     const vectors = await frozen.embeddings(inputs, rows);   // towers + head
 *     frozen.dispose();
 *
 * @module
 */
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { computeEmbeddings, computeTowerFeatures, type EncodeOptions } from "./embed.ts";
import { OnnxTowers } from "./onnx_towers.ts";
import type { ProductInputs } from "./product_inputs.ts";
import {
  describeTowerRuntime,
  type ResolvedTowerRuntime,
  resolveTowerRuntime,
  type TowerRuntime,
  type TowerRuntimeChoice,
} from "./tower_runtime.ts";

/** A model's towers on one runtime; the model's weights are read when built (a snapshot on onnxruntime). */
export class FrozenTowers {
  private constructor(
    private readonly model: SiameseRuCLIP,
    readonly resolved: ResolvedTowerRuntime,
    private onnx: OnnxTowers | undefined,
  ) {}

  /** Resolves the choice (default "auto") and builds the onnxruntime sessions when it is onnxruntime. */
  static async create(
    model: SiameseRuCLIP,
    options: { towerRuntime?: TowerRuntimeChoice; threads?: number } = {},
  ): Promise<FrozenTowers> {
    const resolved = await resolveTowerRuntime(options.towerRuntime ?? "auto");
    const onnx = resolved.runtime === "onnx" ? await OnnxTowers.create(model, { threads: options.threads }) : undefined;
    return new FrozenTowers(model, resolved, onnx);
  }

  get runtime(): TowerRuntime {
    return this.resolved.runtime;
  }

  /** `frozen towers: onnxruntime-node (auto: ...)`, for the notebooks' backend line. */
  describe(): string {
    return describeTowerRuntime(this.resolved);
  }

  /** Tower features [rows.length, featureDim] of the given products. */
  async features(inputs: ProductInputs, rows: readonly number[], options: EncodeOptions = {}): Promise<Float32Array> {
    return await computeTowerFeatures(this.model, inputs, rows, { ...options, ...this.on() });
  }

  /** Embeddings [rows.length, embeddingDim] of the given products: the towers, then the head (on tfjs). */
  async embeddings(inputs: ProductInputs, rows: readonly number[], options: EncodeOptions = {}): Promise<Float32Array> {
    return await computeEmbeddings(this.model, inputs, rows, { ...options, ...this.on() });
  }

  private on() {
    if (this.resolved.runtime === "onnx" && !this.onnx) throw new Error("FrozenTowers: used after dispose()");
    return { towerRuntime: this.resolved.runtime, onnxTowers: this.onnx };
  }

  /** Releases the onnxruntime sessions. */
  async dispose(): Promise<void> {
    await this.onnx?.dispose();
    this.onnx = undefined;
  }
}
