"""Executes one notebook for lib/notebook/runner.ts and reports what happened as JSON.

    python3 execute_notebook.py --result R.json --out-notebook X.ipynb --out-html X.html \
        [--kernel deno] [--timeout 1800] NOTEBOOK.ipynb

Runs every code cell with nbclient, the kernel started in the notebook's folder (so relative
imports resolve as in Jupyter), stops at the first failure, and always writes the executed
notebook (partly executed on failure, with the error output) and its HTML rendering. The result
file holds one JSON object: {"ok", "kind", "error", "cell", "html_error"}; see `result()`.

An interrupt (SIGINT: Ctrl-C in the terminal that runs the suite) is passed on to the kernel, which a
notebook that loaded the library answers as Jupyter's Stop (lib/notebook/interrupt.ts): the running job
ends at its next step; no later cell runs, and the partly executed notebook is written as for a failure,
with the kind "interrupted". A second interrupt ends the driver at once.

Uses the standard library, nbformat, nbclient and nbconvert only. The Deno kernel can publish a
cell's "idle" status before its last stdout and display messages; `BatchClient` keeps listening
for a short grace period after idle so that nothing a cell prints is lost.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import uuid
from queue import Empty
from time import monotonic

# Seconds of silence (no message for the cell) after a cell's idle status before it is complete.
GRACE_SECONDS = 0.15
# How many source lines of the failing cell the result quotes.
QUOTED_LINES = 3
# How many lines of the kernel's own stderr a "kernel died" report quotes at most.
KERNEL_STDERR_LINES = 3
# What marks a line of the kernel's stderr as the reason it stopped.
FATAL_PATTERN = re.compile(r"fatal|panicked|out of memory", re.IGNORECASE)
# Output messages that may arrive late and still belong to their cell.
LATE_OUTPUT_TYPES = {"stream", "display_data", "update_display_data", "execute_result"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Execute one notebook with nbclient.")
    parser.add_argument("notebook", help="the .ipynb to execute (left unchanged)")
    parser.add_argument("--result", required=True, help="where to write the JSON result")
    parser.add_argument("--out-notebook", required=True, help="where to write the executed notebook")
    parser.add_argument("--out-html", required=True, help="where to write its HTML rendering")
    parser.add_argument("--kernel", default="deno", help="Jupyter kernel name (default: deno)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default: 1800)")
    return parser.parse_args(argv)


def write_atomic(path, text):
    """Writes text to path through a temp file beside it and a rename (permissions as the umask says)."""
    tmp = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def result(ok, kind=None, error=None, cell=None, html_error=None):
    """The JSON object runner.ts reads: kind is cell-error | kernel-died | timeout | interrupted | runner-error."""
    return {"ok": ok, "kind": kind, "error": error, "cell": cell, "html_error": html_error}


try:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionComplete, CellExecutionError, CellTimeoutError, DeadKernelError
    from nbclient.util import ensure_async
    from nbconvert import HTMLExporter
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
except ImportError as import_error:
    IMPORT_ERROR = import_error
else:
    IMPORT_ERROR = None

    class RunInterrupted(Exception):
        """An interrupt came: the next cell is not run."""

    class BatchClient(NotebookClient):
        """NotebookClient that keeps a cell's late output, remembers how its kernel ended, and passes an
        interrupt on to the kernel (then runs no further cell)."""

        def __init__(self, nb, **kw):
            super().__init__(nb, **kw)
            self.current_index = None  # index among all cells of the cell being executed
            self.kernel_returncode = None  # the kernel process's exit status once it is gone
            self.finished_cells = {}  # parent msg_id -> (cell, index), for output arriving even later
            self.interrupts = 0  # interrupts received

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if self.interrupts and cell.cell_type == "code":
                raise RunInterrupted()
            # nbclient's own SIGINT handler shuts the kernel down; this one passes the interrupt on instead.
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self.on_interrupt)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                pass
            self.current_index = cell_index
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

        def on_interrupt(self):
            """SIGINT: the first goes on to the kernel (in its own session, out of the terminal's reach), which
            ends its running job at the next step; the second kills the kernel."""
            self.interrupts += 1
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            if process is None or process.poll() is not None:
                return
            if self.interrupts == 1:
                os.kill(process.pid, signal.SIGINT)
            else:
                process.kill()

        async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
            """Reads the cell's output until idle, then until GRACE_SECONDS pass without a message for it."""
            assert self.kc is not None
            await self._poll_until(parent_msg_id, cell, cell_index, deadline=None)
            await self._poll_until(parent_msg_id, cell, cell_index, deadline=monotonic() + GRACE_SECONDS)
            self.finished_cells[parent_msg_id] = (cell, cell_index)

        async def _poll_until(self, parent_msg_id, cell, cell_index, deadline):
            """Processes iopub messages: until idle when deadline is None, else until a silent grace period."""
            while True:
                timeout = None if deadline is None else max(0.0, deadline - monotonic())
                try:
                    msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=timeout))
                except Empty:
                    return
                parent = msg["parent_header"].get("msg_id")
                if parent != parent_msg_id:
                    self._route_late_output(parent, msg)
                    continue
                if deadline is not None:
                    deadline = monotonic() + GRACE_SECONDS
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    if deadline is None:
                        return

        def _route_late_output(self, parent, msg):
            """Output for an earlier cell that arrived after its grace period still goes to that cell."""
            if parent in self.finished_cells and msg["msg_type"] in LATE_OUTPUT_TYPES:
                cell, index = self.finished_cells[parent]
                pending_clear = self.clear_before_next_output  # belongs to the running cell
                self.clear_before_next_output = False
                try:
                    self.process_message(msg, cell, index)
                finally:
                    self.clear_before_next_output = pending_clear

        async def _async_cleanup_kernel(self):
            self.kernel_returncode = self._poll_kernel()
            await super()._async_cleanup_kernel()

        def _poll_kernel(self):
            """The kernel process's return code (negative: killed by that signal), None while it runs."""
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            return process.poll() if process is not None else None


