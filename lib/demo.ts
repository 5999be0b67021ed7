/**
 * The demo preset: everything runs offline on the generated demo marketplace.
 *
 *   data/demo_marketplace/   the "marketplace": its two exports, and source_images/ as the image
 *                            host that the exports' CoverImage URLs point at (file:// URLs)
 *   data/demo_hub/           the loopback Hub stand-in's storage, seeded with the project's
 *                            dataset repo (INDEEPA/clip-siamese): the source exports and the
 *                            ground-truth identity file, as the real repo holds the real exports
 *
 * hf_data_download then pulls the exports into data/, and make_OZ_geo_5500 downloads the images.
 */
import { join } from "node:path";
import { dataDir } from "./paths.ts";
import { exists } from "./fs.ts";
import { generateDemoMarketplace } from "./data/demo_marketplace.ts";
import { DEMO_LISTINGS, DEMO_QUERIES } from "./data/demo_catalog.ts";
import { DEMO_DATASET } from "./data/layout.ts";
import { startLocalHub } from "./hub/local_hub.ts";
import { seedLocalHubFromData } from "./hub/seed.ts";
import { DEFAULT_DATA_REPO } from "./hub/repo.ts";

export interface DemoEnvironment {
  /** Environment variables for the notebooks (HF_ENDPOINT of the stand-in, DATASET, ...). */
  env: Record<string, string>;
  /** Stops the stand-in. */
  close(): Promise<void>;
}

export interface DemoOptions {
  preset: string;
  root?: string;
  /** Listings in the generated marketplace (default DEMO_LISTINGS). */
  products?: number;
  queries?: number;
  seed?: number;
  log?: (line: string) => void;
}

/** Generates the demo marketplace (once), seeds the Hub stand-in with it and starts the stand-in. */
export async function prepareDemo(options: DemoOptions): Promise<DemoEnvironment> {
  const root = options.root ?? dataDir();
  const log = options.log ?? ((line: string) => console.log(line));
  const marketplace = join(root, "demo_marketplace");
  const hubRoot = join(root, "demo_hub");
  const marker = join(marketplace, `tables_${DEMO_DATASET}`, "source", "analytics_export.xlsx");
  const manifestPath = join(marketplace, "demo_manifest.json");
  const manifest = {
    seed: options.seed ?? 42,
    listings: options.products ?? DEMO_LISTINGS,
    queries: options.queries ?? DEMO_QUERIES,
  };
  const previous = await Deno.readTextFile(manifestPath).then(JSON.parse).catch(() => null);
  if ((await exists(marker)) && JSON.stringify(previous) !== JSON.stringify(manifest)) {
    // An older demo (another size or seed): its files would not match the shipped rules. Everything
    // under these folders is generated from the marketplace, so it is regenerated, not mixed.
    log(
      `demo: the existing demo marketplace was made with ${JSON.stringify(previous)}, ` +
        `not ${JSON.stringify(manifest)}; regenerating it and the dataset derived from it`,
    );
    // The images' zip too: hf_data_download unpacks it, and stale pictures would sit under new SKUs' names.
    const derived = [`tables_${DEMO_DATASET}`, `images_${DEMO_DATASET}`, `images_${DEMO_DATASET}.zip`];
    for (const dir of [marketplace, hubRoot, ...derived.map((name) => join(root, name))]) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  if (!(await exists(marker))) {
    log(`demo: generating the demo marketplace in ${marketplace} ...`);
    const summary = await generateDemoMarketplace({
      outDir: marketplace,
      dataset: DEMO_DATASET,
      seed: options.seed, // the shipped demo rules are written for the generator's default seed
      products: options.products,
      queries: options.queries,
    });
    log(
      `demo: ${summary.listings} listings of ${summary.products} products by ${summary.sellers} sellers, ` +
        `${summary.querySkus.length} queries, in ${summary.seconds.toFixed(1)}s`,
    );
    await Deno.remove(hubRoot, { recursive: true }).catch(() => {});
    await Deno.writeTextFile(manifestPath, JSON.stringify(manifest));
  }
  if (!(await exists(hubRoot))) {
    // The Hub repo holds the exports and the ground truth, not the image host's files.
    const seedDir = join(root, "demo_hub_seed");
    const tables = join(seedDir, `tables_${DEMO_DATASET}`);
    await Deno.remove(seedDir, { recursive: true }).catch(() => {});
    for (const sub of ["source", "ground_truth"]) {
      await Deno.mkdir(join(tables, sub), { recursive: true });
      for await (const entry of Deno.readDir(join(marketplace, `tables_${DEMO_DATASET}`, sub))) {
        if (entry.isFile) {
          await Deno.copyFile(
            join(marketplace, `tables_${DEMO_DATASET}`, sub, entry.name),
            join(tables, sub, entry.name),
          );
        }
      }
    }
    await seedLocalHubFromData({ hubRoot, dataDir: seedDir, repo: DEFAULT_DATA_REPO });
    await Deno.remove(seedDir, { recursive: true });
  }
  const hub = await startLocalHub({ root: hubRoot });
  log(`demo: Hub stand-in for ${DEFAULT_DATA_REPO} at ${hub.endpoint} (loopback; huggingface.co is not used)`);
  return {
    env: {
      HF_ENDPOINT: hub.endpoint,
      HF_TOKEN: "hf_demo_local_stand_in",
      DATASET: DEMO_DATASET,
    },
    close: () => hub.close(),
  };
}
