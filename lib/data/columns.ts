/**
 * Column names of the two source exports and their normalisation.
 *
 * The crawler export's 19 columns and the analytics export's first columns are those of the real
 * OZ_geo_5500 exports (see docs/reference-system.md, "Data"). The reference names only part of the
 * analytics export's 42 columns; the rest below are invented in the style of a Russian marketplace
 * analytics export (MPStats-like) so the demo has the same width. The pipeline needs only
 * `REQUIRED_CRAWLER_COLUMNS` and `REQUIRED_ANALYTICS_COLUMNS`; other columns pass through.
 */

/** The crawler export's columns, in order. */
export const CRAWLER_COLUMNS = [
  "Sku",
  "CoverImage",
  "ProductName",
  "SellerName",
  "BrandName",
  "CategoryName",
  "DiscountPrice",
  "OzonCardPrice",
  "StockFbm",
  "StockFbs",
  "CrawlerError",
  "Currency",
  "BasePrice",
  "AvgRating",
  "Reviews",
  "Description",
  "RichContent",
  "card link",
  "SellerProductId",
] as const;

/** The analytics export's 42 columns, in order (partly invented, see the module comment). */
export const ANALYTICS_COLUMNS = [
  "SKU",
  "Name",
  "Category",
  "scheme",
  "Brand",
  "Niche",
  "Seller",
  "Balance",
  "Balance FBS",
  "Warehouses count",
  "Comments",
  "Final price",
  "Max price",
  "Min price",
  "Average price",
  "Median price",
  "Card price",
  "Sales",
  "Revenue",
  "Revenue potential",
  "Lost profit",
  "Lost profit percent",
  "Days in stock",
  "Days with sales",
  "Average if in stock",
  "Rating",
  "Base price",
  "Turnover",
  "Turnover days",
  "Sales per day average",
  "Frozen stocks",
  "Frozen stocks cost",
  "Frozen stocks percent",
  "Country of origin",
  "First date",
  "Category position",
  "Categories last count",
  "Search position avg",
  "Pictures count",
  "Video",
  "Thumb",
  "Url",
] as const;

/** Crawler columns the merge needs (normalised names). */
export const REQUIRED_CRAWLER_COLUMNS = ["sku", "cover_image", "description"] as const;
/** Analytics columns the merge needs (normalised names). */
export const REQUIRED_ANALYTICS_COLUMNS = ["sku", "name", "seller", "balance", "balance_fbs"] as const;

/** Analytics columns read as numbers (normalised names); unusable values are reported and nulled. */
export const NUMERIC_ANALYTICS_COLUMNS = [
  "balance",
  "balance_fbs",
  "warehouses_count",
  "comments",
  "final_price",
  "max_price",
  "min_price",
  "average_price",
  "median_price",
  "card_price",
  "sales",
  "revenue",
  "revenue_potential",
  "lost_profit",
  "lost_profit_percent",
  "days_in_stock",
  "days_with_sales",
  "average_if_in_stock",
  "rating",
  "base_price",
  "turnover",
  "turnover_days",
  "sales_per_day_average",
  "frozen_stocks",
  "frozen_stocks_cost",
  "frozen_stocks_percent",
  "category_position",
  "categories_last_count",
  "search_position_avg",
  "pictures_count",
] as const;

/**
 * Normalises a column name: trimmed, camelCase split, lower-case, runs of anything but letters
 * and digits become one "_" ("CoverImage" -> "cover_image", "Balance FBS" -> "balance_fbs",
 * "card link" -> "card_link", "SKU" -> "sku").
 */
export function normalizeColumnName(name: string): string {
  return String(name)
    .trim()
    .replace(/([a-zа-яё0-9])([A-ZА-ЯЁ])/gu, "$1_$2")
    .toLowerCase()
    .replace(/[^a-zа-яё0-9]+/gu, "_")
    .replace(/^_+|_+$/g, "");
}

/**
 * Renames applied after normalisation: the analytics "Balance" is the FBO stock (the merged table
 * then has `balance = balance_fbo + balance_fbs`), the crawler's cover image is the image URL.
 */
export const ANALYTICS_RENAMES: Record<string, string> = { balance: "balance_fbo" };
/** Crawler columns kept in the merged table, normalised name -> output name. */
export const CRAWLER_KEPT: Record<string, string> = { description: "description", cover_image: "image_url" };
