/**
 * Batched encoding that survives interruption: finished rows are saved to a partial file every
 * `saveEvery` batches (atomically), and a re-run with the same key continues from there. The
 * key names what produced the vectors (checkpoint, model, inputs), so stale partials are ignored.
 * Stop (lib/notebook/interrupt.ts) ends it after the running batch: the rows done are saved first.
 */
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import { exists, writeFileAtomic } from "../fs.ts";
import { Progress } from "../notebook/progress.ts";
import { beginInterruptible, InterruptedError, takeInterrupt } from "../notebook/interrupt.ts";
import { shownPath } from "../paths.ts";

export interface ResumableOptions {
  /** Identity of the encoder and inputs; a partial file with another key is discarded. */
  key: string;
  count: number;
  dim: number;
  /** Where partial results go, e.g. `<output>.partial.safetensors`. */
  partialPath: string;
  /** Encodes rows [start, end) and returns (end - start) * dim values. */
  encode: (start: number, end: number) => Promise<Float32Array>;
  batchSize?: number;
  saveEvery?: number;
  label?: string;
  progress?: boolean;
}

export interface ResumableResult {
  vectors: Float32Array;
  /** Rows taken from an earlier, interrupted run. */
  resumedRows: number;
}

/** Encodes `count` rows in batches, resuming from `partialPath` when it holds the same key. */
export async function encodeResumable(options: ResumableOptions): Promise<ResumableResult> {
  const { count, dim, key } = options;
  const batchSize = options.batchSize ?? 32;
  const saveEvery = options.saveEvery ?? 8;
  const vectors = new Float32Array(count * dim);
  let done = 0;
  beginInterruptible();
  if (await exists(options.partialPath)) {
    try {
      const { tensors, metadata } = readSafetensors(await Deno.readFile(options.partialPath), options.partialPath);
      const stored = tensors.get("vectors");
      if (metadata.key === key && stored && stored.shape[1] === dim && stored.shape[0] <= count) {
        vectors.set(stored.data as Float32Array);
        done = stored.shape[0];
      }
    } catch {
      // an unreadable partial file is ignored and overwritten
    }
  }
  const resumedRows = done;
  const bar = new Progress({
    total: count,
    label: options.label ?? "encode",
    unit: "products",
    silent: options.progress === false,
  });
  await bar.tick(done);
  const save = () =>
    writeFileAtomic(
      options.partialPath,
      writeSafetensors(
        new Map([["vectors", { dtype: "float32", shape: [done, dim], data: vectors.slice(0, done * dim) }]]),
        { key },
      ),
    );
  let batches = 0;
  await bar.run(async () => {
    while (done < count) {
      const end = Math.min(count, done + batchSize);
      const values = await options.encode(done, end);
      if (values.length !== (end - done) * dim) {
        throw new Error(`encoder returned ${values.length} values for rows ${done}..${end} of dim ${dim}`);
      }
      vectors.set(values, done * dim);
      await bar.tick(end - done);
      done = end;
      if (++batches % saveEvery === 0 && done < count) await save();
      if (done < count && takeInterrupt()) {
        await save();
        const label = options.label ?? "encode";
        await bar.stop(`interrupted at row ${done}/${count}`);
        throw new InterruptedError(
          `${label} stopped at row ${done}/${count}`,
          `the ${done} rows done, in ${shownPath(options.partialPath)}.`,
          `run it again with the same model and inputs: it goes on from row ${done}.`,
          options.partialPath,
        );
      }
    }
  });
  await Deno.remove(options.partialPath).catch(() => {});
  return { vectors, resumedRows };
}
