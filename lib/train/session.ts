/**
 * What the training, embedding and testing notebooks share: the dataset's products as model
 * inputs, a split's pairs, and the model with its tokenizer for a preset.
 *
 * Presets:
 * - `real`: RuCLIP-tiny sizes (ConvNeXt-tiny at 224 px, rubert-tiny), tokenizer
 *   `cointegrated/rubert-tiny`, weights from the RuCLIP-tiny preload or an earlier checkpoint;
 * - `demo`: a tiny ConvNeXt at 64 px, pretrained self-supervised on another seed's marketplace
 *   (`data/shipped/convnext-demo`), and text towers from a tiny BERT pretrained without labels
 *   (a listing's name against its own description) on another seed's marketplace
 *   (`data/shipped/text-tower-demo`): as the real towers start from pretrained RuCLIP-tiny and rubert-tiny;
 * - `tiny`: everything small and randomly initialised (tests).
 */
import pl from "nodejs-polars";
import { join } from "node:path";
import { datasetLayout } from "../data/layout.ts";
import { attributesText } from "../data/imported_dataset.ts";
import { readProcessed } from "../data/make_dataset.ts";
import { splitFiles } from "../data/pairs.ts";
import { loadSiameseRuCLIP, loadTowerWeights } from "../model/load.ts";
import { presetByName, type PresetName, type SiameseRuCLIPConfig, tinyPreset } from "../model/presets.ts";
import type { NamePooling } from "../model/ruclip.ts";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { loadTokenizer, type ProductTokenizer } from "../text/tokenizer.ts";
import { shippedDir, shownPath } from "../paths.ts";
import type { ProductRecord } from "./product_inputs.ts";

/** Presets the notebooks accept. */
/** The model presets of the suite: `demo` (small towers, shipped tokenizer), `real` (RuCLIP-tiny sizes), `tiny` (tests). */
export const SUITE_MODEL_PRESETS = ["demo", "real", "tiny"] as const satisfies readonly (PresetName | "demo")[];
export type SuiteModelPreset = typeof SUITE_MODEL_PRESETS[number];

/**
 * The demo's starting text towers (HF BertModel layout; name-description pretraining on another seed's
 * marketplace, see its config.json). It also holds an ONNX export, so it runs as a sentence model too.
 */
export const DEMO_TEXT_TOWER: string = join(shippedDir, "text-tower-demo");

/** The demo's starting image tower: a tiny timm-layout ConvNeXt pretrained with SimCLR (see its config.json). */
export const DEMO_IMAGE_TOWER: string = join(shippedDir, "convnext-demo");

/** The tokenizer each preset uses by default. */
export const DEFAULT_TOKENIZERS: Record<SuiteModelPreset, string> = {
  tiny: join(shippedDir, "tokenizer-demo"),
  demo: join(shippedDir, "tokenizer-demo"),
  real: "hf-hub:cointegrated/rubert-tiny",
};

/** The `demo` preset: the tiny image tower, text towers sized as the text tower's config.json says. */
export async function demoPreset(textTower = DEMO_TEXT_TOWER): Promise<SiameseRuCLIPConfig> {
  const hf = JSON.parse(await Deno.readTextFile(join(textTower, "config.json")));
  const base = tinyPreset(hf.vocab_size);
  const bert = {
    ...base.nameBert,
    vocabSize: hf.vocab_size,
    hiddenSize: hf.hidden_size,
    numLayers: hf.num_hidden_layers,
    numHeads: hf.num_attention_heads,
    intermediateSize: hf.intermediate_size,
    maxPositions: hf.max_position_embeddings,
    typeVocabSize: hf.type_vocab_size,
    layerNormEps: hf.layer_norm_eps,
  };
  return { ...base, name: "demo", nameBert: bert, descriptionBert: { ...bert }, maxTokens: 77 };
}

/**
 * Products of the processed table as model inputs (image file under images_<dataset>/, or none). An
 * imported record without a description has its other attributes ("modelno: a52; color: black", the
 * `attributes` column) as its description text, so the description tower and the label-free pretraining
 * see every attribute the source gives; never the entity columns, which the import drops.
 */
export function productRecords(dataset: string, root?: string): ProductRecord[] {
  const layout = datasetLayout(dataset, root);
  const frame = readProcessed(dataset, layout.root);
  for (const column of ["sku", "name", "description", "image_name"]) {
    if (!frame.columns.includes(column)) {
      throw new Error(`${layout.processedParquet}: no "${column}" column; re-run make_OZ_geo_5500`);
    }
  }
  const columns = ["sku", "name", "description", "image_name"];
  if (frame.columns.includes("attributes")) columns.push("attributes");
  return (frame.select(...columns).toRecords() as Record<string, string | null>[]).map((row) => ({
    sku: String(row.sku),
    name: row.name ?? "",
    // An imported record without a description: its other attributes are its second text.
    description: row.description?.trim() ? row.description : attributesText(row.attributes),
    imagePath: row.image_name ? join(layout.imagesDir, row.image_name) : null,
  }));
}

/** One rendered pair of a split. */
export interface SkuPair {
  skuLeft: string;
  skuRight: string;
  label: number;
  kind: string;
  querySku: string;
}

/** The rendered pairs of a split (`splits/<split>_pairs.parquet`). */
export function readSplitPairs(dataset: string, split: string, root?: string): SkuPair[] {
  const path = splitFiles(datasetLayout(dataset, root).splitsDir, split).pairs;
  let frame: pl.DataFrame;
  try {
    frame = pl.readParquet(path);
  } catch {
    throw new Error(
      `${path} is missing: run make_OZ_geo_5500_pairwise-regex (it splits by query and renders the pairs)`,
    );
  }
  return (frame.toRecords() as Record<string, unknown>[]).map((row) => ({
    skuLeft: String(row.sku_left),
    skuRight: String(row.sku_right),
    label: Number(row.label),
    kind: String(row.kind),
    querySku: String(row.query_sku),
  }));
}

