/**
 * The demo marketplace's catalogue, as plain data (no files): products (true identities) and
 * listings (one per seller SKU) in the real data's domain — wall maps, globes, atlases, scratch
 * maps, contour maps. Seeded and deterministic.
 *
 * Each of the query products (60 by default) is sold by the query seller ИНТЕРТРЕЙД and listed by several other
 * sellers under varied names (word order, synonyms, abbreviations, size formats); each query gets
 * close variants that are different products (another size, the other theme, laminated, a set of
 * 2, another publisher, a backlit globe): the hard negatives. The rest of the catalogue is
 * background products listed by 1-5 sellers.
 */
import { SeededRandom } from "./random.ts";

/** The query seller of the suite. */
export const QUERY_SELLER = "ИНТЕРТРЕЙД";

/** Kinds of products in the catalogue. */
export type ProductKind = "wall_map" | "globe" | "atlas" | "scratch_map" | "contour_map";
/** Map subjects. */
export type Subject = "world" | "russia" | "europe" | "hemispheres" | "stars" | "asia";
/** Map themes. */
export type Theme = "political" | "physical" | "administrative" | "none";

/** One true product (what a buyer gets), shared by all its listings. */
export interface DemoProduct {
  productId: string;
  /** Products of one family differ only in size, lamination, set size, publisher or backlight. */
  familyId: string;
  kind: ProductKind;
  subject: Subject;
  theme: Theme;
  publisher: string;
  /** Wall/scratch/contour maps: width × height in cm (width >= height). */
  size: { width: number; height: number } | null;
  /** Globes: diameter in cm. */
  diameterCm: number | null;
  /** Atlases and contour maps: school grade. */
  grade: number | null;
  laminated: boolean;
  /** 1, or 2 for "a set of 2". */
  setOf: number;
  backlight: boolean;
  /** Scratch maps: "gold" or "silver". */
  finish: "gold" | "silver" | null;
  /** Base price in roubles. */
  basePrice: number;
  /** True for the products the query seller sells. */
  isQuery: boolean;
}

/** One seller's listing of a product (one SKU, one row of the exports). */
export interface DemoListing {
  sku: number;
  productId: string;
  seller: string;
  name: string;
  description: string;
  imageId: string;
  price: number;
  /** Per-seller image variation seed. */
  imageSeed: number;
}

/** The whole generated catalogue. */
export interface DemoCatalog {
  seed: number;
  products: DemoProduct[];
  listings: DemoListing[];
  sellers: string[];
  /** SKUs of the query seller's listings. */
  querySkus: number[];
}

const PUBLISHERS = [
  "РУЗ Ко",
  "Геодом",
  "АГТ Геоцентр",
  "Globen",
  "Ди Эм Би",
  "Атлас Принт",
  "Карта-Люкс",
  "Юнирон",
  "Роскартография",
  "Картографика",
  "ГеоПринт",
  "Новая Картография",
];
const MAP_SIZES: [number, number][] = [[100, 70], [120, 80], [150, 100], [60, 40], [90, 60], [200, 140], [158, 107], [
  130,
  90,
]];
const SCRATCH_SIZES: [number, number][] = [[82, 59], [60, 40], [42, 30]];
const CONTOUR_SIZES: [number, number][] = [[30, 21], [42, 30]];
const GLOBE_DIAMETERS = [21, 25, 32, 42];

const SELLER_PARTS_A = ["Гео", "Карто", "Мир", "Глобус", "Атлас", "Школ", "Книж", "Учеб", "Офис", "Планета"];
const SELLER_PARTS_B = ["Маркет", "Шоп", "Торг", "Центр", "Дом", "Лавка", "Склад", "Плюс", "Трейд", "Мастер"];

/**
 * Default size of the demo marketplace: 4,500 listings (the real OZ_geo_5500 has ~5,500) and 60 query
 * products. 60 rather than the real data's 23 because a split by query leaves the model only 60% of
 * them to learn from and 20% to test on: with 20 queries (10 to train on, 5 to test on) the trained
 * head did not beat the zero-shot baseline's pair ROC AUC; with 60 (about 30 / 15) it led by 0.05-0.08
 * on the three splits measured, and the test numbers rest on ~15 queries, not 5 (README.md).
 */
export const DEMO_LISTINGS = 4500;
export const DEMO_QUERIES = 60;

