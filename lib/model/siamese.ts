/**
 * SiameseRuCLIP in tfjs, with the reference's parameter names:
 *
 *   ruclip.*                   RuCLIP-tiny: image tower (ConvNeXt) and name tower (BERT [CLS] -> final_ln)
 *   description_transformer.*  second BERT, attention-masked mean pooling
 *   head.0, head.3             Linear(hidden -> hidden/2), ReLU, Dropout, Linear(hidden/2 -> hidden/4)
 *                              (head.2 for the second Linear when the config has no dropout)
 *
 * A product's embedding is head(concat(image, name, description features)), or with the config's
 * `headResidual` s, [head(x), s * x] (the towers' distance kept as a residual); products are compared by
 * Euclidean distance. `forwardPairs` encodes each product of a batch once and gathers pair sides,
 * instead of re-encoding a product for every pair it is in (the reference's defect 6).
 */
import { tf } from "../tf.ts";
import { BertEncoder, maskedMeanPool } from "./bert.ts";
import { dropout, Linear } from "./layers.ts";
import { pairwiseDistance } from "./losses.ts";
import { type LoadStateDictOptions, type ParameterEntry, ParameterStore } from "./params.ts";
import { headDims, type SiameseRuCLIPConfig } from "./presets.ts";
import { RuCLIPTiny } from "./ruclip.ts";
import type { LoadReport, StateDict } from "./state_dict.ts";

/** The text part of a product batch (the inputs of the name and description towers). */
export interface TextBatch {
  /** [n, T] int32 name token ids. */
  nameIds: tf.Tensor2D;
  /** [n, T] int32, 1 for tokens, 0 for padding. */
  nameMask: tf.Tensor2D;
  /** [n, T] int32 description token ids. */
  descIds: tf.Tensor2D;
  /** [n, T] int32 description attention mask. */
  descMask: tf.Tensor2D;
}

/** A batch of products as model inputs. */
export interface ProductBatch extends TextBatch {
  /** [n, H, W, 3] NHWC float32, already normalised (ImageNet mean/std); zeros for a missing image. */
  images: tf.Tensor4D;
}

/** Which weights `trainableVariables` returns. */
export type TrainablePart = "all" | "head" | "towers";

/** The model's towers, by the PyTorch name prefixes of their weights. */
export const TOWER_PREFIXES = {
  image: ["ruclip.visual."],
  text: ["ruclip.transformer.", "ruclip.final_ln.", "description_transformer."],
} as const;
/** A tower that can be locked (frozen) for training. */
export type Tower = keyof typeof TOWER_PREFIXES;

/** Options of `createSiameseRuCLIP`. */
export interface CreateOptions {
  /** Seed of the random initialisation (default 0). */
  seed?: number;
  /** "random" (timm/BERT-like, default) or "zeros" (fast; when weights will be loaded right after). */
  init?: "random" | "zeros";
}

/** The Siamese product matcher. Call `dispose()` when done. */
export class SiameseRuCLIP {
  readonly ruclip: RuCLIPTiny;
  readonly descriptionTransformer: BertEncoder;
  private readonly head0: Linear;
  private readonly headOut: Linear;
  /** Size of the concatenated tower features (1848 for the real preset). */
  readonly featureDim: number;
  /** Size of the embedding (462 for the real preset; plus featureDim with a `headResidual`). */
  readonly embeddingDim: number;
  /** The raw-distance residual's scale (config `headResidual`), or null; `setHeadResidual` changes it. */
  get headResidual(): number | null {
    return this.config.headResidual ?? null;
  }
  /** Size of the image tower's features, the first columns of the tower features (768 for the real preset). */
  readonly imageDim: number;
  private readonly locked = new Set<Tower>();

  /** The model's config; `setHeadResidual` replaces it (a copy, so a shared preset is never changed). */
  config: SiameseRuCLIPConfig;

