/**
 * One loader for SiameseRuCLIP weights (transformers.js style: a Hub id or a local path):
 *
 *   undefined                      random initialisation (seeded)
 *   a folder                       our checkpoint (model.safetensors + config.json [+ training_state.json]),
 *                                  an HF-style folder (config.json + model.safetensors[.index.json]),
 *                                  or a folder with one .pt/.bin/.pth file
 *   a file                         .safetensors, model.safetensors.index.json, or a torch.save zip
 *                                  (.pt/.bin/.pth; told apart by content, not by extension)
 *   "hf-hub:owner/name[@revision]" a Hub model repo, downloaded into `cacheDir` (default data/models);
 *                                  relative paths resolve from the project root (lib/hub/model_source.ts)
 *
 * Checkpoint names are mapped to model names by the prefix rules in {@link mapCheckpointNames}:
 * DataParallel's "module." is stripped; a RuCLIP-tiny checkpoint (`cc12m_rubert_tiny_ep_1.pt`:
 * `visual.*`, `transformer.*`, `final_ln.*`, `logit_scale`) loads under "ruclip." and only the
 * RuCLIP part counts as missing; a full Siamese checkpoint loads as is.
 */
import { basename, extname, join } from "node:path";
import { exists } from "../fs.ts";
import { dataDir } from "../paths.ts";
import { downloadRepoFiles } from "../hub/download.ts";
import { resolveModelSource } from "../hub/model_source.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { presetByName, type PresetName, type SiameseRuCLIPConfig } from "./presets.ts";
import { readSafetensors, readSafetensorsIndex } from "./safetensors.ts";
import { createSiameseRuCLIP, type SiameseRuCLIP } from "./siamese.ts";
import type { LoadReport, StateDict } from "./state_dict.ts";
import { readTorchCheckpoint } from "./torch_checkpoint.ts";

/** Where the weights came from and how their names were mapped, with the key report. */
export interface WeightsLoadReport extends LoadReport {
  /** "random", "checkpoint-folder", "hf-folder", "safetensors", "safetensors-index", "torch" (plus "hub:" for Hub ids). */
  kind: string;
  /** The file or folder read ("" for random init). */
  source: string;
  /** Which naming was recognised: "siamese", "ruclip", "tower:image" ... */
  layout: string;
  /** Prefix rules applied, e.g. ['strip "module."', 'add "ruclip."']. */
  mapping: string[];
  /** Checkpoint entries dropped on purpose (classifier heads, MLM heads). */
  ignored: string[];
  /** Where the model config came from: the preset name or the checkpoint's config.json. */
  configSource: string;
  /** A few readable lines: what was loaded, what is missing/unexpected/mismatched. */
  summary: string;
}

/** Options of {@link loadSiameseRuCLIP}. */
export interface LoadSiameseOptions {
  /** Model preset (or a full config) used when the weights carry no config of their own. */
  preset: PresetName | SiameseRuCLIPConfig;
  /** See the module comment; undefined means random initialisation. */
  weights?: string;
  /** Throw when keys are missing, unexpected or have the wrong shape (default true). */
  strict?: boolean;
  /** Folder for Hub downloads (default `dataDir()/models`). */
  cacheDir?: string;
  /** File inside a Hub repo to use (default: model.safetensors[.index.json] and config.json). */
  hubFile?: string;
  /** Hub base URL (default $HF_ENDPOINT or huggingface.co). */
  endpoint?: string;
  /** Hub token (default $HF_TOKEN). */
  token?: string;
  /** Use the Hub cache without contacting the Hub. */
  offline?: boolean;
  /** Seed of the random initialisation of parts the weights do not cover (default 0). */
  seed?: number;
}

/** A loaded model and what loading did. */
export interface LoadedSiameseRuCLIP {
  model: SiameseRuCLIP;
  report: WeightsLoadReport;
}

/** Weights read from disk, before name mapping. */
interface ReadWeights {
  stateDict: StateDict;
  kind: string;
  source: string;
  /** A model config found beside the weights (our checkpoints, HF folders), if any. */
  config?: unknown;
}

const RUCLIP_PREFIXES = ["visual.", "transformer.", "final_ln."];
const SIAMESE_PREFIXES = ["ruclip.", "description_transformer.", "head."];