def cell_label(nb, index):
    """How Jupyter shows a code cell: In[execution_count], or In[position among code cells] before one."""
    cell = nb.cells[index]
    count = cell.get("execution_count")
    if not count:
        count = sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")
    return f"In[{count}]"


def describe_cell(nb, index):
    """The failing cell for the result: its label, index, first source lines and line count."""
    if index is None:
        return None
    lines = nb.cells[index].source.strip("\n").split("\n")
    return {
        "label": cell_label(nb, index),
        "index": index,
        "first_lines": lines[:QUOTED_LINES],
        "line_count": len(lines),
    }


def exit_description(returncode, heap_exhausted=False):
    """Why a kernel process ended, from its return code: (what happened, the likely cause), or None."""
    if returncode is None:
        return None
    if heap_exhausted:
        cause = "the JavaScript heap ran out of memory (raise it with DENO_V8_FLAGS=--max-old-space-size=<MB>)"
    else:
        cause = None
    if returncode >= 0:
        return f"exit code {returncode}", cause or "it exited on its own, e.g. through Deno.exit() or a fatal error"
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "an unknown signal"
    if number == signal.SIGKILL:
        cause = cause or "most likely it ran out of memory (the OOM killer) or was killed"
    return f"killed by signal {number}, {name}", cause or "it crashed or was killed"


def dead_kernel_message(returncode, label, fatal_lines):
    """How the kernel died: one line, then what it said about it on stderr, if anything."""
    message = f"the kernel died while running {label}" if label else "the kernel died before running any cell"
    heap_exhausted = any("out of memory" in line for line in fatal_lines)
    described = exit_description(returncode, heap_exhausted)
    if described is not None:
        message += f" ({described[0]}): {described[1]}"
    if fatal_lines:
        message += "\nthe kernel said: " + "\n".join(fatal_lines)
    return message


