/**
 * Imports WDC Products into the suite's layout and prints the counts and the lexical (TF-IDF) baseline on
 * its three test sets, the threshold F1-optimal on validation:
 *
 *   deno run -A scripts/import_wdc_products.ts [--size small|medium] [--dir FOLDER] [--no-tokenizer]
 *
 * The folder defaults to $WDC_PRODUCTS_DIR, else ../shared/data/wdc-products; the dataset is written under
 * data/tables_wdc_products_<size>/ (git-ignored).
 */
import { parseArgs } from "node:util";
import { importPairs } from "../lib/data/import_pairs.ts";
import { WDC_TEST_SETS, wdcImportOptions, type WdcSize } from "../lib/data/wdc_products.ts";
import { lexicalBaseline } from "../lib/eval/lexical_baseline.ts";
import { shownPath } from "../lib/paths.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "small" },
    dir: { type: "string" },
    "no-tokenizer": { type: "boolean", default: false },
  },
});
const options = await wdcImportOptions({
  size: values.size as WdcSize,
  dir: values.dir,
  tokenizer: values["no-tokenizer"] ? false : {},
});
const result = await importPairs(options);
const m = result.manifest;
console.log(`dataset ${m.dataset} -> ${shownPath(result.layout.tablesDir)} (${m.splitMode} splits)`);
console.log(`products: ${m.products} (with an image: ${m.productsWithImage}); recommended MODE=${m.recommendedMode}`);
console.table(m.splits.map(({ files: _files, ...s }) => s));
console.log("issues:", JSON.stringify(m.issues), `record conflicts: ${result.conflicts.length}`);
console.table(m.overlaps.filter((o) => o.shared_skus > 0));
if (m.tokenizer) console.log(`tokenizer: ${shownPath(m.tokenizer)}`);
for (const fields of [["name"], ["name", "brand"], ["name", "description"]]) {
  const baseline = lexicalBaseline({ dataset: m.dataset, fields, testSplits: Object.keys(WDC_TEST_SETS) });
  console.log(
    `\nTF-IDF cosine on ${fields.join(" + ")}: ${baseline.model.vocabulary.size} terms; threshold ` +
      `${baseline.chosen.threshold.score.toFixed(4)} (F1-optimal on val, val F1 ${
        baseline.chosen.validation.f1.toFixed(4)
      })`,
  );
  console.table(baseline.tests.map((t) => ({
    split: t.split,
    pairs: t.pairs,
    positives: t.positives,
    precision: Number(t.report.precision.toFixed(4)),
    recall: Number(t.report.recall.toFixed(4)),
    f1: Number(t.report.f1.toFixed(4)),
    roc_auc: Number(t.report.rocAuc.toFixed(4)),
  })));
}