/** Generator options. */
export interface CatalogOptions {
  seed?: number;
  /** Number of listings (SKUs, rows of the exports), default DEMO_LISTINGS. */
  listings?: number;
  /** Number of query products, default DEMO_QUERIES. */
  queries?: number;
  /** Number of sellers besides the query seller, default 60. */
  sellers?: number;
}

function productKey(p: Omit<DemoProduct, "productId" | "familyId" | "basePrice" | "isQuery">): string {
  return [
    p.kind,
    p.subject,
    p.theme,
    p.publisher,
    p.size ? `${p.size.width}x${p.size.height}` : "",
    p.diameterCm ?? "",
    p.grade ?? "",
    p.laminated,
    p.setOf,
    p.backlight,
    p.finish ?? "",
  ].join("|");
}

function basePriceOf(
  p: Omit<DemoProduct, "productId" | "familyId" | "basePrice" | "isQuery">,
  random: SeededRandom,
): number {
  let price = 250;
  if (p.size) price = 150 + (p.size.width * p.size.height) / 25;
  if (p.diameterCm) price = p.diameterCm * 45 + (p.backlight ? 900 : 0);
  if (p.kind === "atlas") price = 250 + random.int(0, 300);
  if (p.laminated) price *= 1.6;
  price *= p.setOf;
  return Math.round(price * (0.85 + 0.3 * random.next()) / 10) * 10;
}

/** Each publisher prints wall maps in its own three formats (as real publishers do). */
function publisherSizes(publisher: string): [number, number][] {
  const random = new SeededRandom(
    [...publisher].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261),
  );
  return random.sample(MAP_SIZES, 3);
}

type Spec = Omit<DemoProduct, "productId" | "familyId" | "basePrice" | "isQuery">;

function randomSpec(random: SeededRandom, kind: ProductKind): Spec {
  const publisher = random.pick(PUBLISHERS);
  const base: Spec = {
    kind,
    subject: "world",
    theme: "none",
    publisher,
    size: null,
    diameterCm: null,
    grade: null,
    laminated: false,
    setOf: 1,
    backlight: false,
    finish: null,
  };
  if (kind === "wall_map") {
    const subject = random.pick<Subject>([
      "world",
      "world",
      "world",
      "russia",
      "russia",
      "europe",
      "hemispheres",
      "stars",
      "asia",
    ]);
    const theme: Theme = subject === "stars"
      ? "none"
      : subject === "russia"
      ? random.pick<Theme>(["political", "physical", "administrative"])
      : random.pick<Theme>(["political", "physical"]);
    const [width, height] = random.pick(publisherSizes(publisher));
    return { ...base, subject, theme, size: { width, height }, laminated: random.chance(0.3) };
  }
  if (kind === "globe") {
    const subject = random.pick<Subject>(["world", "world", "world", "stars"]);
    return {
      ...base,
      subject,
      theme: subject === "stars" ? "none" : random.pick<Theme>(["political", "physical"]),
      diameterCm: random.pick(GLOBE_DIAMETERS),
      backlight: random.chance(0.3),
    };
  }
  if (kind === "scratch_map") {
    const [width, height] = random.pick(SCRATCH_SIZES);
    return { ...base, subject: "world", size: { width, height }, finish: random.pick(["gold", "silver"] as const) };
  }
  if (kind === "contour_map") {
    const [width, height] = random.pick(CONTOUR_SIZES);
    return {
      ...base,
      subject: random.pick<Subject>(["world", "russia"]),
      size: { width, height },
      grade: random.int(5, 9),
    };
  }
  return { ...base, subject: random.pick<Subject>(["world", "russia"]), grade: random.int(5, 10) };
}

/** The close variants of a query spec that are different products (the hard negatives). */
function variantsOf(spec: Spec, random: SeededRandom): Spec[] {
  const out: Spec[] = [];
  if (spec.size && spec.kind !== "contour_map") {
    const sizes = (spec.kind === "scratch_map" ? SCRATCH_SIZES : MAP_SIZES).filter(([w, h]) =>
      !(w === spec.size!.width && h === spec.size!.height)
    );
    for (const [width, height] of random.sample(sizes, 2)) out.push({ ...spec, size: { width, height } });
  }
  if (spec.kind === "wall_map") {
    out.push({ ...spec, laminated: !spec.laminated });
    out.push({ ...spec, setOf: 2 });
    if (spec.theme === "political" || spec.theme === "physical") {
      out.push({ ...spec, theme: spec.theme === "political" ? "physical" : "political" });
    }
  }
  if (spec.kind === "globe") {
    out.push({ ...spec, backlight: !spec.backlight });
    out.push({ ...spec, diameterCm: random.pick(GLOBE_DIAMETERS.filter((d) => d !== spec.diameterCm)) });
    if (spec.theme !== "none") out.push({ ...spec, theme: spec.theme === "political" ? "physical" : "political" });
  }
  if (spec.kind === "scratch_map") out.push({ ...spec, finish: spec.finish === "gold" ? "silver" : "gold" });
  out.push({ ...spec, publisher: random.pick(PUBLISHERS.filter((p) => p !== spec.publisher)) });
  return out;
}

