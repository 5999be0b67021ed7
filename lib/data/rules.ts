/**
 * The versioned per-query labelling rules (a JSON data file, `data/shipped/rules/<dataset>.rules.json`):
 *
 *   { "version": 1, "size_margin": 0.2, "must_not": [<patterns for every query>],
 *     "queries": { "<query sku>": { "must": [...], "must_not": [...], "sizes"?: ["100x70"], "note"?: "..." } } }
 *
 * Patterns are JavaScript regular expressions, matched case-insensitively (flags "iu") against
 * the product text `name + ". " + description`. When "sizes" is absent the query's sizes are
 * parsed from its own text, as in the reference.
 */
import { parseSize, type ProductSize } from "./sizes.ts";

/** The current rules format version. */
export const RULES_VERSION = 1;

/** One query's rule as stored. */
export interface QueryRule {
  must: string[];
  must_not?: string[];
  sizes?: string[];
  note?: string;
}

/** A rules file as stored. */
export interface RulesFile {
  version: number;
  dataset?: string;
  size_margin: number;
  must_not?: string[];
  queries: Record<string, QueryRule>;
}

/** A rule ready to apply: compiled patterns. */
export interface CompiledRule {
  querySku: string;
  must: RegExp[];
  mustNot: RegExp[];
  sizes: ProductSize[] | null;
  note: string;
}

/** Compiled rules of a dataset. */
export interface CompiledRules {
  version: number;
  sizeMargin: number;
  queries: Map<string, CompiledRule>;
}

function compile(pattern: unknown, where: string): RegExp {
  if (typeof pattern !== "string" || pattern === "") throw new Error(`${where}: a pattern must be a non-empty string`);
  try {
    return new RegExp(pattern, "iu");
  } catch (error) {
    throw new Error(`${where}: invalid regular expression ${JSON.stringify(pattern)} (${(error as Error).message})`);
  }
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${where} must be a list of strings`);
  return value as string[];
}

/** Validates and compiles a rules object; `source` names the file in errors. */
export function compileRules(raw: unknown, source = "rules"): CompiledRules {
  const file = raw as Partial<RulesFile>;
  if (!file || typeof file !== "object") throw new Error(`${source}: not a JSON object`);
  if (file.version !== RULES_VERSION) {
    throw new Error(
      `${source}: "version" is ${JSON.stringify(file.version)}, this code reads version ${RULES_VERSION}`,
    );
  }
  const margin = file.size_margin ?? 0.2;
  if (typeof margin !== "number" || !(margin >= 0 && margin < 1)) {
    throw new Error(`${source}: "size_margin" must be a fraction in [0, 1), got ${JSON.stringify(margin)}`);
  }
  if (!file.queries || typeof file.queries !== "object") {
    throw new Error(`${source}: "queries" must be an object keyed by query SKU`);
  }
  const common = stringList(file.must_not, `${source}: "must_not"`).map((p, i) =>
    compile(p, `${source}: must_not[${i}]`)
  );
  const queries = new Map<string, CompiledRule>();
  for (const [sku, rule] of Object.entries(file.queries)) {
    const where = `${source}: query ${sku}`;
    if (!/^\d+$/.test(sku)) throw new Error(`${where}: the key must be a SKU (digits only)`);
    const must = stringList(rule.must, `${where} "must"`);
    if (must.length === 0) throw new Error(`${where}: "must" needs at least one pattern`);
    const sizes = rule.sizes === undefined ? null : stringList(rule.sizes, `${where} "sizes"`).map((s) => {
      try {
        return parseSize(s);
      } catch (error) {
        throw new Error(`${where}: ${(error as Error).message}`);
      }
    });
    queries.set(sku, {
      querySku: sku,
      must: must.map((p, i) => compile(p, `${where} must[${i}]`)),
      mustNot: [
        ...common,
        ...stringList(rule.must_not, `${where} "must_not"`).map((p, i) => compile(p, `${where} must_not[${i}]`)),
      ],
      sizes,
      note: rule.note ?? "",
    });
  }
  return { version: file.version, sizeMargin: margin, queries };
}

/** Reads and compiles a rules file. */
export async function loadRules(path: string): Promise<CompiledRules> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new Error(
      `rules file ${path} not found; write one (see lib/data/rules.ts for the format) or pass RULES_PATH`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return compileRules(raw, path);
}
