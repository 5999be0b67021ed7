/**
 * Named model configurations (open_clip style): `real` is the reference's SiameseRuCLIP
 * (convnext_tiny + two cointegrated/rubert-tiny, head 1848 -> 924 -> 462); `tiny` is a small
 * model with the same structure for tests and the demo.
 */
import type { BertConfig } from "./bert.ts";
import type { RuCLIPConfig } from "./ruclip.ts";

/** Everything needed to build a SiameseRuCLIP. */
export interface SiameseRuCLIPConfig extends RuCLIPConfig {
  /** Preset name, for reports. */
  name: string;
  /** The description BERT (mean pooled). */
  descriptionBert: BertConfig;
  /**
   * Dropout rate between the two head Linears (reference: 0.5). `null` means no Dropout module,
   * which shifts the second Linear from `head.3` to `head.2`, as in the reference.
   */
  headDropout: number | null;
  /** Square input image side in pixels (224 for the real model). */
  imageSize: number;
  /** Token sequence length of names and descriptions (77 in the reference). */
  maxTokens: number;
  /**
   * The raw-distance residual: when a number s, the embedding is [head(x), s * x] for tower features x,
   * so an embedding distance is d^2 = d_head^2 + s^2 d_towers^2 and training learns a correction to the
   * towers' own distance instead of replacing it. `null` or absent: the reference's embedding, head(x).
   * It adds no weights (the state dict is the reference's).
   */
  headResidual?: number | null;
}

/** cointegrated/rubert-tiny (checked against its config.json). */
export const RUBERT_TINY: BertConfig = {
  vocabSize: 29564,
  hiddenSize: 312,
  numLayers: 3,
  numHeads: 12,
  intermediateSize: 600,
  maxPositions: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
};

/** The reference model: RuCLIP-tiny (convnext_tiny + rubert-tiny) + description rubert-tiny + head. */
export const REAL_PRESET: SiameseRuCLIPConfig = {
  name: "real",
  convnext: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] },
  nameBert: RUBERT_TINY,
  descriptionBert: RUBERT_TINY,
  projectionDim: 768,
  headDropout: 0.5,
  imageSize: 224,
  maxTokens: 77,
};

/**
 * A tiny model of the same structure (about 135k parameters with vocabulary 96).
 * @param vocabSize vocabulary of the (tiny demo) tokenizer, read from its config
 */
export function tinyPreset(vocabSize = 96): SiameseRuCLIPConfig {
  const bert: BertConfig = {
    vocabSize,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 64,
    maxPositions: 32,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    hiddenDropout: 0.1,
    attentionDropout: 0.1,
  };
  return {
    name: "tiny",
    convnext: { depths: [1, 1, 2, 1], dims: [8, 16, 32, 64] },
    nameBert: bert,
    descriptionBert: { ...bert },
    projectionDim: 64,
    headDropout: 0.5,
    imageSize: 64,
    maxTokens: 32,
  };
}

/** Preset names accepted by `presetByName`. */
export type PresetName = "real" | "tiny";

/** A preset by name; `vocabSize` applies to `tiny` only. */
export function presetByName(name: PresetName, vocabSize?: number): SiameseRuCLIPConfig {
  if (name === "real") return structuredClone(REAL_PRESET);
  if (name === "tiny") return tinyPreset(vocabSize);
  throw new Error(`unknown model preset "${name}"; use "real" or "tiny"`);
}

/** Widths of the head, derived from the towers as the reference does: hidden, hidden/2, hidden/4. */
export function headDims(config: SiameseRuCLIPConfig): { input: number; hidden: number; output: number } {
  const input = config.convnext.dims[config.convnext.dims.length - 1] + config.projectionDim +
    config.descriptionBert.hiddenSize;
  return { input, hidden: Math.floor(input / 2), output: Math.floor(input / 4) };
}
