/**
 * Makes a machine ready for the README's commands, installing what is missing (apt-get as root on
 * Debian/Ubuntu, else pip for the user where a Python package will do); when it cannot, stops with one
 * line naming the packages and the command to install them. Idempotent and quick when all is there.
 *
 *   deno run -A scripts/setup.ts                 # what the notebooks need (deno task demo, deno task notebooks)
 *   deno run -A scripts/setup.ts --for tests     # that, plus what the tests need (deno task test)
 *
 * - notebooks: `jupyter nbconvert`, nbclient (the notebook runner's Python driver), the Deno kernel and
 *   XGBoost's library (the pair classifier of clip_siamese_test);
 * - tests: also Mesa's Vulkan driver and the Vulkan loader, so that WebGPU has a (software) adapter for the
 *   WebGPU backend tests and the packed gpu-check.
 */
import { jupyterPython } from "../lib/notebook/runner.ts";
import { findIcdFiles, findLoader } from "../lib/bench/gpu_info.ts";
import { loadXGBoost, XGBOOST_PACKAGE } from "../lib/match/xgboost.ts";

async function run(
  cmd: string[],
  options: { quiet?: boolean } = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: options.quiet === false ? "inherit" : "piped",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { ok: out.success, stdout: decode(out.stdout), stderr: out.stderr ? decode(out.stderr) : "" };
  } catch (error) {
    return { ok: false, stdout: "", stderr: String(error) };
  }
}

/** Something on the machine that a command of the suite needs, how to tell it is there, and how to install it. */
export interface Requirement {
  /** What it is, for messages ("jupyter nbconvert and nbclient"). */
  what: string;
  present: () => Promise<boolean>;
  /** Debian/Ubuntu packages that provide it. */
  apt: string[];
  /** Python packages that provide it (installed with `pip install --user` where apt cannot be used). */
  pip?: string[];
}

/** The notebooks' batch execution: `jupyter nbconvert`, `jupyter kernelspec` and nbclient in jupyter's Python. */
export const JUPYTER: Requirement = {
  what: "jupyter nbconvert and nbclient",
  present: async () =>
    (await run(["jupyter", "nbconvert", "--version"])).ok &&
    (await run(["jupyter", "kernelspec", "--version"])).ok &&
    (await run([await jupyterPython(), "-c", "import nbclient, nbconvert, nbformat"])).ok,
  apt: ["jupyter-nbconvert", "jupyter-client", "python3-nbclient"],
  pip: ["nbconvert", "nbclient", "jupyter_client"],
};

/** A Vulkan loader and at least one driver (ICD): Mesa's llvmpipe gives WebGPU a software adapter. */
export const VULKAN: Requirement = {
  what: "the Vulkan loader and a Vulkan driver (Mesa's software adapter)",
  present: () => Promise.resolve(findLoader() !== null && findIcdFiles().length > 0),
  apt: ["mesa-vulkan-drivers", "libvulkan1"],
};

