"""Runs a notebook's code cells in a live Jupyter kernel and records, with timestamps, every iopub message.

    python3 kernel_client.py NOTEBOOK.ipynb [--kernel deno] [--cwd DIR] [--second-pass 3,5]
        [--grace 1.0] [--timeout 600] [--keep-going] [--steps JSON]

What a user sees in JupyterLab is what the kernel publishes on iopub while a cell runs; nbclient
hides the timing. This client executes every code cell of NOTEBOOK in order (then, with
--second-pass, the cells at those 0-based positions of the notebook's `cells` list again, in the
same kernel; or, with --steps, the listed cells and code, interrupting the kernel as Stop does where
asked), and for each execution records each iopub message that belongs to it: its type,
the seconds since the cell was sent, the display id, the text/plain of display data, stream text,
error name and value, and when the cell's `status: idle` came. After idle it keeps listening for
--grace seconds and marks what arrives then as late (a kernel that reports idle early loses those
outputs in nbclient). It prints one JSON document to stdout:

    {"kernel": "deno", "cwd": "...", "cells": [CELL, ...], "error": null | "what went wrong"}
    CELL = {"cell": 3, "pass": 1, "source": "first line", "idle_at": 2.41, "reply_status": "ok",
            "messages": [{"t": 0.01, "msg_type": "display_data", "display_id": "...",
                          "text": "...", "late": false}, ...]}

The kernel runs in --cwd (default: the notebook's folder) with this process's environment; its
own stdout goes to this process's stderr so that stdout holds only the JSON. Stops at the first
failing cell unless --keep-going. Uses the standard library and jupyter_client only.
"""

import argparse
import json
import os
import re
import sys
from queue import Empty
from time import monotonic

from jupyter_client import KernelManager

# Seconds one poll of the iopub channel waits.
POLL_SECONDS = 0.05
# Seconds to wait for the kernel to answer after it started.
READY_SECONDS = 120
# Seconds to wait for an execute_reply after the cell's idle status.
REPLY_SECONDS = 10


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Record the iopub messages of a notebook's cells.")
    parser.add_argument("notebook", help="the .ipynb whose code cells run (left unchanged)")
    parser.add_argument("--kernel", default="deno", help="Jupyter kernel name (default: deno)")
    parser.add_argument("--cwd", help="the kernel's working folder (default: the notebook's folder)")
    parser.add_argument(
        "--second-pass",
        default="",
        help="comma-separated 0-based positions in the notebook's cells list to run again afterwards",
    )
    parser.add_argument("--skip", default="", help="comma-separated positions the first pass leaves out")
    parser.add_argument("--grace", type=float, default=1.0, help="seconds to keep listening after idle (default: 1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one cell may run (default: 600)")
    parser.add_argument("--keep-going", action="store_true", help="run the remaining cells after a failing one")
    parser.add_argument(
        "--steps",
        default="",
        help='JSON list replacing both passes: {"cell": N} runs cell N, {"code": "..."} runs that code; a step '
        'may add "pass": K and "interrupt_when": REGEX (interrupt the kernel once, as Stop does, when a text '
        "of that execution matches; its error then does not end the run)",
    )
    return parser.parse_args(argv)


def cell_source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def execution_plan(cells, second_pass, skip=()):
    """(pass, position) of every execution: all code cells but `skip`, then the second pass."""
    plan = [(1, i) for i, cell in enumerate(cells) if cell.get("cell_type") == "code" and i not in skip]
    for position in second_pass:
        if not (0 <= position < len(cells)) or cells[position].get("cell_type") != "code":
            raise ValueError(f"--second-pass: cell {position} is not a code cell of the notebook")
        plan.append((2, position))
    return plan


def steps_plan(cells, steps):
    """(pass, position or None, source, interrupt pattern or None) of each --steps entry."""
    plan = []
    for i, step in enumerate(steps):
        if "cell" in step:
            position = step["cell"]
            if not (0 <= position < len(cells)) or cells[position].get("cell_type") != "code":
                raise ValueError(f"--steps[{i}]: cell {position} is not a code cell of the notebook")
            source = cell_source(cells[position])
        elif "code" in step:
            position, source = None, step["code"]
        else:
            raise ValueError(f"--steps[{i}]: expected a \"cell\" or a \"code\" key, got {sorted(step)}")
        pattern = re.compile(step["interrupt_when"]) if step.get("interrupt_when") else None
        plan.append((step.get("pass", 1), position, source, pattern))
    return plan