function makeSellers(random: SeededRandom, count: number): string[] {
  const names = new Set<string>();
  const surnames = ["Иванов", "Петрова", "Сидоров", "Кузнецова", "Смирнов", "Попова", "Волков", "Соколова"];
  while (names.size < count) {
    const form = random.int(0, 3);
    if (form === 0) names.add(`ООО ${random.pick(SELLER_PARTS_A)}${random.pick(SELLER_PARTS_B).toLowerCase()}`);
    else if (form === 1) names.add(`ИП ${random.pick(surnames)} ${String.fromCharCode(1040 + random.int(0, 31))}.`);
    else {names.add(
        `${random.pick(SELLER_PARTS_A)}${random.pick(SELLER_PARTS_B)}${
          random.chance(0.3) ? " " + random.int(1, 99) : ""
        }`,
      );}
  }
  return [...names].filter((n) => n !== QUERY_SELLER);
}

/** Builds the catalogue. Same options, same catalogue. */
export function generateCatalog(options: CatalogOptions = {}): DemoCatalog {
  const seed = options.seed ?? 42;
  const totalListings = options.listings ?? DEMO_LISTINGS;
  const queryCount = options.queries ?? DEMO_QUERIES;
  const random = new SeededRandom(seed);
  const sellers = makeSellers(random.fork("sellers"), options.sellers ?? 60);
  const products: DemoProduct[] = [];
  const byKey = new Map<string, DemoProduct>();
  const listingsPlan: { product: DemoProduct; seller: string }[] = [];
  const usedPairs = new Set<string>();
  const structure = random.fork("structure");
  let familyCounter = 0;

  const addProduct = (spec: Spec, familyId: string, isQuery = false): DemoProduct => {
    const key = productKey(spec);
    const existing = byKey.get(key);
    if (existing) {
      existing.isQuery ||= isQuery;
      return existing;
    }
    const product: DemoProduct = {
      ...spec,
      productId: `P${String(products.length + 1).padStart(5, "0")}`,
      familyId,
      basePrice: basePriceOf(spec, structure),
      isQuery,
    };
    products.push(product);
    byKey.set(key, product);
    return product;
  };
  const list = (product: DemoProduct, count: number): void => {
    for (const seller of structure.sample(sellers, count)) {
      const key = `${product.productId}|${seller}`;
      if (usedPairs.has(key)) continue;
      usedPairs.add(key);
      listingsPlan.push({ product, seller });
    }
  };

  // Query products, their other sellers, and their hard-negative variants.
  const queryProducts: DemoProduct[] = [];
  while (queryProducts.length < queryCount) {
    const kind = structure.pick<ProductKind>(["wall_map", "wall_map", "wall_map", "wall_map", "globe", "scratch_map"]);
    const spec = { ...randomSpec(structure, kind), setOf: 1 };
    if (byKey.has(productKey(spec))) continue;
    const familyId = `F${String(++familyCounter).padStart(4, "0")}`;
    const product = addProduct(spec, familyId, true);
    queryProducts.push(product);
    listingsPlan.push({ product, seller: QUERY_SELLER });
    list(product, structure.int(3, 24));
    for (const variant of variantsOf(spec, structure)) list(addProduct(variant, familyId), structure.int(1, 6));
  }
  // Background products until the listing count is reached.
  while (listingsPlan.length < totalListings) {
    const kind = structure.pick<ProductKind>([
      "wall_map",
      "wall_map",
      "wall_map",
      "wall_map",
      "wall_map",
      "wall_map",
      "globe",
      "globe",
      "globe",
      "globe",
      "atlas",
      "atlas",
      "scratch_map",
      "contour_map",
      "contour_map",
    ]);
    const spec = randomSpec(structure, kind);
    const familyId = `F${String(++familyCounter).padStart(4, "0")}`;
    const product = addProduct(spec, byKey.get(productKey(spec))?.familyId ?? familyId);
    list(product, Math.min(structure.int(1, 5), totalListings - listingsPlan.length));
  }

  const text = random.fork("text");
  const ids = random.fork("ids");
  const usedSkus = new Set<number>();
  const usedImages = new Set<string>();
  const listings: DemoListing[] = listingsPlan.map(({ product, seller }) => {
    let sku: number;
    do sku = ids.int(100_000_000, 1_999_999_999); while (usedSkus.has(sku));
    usedSkus.add(sku);
    let imageId: string;
    do imageId = String(ids.int(6_000_000_000, 7_999_999_999)); while (usedImages.has(imageId));
    usedImages.add(imageId);
    const style = sellerStyle(seller);
    return {
      sku,
      productId: product.productId,
      seller,
      name: listingName(product, style, text),
      description: listingDescription(product, style, text, products),
      imageId,
      price: Math.round(product.basePrice * (0.8 + 0.5 * text.next()) / 10) * 10 - 1,
      imageSeed: ids.int(0, 2 ** 31 - 1),
    };
  });
  // Shuffle rows so the exports are not grouped by product.
  const shuffled = random.fork("rows").shuffle(listings);
  return {
    seed,
    products,
    listings: shuffled,
    sellers: [QUERY_SELLER, ...sellers],
    querySkus: shuffled.filter((l) => l.seller === QUERY_SELLER).map((l) => l.sku),
  };
}

