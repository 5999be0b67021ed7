/**
 * The parameters cell: each notebook declares its defaults, and the runner overrides them
 * through environment variables of the same (upper-case) names, as papermill would.
 */
export type ParamValue = string | number | boolean;

/** Presets a notebook can be run under; `demo` runs on the generated demo marketplace. */
export type Preset = "demo" | "real" | "test";

/**
 * Reads each key of `defaults` from the environment (same name), coerced to the default's
 * type. A value that cannot be coerced is an error naming the variable.
 */
export function notebookParams<T extends Record<string, ParamValue>>(defaults: T): T {
  const out: Record<string, ParamValue> = {};
  for (const [key, fallback] of Object.entries(defaults)) {
    const raw = Deno.env.get(key);
    if (raw === undefined || raw === "") {
      out[key] = fallback;
      continue;
    }
    if (typeof fallback === "number") {
      const value = Number(raw);
      if (!Number.isFinite(value)) throw new Error(`parameter ${key}=${JSON.stringify(raw)} is not a number`);
      out[key] = value;
    } else if (typeof fallback === "boolean") {
      const lowered = raw.toLowerCase();
      if (!["1", "0", "true", "false", "yes", "no"].includes(lowered)) {
        throw new Error(`parameter ${key}=${JSON.stringify(raw)} is not a boolean (use true/false)`);
      }
      out[key] = ["1", "true", "yes"].includes(lowered);
    } else {
      out[key] = raw;
    }
  }
  return out as T;
}

/** The preset the suite runs under: `$SUITE_PRESET`, default `demo`. */
export function suitePreset(): Preset {
  const value = Deno.env.get("SUITE_PRESET") ?? "demo";
  if (value !== "demo" && value !== "real" && value !== "test") {
    throw new Error(`SUITE_PRESET=${value} is not one of demo, real, test`);
  }
  return value;
}