def describe(msg, started):
    """The recorded fields of one iopub message; `t` is seconds since the cell was sent."""
    content = msg.get("content", {})
    record = {"t": round(monotonic() - started, 4), "msg_type": msg["msg_type"], "late": False}
    display_id = (content.get("transient") or {}).get("display_id")
    if display_id is not None:
        record["display_id"] = display_id
    data = content.get("data")
    if isinstance(data, dict) and "text/plain" in data:
        record["text"] = data["text/plain"]
    if msg["msg_type"] == "stream":
        record["name"] = content.get("name")
        record["text"] = content.get("text", "")
    if msg["msg_type"] == "error":
        record["ename"] = content.get("ename")
        record["evalue"] = content.get("evalue")
    if msg["msg_type"] == "status":
        record["execution_state"] = content.get("execution_state")
    return record


class Recorder:
    """Executes cells one after another and files each iopub message under the execution it belongs to."""

    def __init__(self, client, grace, timeout, manager=None):
        self.client = client
        self.manager = manager
        self.grace = grace
        self.timeout = timeout
        self.by_msg_id = {}

    def file(self, msg):
        """Records msg under its execution, marked late when that execution already reported idle."""
        parent = (msg.get("parent_header") or {}).get("msg_id")
        target = self.by_msg_id.get(parent)
        if target is None:
            return
        record = describe(msg, target["_started"])
        record["late"] = target["idle_at"] is not None
        target["messages"].append(record)
        if record["msg_type"] == "status" and record.get("execution_state") == "idle" and target["idle_at"] is None:
            target["idle_at"] = record["t"]

    def execute(self, position, run_pass, source, interrupt_when=None):
        """Runs one cell; returns its record (reply_status "timeout" when it ran past the limit).

        With `interrupt_when` (a compiled pattern), interrupts the kernel once, when a text of this
        execution matches, and notes `interrupted_at` (seconds since the cell was sent).
        """
        started = monotonic()
        msg_id = self.client.execute(source, store_history=True, allow_stdin=False)
        record = {
            "cell": position,
            "pass": run_pass,
            "source": source.strip().split("\n")[0][:200],
            "idle_at": None,
            "reply_status": None,
            "messages": [],
            "_started": started,
        }
        self.by_msg_id[msg_id] = record
        deadline = started + self.timeout
        while record["idle_at"] is None and monotonic() < deadline:
            self.poll()
            if interrupt_when is not None and "interrupted_at" not in record:
                if any(interrupt_when.search(m.get("text") or "") for m in record["messages"]):
                    self.manager.interrupt_kernel()
                    record["interrupted_at"] = round(monotonic() - started, 4)
        if record["idle_at"] is None:
            record["reply_status"] = "timeout"
            return record
        quiet_until = monotonic() + self.grace
        while monotonic() < quiet_until:
            self.poll()
        record["reply_status"] = self.reply_status(msg_id)
        return record

    def poll(self):
        try:
            msg = self.client.get_iopub_msg(timeout=POLL_SECONDS)
        except Empty:
            return
        self.file(msg)

    def reply_status(self, msg_id):
        deadline = monotonic() + REPLY_SECONDS
        while monotonic() < deadline:
            try:
                reply = self.client.get_shell_msg(timeout=POLL_SECONDS)
            except Empty:
                continue
            if (reply.get("parent_header") or {}).get("msg_id") == msg_id:
                return reply.get("content", {}).get("status")
        return None


def run(args):
    with open(args.notebook, encoding="utf-8") as handle:
        cells = json.load(handle).get("cells", [])
    second_pass = [int(p) for p in args.second_pass.split(",") if p.strip()]
    skip = {int(p) for p in args.skip.split(",") if p.strip()}
    if args.steps:
        plan = steps_plan(cells, json.loads(args.steps))
    else:
        plan = [(run_pass, position, cell_source(cells[position]), None)
                for run_pass, position in execution_plan(cells, second_pass, skip)]
    cwd = os.path.abspath(args.cwd or os.path.dirname(os.path.abspath(args.notebook)))
    result = {"kernel": args.kernel, "cwd": cwd, "cells": [], "error": None}
    manager = KernelManager(kernel_name=args.kernel)
    manager.start_kernel(cwd=cwd, env=dict(os.environ), stdout=sys.stderr.fileno())
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=READY_SECONDS)
        recorder = Recorder(client, args.grace, args.timeout, manager)
        for run_pass, position, source, interrupt_when in plan:
            record = recorder.execute(position, run_pass, source, interrupt_when)
            result["cells"].append(record)
            if record["reply_status"] == "timeout":
                result["error"] = f"cell {position} ran past {args.timeout} s"
                break
            if not manager.is_alive():
                result["error"] = f"the kernel died during cell {position}"
                break
            if record["reply_status"] != "ok" and not args.keep_going and interrupt_when is None:
                break
    except Exception as error:  # the kernel did not start or answer: report it in the JSON
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    for record in result["cells"]:
        record.pop("_started", None)
    return result


def main(argv):
    args = parse_args(argv)
    result = run(args)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