/** Result of the name mapping: renamed state dict, the prefix to load under, and what was done. */
export interface MappedNames {
  stateDict: StateDict;
  /** Passed to loadStateDict: only model names under it count as missing. */
  prefix: string;
  layout: string;
  mapping: string[];
}

/**
 * Maps checkpoint names to SiameseRuCLIP names: strips DataParallel's "module." and recognises
 * a full Siamese checkpoint ("ruclip.*", "description_transformer.*", "head.*": loaded as is) or
 * a RuCLIP-tiny one ("visual.*", "transformer.*", "final_ln.*", "logit_scale": loaded under "ruclip.").
 */
export function mapCheckpointNames(stateDict: StateDict): MappedNames {
  const mapping: string[] = [];
  let current = stateDict;
  const keys = [...current.keys()];
  if (keys.length > 0 && keys.every((key) => key.startsWith("module."))) {
    current = new Map([...current].map(([key, tensor]) => [key.slice("module.".length), tensor]));
    mapping.push('strip "module."');
  }
  const names = [...current.keys()];
  const count = (prefixes: string[]): number => names.filter((n) => prefixes.some((p) => n.startsWith(p))).length;
  const siamese = count(SIAMESE_PREFIXES);
  const ruclip = count(RUCLIP_PREFIXES) + (current.has("logit_scale") ? 1 : 0);
  if (siamese === 0 && ruclip > 0) {
    mapping.push('add "ruclip."');
    return { stateDict: current, prefix: "ruclip.", layout: "ruclip", mapping };
  }
  return { stateDict: current, prefix: "", layout: siamese > 0 ? "siamese" : "unknown", mapping };
}

/** True when `value` looks like our SiameseRuCLIPConfig (as written to config.json by saveCheckpoint). */
function isSiameseConfig(value: unknown): value is SiameseRuCLIPConfig {
  const config = value as Partial<SiameseRuCLIPConfig> | null;
  return !!config && typeof config === "object" && !!config.convnext && !!config.nameBert &&
    !!config.descriptionBert && typeof config.projectionDim === "number";
}

