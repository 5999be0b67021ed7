/**
 * Writes the demo marketplace in the real data's layout: the two source exports (.xlsx, real
 * column names), product images under `tables_<dataset>/source_images/` (the stand-in image host;
 * CoverImage URLs point there through `imageUrl(base, name)`), and the ground-truth product
 * identity (read only for scoring). A few images are left missing or written corrupt on purpose.
 */
import pl from "nodejs-polars";
import pLimit from "p-limit";
import { isAbsolute, join, relative, sep as SEPARATOR } from "node:path";
import { pathToFileURL } from "node:url";
import { writeFileAtomic } from "../fs.ts";
import { dataDir, shownPath } from "../paths.ts";
import { ANALYTICS_COLUMNS, CRAWLER_COLUMNS } from "./columns.ts";
import { type DemoCatalog, type DemoListing, type DemoProduct, generateCatalog, QUERY_SELLER } from "./demo_catalog.ts";
import { renderListingImage } from "./demo_images.ts";
import { datasetLayout, DEMO_DATASET } from "./layout.ts";
import { SeededRandom } from "./random.ts";
import type { Cell } from "./source_table.ts";
import { writeXlsx } from "./source_table.ts";
import { finishProgress, type ProgressSink } from "./download.ts";

/** File names of the demo's two exports. */
export const DEMO_CRAWLER_FILE = "crawler_export.xlsx";
export const DEMO_ANALYTICS_FILE = "analytics_export.xlsx";

/** The URL of an image on a host whose images live under `baseUrl` ("file:///.../" or "http://host/path/"). */
export function imageUrl(baseUrl: string, imageName: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/${encodeURIComponent(imageName)}`;
}

/** Options of `generateDemoMarketplace`. */
export interface DemoMarketplaceOptions {
  seed?: number;
  /** Listings (SKUs) in the exports, default DEMO_LISTINGS (4,500). */
  products?: number;
  /** Query products of ИНТЕРТРЕЙД, default DEMO_QUERIES (60). */
  queries?: number;
  /** Root under which `tables_<dataset>` goes, default `dataDir()`. */
  outDir?: string;
  dataset?: string;
  /**
   * Base URL written into CoverImage; default the source_images folder as a path relative to the
   * data folder (so the data folder can move), or its file:// URL when it lies outside the data folder.
   */
  imageBaseUrl?: string;
  /** The data folder that CoverImage paths are relative to (default `dataDir()`). */
  dataRoot?: string;
  /** Images left missing and images written corrupt (each), default 0.2% of listings, at least 1. */
  brokenImages?: number;
  progress?: ProgressSink;
}

/** What was generated. */
export interface DemoMarketplaceSummary {
  dataset: string;
  listings: number;
  products: number;
  sellers: number;
  querySkus: number[];
  missingImages: string[];
  corruptImages: string[];
  crawlerPath: string;
  analyticsPath: string;
  groundTruthPath: string;
  seconds: number;
}

function analyticsRow(listing: DemoListing, product: DemoProduct, random: SeededRandom): Record<string, Cell> {
  const balanceFbo = random.chance(0.15) ? 0 : random.int(0, 120);
  const balanceFbs = random.chance(0.5) ? 0 : random.int(0, 40);
  const sales = random.chance(0.3) ? 0 : random.int(1, 300);
  const price = listing.price;
  const category = product.kind === "globe" ? "Глобусы" : product.kind === "atlas" ? "Атласы" : "Карты";
  return {
    "SKU": listing.sku,
    "Name": listing.name,
    "Category": `Книги/Учебная литература/${category}`,
    "scheme": random.pick(["FBO", "FBS", "FBO"]),
    "Brand": product.publisher,
    "Niche": category,
    "Seller": listing.seller,
    "Balance": balanceFbo,
    "Balance FBS": balanceFbs,
    "Warehouses count": random.int(1, 12),
    "Comments": random.int(0, 400),
    "Final price": price,
    "Max price": Math.round(price * 1.2),
    "Min price": Math.round(price * 0.85),
    "Average price": Math.round(price * 1.03),
    "Median price": price,
    "Card price": Math.round(price * 0.95),
    "Sales": sales,
    "Revenue": sales * price,
    "Revenue potential": Math.round(sales * price * 1.3),
    "Lost profit": Math.round(sales * price * 0.1),
    "Lost profit percent": Math.round(random.next() * 300) / 10,
    "Days in stock": random.int(0, 30),
    "Days with sales": Math.min(30, Math.round(sales / 3)),
    "Average if in stock": Math.round(sales / 30 * 10) / 10,
    "Rating": Math.round((3.6 + random.next() * 1.4) * 10) / 10,
    "Base price": Math.round(price * 1.4),
    "Turnover": random.int(1, 200),
    "Turnover days": random.int(1, 90),
    "Sales per day average": Math.round((sales / 30) * 100) / 100,
    "Frozen stocks": random.int(0, 20),
    "Frozen stocks cost": random.int(0, 20) * price,
    "Frozen stocks percent": Math.round(random.next() * 500) / 10,
    "Country of origin": "Россия",
    "First date": `2023-${String(random.int(1, 12)).padStart(2, "0")}-${String(random.int(1, 28)).padStart(2, "0")}`,
    "Category position": random.int(1, 5000),
    "Categories last count": random.int(1, 4),
    "Search position avg": random.int(1, 500),
    "Pictures count": random.int(1, 9),
    "Video": random.chance(0.1) ? "Да" : "Нет",
    "Thumb": `https://cdn1.ozone.ru/s3/multimedia-x/wc140/${listing.imageId}.jpg`,
    "Url": `https://www.ozon.ru/product/${listing.sku}/`,
  };
}