/** XGBoost's shared library, loaded through Deno FFI by lib/match/xgboost.ts. */
export const XGBOOST: Requirement = {
  what: "XGBoost's library (libxgboost.so.0)",
  present: () => {
    try {
      loadXGBoost();
      return Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  },
  apt: [XGBOOST_PACKAGE],
};

/** What each entry point needs. */
export const REQUIREMENTS: Record<"notebooks" | "tests", Requirement[]> = {
  notebooks: [JUPYTER, XGBOOST],
  tests: [JUPYTER, VULKAN, XGBOOST],
};

function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/** The one line that says what to install by hand. */
export function installAdvice(missing: readonly Requirement[]): string {
  const apt = missing.flatMap((r) => r.apt);
  const pip = missing.flatMap((r) => r.pip ?? []);
  const pipOnly = missing.every((r) => r.pip !== undefined);
  return `setup: missing ${missing.map((r) => r.what).join("; ")}, and it could not be installed here: install ` +
    `them (Debian/Ubuntu: \`sudo apt-get install ${apt.join(" ")}\`` +
    (pipOnly ? `; elsewhere: \`pip install ${pip.join(" ")}\`` : "") + ") and run again";
}

/**
 * Ensures every requirement is met, installing the missing ones in one apt-get call (as root) or with pip
 * (those that have Python packages); throws one line naming the packages and the command otherwise, or at
 * once with `install: false`.
 */
export async function ensureRequirements(
  requirements: readonly Requirement[],
  options: { install?: boolean } = {},
): Promise<void> {
  const absent = async (list: readonly Requirement[]) => {
    const out: Requirement[] = [];
    for (const r of list) if (!(await r.present())) out.push(r);
    return out;
  };
  let missing = await absent(requirements);
  if (missing.length === 0) return;
  if (options.install === false) throw new Error(installAdvice(missing));
  const apt = missing.flatMap((r) => r.apt);
  if (isRoot() && (await run(["apt-get", "--version"])).ok) {
    console.error(`setup: installing ${apt.join(", ")} with apt-get ...`);
    await run(["apt-get", "update", "-qq"]);
    const result = await run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...apt]);
    if (!result.ok) console.error(result.stderr.split("\n").slice(-5).join("\n"));
  } else {
    const pip = missing.flatMap((r) => r.pip ?? []);
    if (pip.length > 0 && (await run(["python3", "-m", "pip", "--version"])).ok) {
      console.error(`setup: installing ${pip.join(", ")} with pip --user ...`);
      await run(["python3", "-m", "pip", "install", "--user", "-q", ...pip]);
    }
  }
  missing = await absent(missing);
  if (missing.length > 0) throw new Error(installAdvice(missing));
}

/** Ensures `jupyter nbconvert` and `jupyter kernelspec` exist and that jupyter's Python can import nbclient. */
export function ensureNbconvert(): Promise<void> {
  return ensureRequirements([JUPYTER]);
}

/** Ensures a `deno` Jupyter kernelspec exists and points at an existing Deno binary. */
export async function ensureDenoKernel(): Promise<void> {
  const listed = await run(["jupyter", "kernelspec", "list", "--json"]);
  let ok = false;
  if (listed.ok) {
    const specs = JSON.parse(listed.stdout).kernelspecs ?? {};
    const argv0: string | undefined = specs.deno?.spec?.argv?.[0];
    if (argv0) {
      try {
        await Deno.stat(argv0);
        ok = true;
      } catch {
        console.error(`setup: the deno kernel points at ${argv0}, which is gone; re-registering`);
      }
    }
  }
  if (ok) return;
  const install = await run([Deno.execPath(), "jupyter", "--install", "--force"]);
  if (!install.ok) {
    throw new Error(`setup: \`deno jupyter --install\` failed: ${install.stderr.trim().split("\n").pop()}`);
  }
  console.error(`setup: registered the Deno Jupyter kernel (${Deno.execPath()})`);
}

/** Everything the notebooks need. */
export async function ensureNotebookEnvironment(): Promise<void> {
  await ensureRequirements(REQUIREMENTS.notebooks);
  await ensureDenoKernel();
}

/** Everything the tests need: the notebooks' environment and the WebGPU software adapter. */
export async function ensureTestEnvironment(): Promise<void> {
  await ensureRequirements(REQUIREMENTS.tests);
  await ensureDenoKernel();
}

/** `--for notebooks|tests` from the command line (default notebooks). */
export function setupTarget(args: readonly string[]): "notebooks" | "tests" {
  if (args.length === 0) return "notebooks";
  const value = args.length === 1 && args[0].startsWith("--for=")
    ? args[0].slice("--for=".length)
    : args.length === 2 && args[0] === "--for"
    ? args[1]
    : undefined;
  if (value !== "notebooks" && value !== "tests") {
    throw new Error(
      `setup: arguments ${JSON.stringify(args.join(" "))} are not understood: use --for notebooks or --for tests`,
    );
  }
  return value;
}

if (import.meta.main) {
  try {
    const target = setupTarget(Deno.args);
    await (target === "tests" ? ensureTestEnvironment() : ensureNotebookEnvironment());
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
