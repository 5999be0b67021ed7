/**
 * The catalog-scale bench (`deno task bench --scale`): N synthetic 462-d float32 product vectors with
 * attributes, searched top-100 by exact brute force (plain TS), usearch (HNSW, in memory) and LanceDB
 * (IVF index on disk, `lib/index/lancedb_index.ts`). Per method: build time, peak process RSS during
 * build + search (Linux VmHWM, reset before each method through /proc/self/clear_refs; it includes the
 * dataset itself), LanceDB's size on disk, top-100 latency (median, p95; one query at a time) without
 * and with a filter, and recall@100 against exact search (exact under the same filter when filtered).
 *
 * Data (seeded, reproducible): `clusters` centres ~ U(-1, 1)^462; each vector = its centre + W z
 * (z ~ U(-1, 1)^16, W a fixed 462 x 16 random map: a low-dimensional spread, like learned embeddings)
 * + small isotropic noise. Queries are catalog vectors with a little extra noise. Attributes: price
 * log-uniform in [200, 2000] (independent of the vector), stock 0 for 20% of rows, sales, rating,
 * seller. The filter is the economic filter's price band (query price +-30%) with stock > 0; it keeps
 * about a fifth of the rows (the measured share is reported).
 *
 * usearch has no filter inside its JS search, so its filtered rows are an oversampled search (4k, then
 * x4 until k rows pass) followed by the post-filter; LanceDB filters inside the search (prefilter).
 *
 * @module
 */
import { join } from "node:path";
import { SeededRandom } from "../data/random.ts";
import { economicQueryFilter, type IndexFilter, matchesFilter } from "../index/filter.ts";
import { type BuildOptions, type SearchOptions } from "../index/catalog_index.ts";
import { defaultSubVectors, openLanceIndex } from "../index/lancedb_index.ts";

/** Tuning of the LanceDB rows. */
export interface LanceBenchSettings extends BuildOptions {
  nprobes?: number;
  refineFactor?: number;
  ef?: number;
}

/** Tuning of the usearch rows. */
export interface UsearchBenchSettings {
  connectivity?: number;
  expansionAdd?: number;
  expansionSearch?: number;
  /** "f32" (default), "f16" or "i8". */
  quantization?: "f32" | "f16" | "i8";
}

/** Options of `runScaleBench`. */
export interface ScaleBenchOptions {
  /** Catalog rows. Default 1,000,000. */
  size?: number;
  dim?: number;
  queries?: number;
  k?: number;
  seed?: number;
  /** Default about size / 1000 (at least 8). */
  clusters?: number;
  /** Folder for LanceDB's files (removed afterwards unless `keep`). */
  workDir: string;
  keep?: boolean;
  methods?: readonly ("exact" | "usearch" | "lancedb")[];
  lance?: LanceBenchSettings;
  usearch?: UsearchBenchSettings;
  log?: (message: string) => void;
}

/** One method's measurements. Latencies in ms, times in s, sizes in MiB; null = not measured. */
export interface ScaleBenchRow {
  method: string;
  settings: string;
  buildSeconds: number | null;
  peakRssMiB: number | null;
  diskMiB: number | null;
  medianMs: number;
  p95Ms: number;
  filteredMedianMs: number;
  filteredP95Ms: number;
  recall: number;
  filteredRecall: number;
  note?: string;
}

/** The bench's result. */
export interface ScaleBenchResult {
  size: number;
  dim: number;
  queries: number;
  k: number;
  clusters: number;
  seed: number;
  /** Mean share of rows the filter keeps. */
  filterSelectivity: number;
  generateSeconds: number;
  rows: ScaleBenchRow[];
  targets: { buildSeconds: number; filteredMs: number; recall: number };
}

/** The synthetic catalog. */
export interface ScaleData {
  size: number;
  dim: number;
  vectors: Float32Array;
  skus: string[];
  price: Float64Array;
  stock: Float64Array;
  sales: Float64Array;
  rating: Float64Array;
  seller: string[];
  queries: Float32Array;
  queryPrices: Float64Array;
}