  constructor(config: SiameseRuCLIPConfig, private readonly store: ParameterStore) {
    this.config = config;
    this.ruclip = new RuCLIPTiny(store, "ruclip", config);
    this.descriptionTransformer = new BertEncoder(store, "description_transformer", config.descriptionBert);
    const dims = headDims(config);
    this.featureDim = dims.input;
    const residual = config.headResidual ?? null;
    if (residual !== null && !(Number.isFinite(residual) && residual > 0)) {
      throw new Error(`SiameseRuCLIPConfig.headResidual = ${residual}; expected a number > 0, or null for none`);
    }
    this.embeddingDim = dims.output + (residual === null ? 0 : dims.input);
    this.imageDim = config.convnext.dims[config.convnext.dims.length - 1];
    this.head0 = new Linear(store, "head.0", dims.input, dims.hidden);
    this.headOut = new Linear(store, config.headDropout === null ? "head.2" : "head.3", dims.hidden, dims.output);
  }

  /**
   * Changes the residual's scale of a model built with one (no weight depends on it, so a scale can be
   * chosen after training: train/residual_scale.ts). Turning the residual on or off changes the
   * embedding's size and is refused.
   */
  setHeadResidual(scale: number): void {
    if (this.headResidual === null) {
      throw new Error("setHeadResidual: this model has no head residual (config headResidual null)");
    }
    if (!(Number.isFinite(scale) && scale > 0)) {
      throw new Error(`setHeadResidual(${scale}): expected a number > 0`);
    }
    this.config = { ...this.config, headResidual: scale };
  }

  /** Concatenated [image, name, description] features of each product: [n, featureDim]. */
  towerFeatures(batch: ProductBatch, training: boolean): tf.Tensor2D {
    checkBatch(batch);
    return tf.tidy(() => tf.concat([this.ruclip.encodeImage(batch.images), this.textFeatures(batch, training)], 1));
  }

