/**
 * Fixtures in the published entity-matching shapes (not a test file itself), written by the tests into
 * temp folders: a Ditto folder (train/valid/test.txt) and a Magellan/DeepMatcher folder (tableA.csv,
 * tableB.csv, train/valid/test.csv). Twelve products, each a left and a right record spelt differently;
 * records recur across the splits' pairs (as in the published benchmarks), pairs never do. Made up here:
 * no public benchmark's data.
 */
import { join } from "node:path";

const BRANDS = ["sony", "canon", "bosch", "philips", "garmin", "logitech"];
const KINDS = ["bravia tv", "eos camera", "drill", "kettle", "watch", "headset"];

/** Product p's record on one side: the left and right tables spell it differently. */
export function record(p: number, side: "left" | "right") {
  const model = `${BRANDS[p % 6].slice(0, 2)}${100 + p}`;
  return side === "left"
    ? {
      title: `${BRANDS[p % 6]} ${KINDS[p % 6]} ${model}`,
      manufacturer: BRANDS[p % 6],
      price: `${20 + p}.0`,
      modelno: model,
    }
    : {
      title: `${KINDS[p % 6]} ${model.toUpperCase()} by ${BRANDS[p % 6]}`,
      manufacturer: "",
      price: `${21 + p}`,
      modelno: model,
    };
}

/** Split -> the products whose positive pair it holds. */
export const SPLIT_POSITIVES = { train: [0, 1, 2, 3, 4, 5], valid: [6, 7, 8], test: [9, 10, 11] };

/**
 * The pairs of a split: each product with its own right record (1) and with product p+3's (0). Negatives
 * reach into the other splits' products, so records recur across splits (right records 6-8 are in train
 * and val, 9-11 in val and test, 0-2 in test and train) while no pair does.
 */
export function splitPairs(split: keyof typeof SPLIT_POSITIVES): [number, number, 0 | 1][] {
  return SPLIT_POSITIVES[split].flatMap((p) => [[p, p, 1], [p, (p + 3) % 12, 0]] as [number, number, 0 | 1][]);
}

const dittoEntity = (values: Record<string, string>) =>
  Object.entries(values).map(([k, v]) => `COL ${k} VAL ${v}`).join(" ");

/** A Ditto folder; with `malformed`, valid.txt line 4 has no right entity. */
export async function writeDittoFixture(dir: string, { malformed = true } = {}): Promise<string> {
  for (const split of ["train", "valid", "test"] as const) {
    const lines = splitPairs(split).map(([a, b, label]) =>
      `${dittoEntity(record(a, "left"))} \t${dittoEntity(record(b, "right"))} \t${label}`
    );
    if (split === "valid" && malformed) lines.splice(3, 0, `${dittoEntity(record(1, "left"))}\t1`); // line 4: no right entity
    await Deno.writeTextFile(join(dir, `${split}.txt`), lines.join("\n") + "\n");
  }
  return dir;
}

const csv = (rows: Record<string, string | number>[]) => {
  const columns = Object.keys(rows[0]);
  const quote = (v: unknown) => `"${String(v).replaceAll('"', '""')}"`;
  return [columns.join(","), ...rows.map((r) => columns.map((c) => quote(r[c])).join(","))].join("\n") + "\n";
};

/** A Magellan folder; with `badRow`, test.csv row 3 names a right id that tableB.csv lacks. */
export async function writeMagellanFixture(dir: string, { badRow = false } = {}): Promise<string> {
  // Both tables number their records from 0; the right table lists them in another order.
  const left = Array.from({ length: 12 }, (_, p) => ({ id: p, ...record(p, "left"), cluster_id: `c${p}` }));
  const rightOrder = Array.from({ length: 12 }, (_, i) => (i * 5) % 12);
  const right = rightOrder.map((p, i) => ({ id: i, ...record(p, "right"), cluster_id: `c${p}` }));
  await Deno.writeTextFile(join(dir, "tableA.csv"), csv(left));
  await Deno.writeTextFile(join(dir, "tableB.csv"), csv(right));
  for (const split of ["train", "valid", "test"] as const) {
    const rows = splitPairs(split).map(([a, b, label]) => ({
      ltable_id: a,
      rtable_id: rightOrder.indexOf(b),
      label,
    }));
    if (split === "test" && badRow) rows.splice(2, 0, { ltable_id: 3, rtable_id: 99, label: 1 });
    await Deno.writeTextFile(join(dir, `${split}.csv`), csv(rows));
  }
  return dir;
}
