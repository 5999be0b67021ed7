/**
 * Where weights, a tokenizer or a sentence model come from: a path on disk or a Hub repository.
 * One rule for every parameter and loader of the suite, so that a mistyped path is never sent to
 * the Hub:
 *
 *   hf-hub:owner/name[@revision]   a Hugging Face Hub repository (open_clip's `hf-hub:` form)
 *   anything else                  a path; relative paths resolve from the project root
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { exists } from "../fs.ts";
import { projectRoot } from "../paths.ts";

/** The prefix that marks a Hub repository id. */
export const HUB_ID_PREFIX = "hf-hub:";

/** The rule, in words, for error messages and docs. */
export const MODEL_SOURCE_RULE =
  `a Hub repository is written ${HUB_ID_PREFIX}owner/name[@revision]; anything else is a path, ` +
  `and relative paths resolve from the project root`;

/** A folder or file on disk, or a Hub repository (`id` is "owner/name" as transformers.js takes it). */
export type ModelSource =
  | { kind: "local"; path: string }
  | { kind: "hub"; id: string; revision?: string };

const HUB_REPO = /^([A-Za-z0-9][\w.-]*\/[\w.-]+)(?:@([\w./-]+))?$/;

/** Resolves a path parameter: absolute as given, relative from the project root. */
export function resolveProjectPath(path: string): string {
  return isAbsolute(path) ? path : resolve(projectRoot, path);
}

/**
 * Parses a source without touching the disk: `hf-hub:owner/name[@revision]` is a Hub repository
 * (a malformed id after the prefix is an error), anything else a path resolved from the project root.
 */
export function parseModelSource(text: string): ModelSource {
  if (text.startsWith(HUB_ID_PREFIX)) {
    const id = text.slice(HUB_ID_PREFIX.length);
    const match = HUB_REPO.exec(id);
    if (!match || id.includes("..")) {
      throw new Error(`"${text}" is not a Hub repository id: write ${HUB_ID_PREFIX}owner/name[@revision]`);
    }
    return match[2] ? { kind: "hub", id: match[1], revision: match[2] } : { kind: "hub", id: match[1] };
  }
  return { kind: "local", path: resolveProjectPath(text) };
}

/**
 * Parses a source and checks that a local one exists. The error names the absolute path it looked
 * at and the rule; for a missing `owner/name` it suggests the Hub form instead of guessing.
 */
export async function resolveModelSource(text: string, what = "model"): Promise<ModelSource> {
  const source = parseModelSource(text);
  if (source.kind === "hub" || await exists(source.path)) return source;
  const hint = !isAbsolute(text) && HUB_REPO.test(text)
    ? ` If you meant the Hub repository, write ${HUB_ID_PREFIX}${text}.`
    : "";
  throw new Error(`${what} "${text}": no such file or folder ${source.path} (${MODEL_SOURCE_RULE}).${hint}`);
}

/** The text form of a source, as a parameter would hold it. */
export function formatModelSource(source: ModelSource): string {
  return source.kind === "local"
    ? source.path
    : `${HUB_ID_PREFIX}${source.id}${source.revision ? `@${source.revision}` : ""}`;
}