async function readJsonIfExists(path: string): Promise<unknown> {
  if (!(await exists(path))) return undefined;
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/** Reads one weights file, telling torch zips, safetensors and index files apart by content. */
export async function readWeightsFile(path: string): Promise<{ stateDict: StateDict; kind: string }> {
  if (path.endsWith(".index.json")) {
    return { stateDict: (await readSafetensorsIndex(path)).tensors, kind: "safetensors-index" };
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${path}: no such weights file`);
    throw error;
  }
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  const isPickle = bytes[0] === 0x80;
  const extension = extname(path).toLowerCase();
  if (isZip || isPickle || [".pt", ".pth", ".bin", ".ckpt"].includes(extension)) {
    return { stateDict: readTorchCheckpoint(bytes, path).stateDict, kind: "torch" };
  }
  try {
    return { stateDict: readSafetensors(bytes, path).tensors, kind: "safetensors" };
  } catch (error) {
    if (extension === ".safetensors") throw error;
    throw new Error(
      `${path}: not a weights file (neither a torch.save zip nor safetensors: ${(error as Error).message})`,
    );
  }
}

/** Reads weights from a folder: our checkpoint, an HF-style folder, or a folder with one torch file. */
async function readWeightsFolder(dir: string): Promise<ReadWeights> {
  const config = await readJsonIfExists(join(dir, "config.json"));
  if (isSiameseConfig(config) && await exists(join(dir, "model.safetensors"))) {
    const loaded = await loadCheckpoint(dir);
    return { stateDict: loaded.stateDict, kind: "checkpoint-folder", source: dir, config: loaded.config };
  }
  for (const file of ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"]) {
    const path = join(dir, file);
    if (await exists(path)) {
      const { stateDict, kind } = await readWeightsFile(path);
      return { stateDict, kind: `hf-folder (${kind})`, source: path, config };
    }
  }
  const candidates: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /\.(safetensors|pt|pth|bin|ckpt)$/i.test(entry.name)) candidates.push(entry.name);
  }
  if (candidates.length === 1) {
    const path = join(dir, candidates[0]);
    const { stateDict, kind } = await readWeightsFile(path);
    return { stateDict, kind, source: path, config };
  }
  throw new Error(
    candidates.length === 0
      ? `${dir}: no weights in this folder (expected model.safetensors, model.safetensors.index.json or one .pt/.bin file)`
      : `${dir}: several weight files (${candidates.sort().join(", ")}); pass the file itself`,
  );
}

/** Downloads (or finds in the cache) a Hub model repo's weights; returns the local folder or file. */
async function fetchFromHub(
  hubId: { repo: string; revision?: string },
  options: LoadSiameseOptions,
): Promise<string> {
  const cacheRoot = options.cacheDir ?? join(dataDir(), "models");
  const destination = join(cacheRoot, ...hubId.repo.split("/"), hubId.revision ?? "main");
  const globs = options.hubFile
    ? [options.hubFile, "config.json"]
    : ["config.json", "*.safetensors", "*.safetensors.index.json", "training_state.json"];
  const target = options.hubFile ? join(destination, options.hubFile) : destination;
  const cached = options.hubFile ? await exists(target) : await exists(join(destination, "config.json")) ||
    await exists(join(destination, "model.safetensors"));
  if (options.offline) {
    if (!cached) {
      throw new Error(`${hubId.repo}: not in the cache ${destination} and offline mode is on; run once online`);
    }
    return target;
  }
  try {
    await downloadRepoFiles({
      repo: hubId.repo,
      repoType: "model",
      revision: hubId.revision,
      globs,
      destination,
      endpoint: options.endpoint,
      token: options.token,
    });
  } catch (error) {
    if (!cached) throw error;
    console.warn(
      `${hubId.repo}: Hub not reachable (${(error as Error).message.split("\n")[0]}); using the cache ${destination}`,
    );
  }
  if (options.hubFile && !(await exists(target))) {
    throw new Error(`${hubId.repo}: the repo has no file ${options.hubFile}`);
  }
  return target;
}

/** Reads weights from a local path (file or folder). */
export async function readWeights(path: string): Promise<ReadWeights> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${path}: no such weights file or folder`);
    throw error;
  }
  if (stat.isDirectory) return await readWeightsFolder(path);
  const { stateDict, kind } = await readWeightsFile(path);
  const config = basename(path) === "model.safetensors"
    ? await readJsonIfExists(join(path, "..", "config.json"))
    : undefined;
  return { stateDict, kind, source: path, config };
}

/** A readable multi-line summary of a load. */
export function summarizeLoad(report: Omit<WeightsLoadReport, "summary">, loadedCount: number): string {
  const lines = [
    report.kind === "random"
      ? `random initialisation (${report.configSource})`
      : `loaded ${loadedCount} tensors from ${report.source} (${report.kind}, ${report.layout} names${
        report.mapping.length ? `; ${report.mapping.join(", ")}` : ""
      }; config: ${report.configSource})`,
  ];
  const show = (label: string, items: string[]): void => {
    if (items.length === 0) return;
    lines.push(`  ${label} (${items.length}): ${items.slice(0, 8).join(", ")}${items.length > 8 ? ", ..." : ""}`);
  };
  show("missing, left at initial values", report.missing);
  show("unexpected, ignored", report.unexpected);
  show("wrong shape, skipped", report.mismatched);
  show("dropped on purpose", report.ignored);
  return lines.join("\n");
}

/**
 * Builds a SiameseRuCLIP and loads weights into it (see the module comment for what `weights`
 * may be). In strict mode (default) any missing, unexpected or wrongly shaped key is an error
 * naming the source; otherwise what fits is loaded and the report lists the rest.
 */