/** A seller's writing habits (derived from its name, so all its listings read alike). */
interface SellerStyle {
  abbreviate: number;
  sizeFormat: number;
  omitSize: number;
  brandInName: number;
}

function sellerStyle(seller: string): SellerStyle {
  const random = new SeededRandom([...seller].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261));
  if (seller === QUERY_SELLER) return { abbreviate: 0, sizeFormat: 0, omitSize: 0, brandInName: 1 };
  return {
    abbreviate: random.next() * 0.5,
    sizeFormat: random.int(0, 6),
    omitSize: random.next() * 0.15,
    brandInName: random.next(),
  };
}

const SUBJECT_WORDS: Record<Subject, string[]> = {
  world: ["мира", "мира", "Мира", "мира (World)"],
  russia: ["России", "России", "Российской Федерации", "РФ"],
  europe: ["Европы", "Европы", "Зарубежной Европы"],
  hemispheres: ["полушарий", "полушарий", "двух полушарий"],
  stars: ["звёздного неба", "звездного неба", "звёздного неба"],
  asia: ["Азии", "Азии", "Зарубежной Азии"],
};

function themeWord(theme: Theme, masculine: boolean, random: SeededRandom, abbreviate: number): string {
  if (theme === "none") return "";
  const short = random.chance(abbreviate);
  if (theme === "political") return short ? "полит." : masculine ? "политический" : "политическая";
  if (theme === "physical") {
    if (short) return "физ.";
    return masculine ? random.pick(["физический", "физический", "ландшафтный"]) : "физическая";
  }
  return short ? "адм." : "административная";
}

/** Writes a size in one of the formats sellers use. */
export function formatSizeText(width: number, height: number, format: number): string {
  switch (format % 7) {
    case 0:
      return `${width}x${height} см`;
    case 1:
      return `${width}х${height}см`;
    case 2:
      return `${width * 10}×${height * 10} мм`;
    case 3:
      return `${height} на ${width} см`;
    case 4:
      return `${width}*${height}`;
    case 5:
      return `${(width / 100).toFixed(2).replace(".", ",")} x ${(height / 100).toFixed(2).replace(".", ",")} м`;
    default:
      return `${width} x ${height} см`;
  }
}

function diameterText(diameter: number, random: SeededRandom): string {
  return random.pick([`диаметр ${diameter} см`, `d=${diameter} см`, `Ø${diameter * 10} мм`, `${diameter} см`]);
}

function setText(random: SeededRandom): string {
  return random.pick(["набор 2 шт", "2 шт.", "комплект из 2 карт", "(2 штуки)"]);
}