/** The model configuration of a preset, sized to the tokenizer for `tiny`. */
export async function presetConfig(
  preset: SuiteModelPreset,
  tokenizer: ProductTokenizer,
): Promise<SiameseRuCLIPConfig> {
  if (preset !== "demo" && preset !== "real" && preset !== "tiny") {
    throw new Error(`unknown model preset "${preset}"; use demo, real or tiny`);
  }
  const config = preset === "demo" ? await demoPreset() : presetByName(preset, tokenizer.vocabSize);
  if (tokenizer.vocabSize > config.nameBert.vocabSize) {
    throw new Error(
      `the tokenizer ${tokenizer.source} has ${tokenizer.vocabSize} tokens but preset "${preset}" embeds ${config.nameBert.vocabSize}`,
    );
  }
  return config;
}

export interface ModelSetup {
  model: SiameseRuCLIP;
  tokenizer: ProductTokenizer;
  config: SiameseRuCLIPConfig;
  /** What loading the weights did ("random initialisation" when none were given). */
  summary: string;
}

/**
 * Loads the tokenizer and the model: from `weights` (checkpoint folder, file or Hub id) when given;
 * else the preset's starting point (`demo`: pretrained towers, head random; others random).
 */
export async function setupModel(
  options: {
    preset: SuiteModelPreset;
    weights?: string;
    tokenizer?: string;
    seed?: number;
    /** An HF BertModel folder or file for the description tower (the reference starts it from rubert-tiny). */
    descriptionWeights?: string;
    /**
     * An HF BertModel folder or file for both text towers (as the demo's pretrained tower is loaded), e.g.
     * one `pretrainTextTowers` wrote; `descriptionWeights` then still replaces the description tower.
     */
    textWeights?: string;
    /**
     * The raw-distance residual's scale (SiameseRuCLIPConfig `headResidual`) for a model built from the
     * preset; null = none. A checkpoint's own config.json decides for the weights it holds.
     */
    headResidual?: number | null;
    /** The name tower's pooling (RuCLIPConfig `namePooling`) for a model built from the preset. */
    namePooling?: NamePooling;
  },
): Promise<ModelSetup> {
  if (!(options.preset in DEFAULT_TOKENIZERS)) {
    throw new Error(`unknown model preset "${options.preset}"; use demo, real or tiny`);
  }
  if (options.weights && options.textWeights) {
    throw new Error(
      `setupModel: weights (${options.weights}) already hold the text towers; textWeights ` +
        `(${options.textWeights}) would replace them; give one of the two`,
    );
  }
  const tokenizer = await loadTokenizer(options.tokenizer || DEFAULT_TOKENIZERS[options.preset]);
  const preset = await presetConfig(options.preset, tokenizer);
  const config = {
    ...preset,
    ...(options.headResidual == null ? {} : { headResidual: options.headResidual }),
    ...(options.namePooling === undefined ? {} : { namePooling: options.namePooling }),
  };
  const { model, report } = await loadSiameseRuCLIP({
    preset: config,
    weights: options.weights || undefined,
    seed: options.seed,
    strict: !!options.weights,
  });
  let summary = options.weights ? report.summary : "random initialisation";
  if (!options.weights && options.preset === "demo") {
    for (const tower of ["name", "description"] as const) await loadBertTower(model, tower, DEMO_TEXT_TOWER);
    await loadTowerWeights(model, "image", join(DEMO_IMAGE_TOWER, "model.safetensors"), { strict: true });
    summary = `image tower from ${shownPath(DEMO_IMAGE_TOWER)} (SimCLR on another marketplace), ` +
      `text towers from ${
        shownPath(DEMO_TEXT_TOWER)
      } (name-description pretraining on another marketplace), head random`;
  }
  if (options.textWeights) {
    for (const tower of ["name", "description"] as const) await loadBertTower(model, tower, options.textWeights);
    summary += `; text towers from ${shownPath(options.textWeights)}`;
  }
  if (options.descriptionWeights) {
    await loadBertTower(model, "description", options.descriptionWeights);
    summary += `; description tower from ${shownPath(options.descriptionWeights)}`;
  }
  return { model, tokenizer, config: model.config, summary };
}

/** Loads an HF BertModel into a text tower; only the (unused) pooler may be missing. */
async function loadBertTower(model: SiameseRuCLIP, tower: "name" | "description", path: string): Promise<void> {
  const report = await loadTowerWeights(model, tower, path, { strict: false });
  const missing = report.missing.filter((name) => !name.includes(".pooler."));
  if (missing.length || report.mismatched.length) {
    throw new Error(`${path} does not fit the ${tower} tower:\n${report.summary}`);
  }
}

/** Parameter counts of the model's parts, as PyTorch counts them, for the training notebook's table. */
export function modelPartRows(model: SiameseRuCLIP): { part: string; parameters: number }[] {
  const count = (...prefixes: string[]) => prefixes.reduce((n, prefix) => n + model.parameterCount(prefix), 0);
  return [
    { part: "image tower (ConvNeXt)", parameters: count("ruclip.visual.") },
    { part: "name tower (BERT + final_ln)", parameters: count("ruclip.transformer.", "ruclip.final_ln.") },
    { part: "description tower (BERT)", parameters: count("description_transformer.") },
    { part: "head", parameters: count("head.") },
    { part: "total", parameters: model.parameterCount() },
  ];
}
