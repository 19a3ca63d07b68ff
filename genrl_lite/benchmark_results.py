"""What the benchmark's cells say: which are current, their means, the README's tables (issue 7).

``genrl_lite.benchmark`` is the experimental design (methods, tasks, cells); this module reads the
cells' ``result.json`` files back, top to bottom:

1. **Is a cell current?** (:func:`stale_reason`) A result measures the model file it was trained
   on (its sha1 prefix ``model_id``) and, for a video prompt, the clip it was prompted with (its
   ``clip_id``). When the model is retrained or the clip's episode re-collected, the cell is
   *stale*: left out of every aggregate, moved under ``results/superseded/`` (:func:`retire`, nothing
   is deleted) and run again by ``scripts/benchmark.py``.
2. **Aggregation** (:func:`aggregate`): mean ± standard error over seeds of each seed's mean
   normalized score, wall time per policy, and the command / commit / preset of every cell; then
   per domain (:func:`domain_rows`) and as arrays for the bar charts (:func:`bar_series`).
3. **The README's tables** (:func:`readme_tables`), generated from the aggregate, never typed.
4. **What a prompt adds** (:func:`prompt_effect`): read from a cross-evaluation
   (``scripts/cross_evaluate.py``, every policy of a body on every task of that body), the score a
   method reaches on a task when asked for it, minus its best score there when asked for another
   task of the same body. Near 0 means the prompt changed nothing the task's reward pays for.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from genrl_lite.benchmark import (BEHAVIOUR_TASKS, DATA_ABLATION, DATA_ABLATION_TASKS, METHODS, VIDEO_PROMPTS,
                                  WM_DATA, VideoPrompt, paper_domain_score, paper_score, video_prompt_clip)
from genrl_lite.runtime import REPO_ROOT, atomic_path, repo_relative as rel

# --- 1. is a cell current? -----------------------------------------------------------------------------------


def read_result(path: Path) -> dict | None:
    """A cell's result.json, or None if it is missing or unreadable (a cell not run yet)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


_MODELS: dict = {}


