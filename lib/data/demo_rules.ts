/**
 * Writes the demo's labelling rules the way a person would by hand: a few word stems per query
 * (kind, subject, theme, finish, diameter) and the usual exclusions. They are deliberately no
 * smarter than the reference's rules — abbreviations ("полит.") and synonyms ("ландшафтный",
 * "РФ") slip past them and other publishers' look-alikes pass them — so the labeller's precision
 * and recall on the demo are realistic, not 1.0. The shipped file
 * `data/shipped/rules/demo_geo.rules.json` is this function's output for the default seed.
 */
import type { DemoCatalog, DemoProduct } from "./demo_catalog.ts";
import { QUERY_SELLER } from "./demo_catalog.ts";
import { SeededRandom } from "./random.ts";
import { type QueryRule, RULES_VERSION, type RulesFile } from "./rules.ts";

const SUBJECT_STEMS: Record<string, string> = {
  world: "мира",
  russia: "росси",
  europe: "европ",
  asia: "азии",
  hemispheres: "полушари",
  stars: "зв[её]здн",
};
const THEME_STEMS: Record<string, string> = {
  political: "политическ",
  physical: "физическ",
  administrative: "административн",
};

function ruleFor(product: DemoProduct, random: SeededRandom): QueryRule {
  const must: string[] = [];
  const mustNot: string[] = [];
  const otherThemes = Object.entries(THEME_STEMS).filter(([theme]) => theme !== product.theme).map(([, stem]) => stem);
  if (product.kind === "wall_map") {
    must.push("карт", SUBJECT_STEMS[product.subject]);
    if (product.theme !== "none") must.push(THEME_STEMS[product.theme]);
    mustNot.push(...otherThemes, "скретч", "стираем", "контурн", "глобус", "атлас", "двусторон", "фотообо");
    if (product.laminated) must.push("ламин");
    else if (random.chance(0.5)) mustNot.push("ламинир");
  } else if (product.kind === "globe") {
    must.push("глобус", `(^|\\D)${product.diameterCm}\\s*см|${(product.diameterCm ?? 0) * 10}\\s*мм`);
    if (product.subject === "stars") must.push(SUBJECT_STEMS.stars);
    if (product.theme !== "none") must.push(THEME_STEMS[product.theme]);
    mustNot.push(...otherThemes);
    if (product.backlight) must.push("подсвет");
    else mustNot.push("подсвет");
  } else if (product.kind === "scratch_map") {
    must.push("скретч|стираем", product.finish === "gold" ? "золот|gold" : "серебр|silver");
    mustNot.push(product.finish === "gold" ? "серебр|silver" : "золот|gold");
  } else {
    must.push(product.kind === "atlas" ? "атлас" : "контурн", SUBJECT_STEMS[product.subject]);
  }
  // Some rule writers also pin the publisher (it is usually in the description).
  if (random.chance(0.5)) must.push(product.publisher.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return { must, must_not: mustNot, note: `${product.productId}: ${product.kind} ${product.subject} ${product.theme}` };
}

/** Rules for every query product of the catalogue (keys are the query seller's SKUs). */
export function demoRules(catalog: DemoCatalog, dataset = "demo_geo"): RulesFile {
  const random = new SeededRandom(catalog.seed).fork("rules");
  const products = new Map(catalog.products.map((p) => [p.productId, p]));
  const queries: Record<string, QueryRule> = {};
  const queryListings = catalog.listings.filter((l) => l.seller === QUERY_SELLER).sort((a, b) => a.sku - b.sku);
  for (const listing of queryListings) queries[String(listing.sku)] = ruleFor(products.get(listing.productId)!, random);
  return {
    version: RULES_VERSION,
    dataset,
    size_margin: 0.2,
    must_not: ["([2-9]|\\d{2,})\\s*шт"],
    queries,
  };
}
