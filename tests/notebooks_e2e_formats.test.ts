/**
 * End to end on the published entity-matching shapes: a Ditto-shaped folder (with a malformed line,
 * skipped) and a Magellan/DeepMatcher-shaped folder, each imported through `import_pairwise_dataset`
 * as a user would (FORMAT detected for one, named for the other), then the training notebook (text mode,
 * label-free pretraining first), the embedding notebooks and the testing notebooks on it, through
 * `jupyter nbconvert` with the Deno kernel. Records recur across the given splits, as in the published
 * benchmarks; the training goes ahead on them.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { writeDittoFixture, writeMagellanFixture } from "./format_fixtures.ts";
import { runImportedSuite } from "./helpers.ts";

/** Runs the import, training, embedding and testing notebooks on one shape; returns the reports folder. */
async function runSuiteOn(dataset: string, shape: Record<string, string>): Promise<{ data: string; reports: string }> {
  const data = await Deno.makeTempDir({ prefix: `e2e-${dataset}-data-` });
  const reports = await Deno.makeTempDir({ prefix: `e2e-${dataset}-reports-` });
  await runImportedSuite({ data, reports, dataset, run: dataset, source: shape });
  const metrics = JSON.parse(await Deno.readTextFile(join(reports, "metrics.json")));
  const rendered = metrics.notebooks["contrastive_test_embs_from-pairwise-rendered"];
  expect(rendered.dataset).toBe(dataset);
  expect(rendered.headline.SiameseRuCLIP.test_roc_auc).toBeGreaterThanOrEqual(0);
  // The lexical baseline is in every comparison, on every dataset.
  const headlines = (Object.values(metrics.notebooks) as { headline?: Record<string, unknown> }[])
    .flatMap((n) => n.headline && Object.keys(n.headline).length ? [n.headline] : []);
  expect(headlines.length).toBeGreaterThanOrEqual(4);
  // The pair classifier ran with the Siamese features and without them.
  const classifier = metrics.notebooks["clip_siamese_test"].headline;
  expect(Object.keys(classifier)).toEqual(expect.arrayContaining([
    "pair classifier (evidence + Siamese)",
    "pair classifier (evidence only)",
    "SiameseRuCLIP",
  ]));
  for (const headline of headlines) expect(Object.keys(headline)).toContain("TF-IDF cosine");
  const pretrained = JSON.parse(
    await Deno.readTextFile(join(data, "train_results", dataset, "text_tower_pretrained", "config.json")),
  );
  expect(pretrained.pretraining.epochs).toBe(2);
  expect(pretrained.pretraining.products).toBeGreaterThan(1);
  return { data, reports };
}

/** The executed notebook's text (all outputs), from the walkthrough. */
async function executed(reports: string, group: string, name: string): Promise<string> {
  return await Deno.readTextFile(join(reports, "walkthrough", group, `${name}.ipynb`));
}

describe("the suite on published entity-matching shapes, end to end", () => {
  it("imports a Ditto folder (format detected, the malformed line skipped) and trains and tests on it", async () => {
    const source = await writeDittoFixture(await Deno.makeTempDir({ prefix: "e2e-ditto-src-" }));
    const { reports } = await runSuiteOn("ditto_fixture", { PAIR_FILES: source, SKIP_MALFORMED: "1" });
    const imported = await executed(reports, "1_dataset_creation", "import_pairwise_dataset");
    expect(imported).toContain("format **ditto** (detected: a folder of Ditto lines");
    expect(imported).toContain("1 malformed lines skipped");
    const training = await executed(reports, "3_training", "contrastive_train_data-splitting-by-query");
    expect(training).toContain("records shared between splits (the dataset's own splits: records may recur");
  });

  it("imports a Magellan/DeepMatcher folder (FORMAT=magellan) and trains and tests on it", async () => {
    const source = await writeMagellanFixture(await Deno.makeTempDir({ prefix: "e2e-magellan-src-" }));
    const { data, reports } = await runSuiteOn("magellan_fixture", { PAIR_FILES: source, FORMAT: "magellan" });
    const imported = await executed(reports, "1_dataset_creation", "import_pairwise_dataset");
    expect(imported).toContain("format **magellan**");
    expect(imported).toContain("entity columns dropped (the label in disguise): cluster_id");
    const manifest = JSON.parse(
      await Deno.readTextFile(join(data, "tables_magellan_fixture", "processed", "import_manifest.json")),
    );
    expect(manifest.recordsPerSide).toEqual({ left: 12, right: 12 });
  });
});