def _model_fingerprint(path: Path) -> tuple:
    """(model_id, weights_id, step, training date or None) of the checkpoint at ``path``; cached per
    file version."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _MODELS:
        from genrl_lite.training import _read, checkpoint_id, weights_id

        ckpt = _read(path)
        _MODELS[key] = (checkpoint_id(path), weights_id(ckpt), ckpt["step"], (ckpt.get("meta") or {}).get("date"))
    return _MODELS[key]


def stale_reason(result: dict, root=REPO_ROOT) -> str | None:
    """Why a cell's ``result`` no longer measures what its command would now; None if it still does.

    Results name their checkpoint's file (``model``) and its sha1 prefix (``model_id``); newer ones
    also the sha1 prefix of its weights alone (``weights_id``), which a bit-for-bit retraining (of a
    git-ignored ablation model on a fresh clone of the same kind of CPU) keeps although the file's
    metadata changes; older results only its ``step``, and for those a model whose ``date``
    (written by ``scripts/train_models.py``) is later than the result's is a retrained one too. A
    result without a ``model`` path, or whose model is gone, is never called stale here (the run
    reports a missing model itself). A video-prompt cell is stale too when its clip
    (``genrl_lite.benchmark.video_prompt_clip``, recorded as episode, start frame and ``clip_id``) is
    no longer the one the data on disk gives.
    """
    return _model_reason(result, Path(root)) or _clip_reason(result, Path(root))


def _model_reason(result: dict, root: Path) -> str | None:
    model = result.get("model")
    path = root / model if model else None
    if path is None or not path.is_file():
        return None
    model_id, weights, step, date = _model_fingerprint(path)
    if result.get("weights_id"):
        if result["weights_id"] != weights:
            return f"trained on {model} with weights {result['weights_id']}, which are now {weights}"
        return None
    if result.get("model_id"):
        if result["model_id"] != model_id:
            return f"trained on {model} {result['model_id']}, which is now {model_id}"
        return None
    if result.get("model_step") != step:
        return f"trained on {model} at step {result.get('model_step')}, which is now at step {step}"
    made = str(result.get("date", ""))
    if date and made and made[19:] == date[19:] and made[:19] < date[:19]:
        return f"trained on {made}, before {model} was retrained on {date}"
    return None


def _clip_reason(result: dict, root: Path) -> str | None:
    """Why a video-prompt cell's clip is no longer the one its command would take now, or None.

    Judged only where the clip's dataset subset is on disk (a fresh clone has only the sample: its
    cells are taken as they are, as for a missing model)."""
    entry, episode = result.get("video_prompt"), result.get("episode")
    if not entry or not episode:
        return None
    data = root / ((result.get("data") or {}).get("root") or "data")
    if not (data / entry["domain"] / entry["subset"]).is_dir():
        return None
    try:
        _, now = video_prompt_clip(VideoPrompt(**entry), data)
    except FileNotFoundError:
        return None
    was = f"{episode} frames {result.get('start')}-{result.get('start', 0) + 7}"
    if (rel(now["episode"]), now["start"]) != (episode, result.get("start")):
        return f"prompted by {was}; the data now gives {rel(now['episode'])} frames {now['start']}-{now['start'] + 7}"
    if result.get("clip_id"):
        if result["clip_id"] != now["clip_id"]:
            return f"prompted by {was} {result['clip_id']}, which is now {now['clip_id']} (re-collected)"
        return None
    made = str(result.get("date", ""))       # older results: was the episode written after the cell ran?
    written = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime((root / episode).stat().st_mtime))
    if made.endswith(" UTC") and made < written:
        return f"prompted by {was} on {made}, before that episode was re-collected on {written}"
    return None


def retire(cell_dir, results_root, why: str) -> Path:
    """Move a stale cell's folder to ``results_root/superseded/<same relative path>`` and return where.

    Nothing is deleted: the old policy, its curves and result stay readable there (with a
    ``SUPERSEDED.txt`` saying why), out of every aggregate, and the cell can be run again in place.
    """
    cell_dir, results_root = Path(cell_dir), Path(results_root)
    dest = results_root / "superseded" / cell_dir.resolve().relative_to(results_root.resolve())
    n = 1
    while dest.exists():
        dest, n = dest.with_name(f"{cell_dir.name}-{n}"), n + 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    cell_dir.rename(dest)
    (dest / "SUPERSEDED.txt").write_text(why + "\n")
    return dest


# --- 2. aggregation ------------------------------------------------------------------------------------


def mean_stderr(values) -> tuple[float | None, float | None]:
    """Mean and standard error (sample std / sqrt(n)) of the non-None values; (None, None) if none,
    stderr None for a single value."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None, None
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1) / len(v))


def aggregate(cells, results_root) -> list[dict]:
    """One row per (method, task): mean ± stderr over the seeds found, and what produced them.

    Missing cells are listed (``missing_seeds``) and never filled in: a row with no result has
    ``normalized_mean`` None ("not run"). Stale cells (:func:`stale_reason`) count as missing and are
    listed again in ``stale_seeds``.
    """
    groups: dict = {}
    for c in cells:
        groups.setdefault((c.method, c.task), []).append(c)
    rows = []
    for (method, task), group in groups.items():
        found = [(c, read_result(c.path(results_root) / "result.json")) for c in group]
        stale = [c.seed for c, r in found if r is not None and stale_reason(r)]
        found = [(c, None if c.seed in stale else r) for c, r in found]
        done = [(c, r) for c, r in found if r is not None]
        norm, se = mean_stderr([r.get("normalized_mean") for _, r in done])
        ret, ret_se = mean_stderr([r.get("return_mean") for _, r in done])
        wall, _ = mean_stderr([r.get("train_seconds") for _, r in done])
        base = METHODS.get(method, METHODS["genrl"])
        rows.append({
            "method": method, "label": base.label if method in METHODS else method, "group": _group(method),
            "task": task, "domain": task.split("_", 1)[0], "seeds": [c.seed for c, _ in done],
            "missing_seeds": [c.seed for c, r in found if r is None], "stale_seeds": stale,
            "normalized_mean": norm, "normalized_stderr": se, "return_mean": ret, "return_stderr": ret_se,
            "train_seconds_mean": wall, "updates_mean": mean_stderr([r.get("train_updates") for _, r in done])[0],
            "paper": paper_score(method, task) if method in METHODS else None,
            "presets": sorted({str(r.get("preset")) for _, r in done}),
            "fast_mode": sorted({bool(r.get("fast_mode")) for _, r in done}),
            "commits": sorted({str(r.get("commit")) for _, r in done}),
            "commands": sorted({str(r.get("command")) for _, r in done}),
            "cells": [rel(c.path(results_root)) for c, _ in done]})
    return rows


