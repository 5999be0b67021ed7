/**
 * Makes a machine ready to execute the notebooks: `jupyter nbconvert`, nbclient (which the
 * notebook runner's Python driver uses) and the Deno kernel.
 * Installs what is missing (apt-get as root on Debian/Ubuntu, else pip for the user); when it
 * cannot, stops with one line naming what to install. Idempotent and quick when all is there.
 */
import { jupyterPython } from "../lib/notebook/runner.ts";

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

async function hasNbconvert(): Promise<boolean> {
  return (await run(["jupyter", "nbconvert", "--version"])).ok &&
    (await run(["jupyter", "kernelspec", "--version"])).ok &&
    (await run([await jupyterPython(), "-c", "import nbclient, nbconvert, nbformat"])).ok;
}

function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/**
 * Ensures `jupyter nbconvert` and `jupyter kernelspec` exist and that jupyter's Python can import
 * nbclient, installing them if it can.
 */
export async function ensureNbconvert(): Promise<void> {
  if (await hasNbconvert()) return;
  if (isRoot() && (await run(["apt-get", "--version"])).ok) {
    console.error("setup: installing jupyter-nbconvert, jupyter-client and python3-nbclient with apt-get ...");
    await run(["apt-get", "update", "-qq"]);
    const apt = await run([
      "apt-get",
      "install",
      "-y",
      "-qq",
      "jupyter-nbconvert",
      "jupyter-client",
      "python3-nbclient",
    ]);
    if (!apt.ok) console.error(apt.stderr.split("\n").slice(-5).join("\n"));
  } else if ((await run(["python3", "-m", "pip", "--version"])).ok) {
    console.error("setup: installing nbconvert, nbclient and jupyter_client with pip --user ...");
    await run(["python3", "-m", "pip", "install", "--user", "-q", "nbconvert", "nbclient", "jupyter_client"]);
  }
  if (!(await hasNbconvert())) {
    throw new Error(
      "setup: `jupyter nbconvert` or nbclient is missing and could not be installed: install them (Debian/Ubuntu: `sudo apt-get install jupyter-nbconvert jupyter-client python3-nbclient`; elsewhere: `pip install nbconvert nbclient jupyter_client`) and run again",
    );
  }
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
  await ensureNbconvert();
  await ensureDenoKernel();
}

if (import.meta.main) {
  try {
    await ensureNotebookEnvironment();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    Deno.exit(1);
  }
}
