/**
 * The parameters cell: each notebook declares its parameters (default, allowed values or range,
 * one line of help), and the values come, in this order of precedence, from
 *
 *   1. the environment: a variable of the same (upper-case) name, as the user set it;
 *   2. the preset: variables the batch runner sets for a preset (`deno task demo`) only where the
 *      user left them unset, and lists in `$CLIP_SIAMESE_PRESET_KEYS`;
 *   3. the notebook's default.
 *
 * A value that is not allowed stops the cell with one line naming the parameter, the value, where
 * it came from and what is allowed. Path parameters resolve relative paths from the project root
 * (never from the notebook's folder), and model sources follow lib/hub/model_source.ts.
 *
 * @module
 */
import { isAbsolute } from "node:path";
import { exists } from "../fs.ts";
import { HUB_ID_PREFIX, MODEL_SOURCE_RULE, parseModelSource, resolveProjectPath } from "../hub/model_source.ts";
import { displayBundle, jupyter, tableBundle } from "./display.ts";
import { installStopHandler } from "./interrupt.ts";

export type ParamValue = string | number | boolean;

/** Presets a suite run can use; `demo` runs on the generated demo marketplace. */
export const SUITE_PRESETS = ["demo", "real", "test"] as const;
export type Preset = typeof SUITE_PRESETS[number];

/** Where a parameter's value came from. */
export type ParamOrigin = "default" | "preset" | "environment";

/** The variable in which the batch runner lists the parameters it set for a preset. */
export const PRESET_KEYS_VARIABLE = "CLIP_SIAMESE_PRESET_KEYS";

interface BaseSpec<T> {
  readonly default: T;
  /** One line shown beside the value. */
  readonly help?: string;
}

/** Free text, optionally checked by `check` (returns what is wrong, or undefined). */
export interface TextSpec extends BaseSpec<string> {
  readonly kind: "text";
  readonly check?: (value: string) => string | undefined;
  /** What is allowed, in words (shown in the table and in errors). */
  readonly allowed?: string;
  /** Hide the value in the table (tokens). */
  readonly secret?: boolean;
}

/** One of a fixed list of strings. */
export interface ChoiceSpec<C extends string = string> extends BaseSpec<C> {
  readonly kind: "choice";
  readonly choices: readonly C[];
}

/** A number, optionally an integer, within bounds. */
export interface NumberSpec extends BaseSpec<number> {
  readonly kind: "number";
  readonly integer?: boolean;
  readonly min?: number;
  readonly max?: number;
  /** Exclusive bounds: the value must be > min / < max. */
  readonly exclusive?: boolean;
}

export interface FlagSpec extends BaseSpec<boolean> {
  readonly kind: "flag";
}

/** A file or folder; "" means unset. The value is made absolute (relative: from the project root). */
export interface PathSpec extends BaseSpec<string> {
  readonly kind: "path";
  /** The path must exist when set (default true). */
  readonly mustExist?: boolean;
}

/** Weights, a tokenizer or a model: a path (as PathSpec, must exist) or `hf-hub:owner/name`; "" means unset. */
export interface SourceSpec extends BaseSpec<string> {
  readonly kind: "source";
}

export type ParamSpec = TextSpec | ChoiceSpec | NumberSpec | FlagSpec | PathSpec | SourceSpec;

/** What a parameters cell declares: specs, or plain defaults (text, number or flag without limits). */
export type ParamSpecs = Record<string, ParamSpec | ParamValue>;

type ValueOf<S> = S extends ChoiceSpec<infer C> ? C
  : S extends BaseSpec<infer T> ? T
  : S extends number ? number
  : S extends boolean ? boolean
  : string;

/** The values of a parameters cell, typed from its specs (a choice is its union of literals). */
export type Params<S extends ParamSpecs> = { readonly [K in keyof S]: ValueOf<S[K]> };