function crawlerRow(
  listing: DemoListing,
  product: DemoProduct,
  url: string,
  random: SeededRandom,
): Record<string, Cell> {
  return {
    "Sku": listing.sku,
    "CoverImage": url,
    "ProductName": listing.name,
    "SellerName": listing.seller,
    "BrandName": product.publisher,
    "CategoryName": product.kind === "globe" ? "Глобусы" : "Карты",
    "DiscountPrice": listing.price,
    "OzonCardPrice": Math.round(listing.price * 0.95),
    "StockFbm": random.int(0, 100),
    "StockFbs": random.int(0, 30),
    "CrawlerError": null,
    "Currency": "RUB",
    "BasePrice": Math.round(listing.price * 1.4),
    "AvgRating": Math.round((3.6 + random.next() * 1.4) * 10) / 10,
    "Reviews": random.int(0, 400),
    "Description": listing.description,
    "RichContent": null,
    "card link": `https://www.ozon.ru/product/${listing.sku}/`,
    "SellerProductId": `ART-${random.int(10000, 99999)}`,
  };
}

/**
 * Renders each listing's JPEG into `dir` (4 at a time), except the `missing` ones, and cuts the
 * `corrupt` ones short; ticks `progress` once per listing and finishes it, also when a write fails.
 */
async function renderImages(
  listings: readonly DemoListing[],
  dir: string,
  options: {
    products: ReadonlyMap<string, DemoProduct>;
    missing: ReadonlySet<string>;
    corrupt: ReadonlySet<string>;
    progress?: ProgressSink;
  },
): Promise<void> {
  const limit = pLimit(4);
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Promise.all(listings.map((listing) =>
      limit(async () => {
        if (!options.missing.has(listing.imageId)) {
          const jpeg = await renderListingImage(options.products.get(listing.productId)!, {
            seed: listing.imageSeed,
            seller: listing.seller,
          });
          await writeFileAtomic(
            join(dir, `${listing.imageId}.jpg`),
            options.corrupt.has(listing.imageId) ? jpeg.slice(0, Math.floor(jpeg.length / 3)) : jpeg,
          );
        }
        await options.progress?.tick(1);
      })
    ));
  } catch (error) {
    await finishProgress(options.progress, error);
    throw error;
  }
  await finishProgress(options.progress);
}

