/**
 * The suite's own training checkpoints: one folder per checkpoint,
 *   model.safetensors      weights under PyTorch-layout names (`model.stateDict()`), metadata format=pt
 *   config.json            the model config
 *   training_state.json    epoch, step, metrics, optimizer settings (optional)
 *   optimizer.safetensors  optimizer moments, e.g. "<param>.m" / "<param>.v" (optional)
 * The folder is written as `<dir>.tmp-xxxxxxxx` and renamed into place only when complete; an
 * existing checkpoint is moved aside (`<dir>.old-xxxxxxxx`) for the instant of the swap and then
 * removed, so a crash leaves either the old or the new checkpoint, never a mix.
 */
import { basename, dirname, join } from "node:path";
import { exists, writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { readSafetensorsFile, writeSafetensors } from "./safetensors.ts";
import type { StateDict } from "./state_dict.ts";

/**
 * Anything that can hand out its weights under PyTorch names (e.g. SiameseRuCLIP, whose read is
 * asynchronous because device memory is read without blocking; a plain holder may answer at once).
 */
export interface HasStateDict {
  stateDict(): StateDict | Promise<StateDict>;
}

/** Where training stood when a checkpoint was saved. */
export interface TrainingState {
  epoch: number;
  step: number;
  /** Validation metrics at this point (f1, threshold, loss ...). */
  metrics?: Record<string, number>;
  /** Optimizer name and hyperparameters (its moments go to optimizer.safetensors). */
  optimizer?: { name: string; [setting: string]: unknown };
  [key: string]: unknown;
}

/** What `saveCheckpoint` writes. */
export interface CheckpointContents {
  model: HasStateDict;
  config: unknown;
  trainingState?: TrainingState;
  optimizerState?: StateDict;
}

/** What `loadCheckpoint` returns. */
export interface LoadedCheckpoint {
  stateDict: StateDict;
  config: unknown;
  trainingState?: TrainingState;
  optimizerState?: StateDict;
}

/** File names inside a checkpoint folder. */
export const CHECKPOINT_FILES = {
  model: "model.safetensors",
  config: "config.json",
  trainingState: "training_state.json",
  optimizer: "optimizer.safetensors",
} as const;

/** Options of `saveCheckpoint`. */
export interface SaveCheckpointOptions {
  /** Called after each file is written into the temporary folder (progress; tests inject failures here). */
  onFileWritten?: (file: string) => void | Promise<void>;
}

/** Writes a checkpoint folder atomically (see the module comment); returns `dir`. */
export async function saveCheckpoint(
  dir: string,
  contents: CheckpointContents,
  options: SaveCheckpointOptions = {},
): Promise<string> {
  const tag = crypto.randomUUID().slice(0, 8);
  const staging = join(dirname(dir), `${basename(dir)}.tmp-${tag}`);
  await Deno.mkdir(staging, { recursive: true });
  try {
    const write = async (file: string, data: Uint8Array | string): Promise<void> => {
      await writeFileAtomic(join(staging, file), data);
      await options.onFileWritten?.(file);
    };
    await write(CHECKPOINT_FILES.model, writeSafetensors(await contents.model.stateDict(), { format: "pt" }));
    await write(CHECKPOINT_FILES.config, JSON.stringify(contents.config ?? {}, null, 2) + "\n");
    if (contents.trainingState) {
      await write(CHECKPOINT_FILES.trainingState, JSON.stringify(contents.trainingState, null, 2) + "\n");
    }
    if (contents.optimizerState) {
      await write(CHECKPOINT_FILES.optimizer, writeSafetensors(contents.optimizerState, { format: "pt" }));
    }
  } catch (error) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw error;
  }
  const old = join(dirname(dir), `${basename(dir)}.old-${tag}`);
  const hadOld = await exists(dir);
  if (hadOld) await Deno.rename(dir, old);
  try {
    await Deno.rename(staging, dir);
  } catch (error) {
    if (hadOld) await Deno.rename(old, dir).catch(() => {});
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw error;
  }
  if (hadOld) await Deno.remove(old, { recursive: true });
  return dir;
}

/** Reads a checkpoint folder written by `saveCheckpoint`; errors name the folder and the missing file. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const modelPath = join(dir, CHECKPOINT_FILES.model);
  const configPath = join(dir, CHECKPOINT_FILES.config);
  if (!(await exists(dir))) throw new Error(`${dir}: no such checkpoint folder`);
  if (!(await exists(modelPath))) {
    throw new Error(`${dir}: not a checkpoint folder (no ${CHECKPOINT_FILES.model})`);
  }
  const stateDict = (await readSafetensorsFile(modelPath)).tensors;
  const config = (await exists(configPath)) ? await readJson(configPath) : undefined;
  const statePath = join(dir, CHECKPOINT_FILES.trainingState);
  const trainingState = (await exists(statePath)) ? (await readJson(statePath)) as TrainingState : undefined;
  const optimizerPath = join(dir, CHECKPOINT_FILES.optimizer);
  const optimizerState = (await exists(optimizerPath)) ? (await readSafetensorsFile(optimizerPath)).tensors : undefined;
  return { stateDict, config, trainingState, optimizerState };
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/** Writes only the JSON training state next to existing weights (e.g. to record final test metrics). */
export function updateTrainingState(dir: string, trainingState: TrainingState): Promise<void> {
  return writeJsonAtomic(join(dir, CHECKPOINT_FILES.trainingState), trainingState);
}

/** Rewrites only a checkpoint's config.json (e.g. a head-residual scale chosen after training). */
export async function updateCheckpointConfig(dir: string, config: unknown): Promise<void> {
  if (!(await exists(join(dir, CHECKPOINT_FILES.model)))) {
    throw new Error(`${dir}: not a checkpoint folder (no ${CHECKPOINT_FILES.model}); config not written`);
  }
  await writeJsonAtomic(join(dir, CHECKPOINT_FILES.config), config);
}