def fatal_lines(path, count):
    """The lines of the kernel's stderr that say why it stopped (V8's fatal errors, Rust panics)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [line.strip().lstrip("#").strip() for line in handle]
    except OSError:
        return []
    return [line for line in lines if FATAL_PATTERN.search(line)][:count]


def kernel_died(client, nb, index, kernel_stderr_path):
    """The failure for a kernel that died while running cell `index` (None: before any cell)."""
    label = cell_label(nb, index) if index is not None else None
    said = fatal_lines(kernel_stderr_path, KERNEL_STDERR_LINES)
    return "kernel-died", dead_kernel_message(client.kernel_returncode, label, said), index


def execute(nb, args, kernel_stderr_path):
    """Executes nb in place, stopping at the first failure: None, or (kind, error, failing cell's index)."""
    folder = os.path.dirname(os.path.abspath(args.notebook))
    client = BatchClient(nb, kernel_name=args.kernel, timeout=args.timeout, resources={"metadata": {"path": folder}})
    try:
        with open(kernel_stderr_path, "w", encoding="utf-8") as kernel_stderr:
            client.execute(stderr=kernel_stderr)
    except RunInterrupted:
        index = client.current_index
        label = cell_label(nb, index) if index is not None else "the first cell"
        return "interrupted", f"interrupted after {label}; no later cell ran", index
    except CellExecutionError as error:
        if client.interrupts:
            return "interrupted", f"interrupted: {error.ename}: {error.evalue}", client.current_index
        return "cell-error", f"{error.ename}: {error.evalue}", client.current_index
    except CellTimeoutError:
        index = client.current_index
        label = cell_label(nb, index) if index is not None else "a cell"
        return "timeout", f"{label} was still running after {args.timeout} s, the timeout for one cell", index
    except DeadKernelError:
        kind, error, index = kernel_died(client, nb, client.current_index, kernel_stderr_path)
        if client.interrupts:
            return "interrupted", f"interrupted, and {error} (the notebook had not loaded the library yet)", index
        return kind, error, index
    except NoSuchKernel:
        installed = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
        return "runner-error", f'no Jupyter kernel named "{args.kernel}"; installed: {installed}', None
    except Exception as error:  # noqa: BLE001 - reported to the user as one line, no traceback
        if client.kernel_returncode is not None:  # e.g. "Kernel died before replying to kernel_info"
            return kernel_died(client, nb, None, kernel_stderr_path)
        return "runner-error", f"{type(error).__name__}: {error}", client.current_index
    return None


def render_html(nb):
    """The notebook as an HTML page (nbconvert's default lab template)."""
    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def run(args):
    """Executes the notebook, writes the executed copy and its HTML, returns the result object."""
    if IMPORT_ERROR is not None:
        return result(False, "runner-error", f"{sys.executable} cannot import {IMPORT_ERROR.name or IMPORT_ERROR}: "
                      "install nbclient and nbconvert (Debian/Ubuntu: apt-get install python3-nbclient "
                      "jupyter-nbconvert; elsewhere: pip install nbclient nbconvert)")
    try:
        nb = nbformat.read(args.notebook, as_version=4)
    except Exception as error:  # noqa: BLE001
        return result(False, "runner-error", f"cannot read {args.notebook} as a notebook: {error}")
    fd, kernel_stderr_path = tempfile.mkstemp(prefix="kernel-stderr-", suffix=".txt")
    os.close(fd)
    try:
        failure = execute(nb, args, kernel_stderr_path)
    finally:
        os.remove(kernel_stderr_path)
    write_atomic(args.out_notebook, nbformat.writes(nb, version=4) + "\n")
    html_error = None
    try:
        write_atomic(args.out_html, render_html(nb))
    except Exception as error:  # noqa: BLE001
        html_error = f"{type(error).__name__}: {error}"
    if failure is None:
        return result(True, html_error=html_error)
    kind, error, index = failure
    return result(False, kind, error, describe_cell(nb, index), html_error)


def main(argv):
    args = parse_args(argv)
    try:
        outcome = run(args)
    except Exception as error:  # noqa: BLE001 - the runner shows this one line, never a traceback
        outcome = result(False, "runner-error", f"{type(error).__name__}: {error}")
    write_atomic(args.result, json.dumps(outcome))
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
