/**
 * Mapping a published dataset's attribute names onto the suite's product fields by name, and the
 * columns that must never become text or a feature because they identify the entity (the label in
 * disguise: WDC's `cluster_id`, any column mapped as a cluster or group).
 *
 * @module
 */
import type { ProductField } from "../import_pairs.ts";

/** Attribute names (lower-cased, with "_", "-", " " and "." removed) that each product field is read from. */
export const FIELD_SYNONYMS: Record<ProductField, readonly string[]> = {
  name: ["title", "name", "productname", "producttitle", "itemname"],
  description: ["description", "descr", "desc", "longdescription", "productdescription"],
  brand: ["brand", "manufacturer", "brandname", "maker"],
  price: ["price", "productprice", "listprice"],
  currency: ["currency", "pricecurrency"],
  image: ["image", "imageurl", "img", "imgurl", "picture"],
  cluster: ["clusterid", "cluster", "groupid", "entityid", "matchid"],
  category: ["category", "categories", "productcategory", "type"],
};

/** Attribute names that identify the record itself (kept as its id, never as text). */
export const ID_SYNONYMS: readonly string[] = ["id", "recordid", "offerid"];

const compact = (name: string) => name.toLowerCase().replace(/[\s_.-]+/g, "");

/** What `mapFieldsByName` found. */
export interface NameMapping {
  /** field -> the attribute it is read from. */
  fields: Partial<Record<ProductField, string>>;
  /** The attribute holding record ids, when one is named like an id. */
  id: string | null;
  /** Attributes that identify the entity (clusters, groups): never text, never a feature. */
  entityColumns: string[];
  /** Every other attribute: kept with its own name, usable as text. */
  attributes: string[];
}

/**
 * Maps attribute names to product fields by name (the first attribute matching each field's synonyms, in
 * the order given); `given` overrides the match of any field it names. Attributes mapped as `cluster`
 * are entity columns, as is any other attribute named like one.
 */
export function mapFieldsByName(
  columns: readonly string[],
  given: Partial<Record<ProductField | "id", string>> = {},
): NameMapping {
  const fields: Partial<Record<ProductField, string>> = {};
  for (const [field, synonyms] of Object.entries(FIELD_SYNONYMS) as [ProductField, readonly string[]][]) {
    if (given[field] !== undefined) {
      fields[field] = given[field];
      continue;
    }
    const match = synonyms.map((s) => columns.find((c) => compact(c) === s)).find((c) => c !== undefined);
    if (match !== undefined && !Object.values(fields).includes(match)) fields[field] = match;
  }
  const id = given.id ?? columns.find((c) => ID_SYNONYMS.includes(compact(c))) ?? null;
  const entityColumns = columns.filter((c) =>
    c === fields.cluster || FIELD_SYNONYMS.cluster.includes(compact(c)) || /^(cluster|group)(_|$)/i.test(c)
  );
  const mapped = new Set<string>([...Object.values(fields), ...(id === null ? [] : [id])]);
  const attributes = columns.filter((c) => !mapped.has(c) && !entityColumns.includes(c));
  return { fields, id, entityColumns, attributes };
}
