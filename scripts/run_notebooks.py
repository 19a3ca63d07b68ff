"""Execute notebooks top to bottom, as ``make demo`` does, and save the executed copies.

    python scripts/run_notebooks.py notebooks/0*.ipynb                      # copies in build/notebooks/
    GENRL_LITE_FAST=1 python scripts/run_notebooks.py notebooks/00_environments_and_data.ipynb
    python scripts/run_notebooks.py --inplace notebooks/07_benchmark.ipynb  # maintainers: the committed outputs

Each notebook runs in a fresh kernel with the notebooks folder as its working directory (as in
JupyterLab). The kernel inherits this environment, so ``GENRL_LITE_FAST=1`` picks the fast budgets.

Why not ``jupyter nbconvert --execute``: it runs on nbclient, which waits for each cell's reply with
one blocking read of the kernel's shell channel. After a widget cell (``interact``), that read
sometimes never wakes up although the kernel has answered and sits idle, and the run hangs for
good (upstream: jupyter/nbclient#312, jupyter/nbconvert#1921). On the 2-core machine, with both
cores busy with training, notebook 00 hung in 4 of 5 nbconvert runs (2026-12-07). :class:`PatientClient`
reads in one-second steps instead, so a missed wake-up costs at most a second: it ran the same
notebook 3 times of 3, in 15-17 s each (fast mode).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from genrl_lite.runtime import atomic_path

POLL_SECONDS = 1.0
"""Longest single wait on the kernel's shell channel (see the module docstring)."""


def patient(get_msg, poll: float = POLL_SECONDS):
    """Wrap an async ``get_msg(timeout)`` so that it never waits more than ``poll`` seconds at once.

    The wrapper keeps the caller's overall ``timeout`` (None: wait for ever) and raises ``Empty``
    only when that has passed, exactly like the wrapped call."""

    async def get_msg_in_steps(timeout: float | None = None):
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            step = poll if end is None else max(0.0, min(poll, end - time.monotonic()))
            try:
                return await get_msg(timeout=step)
            except Empty:
                if end is not None and time.monotonic() >= end:
                    raise

    return get_msg_in_steps


class PatientClient(NotebookClient):
    """nbclient's client with a shell channel read in short steps (see the module docstring)."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        kc.shell_channel.get_msg = patient(kc.shell_channel.get_msg)
        return kc


def run_notebook(path, out, timeout: float | None = 900) -> float:
    """Execute notebook ``path`` and write it, with its outputs, to ``out`` (atomically; ``out`` may
    be ``path``). ``timeout``: seconds per cell, None for no limit. Returns the wall time in seconds.

    Raises FileNotFoundError for a missing notebook, ValueError for a file that is not a notebook,
    and nbclient's CellExecutionError (naming the cell) when a cell fails; ``out`` is then untouched."""
    path, out = Path(path), Path(out)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}; the course notebooks are notebooks/[0-9]*.ipynb")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ValueError(f"{path} is not a readable notebook ({exc}); restore it with "
                         f"`git checkout -- {path}`") from exc
    t0 = time.time()
    PatientClient(nb, timeout=timeout, kernel_name="python3",
                  resources={"metadata": {"path": str(path.resolve().parent)}}).execute()
    seconds = time.time() - t0
    with atomic_path(out) as tmp:
        nbformat.write(nb, tmp)
    return seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out-dir", type=Path, default=Path("build/notebooks"),
                       help="folder for the executed copies (default build/notebooks)")
    where.add_argument("--inplace", action="store_true", help="overwrite each notebook with its executed copy")
    p.add_argument("--timeout", type=float, default=900, help="seconds per cell; 0 for no limit (default 900)")
    args = p.parse_args(argv)
    for nb in args.notebooks:
        out = nb if args.inplace else args.out_dir / nb.name
        print(f">>> {nb}", flush=True)
        try:
            seconds = run_notebook(nb, out, timeout=args.timeout or None)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except CellExecutionError as exc:
            print(f"error: a cell of {nb} failed (the notebook was not written):\n{exc}", file=sys.stderr)
            return 1
        print(f"    {seconds:.0f} s -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