/** A text parameter. */
export function text(
  defaultValue: string,
  help?: string,
  options: { check?: (value: string) => string | undefined; allowed?: string; secret?: boolean } = {},
): TextSpec {
  return { kind: "text", default: defaultValue, help, ...options };
}

/** One of `choices`. */
export function choice<const C extends string>(choices: readonly C[], defaultValue: C, help?: string): ChoiceSpec<C> {
  if (!choices.includes(defaultValue)) throw new Error(`choice: default "${defaultValue}" is not one of its choices`);
  return { kind: "choice", choices, default: defaultValue, help };
}

/** An integer in [min, max]. */
export function integer(defaultValue: number, bounds: { min?: number; max?: number } = {}, help?: string): NumberSpec {
  return { kind: "number", integer: true, default: defaultValue, help, ...bounds };
}

/** A number in [min, max] (or (min, max) with `exclusive`). */
export function number(
  defaultValue: number,
  bounds: { min?: number; max?: number; exclusive?: boolean } = {},
  help?: string,
): NumberSpec {
  return { kind: "number", default: defaultValue, help, ...bounds };
}

/** A true/false parameter (environment: true/false, 1/0, yes/no). */
export function flag(defaultValue: boolean, help?: string): FlagSpec {
  return { kind: "flag", default: defaultValue, help };
}

/** A path; "" means unset. */
export function path(defaultValue: string, help?: string, options: { mustExist?: boolean } = {}): PathSpec {
  return { kind: "path", default: defaultValue, help, ...options };
}

/** A model source: a path, or `hf-hub:owner/name[@revision]`; "" means unset. */
export function modelSource(defaultValue: string, help?: string): SourceSpec {
  return { kind: "source", default: defaultValue, help };
}

/** A bad parameter value: its message is the one line the user needs (no stack trace). */
export class ParameterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ParameterError";
    // The kernel prints the stack as the traceback; one line says it all.
    this.stack = `${this.name}: ${message}`;
  }
}

function normalise(spec: ParamSpec | ParamValue): ParamSpec {
  if (typeof spec === "object") return spec;
  if (typeof spec === "number") return number(spec);
  if (typeof spec === "boolean") return flag(spec);
  return text(spec);
}

/** What is allowed, in words. */
export function allowedText(spec: ParamSpec): string {
  switch (spec.kind) {
    case "choice":
      return `one of ${spec.choices.join(", ")}`;
    case "number": {
      const what = spec.integer ? "an integer" : "a number";
      const lower = spec.min === undefined ? "" : `${spec.exclusive ? ">" : ">="} ${spec.min}`;
      const upper = spec.max === undefined ? "" : `${spec.exclusive ? "<" : "<="} ${spec.max}`;
      return [what, [lower, upper].filter(Boolean).join(" and ")].filter(Boolean).join(" ");
    }
    case "flag":
      return "true or false";
    case "path":
      return `a path (relative to the project root)${spec.mustExist === false ? "" : " that exists"}, or empty`;
    case "source":
      return `a path (relative to the project root) or ${HUB_ID_PREFIX}owner/name, or empty`;
    case "text":
      return spec.allowed ?? "text";
  }
}

/** Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i + j));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The closest of `options` to `value` when it is close enough to be a typo. */
export function closest(value: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const option of options) {
    const distance = editDistance(value.toLowerCase(), option.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [option, distance];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

/** One parameter after resolution. */
export interface ResolvedParam {
  name: string;
  /** The value the notebook uses (paths absolute). */
  value: ParamValue;
  /** The value as written (what the table shows). */
  shown: string;
  origin: ParamOrigin;
  allowed: string;
  help?: string;
}

/** Everything a parameters cell resolved. */
export interface ResolvedParams<S extends ParamSpecs> {
  values: Params<S>;
  params: ResolvedParam[];
  /** Environment variables that look like mistyped parameter names. */
  warnings: string[];
}

/** Where the raw values come from (tests pass their own). */
export interface ParamSourceOptions {
  /** Default: this process's environment. */
  env?: Record<string, string | undefined>;
  /** Names the preset set; default: `$CLIP_SIAMESE_PRESET_KEYS`. */
  presetKeys?: readonly string[];
}

function describeOrigin(origin: ParamOrigin): string {
  if (origin === "preset") return `set by the ${Deno.env.get("SUITE_PRESET") ?? "demo"} preset`;
  return origin === "environment" ? "from the environment" : "the notebook's default";
}

async function coerce(name: string, spec: ParamSpec, raw: ParamValue, origin: ParamOrigin): Promise<ParamValue> {
  const fail = (problem: string): never => {
    throw new ParameterError(
      `${name}=${JSON.stringify(String(raw))} (${describeOrigin(origin)}) ${problem}`,
    );
  };
  const rawText = String(raw).trim();
  switch (spec.kind) {
    case "choice": {
      if ((spec.choices as readonly string[]).includes(rawText)) return rawText;
      const hint = closest(rawText, spec.choices);
      return fail(`is not allowed: use ${allowedText(spec)}${hint ? ` (did you mean "${hint}"?)` : ""}`);
    }
    case "number": {
      const value = typeof raw === "number" ? raw : rawText === "" ? NaN : Number(rawText);
      if (!Number.isFinite(value)) return fail(`is not a number: use ${allowedText(spec)}`);
      const outside = (spec.integer && !Number.isInteger(value)) ||
        (spec.min !== undefined && (spec.exclusive ? value <= spec.min : value < spec.min)) ||
        (spec.max !== undefined && (spec.exclusive ? value >= spec.max : value > spec.max));
      return outside ? fail(`is out of range: use ${allowedText(spec)}`) : value;
    }
    case "flag": {
      if (typeof raw === "boolean") return raw;
      const lowered = rawText.toLowerCase();
      if (["1", "true", "yes"].includes(lowered)) return true;
      if (["0", "false", "no"].includes(lowered)) return false;
      return fail("is not a boolean: use true or false (also 1/0, yes/no)");
    }
    case "path": {
      if (rawText === "") return "";
      const absolute = resolveProjectPath(rawText);
      if (spec.mustExist !== false && !(await exists(absolute))) {
        return fail(
          `does not exist: looked at ${absolute}${
            isAbsolute(rawText) ? "" : " (relative paths resolve from the project root)"
          }`,
        );
      }
      return absolute;
    }
    case "source": {
      if (rawText === "") return "";
      let source;
      try {
        source = parseModelSource(rawText);
      } catch (error) {
        return fail(`is not usable: ${(error as Error).message}`);
      }
      if (source.kind === "hub") return rawText;
      if (!(await exists(source.path))) {
        const hubLike = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(rawText);
        return fail(
          `does not exist: looked at ${source.path} (${MODEL_SOURCE_RULE})` +
            (hubLike ? `; for the Hub repository write ${HUB_ID_PREFIX}${rawText}` : ""),
        );
      }
      return source.path;
    }
    case "text": {
      const problem = spec.check?.(String(raw));
      return problem ? fail(`is not allowed: ${problem}`) : String(raw);
    }
  }
}

/** Environment names that look like a mistyped parameter (one edit away, not parameters themselves). */
function misspelledNames(names: readonly string[], env: Record<string, string | undefined>): string[] {
  const known = new Set(names);
  const warnings: string[] = [];
  for (const variable of Object.keys(env)) {
    if (known.has(variable) || variable.length < 4 || !/^[A-Z][A-Z0-9_]*$/.test(variable)) continue;
    const near = names.find((name) => name.length >= 4 && editDistance(variable, name) === 1);
    if (near) warnings.push(`${variable} is set in the environment but is not a parameter here; did you mean ${near}?`);
  }
  return warnings;
}

/** Resolves a parameters cell without showing anything (see the module comment for the precedence). */
export async function resolveParams<S extends ParamSpecs>(
  specs: S,
  options: ParamSourceOptions = {},
): Promise<ResolvedParams<S>> {
  const env = options.env ?? Deno.env.toObject();
  const presetKeys = new Set(
    options.presetKeys ?? (env[PRESET_KEYS_VARIABLE] ?? "").split(",").map((k) => k.trim()).filter(Boolean),
  );
  const values: Record<string, ParamValue> = {};
  const params: ResolvedParam[] = [];
  for (const [name, given] of Object.entries(specs)) {
    const spec = normalise(given);
    const raw = env[name];
    const fromEnv = raw !== undefined && raw !== "";
    const origin: ParamOrigin = fromEnv ? (presetKeys.has(name) ? "preset" : "environment") : "default";
    const value = await coerce(name, spec, fromEnv ? raw : spec.default, origin);
    values[name] = value;
    const written = fromEnv ? raw : String(spec.default);
    const secret = spec.kind === "text" && spec.secret;
    params.push({
      name,
      value,
      shown: secret && written ? "(set, hidden)" : written,
      origin,
      allowed: allowedText(spec),
      help: spec.help,
    });
  }
  return { values: values as Params<S>, params, warnings: misspelledNames(Object.keys(specs), env) };
}

/** What each values object `notebookParams` returned was resolved from (for run records). */
const resolvedByValues = new WeakMap<object, ResolvedParam[]>();

/** The parameters behind values `notebookParams` returned (value, origin, ...), or undefined for other objects. */
export function resolvedParamsOf(values: object): readonly ResolvedParam[] | undefined {
  return resolvedByValues.get(values);
}

/**
 * Resolves and shows a notebook's parameters: one table row per parameter with its value, where it
 * came from and what is allowed, plus a warning for environment names one typo away from a parameter.
 */
export async function notebookParams<S extends ParamSpecs>(
  specs: S,
  options: ParamSourceOptions & { show?: boolean } = {},
): Promise<Params<S>> {
  const resolved = await resolveParams(specs, options);
  resolvedByValues.set(resolved.values, resolved.params);
  // In a live kernel, Stop ends the long jobs at their next step instead of killing the kernel.
  if (jupyter()) installStopHandler();
  if (options.show !== false) {
    const rows = resolved.params.map((p) => ({
      parameter: p.name,
      value: p.shown,
      from: p.origin,
      allowed: p.allowed,
      about: p.help ?? "",
    }));
    await displayBundle(tableBundle(rows, { title: "parameters", maxRows: 200 }));
    for (const warning of resolved.warnings) console.warn(`warning: ${warning}`);
  }
  return resolved.values;
}

/**
 * The environment for a preset run: the preset's values only where `userEnv` leaves a name unset
 * (what the user set always wins), and `$CLIP_SIAMESE_PRESET_KEYS` naming those the preset filled,
 * so that each notebook's parameter table can say where a value came from.
 */
export function presetEnvironment(
  presetValues: Record<string, string>,
  userEnv: Record<string, string | undefined> = Deno.env.toObject(),
): Record<string, string> {
  const env: Record<string, string> = {};
  const filled: string[] = [];
  for (const [name, value] of Object.entries(presetValues)) {
    if (userEnv[name] !== undefined && userEnv[name] !== "") continue;
    env[name] = value;
    filled.push(name);
  }
  env[PRESET_KEYS_VARIABLE] = filled.join(",");
  return env;
}

/** The preset the suite runs under: `$SUITE_PRESET`, default `demo`. */
export function suitePreset(): Preset {
  const value = Deno.env.get("SUITE_PRESET") ?? "demo";
  if (!(SUITE_PRESETS as readonly string[]).includes(value)) {
    throw new ParameterError(
      `SUITE_PRESET=${JSON.stringify(value)} is not allowed: use one of ${SUITE_PRESETS.join(", ")}`,
    );
  }
  return value as Preset;
}