/** Generates the catalog and queries described in the module comment. */
export function generateScaleData(
  size: number,
  dim: number,
  queries: number,
  clusters: number,
  seed: number,
): ScaleData {
  const random = new SeededRandom(seed);
  const u = () => random.next() * 2 - 1;
  const latent = 16;
  const centres = Float32Array.from({ length: clusters * dim }, u);
  const w = Float32Array.from({ length: dim * latent }, () => u() * 0.35);
  const vectors = new Float32Array(size * dim);
  const z = new Float32Array(latent);
  for (let r = 0; r < size; r++) {
    const c = Math.floor(random.next() * clusters) * dim;
    for (let l = 0; l < latent; l++) z[l] = u();
    const o = r * dim;
    for (let j = 0; j < dim; j++) {
      let v = centres[c + j] + 0.05 * u();
      const wj = j * latent;
      for (let l = 0; l < latent; l++) v += w[wj + l] * z[l];
      vectors[o + j] = v;
    }
  }
  const price = new Float64Array(size);
  const stock = new Float64Array(size);
  const sales = new Float64Array(size);
  const rating = new Float64Array(size);
  const seller: string[] = new Array(size);
  const skus: string[] = new Array(size);
  for (let r = 0; r < size; r++) {
    skus[r] = `sku-${r}`;
    price[r] = Math.round(200 * Math.exp(random.next() * Math.log(10)));
    stock[r] = random.next() < 0.2 ? 0 : 1 + Math.floor(random.next() * 50);
    sales[r] = Math.floor(random.next() * 200);
    rating[r] = Math.round((3 + random.next() * 2) * 10) / 10;
    seller[r] = `s${Math.floor(random.next() * 50)}`;
  }
  const queryVectors = new Float32Array(queries * dim);
  const queryPrices = new Float64Array(queries);
  for (let q = 0; q < queries; q++) {
    const r = Math.floor(random.next() * size);
    for (let j = 0; j < dim; j++) queryVectors[q * dim + j] = vectors[r * dim + j] + 0.05 * u();
    queryPrices[q] = price[r];
  }
  return { size, dim, vectors, skus, price, stock, sales, rating, seller, queries: queryVectors, queryPrices };
}

/** The bench's filter for query q: price within +-30% of the query's and stock > 0. */
export function benchFilter(data: ScaleData, q: number): IndexFilter {
  const economic = economicQueryFilter({ price: data.queryPrices[q] });
  return { price: economic.price, stock: { gt: 0 } };
}

function rowPasses(data: ScaleData, filter: IndexFilter, r: number): boolean {
  return matchesFilter(filter, (field) => {
    switch (field) {
      case "price":
        return data.price[r];
      case "stock":
        return data.stock[r];
      case "sales":
        return data.sales[r];
      case "rating":
        return data.rating[r];
      case "seller":
        return data.seller[r];
      case "sku":
        return data.skus[r];
    }
    return null;
  });
}

/** Squared L2 distances from one query to every row (4-way unrolled). */
function l2Scan(vectors: Float32Array, size: number, dim: number, query: Float32Array, out: Float32Array): void {
  const d4 = dim - (dim % 4);
  for (let r = 0; r < size; r++) {
    const o = r * dim;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let j = 0;
    for (; j < d4; j += 4) {
      const a = query[j] - vectors[o + j];
      const b = query[j + 1] - vectors[o + j + 1];
      const c = query[j + 2] - vectors[o + j + 2];
      const d = query[j + 3] - vectors[o + j + 3];
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    for (; j < dim; j++) {
      const a = query[j] - vectors[o + j];
      s0 += a * a;
    }
    out[r] = s0 + s1 + s2 + s3;
  }
}

/** Indices of the k smallest values among rows passing `keep` (ascending; ties by row). */
function smallestK(distances: Float32Array, k: number, keep?: (r: number) => boolean): Int32Array {
  // threshold selection: a max-heap of k
  const heapD = new Float64Array(k);
  const heapI = new Int32Array(k);
  let size = 0;
  const worse = (a: number, b: number) => heapD[a] > heapD[b] || (heapD[a] === heapD[b] && heapI[a] > heapI[b]);
  const swap = (a: number, b: number) => {
    const d = heapD[a];
    heapD[a] = heapD[b];
    heapD[b] = d;
    const i = heapI[a];
    heapI[a] = heapI[b];
    heapI[b] = i;
  };
  for (let r = 0; r < distances.length; r++) {
    const d = distances[r];
    if (size === k && d >= heapD[0]) continue;
    if (keep && !keep(r)) continue;
    if (size < k) {
      let c = size++;
      heapD[c] = d;
      heapI[c] = r;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!worse(c, p)) break;
        swap(c, p);
        c = p;
      }
    } else {
      heapD[0] = d;
      heapI[0] = r;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1;
        let m = p;
        if (l < size && worse(l, m)) m = l;
        if (l + 1 < size && worse(l + 1, m)) m = l + 1;
        if (m === p) break;
        swap(p, m);
        p = m;
      }
    }
  }
  const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => heapD[a] - heapD[b] || heapI[a] - heapI[b]);
  return Int32Array.from(order, (i) => heapI[i]);
}

