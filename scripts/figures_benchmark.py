"""Figures of the benchmark (issue 7) for figures/, from results/benchmark.json (never recomputed).

    .venv/bin/python scripts/figures_benchmark.py     # seconds; after scripts/benchmark.py

benchmark_tasks.png (the headline methods per task, the paper's numbers as black ticks),
benchmark_domains.png (the same per domain), benchmark_ablations.png (aligner, alignment window,
image embedding, training data, video prompts; walker), benchmark_generalization.png (the custom
tasks that have a result), benchmark_amortization.png (total time vs
number of policies: measured here when both GenRL and TD3+BC-V policy times exist, and the paper's).
Cells not run are drawn as "not run", never as a number. Fast-mode results are never plotted here.
Also benchmark_wmdata_prompts.png, where the training-data ablation's walker models have their
prompt videos on this machine (``prompts_frames.npz``, git-ignored like the models; made by
``python scripts/bench_prompts.py --model <prep>/wmdata_<subset>/model.pt --json <prep>/wmdata_<subset>/prompts.json``
with ``<prep>`` = ``results/benchmark/prep/walker-laptop``): what each model imagines for the three
walker task prompts.
"""
from __future__ import annotations

import json
from pathlib import Path

import genrl_lite  # noqa: F401
import numpy as np

from genrl_lite import benchmark as bm
from genrl_lite import benchmark_results as bres
from genrl_lite import plotting
from genrl_lite.runtime import REPO_ROOT, figures_dir

MAIN = [m for m, spec in bm.METHODS.items() if spec.group == "main"]
ABLATIONS = ["genrl"] + [m for m, spec in bm.METHODS.items() if spec.group == "ablation"]
WALKER = ["walker_stand", "walker_walk", "walker_run"]


def load(path=None) -> dict:
    path = path or REPO_ROOT / "results" / "benchmark.json"
    record = json.loads(path.read_text())
    if record.get("fast_mode"):
        raise SystemExit(f"{path} holds a fast-mode smoke run; figures are made from laptop results only")
    return record


def figures(record: dict) -> dict:
    """{file name: Figure} from a benchmark record (pure: no files read or written)."""
    rows, out = record["rows"], {}
    tasks = [t for t in bm.BEHAVIOUR_TASKS if any(r["task"] == t for r in rows)] or list(bm.BEHAVIOUR_TASKS)
    s, p = bres.bar_series(rows, MAIN, tasks)
    out["benchmark_tasks.png"] = plotting.benchmark_bars(tasks, s, p, title="behaviour retrieval, by task "
                                                         "(mean ± s.e. over seeds; ticks: paper)")
    domains = sorted({r["domain"] for r in rows if r["method"] in MAIN})
    s, p = bres.bar_series(rows, MAIN, domains, by="domain")
    out["benchmark_domains.png"] = plotting.benchmark_bars(domains, s, p, title="by domain (mean over tasks run)")
    fig, axes = plotting.new_figure(1, 4, width=4.6, height=3.4)
    s, p = bres.bar_series(rows, ABLATIONS, WALKER)
    plotting.benchmark_bars(WALKER, s, p, title="ablations (walker)", ax=axes[0, 0])
    data = ["genrl"] + [f"data_{k}" for k in bm.DATA_ABLATION if k != "all"]
    s, _ = bres.bar_series(rows, data, WALKER)
    plotting.benchmark_bars(WALKER, s, None, title="policy data: all vs one subset", ax=axes[0, 1])
    s, _ = bres.bar_series(rows, [f"wmdata_{k}" for k in bm.WM_DATA], WALKER)
    plotting.benchmark_bars(WALKER, s, None, title="world-model data: all vs one subset", ax=axes[0, 2])
    videos = list(bm.VIDEO_PROMPTS)
    vt = [bm.VIDEO_PROMPTS[v].task for v in videos]
    text, _ = bres.bar_series(rows, ["genrl"], vt)
    vid = [next((r for r in rows if r["method"] == f"video_{v}"), None) for v in videos]
    video = (np.array([np.nan if r is None or r["normalized_mean"] is None else r["normalized_mean"] for r in vid]),
             np.array([np.nan if r is None or r["normalized_stderr"] is None else r["normalized_stderr"] for r in vid]))
    plotting.benchmark_bars([v.replace("_from_", "\nfrom ") for v in videos],
                            {"text prompt": text["GenRL"], "video prompt": video}, None,
                            title="video vs text prompts", ax=axes[0, 3])
    fig.tight_layout()
    out["benchmark_ablations.png"] = fig
    from genrl_lite.tasks import list_tasks

    custom = [t for t in list_tasks(kind="custom")
              if any(r["task"] == t and r["normalized_mean"] is not None for r in rows)]
    if custom:                                                  # only once a custom task has a result
        fig, axes = plotting.new_figure(width=max(5.0, 1.0 * len(custom)), height=3.6)
        s, p = bres.bar_series(rows, list(bres.GENERALIZATION_METHODS), custom)
        plotting.benchmark_bars([t.replace("_", " ") for t in custom], s, p, ax=axes[0, 0],
                                title="generalization: tasks not in the data (mean ± s.e. over seeds)")
        out["benchmark_generalization.png"] = fig
    am = (record.get("cost") or {}).get("amortization")
    if am:
        out["benchmark_amortization.png"] = plotting.amortization_curve(
            am["n"], am["genrl"], am["model_free"], am["break_even"], unit="hours",
            title=f"measured here ({am['domain']}, 1 core per job)")
    else:
        n = np.arange(0, 121)
        c = bm.paper_amortization(n)
        out["benchmark_amortization.png"] = plotting.amortization_curve(
            n, c["genrl"], c["model_free"], c["break_even"], unit="hours",
            title="the paper's compute (V100); not measured here yet")
    return out


def wmdata_prompts(prep: Path):
    """The training-data ablation's models side by side: each walker task prompt (stand, walk, run)
    decoded by each ``wmdata_<subset>`` model (aligner -> connector -> decoder; every 4th imagined
    frame), one row per (prompt, model), from ``prep/wmdata_<subset>/prompts_frames.npz``. None when
    no model has them (a fresh clone: the models and their frames are rebuilt per machine)."""
    rows = {}
    for task in WALKER:
        for subset in bm.WM_DATA:
            path = prep / f"wmdata_{subset}" / "prompts_frames.npz"
            if path.exists():
                z = np.load(path)
                i = list(z["tasks"]).index(task)
                rows[f"wmdata_{subset}: \"{z['prompts'][i]}\""] = z["aligner"][i]
    if not rows:
        return None
    return plotting.video_strips(rows, title="training-data ablation: what each walker model (trained on all "
                                             "the data or one subset) imagines for a task prompt")


def main(path=None) -> None:
    path = path or REPO_ROOT / "results" / "benchmark.json"
    if not path.exists():
        print(f"no {path}: run scripts/benchmark.py (or --aggregate-only) first; no benchmark figures made")
        return
    for name, fig in figures(load(path)).items():
        print(plotting.save(fig, figures_dir() / name))
        plotting.close(fig)
    prep = REPO_ROOT / "results" / "benchmark" / "prep" / "walker-laptop"
    fig = wmdata_prompts(prep)
    if fig is None:
        print(f"no {prep}/wmdata_*/prompts_frames.npz (see this script's docstring): "
              "benchmark_wmdata_prompts.png not rewritten")
    else:
        print(plotting.save(fig, figures_dir() / "benchmark_wmdata_prompts.png"))
        plotting.close(fig)


if __name__ == "__main__":
    main()
