/**
 * Predictions parquet of the rendered-pairs notebook: one row per test pair (SKUs, label, distance,
 * score, prediction) and, in the file's key-value metadata, how the threshold was chosen and what it
 * achieved (threshold, rule, target FPR, validation FPR/TPR, test FPR/TPR).
 *
 * nodejs-polars cannot write parquet key-value metadata, so the file is written with `hyparquet-writer`
 * (it reads back with polars as usual); `readParquetKeyValueMetadata` reads the footer's
 * `key_value_metadata` (Thrift compact protocol) without any dependency.
 *
 * @module
 */
import { parquetWriteBuffer } from "hyparquet-writer";
import { join } from "node:path";
import { writeFileAtomic } from "../fs.ts";
import { dataDir } from "../paths.ts";
import type { RenderedPairsEvaluation } from "./flows.ts";
import type { PairSet } from "./inputs.ts";
import { predictsSame, thresholdColumns } from "./threshold.ts";

/** `data/predictions/<dataset>/<tag>_<split>_pairs.parquet`. */
export function predictionsPath(dataset: string, tag: string, split = "test", root: string = dataDir()): string {
  return join(root, "predictions", dataset, `${tag}_${split}_pairs.parquet`);
}

/** The metadata written with the predictions; every value is stored as a string (numbers as JSON). */
export interface PredictionsMetadata {
  model: string;
  embedding_tag: string;
  distance: string;
  /** The threshold as a distance (predicted same when distance <= it). */
  threshold_distance: number;
  /** The same threshold as a score (score = -distance; predicted same when score >= it). */
  threshold_score: number;
  /** The rule that chose it on validation ("f1", "fpr"), and the FPR target of "fpr". */
  threshold_rule: string;
  target_fpr: number | null;
  val_fpr: number;
  val_tpr: number;
  test_fpr: number;
  test_tpr: number;
  [key: string]: string | number | null;
}

/** The metadata of a rendered-pairs evaluation. */
export function predictionsMetadata(evaluation: RenderedPairsEvaluation, embeddingTag: string): PredictionsMetadata {
  const { chosen, test } = evaluation;
  return {
    model: evaluation.model,
    embedding_tag: embeddingTag,
    distance: evaluation.distance,
    ...thresholdColumns(chosen.threshold),
    val_fpr: chosen.validation.fpr,
    val_tpr: chosen.validation.tpr,
    test_fpr: test.fpr,
    test_tpr: test.tpr,
  };
}

/**
 * Writes the test pairs with their distance, score and prediction at the chosen threshold, and the
 * metadata, atomically to `path`.
 */
export async function writePredictions(
  path: string,
  test: PairSet,
  evaluation: RenderedPairsEvaluation,
  metadata: PredictionsMetadata,
): Promise<void> {
  const n = test.labels.length;
  if (evaluation.testScores.length !== n) {
    throw new Error(`writePredictions: ${evaluation.testScores.length} scores for ${n} ${test.split} pairs`);
  }
  const predicted = Int32Array.from(
    evaluation.testScores,
    (score) => predictsSame(evaluation.chosen.threshold, score) ? 1 : 0,
  );
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "sku_left", data: test.skuLeft, type: "STRING" },
      { name: "sku_right", data: test.skuRight, type: "STRING" },
      { name: "query_sku", data: test.querySkus, type: "STRING" },
      { name: "kind", data: test.kinds, type: "STRING" },
      { name: "label", data: Int32Array.from(test.labels), type: "INT32" },
      { name: "distance", data: Float64Array.from(evaluation.testDistances), type: "DOUBLE" },
      { name: "score", data: Float64Array.from(evaluation.testScores), type: "DOUBLE" },
      { name: "predicted", data: predicted, type: "INT32" },
    ],
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({
      key,
      value: typeof value === "string" ? value : JSON.stringify(value),
    })),
  });
  await writeFileAtomic(path, new Uint8Array(buffer));
}

/** A minimal Thrift compact-protocol reader: enough to walk a parquet FileMetaData. */
class CompactReader {
  offset = 0;
  constructor(private readonly bytes: Uint8Array) {}
  byte(): number {
    if (this.offset >= this.bytes.length) throw new Error("parquet footer ends unexpectedly");
    return this.bytes[this.offset++];
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  }
  binary(): Uint8Array {
    const length = this.varint();
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
  /** Skips a value of compact type `type`. */
  skip(type: number): void {
    switch (type) {
      case 1:
      case 2:
        return; // booleans in a field header carry their value
      case 3:
        this.offset++;
        return;
      case 4:
      case 5:
      case 6:
        this.varint();
        return;
      case 7:
        this.offset += 8;
        return;
      case 8:
        this.binary();
        return;
      case 9:
      case 10: {
        const { size, elementType } = this.listHeader();
        for (let i = 0; i < size; i++) elementType === 1 || elementType === 2 ? this.offset++ : this.skip(elementType);
        return;
      }
      case 11: {
        const size = this.varint();
        if (size === 0) return;
        const types = this.byte();
        for (let i = 0; i < size; i++) {
          this.skip(types >> 4);
          this.skip(types & 0x0f);
        }
        return;
      }
      case 12:
        this.struct(() => false);
        return;
      default:
        throw new Error(`parquet footer: unknown Thrift compact type ${type} at byte ${this.offset}`);
    }
  }
  listHeader(): { size: number; elementType: number } {
    const header = this.byte();
    const short = header >> 4;
    return { size: short === 15 ? this.varint() : short, elementType: header & 0x0f };
  }
  /** Walks a struct; `visit(fieldId, type)` returns true when it consumed the field's value. */
  struct(visit: (fieldId: number, type: number) => boolean): void {
    let fieldId = 0;
    for (;;) {
      const header = this.byte();
      if (header === 0) return;
      const delta = header >> 4;
      const type = header & 0x0f;
      if (delta === 0) {
        const raw = this.varint();
        fieldId = (raw >>> 1) ^ -(raw & 1);
      } else fieldId += delta;
      if (!visit(fieldId, type)) this.skip(type);
    }
  }
}

/** The file-level key-value metadata of a parquet file (`{}` when it has none). */
export async function readParquetKeyValueMetadata(path: string): Promise<Record<string, string>> {
  const bytes = await Deno.readFile(path);
  const magic = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || magic(0) !== "PAR1" || magic(bytes.length - 4) !== "PAR1") {
    throw new Error(`${path}: not a parquet file (no PAR1 magic); was it written completely?`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const footerLength = view.getUint32(bytes.length - 8, true);
  const footer = bytes.subarray(bytes.length - 8 - footerLength, bytes.length - 8);
  const reader = new CompactReader(footer);
  const decoder = new TextDecoder();
  const out: Record<string, string> = {};
  reader.struct((fieldId, type) => {
    if (fieldId !== 5 || type !== 9) return false; // FileMetaData.key_value_metadata: list<KeyValue>
    const { size } = reader.listHeader();
    for (let i = 0; i < size; i++) {
      let key = "";
      let value = "";
      reader.struct((id, fieldType) => {
        if (fieldType !== 8 || (id !== 1 && id !== 2)) return false;
        const text = decoder.decode(reader.binary());
        if (id === 1) key = text;
        else value = text;
        return true;
      });
      out[key] = value;
    }
    return true;
  });
  return out;
}