/** Linux peak RSS: reset (clear_refs 5) and read (VmHWM). Null where /proc is not there. */
export async function resetPeakRss(): Promise<boolean> {
  try {
    await Deno.writeTextFile("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** Peak RSS in MiB since the last reset (VmHWM), or the current RSS where VmHWM cannot be read. */
export async function peakRssMiB(): Promise<number> {
  try {
    const status = await Deno.readTextFile("/proc/self/status");
    const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1]);
    if (Number.isFinite(kb)) return kb / 1024;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss / 2 ** 20;
}

/** The q-quantile (0..1) of values (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function recallOf(truth: readonly Int32Array[], found: readonly ArrayLike<number>[]): number {
  let sum = 0;
  for (let q = 0; q < truth.length; q++) {
    const set = new Set(Array.from(found[q]));
    let hits = 0;
    for (const r of truth[q]) if (set.has(r)) hits++;
    sum += truth[q].length ? hits / truth[q].length : 1;
  }
  return truth.length ? sum / truth.length : NaN;
}

/** `object` without its undefined entries (so they do not override defaults when spread). */
function defined<T extends object>(object: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(object ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

interface UsearchLike {
  Index: new (config: Record<string, unknown>) => {
    add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
    search(vector: Float32Array, k: number, threads: number): { keys: BigUint64Array };
    size(): number;
  };
}

/** Runs the bench; `log` gets progress lines. */
export async function runScaleBench(options: ScaleBenchOptions): Promise<ScaleBenchResult> {
  const size = options.size ?? 1_000_000;
  const dim = options.dim ?? 462;
  const nq = options.queries ?? 50;
  const k = options.k ?? 100;
  const seed = options.seed ?? 1;
  const clusters = options.clusters ?? Math.max(8, Math.round(size / 1000));
  const methods = options.methods ?? ["exact", "usearch", "lancedb"];
  const log = options.log ?? (() => {});
  if (!Number.isInteger(size) || size < k) {
    throw new Error(`scale bench: size = ${size}; expected an integer >= k (${k})`);
  }
  let t = performance.now();
  log(`generating ${size.toLocaleString("en-US")} x ${dim} vectors (${clusters} clusters) ...`);
  const data = generateScaleData(size, dim, nq, clusters, seed);
  const generateSeconds = (performance.now() - t) / 1000;
  const filters = Array.from({ length: nq }, (_, q) => benchFilter(data, q));
  const passes = filters.map((f) => {
    const keep = new Uint8Array(size);
    for (let r = 0; r < size; r++) keep[r] = rowPasses(data, f, r) ? 1 : 0;
    return keep;
  });
  const filterSelectivity = passes.reduce((s, p) => s + p.reduce((a, b) => a + b, 0) / size, 0) / nq;
  const query = (q: number) => data.queries.subarray(q * dim, (q + 1) * dim);
  const rows: ScaleBenchRow[] = [];

  // exact: always computed (it is the ground truth); timed per query
  await resetPeakRss();
  log(`exact search: ${nq} queries ...`);
  const truth: Int32Array[] = [];
  const truthFiltered: Int32Array[] = [];
  const exactTimes: number[] = [];
  const exactFilteredTimes: number[] = [];
  const distances = new Float32Array(size);
  for (let q = 0; q < nq; q++) {
    t = performance.now();
    l2Scan(data.vectors, size, dim, query(q), distances);
    truth.push(smallestK(distances, k));
    exactTimes.push(performance.now() - t);
    t = performance.now();
    l2Scan(data.vectors, size, dim, query(q), distances);
    truthFiltered.push(smallestK(distances, k, (r) => passes[q][r] === 1));
    exactFilteredTimes.push(performance.now() - t);
  }
  if (methods.includes("exact")) {
    rows.push({
      method: "exact (TS brute force)",
      settings: "one scan per query, 4-way unrolled L2",
      buildSeconds: 0,
      peakRssMiB: await peakRssMiB(),
      diskMiB: null,
      medianMs: quantile(exactTimes, 0.5),
      p95Ms: quantile(exactTimes, 0.95),
      filteredMedianMs: quantile(exactFilteredTimes, 0.5),
      filteredP95Ms: quantile(exactFilteredTimes, 0.95),
      recall: recallOf(truth, truth),
      filteredRecall: recallOf(truthFiltered, truthFiltered),
    });
  }

  if (methods.includes("usearch")) {
    const s = {
      connectivity: 16,
      expansionAdd: 128,
      expansionSearch: 256,
      quantization: "f32" as const,
      ...defined(options.usearch),
    };
    log(`usearch: building HNSW (M ${s.connectivity}, ef_add ${s.expansionAdd}, ${s.quantization}) ...`);
    await resetPeakRss();
    const usearch = await import("usearch") as unknown as UsearchLike;
    t = performance.now();
    const index = new usearch.Index({
      dimensions: dim,
      metric: "l2sq",
      quantization: s.quantization,
      connectivity: s.connectivity,
      expansion_add: s.expansionAdd,
      expansion_search: s.expansionSearch,
      multi: false,
    });
    const keys = new BigUint64Array(size);
    for (let r = 0; r < size; r++) keys[r] = BigInt(r);
    index.add(keys, data.vectors, 0);
    const buildSeconds = (performance.now() - t) / 1000;
    const found: number[][] = [];
    const foundFiltered: number[][] = [];
    const times: number[] = [];
    const filteredTimes: number[] = [];
    for (let q = 0; q < nq; q++) {
      t = performance.now();
      found.push(Array.from(index.search(query(q), k, 1).keys, Number));
      times.push(performance.now() - t);
      t = performance.now();
      let fetch = 4 * k;
      let kept: number[] = [];
      for (;;) {
        const hits = Array.from(index.search(query(q), Math.min(fetch, size), 1).keys, Number);
        kept = hits.filter((r) => passes[q][r] === 1).slice(0, k);
        if (kept.length >= k || fetch >= size || hits.length < Math.min(fetch, size)) break;
        fetch *= 4;
      }
      foundFiltered.push(kept);
      filteredTimes.push(performance.now() - t);
    }
    rows.push({
      method: "usearch HNSW (in memory)",
      settings: `M ${s.connectivity}, ef_add ${s.expansionAdd}, ef ${s.expansionSearch}, ${s.quantization}`,
      buildSeconds,
      peakRssMiB: await peakRssMiB(),
      diskMiB: null,
      medianMs: quantile(times, 0.5),
      p95Ms: quantile(times, 0.95),
      filteredMedianMs: quantile(filteredTimes, 0.5),
      filteredP95Ms: quantile(filteredTimes, 0.95),
      recall: recallOf(truth, found),
      filteredRecall: recallOf(truthFiltered, foundFiltered),
      note: "filter: oversampled search + post-filter (no predicate search in usearch's JS API)",
    });
  }

  if (methods.includes("lancedb")) {
    const given = defined(options.lance);
    const s: LanceBenchSettings = { kind: "ivf_pq", nprobes: 20, ...given };
    if (s.kind !== "ivf_flat" && s.refineFactor === undefined) s.refineFactor = 10; // IVF-flat holds full vectors
    const path = join(options.workDir, `lancedb-${size}`);
    await Deno.remove(path, { recursive: true }).catch(() => {});
    await resetPeakRss();
    log(`lancedb: writing ${size.toLocaleString("en-US")} rows and building ${s.kind} ...`);
    t = performance.now();
    const index = await openLanceIndex({ path, dim, metric: "euclidean", overwrite: true });
    const attributes = {
      price: data.price,
      stock: data.stock,
      sales: data.sales,
      rating: data.rating,
      seller: data.seller,
    };
    await index.upsert({ skus: data.skus, vectors: data.vectors, attributes });
    const writeSeconds = (performance.now() - t) / 1000;
    const info = await index.build(s);
    const buildSeconds = (performance.now() - t) / 1000;
    const searchOptions: Omit<SearchOptions, "k"> = { nprobes: s.nprobes, refineFactor: s.refineFactor, ef: s.ef };
    const rowOf = (sku: string) => Number(sku.slice(4));
    const found: number[][] = [];
    const foundFiltered: number[][] = [];
    const times: number[] = [];
    const filteredTimes: number[] = [];
    await index.search(query(0), { k, ...searchOptions }); // warm-up (opens the index files)
    for (let q = 0; q < nq; q++) {
      t = performance.now();
      found.push((await index.search(query(q), { k, ...searchOptions })).map((h) => rowOf(h.sku)));
      times.push(performance.now() - t);
      t = performance.now();
      const hits = await index.search(query(q), { k, ...searchOptions, filter: filters[q] });
      filteredTimes.push(performance.now() - t);
      foundFiltered.push(hits.map((h) => rowOf(h.sku)));
    }
    const disk = await index.diskBytes();
    await index.close();
    const settings = info.vectorIndex === "flat"
      ? "flat (no vector index)"
      : `${info.vectorIndex}, ${s.partitions ?? Math.round(Math.sqrt(size))} partitions` +
        (s.kind === "ivf_pq" ? `, ${s.subVectors ?? defaultSubVectors(dim)} sub-vectors` : "") +
        `, nprobes ${s.nprobes}` + (s.refineFactor ? `, refine ${s.refineFactor}` : "") + (s.ef ? `, ef ${s.ef}` : "");
    rows.push({
      method: "LanceDB (on disk)",
      settings,
      buildSeconds,
      peakRssMiB: await peakRssMiB(),
      diskMiB: disk === null ? null : disk / 2 ** 20,
      medianMs: quantile(times, 0.5),
      p95Ms: quantile(times, 0.95),
      filteredMedianMs: quantile(filteredTimes, 0.5),
      filteredP95Ms: quantile(filteredTimes, 0.95),
      recall: recallOf(truth, found),
      filteredRecall: recallOf(truthFiltered, foundFiltered),
      note: `filter: prefilter (SQL where); write ${writeSeconds.toFixed(1)} s + index ${info.seconds.toFixed(1)} s`,
    });
    if (!options.keep) await Deno.remove(path, { recursive: true }).catch(() => {});
  }
  return {
    size,
    dim,
    queries: nq,
    k,
    clusters,
    seed,
    filterSelectivity,
    generateSeconds,
    rows,
    targets: { buildSeconds: 300, filteredMs: 20, recall: 0.95 },
  };
}

function cell(value: number | null, digits = 1): string {
  if (value === null || !Number.isFinite(value)) return "-";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The result as a Markdown table with a heading and the workload. */
export function renderScaleMarkdown(result: ScaleBenchResult, header = true): string {
  const head = [
    "method",
    "settings",
    "build s",
    "peak RSS MiB",
    "disk MiB",
    "top-k median ms",
    "top-k p95 ms",
    "filtered median ms",
    "filtered p95 ms",
    `recall@${result.k}`,
    `filtered recall@${result.k}`,
    "note",
  ];
  const escape = (s: string) => s.replaceAll("|", "\\|");
  const line = (cells: string[]) => `| ${cells.map(escape).join(" | ")} |`;
  const body = result.rows.map((r) =>
    line([
      r.method,
      r.settings,
      cell(r.buildSeconds),
      cell(r.peakRssMiB, 0),
      cell(r.diskMiB, 0),
      cell(r.medianMs, 2),
      cell(r.p95Ms, 2),
      cell(r.filteredMedianMs, 2),
      cell(r.filteredP95Ms, 2),
      cell(r.recall, 3),
      cell(r.filteredRecall, 3),
      r.note ?? "",
    ])
  );
  const table = [line(head), line(head.map(() => "---")), ...body].join("\n");
  if (!header) return table;
  return [
    `# Catalog scale bench: ${result.size.toLocaleString("en-US")} x ${result.dim}, top-${result.k}`,
    "",
    `${result.queries} queries; ${result.clusters} clusters; seed ${result.seed}; filter = price within ±30% of the ` +
    `query's and stock > 0, keeping ${(result.filterSelectivity * 100).toFixed(1)}% of rows on average; data ` +
    `generated in ${result.generateSeconds.toFixed(1)} s. Targets: build <= ${result.targets.buildSeconds} s, ` +
    `filtered top-${result.k} <= ${result.targets.filteredMs} ms at recall@${result.k} >= ${result.targets.recall}.`,
    "",
    "Peak RSS is the process's peak resident memory during that method (it includes the dataset); recall is " +
    "against exact search (under the same filter for the filtered columns).",
    "",
    table,
    "",
  ].join("\n");
}