def _group(method: str) -> str:
    if method.startswith("data_"):
        return "data"
    if method.startswith("wmdata_"):
        return "wmdata"
    if method.startswith("video_"):
        return "video"
    return METHODS[method].group


def domain_rows(rows) -> list[dict]:
    """Per (method, domain): the mean over that domain's tasks of the per-task means (tasks not run
    are left out and counted), with the paper's per-domain number where it has one."""
    out: dict = {}
    for r in rows:
        out.setdefault((r["method"], r["domain"]), []).append(r)
    table = []
    for (method, domain), group in out.items():
        done = [r["normalized_mean"] for r in group if r["normalized_mean"] is not None]
        paper = paper_domain_score(method, domain)
        table.append({"method": method, "domain": domain, "tasks_run": len(done), "tasks": len(group),
                      "normalized_mean": float(np.mean(done)) if done else None, "paper": paper})
    return table


def bar_series(rows, methods, groups, by: str = "task") -> tuple[dict, dict]:
    """Arrays for :func:`genrl_lite.plotting.benchmark_bars`: ``series[label] = (means, stderrs)`` and
    ``paper[label]`` over ``groups`` (tasks, or domains with ``by="domain"``), NaN where not run."""
    series, paper = {}, {}
    if by == "domain":
        table = {(r["method"], r["domain"]): r for r in domain_rows(rows)}
    else:
        table = {(r["method"], r["task"]): r for r in rows}
    for m in methods:
        label = METHODS[m].label if m in METHODS else m
        got = [table.get((m, g)) for g in groups]
        means = [np.nan if r is None or r["normalized_mean"] is None else r["normalized_mean"] for r in got]
        errs = [np.nan if r is None or r.get("normalized_stderr") is None else r["normalized_stderr"] for r in got]
        refs = [np.nan if r is None or r.get("paper") is None else r["paper"] for r in got]
        series[label], paper[label] = (np.array(means), np.array(errs)), np.array(refs)
    return series, paper


# --- 3. the README's tables, generated ------------------------------------------------------------------

README_TABLES = {
    "main": (("genrl", "genrl_datafree", "wmclip_video", "wmclip_image", "td3bc_video"), BEHAVIOUR_TASKS,
             ("genrl", "td3bc_video")),
    "walker": (("genrl", "genrl_no_aligner", "align_b1", "align_none", "genrl_image")
               + tuple(f"data_{k}" for k in DATA_ABLATION if k != "all")
               + tuple(f"wmdata_{k}" for k in WM_DATA)
               + tuple(f"video_{k}" for k in VIDEO_PROMPTS if VIDEO_PROMPTS[k].task.startswith("walker_")),
               DATA_ABLATION_TASKS, ()),
}
"""The README's benchmark tables as (methods, tasks, methods with a "paper" line): the headline
table, and walker's ablations, data subsets (of the start states, then of the world model) and video
prompts. Columns where nothing ran are left out."""
GENERALIZATION_METHODS = ("genrl", "genrl_datafree")
"""The columns of the README's generalization table (a row per custom task, see :func:`task_table`)."""


