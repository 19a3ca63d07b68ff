"""Regenerate every figure in figures/ (never edit them by hand).

Runs ``main()`` of each ``scripts/figures_<topic>.py`` in name order, so a new topic only has to
add its own script. Usage::

    .venv/bin/python scripts/make_figures.py            # all topics
    .venv/bin/python scripts/make_figures.py data vlm   # only figures_data.py and figures_vlm.py
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the triton-before-Mesa guard, before any topic)

HERE = Path(__file__).resolve().parent


def topic_scripts(only: list[str]) -> list[Path]:
    scripts = sorted(HERE.glob("figures_*.py"))
    if only:
        wanted = {f"figures_{name}.py" for name in only}
        missing = wanted - {p.name for p in scripts}
        if missing:
            valid = ", ".join(p.stem.removeprefix("figures_") for p in scripts)
            raise SystemExit(f"unknown figure topic(s) {sorted(missing)}; valid topics: {valid}")
        scripts = [p for p in scripts if p.name in wanted]
    return scripts


def main(argv: list[str]) -> None:
    for path in topic_scripts(argv):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        start = time.time()
        print(f">>> {path.name}", flush=True)
        module.main()
        print(f"    done in {time.time() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