  /**
   * Concatenated [name, description] features [n, featureDim - imageDim]: the towers after the
   * image tower, for callers that have the image features already (a frozen image tower).
   */
  textFeatures(batch: TextBatch, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      const name = this.ruclip.encodeName(batch.nameIds, batch.nameMask, training);
      const hidden = this.descriptionTransformer.apply(batch.descIds, batch.descMask, training);
      const description = maskedMeanPool(hidden, batch.descMask);
      return tf.concat([name, description], 1);
    });
  }

  /**
   * The head on tower features: Linear -> ReLU -> Dropout (training only) -> Linear, then with a
   * `headResidual` s the scaled features appended: [n, embeddingDim].
   */
  head(features: tf.Tensor2D, training: boolean): tf.Tensor2D {
    if (features.shape[1] !== this.featureDim) {
      throw new Error(`head expects features [n, ${this.featureDim}], got [${features.shape}]`);
    }
    return tf.tidy(() => {
      const hidden = tf.relu(this.head0.apply(features));
      const out = this.headOut.apply(dropout(hidden, this.config.headDropout ?? 0, training)) as tf.Tensor2D;
      return this.headResidual === null ? out : tf.concat([out, tf.mul(features, this.headResidual)], 1);
    });
  }

  /** Product embeddings: head(towerFeatures(batch)); [n, embeddingDim], not normalised. */
  embed(batch: ProductBatch, training: boolean): tf.Tensor2D {
    return tf.tidy(() => this.head(this.towerFeatures(batch, training), training));
  }

  /**
   * Distances of pairs of products of one batch: every product is encoded once, then pair sides are
   * gathered. `leftIndex[i]`, `rightIndex[i]` are row indices into `products`. Returns [pairs].
   */
  forwardPairs(
    products: ProductBatch,
    leftIndex: tf.Tensor1D | number[],
    rightIndex: tf.Tensor1D | number[],
    training: boolean,
  ): tf.Tensor1D {
    const n = products.images.shape[0];
    for (const [label, index] of [["leftIndex", leftIndex], ["rightIndex", rightIndex]] as const) {
      if (Array.isArray(index)) {
        const bad = index.find((i) => !Number.isInteger(i) || i < 0 || i >= n);
        if (bad !== undefined) {
          throw new Error(`forwardPairs: ${label} holds ${bad}, outside the batch of ${n} products`);
        }
      }
    }
    return tf.tidy(() => {
      const embeddings = this.embed(products, training);
      const left = tf.gather(embeddings, Array.isArray(leftIndex) ? tf.tensor1d(leftIndex, "int32") : leftIndex);
      const right = tf.gather(embeddings, Array.isArray(rightIndex) ? tf.tensor1d(rightIndex, "int32") : rightIndex);
      return pairwiseDistance(left as tf.Tensor2D, right as tf.Tensor2D);
    });
  }

  /** Loads a PyTorch state dict (see ParameterStore.loadStateDict); strict by default. */
  loadStateDict(sd: StateDict, options: LoadStateDictOptions = {}): LoadReport {
    return this.store.loadStateDict(sd, options);
  }

  /** The weights as a PyTorch state dict (names, shapes and layouts of the reference); read asynchronously. */
  stateDict(): Promise<StateDict> {
    return this.store.stateDict();
  }

  /**
   * Variables to train: "all" (default), "head" (head-only training on frozen towers) or "towers".
   * Parameters the forward pass never reads (BERT poolers, logit_scale) are left out: they get no gradient.
   */
  trainableVariables(part: TrainablePart = "all"): tf.Variable[] {
    const isHead = (e: ParameterEntry): boolean => e.name.startsWith("head.");
    const lockedPrefixes = [...this.locked].flatMap((tower) => TOWER_PREFIXES[tower]);
    return this.store.variables((e) =>
      e.usedInForward && (part === "all" || (part === "head" ? isHead(e) : !isHead(e))) &&
      !lockedPrefixes.some((prefix) => e.name.startsWith(prefix))
    );
  }

  /**
   * Freezes the image tower: `trainableVariables` leaves its weights out until `unlockTowers()`
   * (open_clip's `lock_image_tower`). The tower still runs in the forward pass.
   */
  lockImageTower(): void {
    this.locked.add("image");
  }

  /** Freezes the name and description towers (BERTs and the name projection). */
  lockTextTowers(): void {
    this.locked.add("text");
  }

  /** Unfreezes every tower. */
  unlockTowers(): void {
    this.locked.clear();
  }

  /** The towers that are frozen now. */
  lockedTowers(): Tower[] {
    return (Object.keys(TOWER_PREFIXES) as Tower[]).filter((tower) => this.locked.has(tower));
  }

  /** PyTorch names of the variables `trainableVariables(part)` returns, in the same order. */
  trainableNames(part: TrainablePart = "all"): string[] {
    const vars = new Set(this.trainableVariables(part));
    return this.store.list().filter((e) => vars.has(e.variable)).map((e) => e.name);
  }

  /** Number of scalar weights, as PyTorch's sum(p.numel() for p in model.parameters()); optionally one prefix. */
  parameterCount(prefix = ""): number {
    return this.store.parameterCount((e) => e.name.startsWith(prefix));
  }

  /** The parameter store (names, layouts, variables). */
  parameters(): ParameterStore {
    return this.store;
  }

  /** Frees every weight of the model. */
  dispose(): void {
    this.store.dispose();
  }
}

function checkBatch(batch: ProductBatch): void {
  const n = batch.images.shape[0];
  const parts: [string, tf.Tensor][] = [
    ["nameIds", batch.nameIds],
    ["nameMask", batch.nameMask],
    ["descIds", batch.descIds],
    ["descMask", batch.descMask],
  ];
  for (const [label, t] of parts) {
    if (t.shape[0] !== n) throw new Error(`product batch: ${label} has ${t.shape[0]} rows but images has ${n}`);
    if (t.dtype !== "int32") throw new Error(`product batch: ${label} must be int32, got ${t.dtype}`);
  }
  if (batch.images.shape[3] !== 3) {
    throw new Error(`product batch: images must be NHWC with 3 channels, got shape [${batch.images.shape}]`);
  }
}

/** Builds a SiameseRuCLIP from a config with seeded timm/BERT-like random weights (or zeros). */
export function createSiameseRuCLIP(config: SiameseRuCLIPConfig, options: CreateOptions = {}): SiameseRuCLIP {
  const store = new ParameterStore(options.seed ?? 0, options.init === "zeros");
  try {
    return new SiameseRuCLIP(config, store);
  } catch (error) {
    store.dispose();
    throw error;
  }
}