export async function loadSiameseRuCLIP(options: LoadSiameseOptions): Promise<LoadedSiameseRuCLIP> {
  const strict = options.strict ?? true;
  const presetConfig = typeof options.preset === "string" ? presetByName(options.preset) : options.preset;
  const presetLabel = typeof options.preset === "string"
    ? `preset "${options.preset}"`
    : `config "${options.preset.name}"`;
  if (options.weights === undefined) {
    const model = createSiameseRuCLIP(presetConfig, { seed: options.seed });
    const base = {
      missing: [],
      unexpected: [],
      mismatched: [],
      kind: "random",
      source: "",
      layout: "none",
      mapping: [],
      ignored: [],
      configSource: presetLabel,
    };
    return { model, report: { ...base, summary: summarizeLoad(base, 0) } };
  }
  const source = await resolveModelSource(options.weights, "weights");
  const path = source.kind === "local"
    ? source.path
    : await fetchFromHub({ repo: source.id, revision: source.revision }, options);
  const hubPrefix = source.kind === "hub" ? `hub:${source.id} ` : "";
  const read = await readWeights(path);
  const config = isSiameseConfig(read.config) ? read.config : presetConfig;
  const configSource = isSiameseConfig(read.config) ? `${read.source}: config.json` : presetLabel;
  const mapped = mapCheckpointNames(read.stateDict);
  // A strict full-model load overwrites every weight (or throws), so skip the random fill then.
  const init = strict && mapped.layout === "siamese" ? "zeros" : "random";
  const model = createSiameseRuCLIP(config, { seed: options.seed, init });
  let loadReport: LoadReport;
  try {
    loadReport = model.loadStateDict(mapped.stateDict, { strict, prefix: mapped.prefix });
  } catch (error) {
    model.dispose();
    throw new Error(`${read.source}: ${(error as Error).message}`);
  }
  const base = {
    ...loadReport,
    kind: hubPrefix + read.kind,
    source: read.source,
    layout: mapped.layout,
    mapping: mapped.mapping,
    ignored: [],
    configSource,
  };
  const loadedCount = mapped.stateDict.size - loadReport.unexpected.length - loadReport.mismatched.length;
  return { model, report: { ...base, summary: summarizeLoad(base, loadedCount) } };
}

/** Which tower {@link loadTowerWeights} fills. */
export type Tower = "image" | "name" | "description";

const TOWER_PREFIX: Record<Tower, string> = {
  image: "ruclip.visual.",
  name: "ruclip.transformer.",
  description: "description_transformer.",
};

/**
 * Loads pretrained weights of one tower: a timm `convnext_tiny` safetensors/.pt (names `stem.*`,
 * `stages.*`, `head.norm.*`; the classifier `head.fc.*` is dropped) into the image tower, or an HF
 * `BertModel` (a folder with config.json + model.safetensors/pytorch_model.bin, or the file; names
 * with or without "bert."; MLM/NSP heads `cls.*` dropped) into the name or description BERT.
 */
export async function loadTowerWeights(
  model: SiameseRuCLIP,
  tower: Tower,
  path: string,
  options: { strict?: boolean } = {},
): Promise<WeightsLoadReport> {
  const read = await readWeights(path);
  const mapping: string[] = [];
  const ignored: string[] = [];
  const renamed: StateDict = new Map();
  const strip = (name: string, prefix: string): string => {
    if (!name.startsWith(prefix)) return name;
    if (!mapping.includes(`strip "${prefix}"`)) mapping.push(`strip "${prefix}"`);
    return name.slice(prefix.length);
  };
  for (const [key, tensor] of read.stateDict) {
    let name = strip(key, "module.");
    if (tower === "image") {
      if (name.startsWith("head.fc.")) {
        ignored.push(key);
        continue;
      }
      name = strip(name, "visual.");
    } else {
      if (name.startsWith("cls.")) {
        ignored.push(key);
        continue;
      }
      name = strip(strip(name, "bert."), "transformer.");
    }
    renamed.set(name, tensor);
  }
  const prefix = TOWER_PREFIX[tower];
  mapping.push(`add "${prefix}"`);
  let loadReport: LoadReport;
  try {
    loadReport = model.loadStateDict(renamed, { strict: options.strict ?? true, prefix });
  } catch (error) {
    throw new Error(`${read.source}: ${tower} tower: ${(error as Error).message}`);
  }
  const base = {
    ...loadReport,
    kind: read.kind,
    source: read.source,
    layout: `tower:${tower}`,
    mapping,
    ignored,
    configSource: "the model's own",
  };
  const loadedCount = renamed.size - loadReport.unexpected.length - loadReport.mismatched.length;
  return { ...base, summary: summarizeLoad(base, loadedCount) };
}
