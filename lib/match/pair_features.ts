/**
 * The pair classifier's inputs for a dataset of the suite's layout: for each pair, the evidence of both
 * records (pair_evidence.ts, fitted on the training split's products) and, optionally, the Siamese
 * features: the distance and cosine of the fine-tuned embeddings, the cosine of the raw tower features,
 * and |u - v| and u * v of the fine-tuned embeddings projected to a few principal components (fitted on
 * the training products' embeddings only). Without the Siamese features the same classifier shows what
 * the learnt part adds.
 *
 * @module
 */
import { PCA } from "ml-pca";
import { readProcessed } from "../data/make_dataset.ts";
import { attributesText } from "../data/imported_dataset.ts";
import { dataDir } from "../paths.ts";
import { type NamedEmbeddings, pairDistances, type PairSet } from "../eval/inputs.ts";
import {
  type EvidenceRecord,
  type FeatureMatrix,
  fitPairEvidence,
  PAIR_EVIDENCE_FEATURES,
  pairEvidence,
  type PairEvidenceModel,
} from "./pair_evidence.ts";
import type { LabelledMatrix } from "./classifier.ts";

/** The embeddings the Siamese features read: the trained model's, and the raw tower features. */
export interface SiameseSources {
  /** The fine-tuned SiameseRuCLIP embeddings. */
  siamese: NamedEmbeddings;
  /** The raw (not fine-tuned) tower features; absent: their cosine is left out. */
  towers?: NamedEmbeddings;
  /** Principal components of the fine-tuned embeddings for |u - v| and u * v (default 8; 0 = none). */
  components?: number;
}

/** Everything fitted on the training split to turn pairs into features. */
export interface PairFeatureModel {
  evidence: PairEvidenceModel;
  records: Map<string, EvidenceRecord>;
  /** Row of each SKU in `records`' order (the evidence is computed by index). */
  rows: Map<string, number>;
  recordList: EvidenceRecord[];
  siamese: (SiameseSources & { pca: PCA | null; components: number }) | null;
  names: string[];
}

/** Each product of a dataset as the evidence reads it (name, description, brand, price, other attributes). */
export function evidenceRecords(dataset: string, root: string = dataDir()): Map<string, EvidenceRecord> {
  const frame = readProcessed(dataset, root);
  const column = (name: string): unknown[] =>
    frame.columns.includes(name) ? frame.getColumn(name).toArray() : new Array(frame.height).fill(null);
  const [skus, names, descriptions, brands, prices, attributes] = [
    "sku",
    "name",
    "description",
    "brand",
    "final_price",
    "attributes",
  ].map(column);
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return new Map(skus.map((sku, i) => [String(sku), {
    name: text(names[i]) ?? "",
    description: text(descriptions[i]),
    brand: text(brands[i]),
    price: typeof prices[i] === "number" ? prices[i] as number : null,
    attributes: attributesText(text(attributes[i])),
  }]));
}

/** The SKUs of a split's pairs, each once, in first-seen order. */
function pairSkus(set: PairSet): string[] {
  return [...new Set([...set.skuLeft, ...set.skuRight])];
}

function vectorsOf(model: NamedEmbeddings, skus: readonly string[], where: string): number[][] {
  const rowOf = new Map(model.table.skus.map((sku, i) => [sku, i]));
  const { dim, vectors } = model.table;
  return skus.map((sku) => {
    const row = rowOf.get(sku);
    if (row === undefined) throw new Error(`${where}: SKU ${sku} has no embedding in "${model.name}"`);
    return Array.from(vectors.subarray(row * dim, (row + 1) * dim));
  });
}

/**
 * Fits what the features need on the training pairs' products only: the evidence's TF-IDF models and,
 * with Siamese sources, the projection of the fine-tuned embeddings.
 */