/** Generates the catalogue and writes the demo marketplace files. */
export async function generateDemoMarketplace(options: DemoMarketplaceOptions = {}): Promise<DemoMarketplaceSummary> {
  const started = performance.now();
  const dataset = options.dataset ?? DEMO_DATASET;
  const layout = datasetLayout(dataset, options.outDir ?? dataDir());
  const catalog: DemoCatalog = generateCatalog({
    seed: options.seed ?? 42,
    listings: options.products,
    queries: options.queries,
  });
  const products = new Map(catalog.products.map((p) => [p.productId, p]));
  const fromData = relative(options.dataRoot ?? dataDir(), layout.sourceImagesDir).split(SEPARATOR).join("/");
  const insideData = fromData !== "" && !fromData.startsWith("..") && !isAbsolute(fromData);
  const baseUrl = options.imageBaseUrl ?? (insideData ? fromData : pathToFileURL(layout.sourceImagesDir + "/").href);
  const random = new SeededRandom(catalog.seed).fork("tables");

  // A few broken images, never the query seller's own.
  const brokenCount = options.brokenImages ?? Math.max(1, Math.round(catalog.listings.length * 0.002));
  const eligible = catalog.listings.filter((l) => l.seller !== QUERY_SELLER).map((l) => l.imageId);
  const broken = random.fork("broken").sample(eligible, brokenCount * 2);
  const missing = new Set(broken.slice(0, brokenCount));
  const corrupt = new Set(broken.slice(brokenCount));

  await renderImages(catalog.listings, layout.sourceImagesDir, {
    products,
    missing,
    corrupt,
    progress: options.progress,
  });

  const crawlerRows = catalog.listings.map((l) =>
    crawlerRow(l, products.get(l.productId)!, imageUrl(baseUrl, `${l.imageId}.jpg`), random)
  );
  const analyticsRows = catalog.listings.map((l) => analyticsRow(l, products.get(l.productId)!, random));
  const crawlerPath = join(layout.sourceDir, DEMO_CRAWLER_FILE);
  const analyticsPath = join(layout.sourceDir, DEMO_ANALYTICS_FILE);
  await writeXlsx(crawlerPath, CRAWLER_COLUMNS, crawlerRows, "crawler");
  await writeXlsx(analyticsPath, ANALYTICS_COLUMNS, analyticsRows, "analytics");

  const truth = pl.DataFrame({
    sku: catalog.listings.map((l) => String(l.sku)),
    product_id: catalog.listings.map((l) => l.productId),
    family_id: catalog.listings.map((l) => products.get(l.productId)!.familyId),
    seller: catalog.listings.map((l) => l.seller),
  });
  await Deno.mkdir(join(layout.groundTruth, ".."), { recursive: true });
  await writeFileAtomic(layout.groundTruth, new Uint8Array(truth.writeParquet()));

  return {
    dataset,
    listings: catalog.listings.length,
    products: catalog.products.length,
    sellers: catalog.sellers.length,
    querySkus: catalog.querySkus,
    missingImages: [...missing].map((id) => `${id}.jpg`),
    corruptImages: [...corrupt].map((id) => `${id}.jpg`),
    crawlerPath,
    analyticsPath,
    groundTruthPath: layout.groundTruth,
    seconds: (performance.now() - started) / 1000,
  };
}

/** A generation summary as one table row (lists as counts or space-separated SKUs, paths as shown to users). */
export function demoSummaryRow(summary: DemoMarketplaceSummary): Record<string, string | number> {
  return {
    ...summary,
    querySkus: summary.querySkus.length,
    missingImages: summary.missingImages.join(" "),
    corruptImages: summary.corruptImages.join(" "),
    crawlerPath: shownPath(summary.crawlerPath),
    analyticsPath: shownPath(summary.analyticsPath),
    groundTruthPath: shownPath(summary.groundTruthPath),
  };
}