def method_label(method: str) -> str:
    """A row's name in tables: the method's label, or what a data subset / video prompt changes."""
    if method in METHODS:
        return METHODS[method].label
    if method.startswith("data_") and method[5:] in DATA_ABLATION:
        return f"start states from {method[5:]} data only"
    if method.startswith("wmdata_") and method[7:] in WM_DATA:
        return ("world model retrained on all data" if method == "wmdata_all"
                else f"world model and start states from {method[7:]} data only")
    if method.startswith("video_") and method[6:] in VIDEO_PROMPTS:
        v = VIDEO_PROMPTS[method[6:]]
        return f"video prompt: a {v.domain} {v.subset} clip"
    return method


def format_score(row: dict | None) -> str:
    """``0.22 ± 0.02 (3)`` (mean ± standard error, seeds), ``0.13 (1)``, ``not run``, or ``–`` for
    no row at all (a cell outside the grid, e.g. a video prompt on another task)."""
    if row is None:
        return "–"
    if row.get("normalized_mean") is None:
        return "not run"
    n = len(row.get("seeds", []))
    se = row.get("normalized_stderr")
    return (f"{row['normalized_mean']:.2f}" + ("" if se is None else f" ± {se:.2f}") + f" ({n})")


def markdown_table(rows, methods, tasks, paper_methods=()) -> str:
    """A GitHub-markdown table of :func:`aggregate` rows: a line per method, a column per task that
    has at least one result among ``methods``, and a "(paper)" line for each of ``paper_methods``."""
    table = {(r["method"], r["task"]): r for r in rows}
    cols = [t for t in tasks if any(format_score(table.get((m, t))) not in ("not run", "–") for m in methods)]
    if not cols:
        return "(no results yet)\n"
    head = "| normalized score (seeds) | " + " | ".join(t.replace("_", " ") for t in cols) + " |\n"
    lines = [head, "|---" * (len(cols) + 1) + "|\n"]
    for m in methods:
        lines.append(f"| {method_label(m)} | " + " | ".join(format_score(table.get((m, t))) for t in cols) + " |\n")
    for m in paper_methods:
        refs = [paper_score(m, t) for t in cols]
        lines.append(f"| {method_label(m)} (paper) | "
                     + " | ".join("" if p is None else f"{p:.2f}" for p in refs) + " |\n")
    return "".join(lines)


def task_table(rows, methods, tasks) -> str:
    """The transposed table, for many tasks and few methods: a line per task that has at least one
    result among ``methods`` (its prompt next to it), a column per method."""
    from genrl_lite.tasks import get_task

    table = {(r["method"], r["task"]): r for r in rows}
    done = [t for t in tasks if any(format_score(table.get((m, t))) not in ("not run", "–") for m in methods)]
    if not done:
        return "(no results yet)\n"
    lines = ["| task | prompt | " + " | ".join(method_label(m) for m in methods) + " |\n",
             "|---" * (len(methods) + 2) + "|\n"]
    for t in done:
        lines.append(f"| {t.replace('_', ' ')} | {get_task(t).prompt} | "
                     + " | ".join(format_score(table.get((m, t))) for m in methods) + " |\n")
    return "".join(lines)


def readme_tables(record: dict) -> dict[str, str]:
    """Every :data:`README_TABLES` table of a benchmark JSON record, by name, and the generalization
    table (:data:`GENERALIZATION_METHODS` on the custom tasks)."""
    from genrl_lite.tasks import list_tasks

    tables = {name: markdown_table(record["rows"], methods, tasks, paper)
              for name, (methods, tasks, paper) in README_TABLES.items()}
    tables["generalization"] = task_table(record["rows"], GENERALIZATION_METHODS, list_tasks(kind="custom"))
    if record.get("full_grid"):
        tables["progress"] = progress(record)
    return tables


