/**
 * A thin typed binding of XGBoost's C API (Debian's `libxgboost0`, loaded with `Deno.dlopen`): the one
 * module of the suite that touches the native library. Matrices are row-major Float32Array with NaN as
 * the missing value (XGBoost learns where a missing value goes); every call that fails throws an Error
 * naming the call and XGBoost's own message (`XGBGetLastError`); every handle is freed by `dispose`.
 *
 * Installed by the README's commands (scripts/setup.ts); `XGBOOST_LIBRARY` at the edge (scripts,
 * notebook parameters) may name another build of the library.
 *
 * @module
 */

const SYMBOLS = {
  XGBGetLastError: { parameters: [], result: "pointer" },
  XGBoostVersion: { parameters: ["buffer", "buffer", "buffer"], result: "void" },
  XGDMatrixCreateFromMat: { parameters: ["buffer", "u64", "u64", "f32", "buffer"], result: "i32" },
  XGDMatrixSetFloatInfo: { parameters: ["pointer", "buffer", "buffer", "u64"], result: "i32" },
  XGDMatrixFree: { parameters: ["pointer"], result: "i32" },
  XGBoosterCreate: { parameters: ["buffer", "u64", "buffer"], result: "i32" },
  XGBoosterFree: { parameters: ["pointer"], result: "i32" },
  XGBoosterSetParam: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  XGBoosterUpdateOneIter: { parameters: ["pointer", "i32", "pointer"], result: "i32" },
  XGBoosterEvalOneIter: {
    parameters: ["pointer", "i32", "buffer", "buffer", "u64", "buffer"],
    result: "i32",
  },
  XGBoosterPredictFromDMatrix: {
    parameters: ["pointer", "pointer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  XGBoosterSaveModelToBuffer: { parameters: ["pointer", "buffer", "buffer", "buffer"], result: "i32" },
  XGBoosterLoadModelFromBuffer: { parameters: ["pointer", "buffer", "u64"], result: "i32" },
  XGBoosterBoostedRounds: { parameters: ["pointer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Library = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Names tried, in order, when no path is given. */
export const XGBOOST_LIBRARY_NAMES = ["libxgboost.so.0", "libxgboost.so", "libxgboost.dylib"] as const;

let loaded: { path: string; symbols: Library } | null = null;

/** The Debian package that provides the library, for messages. */
export const XGBOOST_PACKAGE = "libxgboost0";

/**
 * Loads the library once (`path`, else the usual names). Throws one line saying what was tried and how
 * to install it.
 */
export function loadXGBoost(path?: string): { path: string; version: string } {
  if (!loaded || (path && path !== loaded.path)) {
    const tried: string[] = [];
    for (const candidate of path ? [path] : XGBOOST_LIBRARY_NAMES) {
      try {
        loaded = { path: candidate, symbols: Deno.dlopen(candidate, SYMBOLS).symbols };
        break;
      } catch (error) {
        tried.push(`${candidate}: ${(error as Error).message.split("\n")[0]}`);
      }
    }
    if (!loaded || (path && loaded.path !== path)) {
      throw new Error(
        `XGBoost's library could not be loaded (${tried.join("; ")}); install it (Debian/Ubuntu: ` +
          `\`sudo apt-get install ${XGBOOST_PACKAGE}\`, or run \`deno task setup --for tests\`) or name the library file`,
      );
    }
  }
  const parts = new Int32Array(3);
  loaded.symbols.XGBoostVersion(
    new Uint8Array(parts.buffer, 0, 4),
    new Uint8Array(parts.buffer, 4, 4),
    new Uint8Array(parts.buffer, 8, 4),
  );
  return { path: loaded.path, version: [...parts].join(".") };
}

function lib(): Library {
  if (!loaded) loadXGBoost();
  return loaded!.symbols;
}

const cString = (text: string) => new TextEncoder().encode(text + "\0");

function lastError(): string {
  const pointer = lib().XGBGetLastError();
  return pointer ? new Deno.UnsafePointerView(pointer).getCString() : "(no message)";
}

/** Throws naming the call when XGBoost returned an error code. */
function check(code: number, call: string): void {
  if (code !== 0) throw new Error(`XGBoost ${call} failed: ${lastError()}`);
}

/** Reads a pointer written into an 8-byte out-parameter. */
function outPointer(cell: BigUint64Array): Deno.PointerObject {
  const pointer = Deno.UnsafePointer.create(cell[0]);
  if (!pointer) throw new Error("XGBoost returned a null handle");
  return pointer;
}

const bytes = (array: Float32Array | BigUint64Array) =>
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** A feature matrix in XGBoost (a DMatrix); free it with `dispose`. */
export class DMatrix {
  #handle: Deno.PointerObject | null;
  readonly rows: number;
  readonly columns: number;

  /** Row-major `values` [rows, columns]; NaN is missing. `labels` (0/1 or any float) when training. */
  constructor(values: Float32Array, rows: number, columns: number, labels?: ArrayLike<number>) {
    if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 0 || columns < 1) {
      throw new Error(`DMatrix: rows ${rows} and columns ${columns} must be whole numbers (columns >= 1)`);
    }
    if (values.length !== rows * columns) {
      throw new Error(`DMatrix: ${values.length} values are not ${rows} rows x ${columns} columns`);
    }
    const out = new BigUint64Array(1);
    check(
      lib().XGDMatrixCreateFromMat(bytes(values), BigInt(rows), BigInt(columns), NaN, bytes(out)),
      "XGDMatrixCreateFromMat",
    );
    this.#handle = outPointer(out);
    this.rows = rows;
    this.columns = columns;
    if (labels) {
      if (labels.length !== rows) {
        this.dispose();
        throw new Error(`DMatrix: ${labels.length} labels for ${rows} rows`);
      }
      const label = Float32Array.from(labels);
      check(
        lib().XGDMatrixSetFloatInfo(this.#handle, cString("label"), bytes(label), BigInt(rows)),
        "XGDMatrixSetFloatInfo(label)",
      );
    }
  }

  /** The native handle (throws once disposed). */
  get handle(): Deno.PointerObject {
    if (!this.#handle) throw new Error("DMatrix: used after dispose()");
    return this.#handle;
  }

  dispose(): void {
    if (this.#handle) check(lib().XGDMatrixFree(this.#handle), "XGDMatrixFree");
    this.#handle = null;
  }
}

/** What `Booster.predict` returns: one value per row, or per row and column (contributions). */
export interface Prediction {
  values: Float32Array;
  shape: number[];
}

/** What a prediction holds: probabilities (0), margins (1) or per-feature contributions plus bias (2, SHAP). */
export type PredictionType = "value" | "margin" | "contributions";

const PREDICTION_TYPES: Record<PredictionType, number> = { value: 0, margin: 1, contributions: 2 };

/** A gradient-boosted model; free it with `dispose`. */
export class Booster {
  #handle: Deno.PointerObject | null;

  /** A booster to train on `cache` matrices (the training and evaluation sets), or an empty one to load into. */
  constructor(cache: readonly DMatrix[] = []) {
    const handles = new BigUint64Array(cache.map((m) => BigInt(Deno.UnsafePointer.value(m.handle))));
    const out = new BigUint64Array(1);
    check(
      lib().XGBoosterCreate(handles.length ? bytes(handles) : new Uint8Array(8), BigInt(cache.length), bytes(out)),
      "XGBoosterCreate",
    );
    this.#handle = outPointer(out);
  }

  get handle(): Deno.PointerObject {
    if (!this.#handle) throw new Error("Booster: used after dispose()");
    return this.#handle;
  }

  /** Sets training parameters (XGBoost's names: "objective", "max_depth", "eta", "nthread", "seed", ...). */
  setParams(params: Readonly<Record<string, string | number>>): void {
    for (const [name, value] of Object.entries(params)) {
      check(
        lib().XGBoosterSetParam(this.handle, cString(name), cString(String(value))),
        `XGBoosterSetParam(${name}=${value})`,
      );
    }
  }

  /** One boosting round on `train`. */
  updateOneIter(iteration: number, train: DMatrix): void {
    check(lib().XGBoosterUpdateOneIter(this.handle, iteration, train.handle), `XGBoosterUpdateOneIter(${iteration})`);
  }

  /** The evaluation metrics after `iteration` on named sets, e.g. { "val-logloss": 0.41 }. */
  evalOneIter(iteration: number, sets: readonly { name: string; matrix: DMatrix }[]): Record<string, number> {
    const handles = new BigUint64Array(sets.map((s) => BigInt(Deno.UnsafePointer.value(s.matrix.handle))));
    const names = sets.map((s) => cString(s.name));
    const namePointers = new BigUint64Array(
      names.map((n) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(n)))),
    );
    const out = new BigUint64Array(1);
    check(
      lib().XGBoosterEvalOneIter(
        this.handle,
        iteration,
        bytes(handles),
        bytes(namePointers),
        BigInt(sets.length),
        bytes(out),
      ),
      `XGBoosterEvalOneIter(${iteration})`,
    );
    const text = new Deno.UnsafePointerView(outPointer(out)).getCString();
    const metrics: Record<string, number> = {};
    for (const match of text.matchAll(/\t([^\s:]+):(\S+)/g)) metrics[match[1]] = Number(match[2]);
    return metrics;
  }

  /** Predictions for `matrix` (XGBoosterPredictFromDMatrix); `iterationEnd` 0 = every round. */
  predict(matrix: DMatrix, options: { type?: PredictionType; iterationEnd?: number } = {}): Prediction {
    const config = JSON.stringify({
      type: PREDICTION_TYPES[options.type ?? "value"],
      training: false,
      iteration_begin: 0,
      iteration_end: options.iterationEnd ?? 0,
      strict_shape: false,
    });
    const shapeOut = new BigUint64Array(1), dimOut = new BigUint64Array(1), resultOut = new BigUint64Array(1);
    check(
      lib().XGBoosterPredictFromDMatrix(
        this.handle,
        matrix.handle,
        cString(config),
        bytes(shapeOut),
        bytes(dimOut),
        bytes(resultOut),
      ),
      "XGBoosterPredictFromDMatrix",
    );
    const dim = Number(dimOut[0]);
    const shapeView = new Deno.UnsafePointerView(outPointer(shapeOut));
    const shape = Array.from({ length: dim }, (_, i) => Number(shapeView.getBigUint64(i * 8)));
    const count = shape.reduce((a, b) => a * b, 1);
    // The result buffer belongs to the booster and is overwritten by the next call: copy it.
    const values = new Float32Array(
      new Deno.UnsafePointerView(outPointer(resultOut)).getArrayBuffer(count * 4).slice(0),
    );
    return { values, shape };
  }

  /** Rounds boosted so far. */
  boostedRounds(): number {
    const out = new Int32Array(1);
    check(lib().XGBoosterBoostedRounds(this.handle, new Uint8Array(out.buffer)), "XGBoosterBoostedRounds");
    return out[0];
  }

  /** The model as XGBoost's own JSON (what `xgboost.Booster.load_model` reads). */
  saveJson(): string {
    const lengthOut = new BigUint64Array(1), dataOut = new BigUint64Array(1);
    check(
      lib().XGBoosterSaveModelToBuffer(this.handle, cString('{"format": "json"}'), bytes(lengthOut), bytes(dataOut)),
      "XGBoosterSaveModelToBuffer",
    );
    const length = Number(lengthOut[0]);
    const data = new Uint8Array(new Deno.UnsafePointerView(outPointer(dataOut)).getArrayBuffer(length).slice(0));
    return new TextDecoder().decode(data);
  }

  /** A booster read from XGBoost JSON (`saveJson`, or a model saved by XGBoost elsewhere as .json). */
  static fromJson(json: string): Booster {
    const booster = new Booster();
    const data = new TextEncoder().encode(json);
    try {
      check(
        lib().XGBoosterLoadModelFromBuffer(booster.handle, data, BigInt(data.length)),
        "XGBoosterLoadModelFromBuffer",
      );
    } catch (error) {
      booster.dispose();
      throw error;
    }
    return booster;
  }

  dispose(): void {
    if (this.#handle) check(lib().XGBoosterFree(this.#handle), "XGBoosterFree");
    this.#handle = null;
  }
}