export function fitPairFeatures(
  records: Map<string, EvidenceRecord>,
  train: PairSet,
  siamese: SiameseSources | null,
): PairFeatureModel {
  const trainSkus = pairSkus(train);
  const missing = trainSkus.find((sku) => !records.has(sku));
  if (missing !== undefined) throw new Error(`training product ${missing} is not in the products table`);
  const evidence = fitPairEvidence(trainSkus.map((sku) => records.get(sku)!));
  const recordList = [...records.values()];
  const rows = new Map([...records.keys()].map((sku, i) => [sku, i]));
  let fitted: PairFeatureModel["siamese"] = null;
  const names: string[] = [...PAIR_EVIDENCE_FEATURES];
  if (siamese) {
    const wanted = siamese.components ?? 8;
    const dim = siamese.siamese.table.dim;
    const components = Math.max(0, Math.min(wanted, dim, trainSkus.length - 1));
    const pca = components > 0
      ? new PCA(vectorsOf(siamese.siamese, trainSkus, "training products"), { center: true, scale: false })
      : null;
    fitted = { ...siamese, pca, components };
    names.push("siamese_distance", "siamese_cosine");
    if (siamese.towers) names.push("raw_cosine");
    for (let c = 0; c < components; c++) names.push(`siamese_pc${c + 1}_absdiff`);
    for (let c = 0; c < components; c++) names.push(`siamese_pc${c + 1}_product`);
  }
  return { evidence, records, rows, recordList, siamese: fitted, names };
}

/** The feature matrix of a split's pairs, with its labels. */
export function pairFeatures(model: PairFeatureModel, set: PairSet): LabelledMatrix {
  const index = (sku: string, i: number, side: string) => {
    const row = model.rows.get(sku);
    if (row === undefined) {
      throw new Error(`${set.split} pairs: ${side} SKU ${sku} of pair ${i} is not in the products table`);
    }
    return row;
  };
  const left = Int32Array.from(set.skuLeft, (sku, i) => index(sku, i, "left"));
  const right = Int32Array.from(set.skuRight, (sku, i) => index(sku, i, "right"));
  const evidence = pairEvidence(model.evidence, model.recordList, left, right);
  const s = model.siamese;
  if (!s) return { ...evidence, labels: set.labels };
  const width = model.names.length;
  const base = PAIR_EVIDENCE_FEATURES.length;
  const values = new Float32Array(set.labels.length * width);
  for (let i = 0; i < set.labels.length; i++) {
    values.set(evidence.values.subarray(i * base, (i + 1) * base), i * width);
  }
  const where = `${set.split} pairs`;
  const extra: Float64Array[] = [
    pairDistances({ ...s.siamese, distance: "euclidean" }, set.skuLeft, set.skuRight, where),
    pairDistances({ ...s.siamese, distance: "cosine" }, set.skuLeft, set.skuRight, where).map((d) => 1 - d),
  ];
  if (s.towers) {
    extra.push(pairDistances({ ...s.towers, distance: "cosine" }, set.skuLeft, set.skuRight, where).map((d) => 1 - d));
  }
  extra.forEach((column, c) => column.forEach((v, i) => (values[i * width + base + c] = v)));
  if (s.pca && s.components > 0) {
    const offset = base + extra.length;
    const skus = [...new Set([...set.skuLeft, ...set.skuRight])];
    const projected = s.pca.predict(vectorsOf(s.siamese, skus, where), { nComponents: s.components }).to2DArray();
    const bySku = new Map(skus.map((sku, r) => [sku, projected[r]]));
    for (let i = 0; i < set.labels.length; i++) {
      const u = bySku.get(set.skuLeft[i])!, v = bySku.get(set.skuRight[i])!;
      for (let c = 0; c < s.components; c++) {
        values[i * width + offset + c] = Math.abs(u[c] - v[c]);
        values[i * width + offset + s.components + c] = u[c] * v[c];
      }
    }
  }
  return { names: [...model.names], values, rows: set.labels.length, labels: set.labels };
}

/** Only the evidence columns of a matrix (the classifier without the Siamese features). */
export function evidenceOnly(m: LabelledMatrix, evidenceNames: readonly string[]): LabelledMatrix {
  const keep = evidenceNames.map((name) => {
    const j = m.names.indexOf(name);
    if (j < 0) throw new Error(`evidenceOnly: no column ${name}`);
    return j;
  });
  const values = new Float32Array(m.rows * keep.length);
  for (let r = 0; r < m.rows; r++) {
    keep.forEach((j, c) => (values[r * keep.length + c] = m.values[r * m.names.length + j]));
  }
  return { names: [...evidenceNames], values, rows: m.rows, labels: m.labels };
}

export type { FeatureMatrix };