def progress(record: dict) -> str:
    """The README's line on how much of the whole grid has run (a record of the default grid, all seeds):
    cells current, left (stale ones among them) and their CPU time at the record's per-cell cost."""
    rows = record["rows"]
    done, left = sum(len(r["seeds"]) for r in rows), sum(len(r["missing_seeds"]) for r in rows)
    stale = sum(len(r.get("stale_seeds", [])) for r in rows)
    per = record.get("cpu_hours_per_cell")
    # below 2 a rounded count would read "about 1 CPU-hours" for 1.4 of them
    hours = (lambda n: f" (about {n * per:.0f} CPU-hours)" if n * per >= 2 else f" (about {n * per:.1f} CPU-hours)") \
        if per else (lambda n: "")
    head = (f"Progress, from `results/benchmark.json` ({str(record.get('date', ''))[:10]}): the full grid is "
            f"{done + left} cells{hours(done + left)}; ")
    if not left:
        return head + f"all {done} are current (`--dry-run` would list any that a retrained model made stale).\n"
    return (head + f"{done} are current and {left} left{hours(left)}"
            + (f", {stale} of them stale (a retrained model or re-collected clip)" if stale else "") + ".\n")


def update_readme(path, tables: dict[str, str]) -> bool:
    """Replace each table between ``<!-- benchmark:NAME -->`` and ``<!-- /benchmark:NAME -->`` in the
    file at ``path`` (atomically). Returns whether the file changed; a missing marker is an error."""
    path = Path(path)
    text = new = path.read_text()
    for name, table in tables.items():
        start, end = f"<!-- benchmark:{name} -->\n", f"<!-- /benchmark:{name} -->"
        i, j = new.find(start), new.find(end)
        if i < 0 or j < i:
            raise ValueError(f"{path} has no '{start.strip()}' ... '{end}' block for the {name!r} table; "
                             "add the two marker lines where the table belongs")
        new = new[:i + len(start)] + table + new[j:]
    if new != text:
        with atomic_path(path) as tmp:
            tmp.write_text(new)
    return new != text


# --- 4. what a prompt adds ------------------------------------------------------------------------------------


def prompt_effect(cross_eval: dict) -> list[dict]:
    """Per (method, task) of a cross-evaluation record (``scripts/cross_evaluate.py``'s JSON): what
    asking for the task bought, compared with asking the same method for another task of the body.

    ``asked`` is the mean score on ``task`` of the method's policies trained for it (all their
    episodes pooled over seeds); ``best_other`` the highest, over the other tasks the method was
    asked for, of the same mean for the policies asked for that one (``best_other_task`` names it);
    ``effect`` = asked - best_other, and ``effect_stderr`` its standard error from the episode scores
    (None when the record has no per-episode scores or a side has one episode). A row's values are
    None where a side has no policy or no score. A walk policy may rightly score on stand, so read a
    row as "on this task's reward": an effect within two standard errors of 0 means the prompt made
    no difference that the episodes can show, a clearly negative one that another prompt earns more
    of this reward.
    """
    by: dict = {}
    for pol in cross_eval["policies"]:
        for task, score in pol["scores"].items():
            if score.get("normalized_mean") is not None:
                by.setdefault((pol["method"], task), {}).setdefault(pol["trained_task"], []).append(
                    (float(score["normalized_mean"]), score.get("normalized")))
    rows = []
    for method in dict.fromkeys(pol["method"] for pol in cross_eval["policies"]):
        for task in cross_eval["tasks"]:
            stats = {t: _pooled(v) for t, v in by.get((method, task), {}).items()}
            others = {t: s for t, s in stats.items() if t != task}
            asked = stats.get(task)
            best_task = max(others, key=lambda t: others[t][0]) if others else None
            best = others.get(best_task)
            effect = se = None
            if asked is not None and best is not None:
                effect = asked[0] - best[0]
                if asked[1] is not None and best[1] is not None:
                    se = math.sqrt(asked[1] ** 2 + best[1] ** 2)
            rows.append({"method": method, "task": task, "asked": None if asked is None else asked[0],
                         "best_other": None if best is None else best[0], "best_other_task": best_task,
                         "effect": effect, "effect_stderr": se})
    return rows


def _pooled(policies) -> tuple[float, float | None]:
    """(mean, standard error) of the pooled episodes of one or more policies given as (mean, episodes)
    pairs; an older record without per-episode scores gives the mean of the means and no error."""
    if any(not episodes for _, episodes in policies):
        return sum(m for m, _ in policies) / len(policies), None
    return mean_stderr([x for _, episodes in policies for x in episodes])
