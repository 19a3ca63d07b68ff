"""scripts/run_notebooks.py, the notebook runner behind ``make demo``: short shell reads, outputs, errors."""
from __future__ import annotations

import asyncio
import time
from queue import Empty

import nbformat
import pytest


def test_patient_reads_never_wait_without_a_limit_and_keep_the_overall_timeout(load_script):
    patient = load_script("run_notebooks").patient
    waits = []

    def fake(answer_on_call):
        async def get_msg(timeout=None):
            waits.append(timeout)
            if timeout is None:
                raise AssertionError("a read without a limit is the one that can hang for good")
            if len(waits) >= answer_on_call:
                return {"msg": "reply"}
            raise Empty
        return get_msg

    # No overall limit: short reads until the reply comes.
    assert asyncio.run(patient(fake(3), poll=0.01)(timeout=None)) == {"msg": "reply"}
    assert len(waits) == 3 and all(w == 0.01 for w in waits), waits
    # An overall limit still ends in Empty, after about that long, in reads no longer than poll.
    waits.clear()
    t0 = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(patient(fake(10**9), poll=0.02)(timeout=0.1))
    assert 0.1 <= time.monotonic() - t0 < 1.0
    assert len(waits) >= 4 and max(waits) <= 0.02, waits


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_runs_a_widget_notebook_and_writes_its_outputs(tmp_path, load_script):
    run = load_script("run_notebooks")
    src = _notebook(tmp_path / "widgets.ipynb",
                    "from ipywidgets import IntSlider, interact\n"
                    "def show(x=2):\n    print('x is', x)\n"
                    "interact(show, x=IntSlider(2, 0, 5));",
                    "import os\nprint('after', os.path.basename(os.getcwd()))")
    out = tmp_path / "build" / "widgets.ipynb"
    assert run.main([str(src), "--out-dir", str(out.parent), "--timeout", "120"]) == 0
    nb = nbformat.read(out, as_version=4)
    assert [c.execution_count for c in nb.cells] == [1, 2]
    assert "application/vnd.jupyter.widget-view+json" in nb.cells[0].outputs[0]["data"]
    assert "x is 2" in str(nb.metadata["widgets"])                      # the widget's state is saved
    assert nb.cells[1].outputs[0]["text"] == f"after {tmp_path.name}\n"  # runs in the notebook's folder
    assert nbformat.read(src, as_version=4).cells[0].outputs == []      # the source is left as it was


def test_a_failing_cell_or_a_bad_path_says_what_went_wrong(tmp_path, load_script, capsys):
    run = load_script("run_notebooks")
    src = _notebook(tmp_path / "broken.ipynb", "print('first')", "1 / 0", "print('never')")
    out_dir = tmp_path / "build"
    assert run.main([str(src), "--out-dir", str(out_dir), "--timeout", "120"]) == 1
    err = capsys.readouterr().err
    assert "a cell of" in err and "broken.ipynb" in err and "ZeroDivisionError" in err
    assert not out_dir.exists() or not any(out_dir.iterdir())           # nothing half-written
    assert run.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err
    (tmp_path / "junk.ipynb").write_text("not json")
    assert run.main([str(tmp_path / "junk.ipynb"), "--out-dir", str(out_dir)]) == 2
    assert "not a readable notebook" in capsys.readouterr().err


def test_make_demo_runs_every_notebook_through_the_runner():
    import shutil
    import subprocess

    from genrl_lite.runtime import REPO_ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "demo"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    commands = [l for l in out.splitlines() if not l.lstrip().startswith("#")]
    line = next((l for l in commands if "scripts/run_notebooks.py" in l), None)
    assert line is not None, out
    notebooks = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))
    assert len(notebooks) >= 8 and all(nb in line for nb in notebooks), (line, notebooks)
    assert not any("nbconvert" in l for l in commands), out