function listingName(p: DemoProduct, style: SellerStyle, random: SeededRandom): string {
  const parts: string[] = [];
  const subject = random.pick(SUBJECT_WORDS[p.subject]);
  const size = p.size && !random.chance(style.omitSize)
    ? formatSizeText(p.size.width, p.size.height, random.chance(0.7) ? style.sizeFormat : random.int(0, 6))
    : "";
  const brand = random.chance(style.brandInName) ? p.publisher : "";
  if (p.kind === "wall_map") {
    const theme = themeWord(p.theme, false, random, style.abbreviate);
    const head = random.pick(["Настенная карта", "Карта настенная", "Карта", "Географическая карта", "Карта на стену"]);
    const order = random.int(0, 2);
    if (order === 0) parts.push(head, theme ? `${subject} ${theme}` : subject);
    else if (order === 1) parts.push(theme ? `${capitalize(theme)} ${lower(head)}` : head, subject);
    else parts.push(head, subject, theme);
    if (size) parts.push(size);
    if (p.laminated) parts.push(random.pick(["ламинированная", "с ламинацией", "ламин.", "(ламинация)"]));
    if (p.setOf > 1) parts.push(setText(random));
  } else if (p.kind === "globe") {
    const theme = themeWord(p.theme, true, random, style.abbreviate);
    const what = p.subject === "stars"
      ? random.pick(["звёздного неба", "звездного неба"])
      : random.pick(["Земли", "", "мира"]);
    parts.push(
      random.pick(["Глобус", "Глобус настольный", "Настольный глобус"]),
      what,
      theme,
      diameterText(p.diameterCm ?? 32, random),
    );
    if (p.backlight) parts.push(random.pick(["с подсветкой", "с LED подсветкой", "светящийся"]));
  } else if (p.kind === "scratch_map") {
    parts.push(
      random.pick(["Скретч-карта мира", "Скретч карта мира", "Стираемая карта мира", "Скретч-карта мира путешествий"]),
    );
    if (size) parts.push(size);
    parts.push(
      p.finish === "gold"
        ? random.pick(["золотая", "gold", "золото"])
        : random.pick(["серебряная", "silver", "серебро"]),
    );
  } else if (p.kind === "contour_map") {
    parts.push(random.pick(["Контурная карта", "Контурные карты"]), subject, `${p.grade} класс`);
    if (size) parts.push(`формат ${size}`);
  } else {
    parts.push(
      random.pick(["Атлас", "Атлас географический", "Школьный атлас"]),
      subject,
      random.pick([`${p.grade} класс`, `для ${p.grade} класса`, `${p.grade} кл.`]),
    );
  }
  if (brand) parts.push(random.chance(0.5) ? brand : `(${brand})`);
  return parts.filter((x) => x !== "").join(" ").replace(/\s+/g, " ").trim();
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
function lower(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function listingDescription(p: DemoProduct, style: SellerStyle, random: SeededRandom, all: DemoProduct[]): string {
  const sentences: string[] = [];
  const kindText: Record<ProductKind, string> = {
    wall_map: "Настенная карта",
    globe: "Глобус",
    atlas: "Атлас",
    scratch_map: "Скретч-карта",
    contour_map: "Контурная карта",
  };
  sentences.push(random.chance(0.85) ? `${kindText[p.kind]} от издательства ${p.publisher}.` : `${kindText[p.kind]}.`);
  if (p.size && !random.chance(style.omitSize)) {
    sentences.push(`Размер: ${formatSizeText(p.size.width, p.size.height, random.int(0, 6))}.`);
  }
  if (p.diameterCm) sentences.push(`Диаметр шара ${p.diameterCm} см, подставка из пластика.`);
  if (p.kind === "wall_map") {
    sentences.push(random.pick([
      `Масштаб 1:${random.pick(["15 000 000", "20 000 000", "25 000 000", "32 000 000"])}.`,
      "Актуальные границы государств.",
      "Печать на плотной бумаге.",
    ]));
    if (p.laminated) sentences.push("Покрытие: ламинированная плёнка, можно писать маркером.");
    if (p.setOf > 1) {
      sentences.push(random.pick(["В наборе 2 карты.", "Комплект: 2 шт.", "Две одинаковые карты в комплекте."]));
    }
  }
  if (p.backlight) sentences.push("Встроенная подсветка, питание от сети.");
  if (p.kind === "scratch_map") sentences.push("Сотрите защитный слой со стран, в которых вы побывали. В тубусе.");
  sentences.push(random.pick([
    "Подходит для школы, офиса и дома.",
    "Отличный подарок путешественнику.",
    "Доставка в тубусе.",
    "Для учебных кабинетов.",
  ]));
  // Some sellers advertise another product in the description: realistic noise for the labeller.
  if (random.chance(0.08)) {
    const other = random.pick(all);
    if (other.size) {
      sentences.push(
        `Смотрите также: ${kindText[other.kind].toLowerCase()} ${other.theme === "physical" ? "физическая " : ""}${
          formatSizeText(other.size.width, other.size.height, 0)
        }.`,
      );
    }
  }
  return sentences.join(" ");
}
