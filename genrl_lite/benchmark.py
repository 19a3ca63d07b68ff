"""The benchmark: GenRL against its baselines and ablations, on one table (issue 7).

Read top to bottom, this module is the whole experimental design:

1. **The paper's numbers** (:data:`PAPER`), each with its source, to print next to ours.
2. **The methods** (:data:`METHODS`): GenRL and every variant the paper compares it with, each a
   small declarative entry saying what it changes: fields of the :class:`BehaviourConfig`
   (``window=1``), the reward (WM-CLIP, no aligner), the embedding the connector was trained on
   (image instead of video), or the learner (model-free TD3+BC).
3. **The other axes**: training data of the policy (:data:`DATA_ABLATION`, walker) and video
   prompts (:data:`VIDEO_PROMPTS`, a clip instead of words, one from another body).
4. **Cells**: one (method, task, seed) = one policy = one folder with a ``result.json``.
   ``genrl_lite.benchmark_run.run_cell`` trains and evaluates one; a cell whose ``result.json``
   exists is done, unless it is *stale* (:func:`stale_reason`: the model it was trained on has been
   retrained since); a stale cell is left out of the aggregate, moved under ``results/superseded/``
   (:func:`retire`) and run again.
5. **Aggregation** (:func:`aggregate`): mean ± standard error over seeds of each seed's mean
   normalized score, wall time per policy, and the command / commit / preset of every cell; then
   per domain (:func:`domain_rows`) and the cost of many policies (:func:`amortization`).
6. **The README's tables** (:func:`readme_tables`), generated from the aggregate, never typed.

``scripts/benchmark.py`` is the one command that runs it; ``notebooks/07_benchmark.ipynb`` reads
its JSON. Shapes here are few: E is the VLM embedding size, T the steps of an episode.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from genrl_lite.runtime import REPO_ROOT, atomic_path

# --- 1. the paper's numbers ------------------------------------------------------------------------

PAPER_SOURCES = {
    "table1": "GenRL v1 Table 1 (behaviour extraction, normalized, 5 seeds); ../shared/GENRL_REFERENCE.md §10",
    "review": "NeurIPS review discussion, aligner ablation on 35 tasks (2-3 seeds); GENRL_REFERENCE.md §14",
    "compute": "GenRL v1 App. D and the review's amortization answer (V100 16GB); GENRL_REFERENCE.md §10, §14",
}
"""Where each block of :data:`PAPER` comes from."""

_T1_COLUMNS = ("iql_image", "td3bc_image", "td3_image", "iql_video", "td3bc_video", "td3_video", "genrl")
_T1 = {
    "walker_stand": (.68, .97, .92, .72, .59, 1.0, 1.01), "walker_run": (.24, .27, .11, .26, .25, .35, .76),
    "walker_walk": (.37, .25, .15, .43, .39, .86, .95), "cheetah_run": (.37, -.01, -.01, .15, -.01, .34, .74),
    "quadruped_stand": (.32, .40, .62, .39, .41, .73, .98), "quadruped_run": (.30, .35, .25, .36, .35, .23, .61),
    "quadruped_walk": (.16, .18, .37, .19, .16, .37, .73), "stickman_run": (.20, .25, .03, .24, .18, .21, .35),
    "stickman_walk": (.43, .52, .18, .47, .45, .42, .78), "stickman_stand": (.52, .68, .56, .56, .47, .61, .49),
}
PAPER = {
    "table1": {task: dict(zip(_T1_COLUMNS, row)) for task, row in _T1.items()},
    "table1_overall": dict(zip(_T1_COLUMNS, (.30, .38, .28, .28, .23, .49, .73))),   # incl. 4 kitchen tasks
    "review_by_domain": {   # all 35 tasks, per domain; "overall" over all of them
        "genrl": {"quadruped": .90, "walker": .75, "stickman": .66, "cheetah": .93, "kitchen": .76, "overall": .76},
        "genrl_no_aligner": {"quadruped": .17, "walker": .19, "stickman": .09, "cheetah": .32, "kitchen": .25,
                             "overall": .17},
        "wmclip_video": {"overall": .67}, "td3_video": {"overall": .40},
    },
    "compute_hours": {"world_model": 5 * 24, "genrl_policy": 5.0, "genrl_datafree_policy": 3.0,
                      "model_free_policy": 7.0, "break_even_policies": 60, "break_even_datafree": 30},
}
"""The paper's normalized scores (0 random, 1 expert) and compute, keyed by our method names."""


def paper_score(method: str, task: str) -> float | None:
    """The paper's number for a method on a task (v1 Table 1), or None where the paper gives none
    (e.g. ``genrl_datafree``: Fig. 4 is a bar chart; the custom tasks: Fig. 3 is a bar chart)."""
    key = METHODS[method].paper_key if method in METHODS else method
    if key in _T1_COLUMNS and task in PAPER["table1"]:
        return PAPER["table1"][task][key]
    return None


def paper_domain_score(method: str, domain: str) -> float | None:
    """The paper's per-domain number (the review's 35-task ablation), or None."""
    key = METHODS[method].paper_key if method in METHODS else method
    return PAPER["review_by_domain"].get(key, {}).get(domain)


# --- 2. the methods --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Method:
    """One row of the benchmark: how a policy is learned from a prompt."""

    name: str
    """Key used on the command line and in result paths."""
    label: str
    """Short name for tables and plots."""
    what: str
    """One sentence: what changes against GenRL, and which question of the paper it answers."""
    config: dict = dataclasses.field(default_factory=dict)
    """BehaviourConfig fields this method sets (on top of the benchmark's preset)."""
    reward: str = "genrl"
    """``genrl`` (latent target sequence), ``genrl_no_aligner`` (text straight into the connector)
    or ``wmclip`` (cosine to an embedding predicted from the latent state)."""
    embedding: str = "video"
    """What the connector / WM-CLIP head was trained on: VLM embeddings of 8-frame ``video`` clips
    or of single frames (``image``: the image-language variant)."""
    learner: str = "genrl"
    """``genrl`` (actor-critic in the world model's imagination) or ``model_free`` (TD3+BC on pixels)."""
    paper_key: str | None = None
    """Key of this method in :data:`PAPER` (None: the paper has no number)."""
    group: str = "main"
    """``main`` (the headline table) or ``ablation``."""

    def behaviour_config(self, preset: str, **overrides):
        """The :class:`BehaviourConfig` of this method at ``preset`` (with the benchmark's overrides)."""
        from genrl_lite.behaviour import BehaviourConfig

        return BehaviourConfig.preset(preset, **{**overrides, **self.config})


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("genrl", "GenRL", "the full method: aligner, connector, sequence reward with alignment window b=8, "
           "start states from the data", paper_key="genrl"),
    Method("genrl_datafree", "GenRL data-free", "start states made inside the model: policy learning touches "
           "no data", config={"data_free": True}),
    Method("wmclip_video", "WM-CLIP-V", "reward = cosine(prompt, video embedding predicted from the latent "
           "state): the same world model and learner, no connector/sequence target", reward="wmclip",
           paper_key="wmclip_video"),
    Method("wmclip_image", "WM-CLIP-I", "as WM-CLIP-V with a head predicting single-frame embeddings",
           reward="wmclip", embedding="image"),
    Method("td3bc_video", "TD3+BC-V", "model-free offline RL on pixels, reward = cosine(prompt, clip "
           "embedding) on the same data, retrained per prompt", learner="model_free", paper_key="td3bc_video"),
    Method("genrl_no_aligner", "no aligner", "the text embedding goes straight into the connector "
           "(trained on video embeddings only): the modality gap is not bridged", reward="genrl_no_aligner",
           paper_key="genrl_no_aligner", group="ablation"),
    Method("align_b1", "alignment b=1", "initial-state alignment: the offset is where the agent is "
           "closest to the target's first state", config={"window": 1}, group="ablation"),
    Method("align_none", "no alignment (b=H)", "a single offset 0: the agent must match the target "
           "step by step from its start", config={"window": None}, group="ablation"),
    Method("genrl_image", "GenRL image-emb.", "connector and aligner trained on single-frame (image-"
           "language) embeddings instead of 8-frame clips", embedding="image", group="ablation"),
]}
"""Every method, by name. ``group="main"`` rows form the headline table."""


# --- 3. the other axes: training data and video prompts ---------------------------------------------

DATA_ABLATION = {"all": None, "expl": ["expl"], "stand": ["stand"], "walk": ["walk"], "run": ["run"]}
"""Walker, GenRL: the dataset subsets the policy's start states come from (None: all). The world
model itself saw all data; the paper also retrains the world model per subset (~75 min each
here), which ``--model walker=<path>`` lets a user plug in."""
DATA_ABLATION_TASKS = ("walker_stand", "walker_walk", "walker_run")
"""Tasks of the data ablation (the paper's Fig. 5 uses all walker tasks)."""


@dataclasses.dataclass(frozen=True)
class VideoPrompt:
    """A behaviour prompted by a clip: 8 frames of a dataset episode instead of words."""

    name: str
    """Key used on the command line and in result paths."""
    task: str
    """The task whose true reward scores the policy."""
    domain: str
    """Domain of the clip's episode (another body than the task's = a cross-embodiment prompt)."""
    subset: str
    """Dataset subset of the clip: the episode with the best true return there, its best 8-frame window."""


VIDEO_PROMPTS: dict[str, VideoPrompt] = {v.name: v for v in [
    VideoPrompt("walker_run_from_walker", "walker_run", "walker", "run"),
    VideoPrompt("walker_stand_from_walker", "walker_stand", "walker", "stand"),
    VideoPrompt("walker_walk_from_stickman", "walker_walk", "stickman", "walk"),
]}
"""Video prompts; the stickman clip prompts the walker (another morphology, as in the paper's §14)."""


def video_prompt_clip(entry: VideoPrompt, root) -> tuple[np.ndarray, dict]:
    """The prompt clip (8, S, S, 3) uint8 and where it came from (episode path, start frame, return).

    Deterministic: among the subset's episodes with a true-reward sidecar, the one with the highest
    return, and in it the 8-frame window with the highest reward (the reward picks the clip only; the
    policy never sees it). Looks under ``root``, then in the committed sample (a clip needs one episode).
    """
    from genrl_lite.data import EVAL_SUFFIX, load_episode

    best = None
    for base in (Path(root) / entry.domain / entry.subset, REPO_ROOT / "data" / "sample" / entry.domain / entry.subset):
        for side in sorted(base.glob(f"*{EVAL_SUFFIX}")):
            try:
                with np.load(side) as f:
                    reward = f["reward"] if "reward" in f.files else None
            except (OSError, ValueError):
                continue
            path = side.with_name(side.name[:-len(EVAL_SUFFIX)] + ".npz")
            if reward is not None and path.exists() and (best is None or reward.sum() > best[0].sum()):
                best = (reward, path)
        if best is not None:
            break
    if best is None:
        raise FileNotFoundError(f"no {entry.domain}/{entry.subset} episodes with rewards under {root} or data/sample "
                                f"for the video prompt {entry.name!r}: collect data (make data)")
    reward, path = best
    obs = load_episode(path)["obs"]
    window = np.convolve(reward, np.ones(8), mode="valid")                # reward of clip [t, t+8)
    start = int(window[1:].argmax()) + 1                                   # skip the reset frame
    return obs[start:start + 8], {"episode": str(path), "start": start, "episode_return": float(reward.sum())}


# --- 4. cells ---------------------------------------------------------------------------------------

BEHAVIOUR_TASKS = ("walker_stand", "walker_walk", "walker_run", "cheetah_run", "quadruped_stand", "quadruped_walk",
                   "quadruped_run", "stickman_stand", "stickman_walk", "stickman_run")
"""The paper's behaviour-retrieval tasks without kitchen (Table 1); the custom tasks are the
generalization set (``genrl_lite.tasks.list_tasks(kind="custom")``)."""

LAPTOP_OVERRIDES = {"minutes": 10.0, "start_batch": 8,
                    "actor_critic_overrides": {"actor_lr": 2e-4, "critic_lr": 2e-4, "slow_target_every": 50}}
"""BehaviourConfig fields of every benchmark policy at the laptop preset: those of the policies in
``results/policies`` (``scripts/bench_behaviour.py``), so the benchmark reuses them as its GenRL
and GenRL data-free cells: 10 minutes of one core per policy."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One policy: a method (or ``data_<subset>`` / ``video_<prompt>``) on a task with a seed."""

    method: str
    """A key of :data:`METHODS`, ``data_<subset>`` (:data:`DATA_ABLATION`) or ``video_<name>``."""
    task: str
    """Task key (true reward for the evaluation)."""
    seed: int
    """Seed of the policy's weights, data windows and evaluation episodes."""

    @property
    def key(self) -> str:
        """``method/task/s<seed>``, for logs and the skipped/errors lists."""
        return f"{self.method}/{self.task}/s{self.seed}"

    @property
    def base(self) -> Method:
        """The method behind this cell (GenRL for the data and video-prompt axes)."""
        return METHODS.get(self.method, METHODS["genrl"])

    def path(self, root: Path) -> Path:
        """The cell's folder. GenRL / data-free cells live where ``scripts/bench_behaviour.py`` puts
        its policies, so each command reuses the other's runs (``data_all`` is GenRL itself)."""
        root = Path(root)
        if self.method in ("genrl", "genrl_datafree", "data_all"):
            mode = "datafree" if self.method == "genrl_datafree" else "data"
            return root / "policies" / f"{self.task}-{mode}-s{self.seed}"
        return root / "benchmark" / self.method / f"{self.task}-s{self.seed}"


def check_names(methods=(), tasks=()) -> None:
    """Raise ``UnknownNameError`` listing the valid names for any unknown method or task."""
    from genrl_lite.tasks import UnknownNameError, get_task

    valid = list(METHODS) + [f"data_{k}" for k in DATA_ABLATION] + [f"video_{k}" for k in VIDEO_PROMPTS]
    bad = [m for m in methods if m not in valid]
    if bad:
        raise UnknownNameError(f"unknown method(s) {bad}; valid methods: {', '.join(valid)}")
    for t in tasks:
        get_task(t)


def plan(methods, tasks, seeds) -> list[Cell]:
    """The cells of a run: methods x tasks x seeds, where data_* cells only take walker tasks and a
    video_* cell only its own task."""
    check_names(methods, tasks)
    cells = []
    for m in methods:
        if m.startswith("video_"):
            cells += [Cell(m, VIDEO_PROMPTS[m[6:]].task, s) for s in seeds]
        elif m.startswith("data_"):
            cells += [Cell(m, t, s) for t in tasks if t.startswith("walker_") for s in seeds]
        else:
            cells += [Cell(m, t, s) for t in tasks for s in seeds]
    return list(dict.fromkeys(cells))


SUITES = {
    "main": (("genrl", "genrl_datafree", "wmclip_video", "wmclip_image", "td3bc_video"), BEHAVIOUR_TASKS),
    "generalization": (("genrl", "genrl_datafree"), "custom"),
    "ablations": (("genrl_no_aligner", "align_b1", "align_none", "genrl_image"), ("walker_stand", "walker_walk",
                                                                               "walker_run")),
    "data": (tuple(f"data_{k}" for k in DATA_ABLATION if k != "all"), DATA_ABLATION_TASKS),
    "video": (tuple(f"video_{k}" for k in VIDEO_PROMPTS), ()),
}
"""The default benchmark, as (methods, tasks) blocks: the headline table on the behaviour tasks,
GenRL on the generalization (custom) tasks, the ablations and the data/video axes on walker."""


def suite_cells(seeds, suites=None) -> list[Cell]:
    """The cells of the default benchmark (all :data:`SUITES`, or the named ones)."""
    from genrl_lite.tasks import list_tasks

    cells = []
    for name in suites or SUITES:
        if name not in SUITES:
            from genrl_lite.tasks import UnknownNameError

            raise UnknownNameError(f"unknown suite {name!r}; valid suites: {', '.join(SUITES)}")
        methods, tasks = SUITES[name]
        tasks = list_tasks(kind="custom") if tasks == "custom" else list(tasks)
        cells += plan(methods, tasks, seeds)
    return list(dict.fromkeys(cells))


# --- 5. aggregation -----------------------------------------------------------------------------------


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


def rel(path) -> str:
    """A path relative to the repository when it is inside it (so the JSON reads the same on any clone)."""
    from genrl_lite.runtime import repo_relative

    return repo_relative(path)


def read_result(path: Path) -> dict | None:
    """A cell's result.json, or None if it is missing or unreadable (a cell not run yet)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


_MODELS: dict = {}


def _model_fingerprint(path: Path) -> tuple:
    """(model_id, step, training date or None) of the checkpoint at ``path``; cached per file version."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _MODELS:
        from genrl_lite.training import _read, checkpoint_id

        ckpt = _read(path)
        _MODELS[key] = (checkpoint_id(path), ckpt["step"], (ckpt.get("meta") or {}).get("date"))
    return _MODELS[key]


def stale_reason(result: dict, root=REPO_ROOT) -> str | None:
    """Why a cell's ``result`` no longer measures the model now at its ``model`` path; None if it does.

    Results name their checkpoint's file (``model``) and its sha1 prefix (``model_id``); older
    results only its ``step``, and for those a model whose ``date`` (written by
    ``scripts/train_models.py``) is later than the result's is a retrained one too. A result without
    a ``model`` path, or whose model is gone, is never called stale here (the run reports a missing
    model itself).
    """
    model = result.get("model")
    path = Path(root) / model if model else None
    if path is None or not path.is_file():
        return None
    model_id, step, date = _model_fingerprint(path)
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


def amortization(world_model_seconds: float, genrl_policy_seconds: float, model_free_policy_seconds: float,
                 n_policies) -> dict:
    """Total wall time of n policies: GenRL pays the world model once, model-free pays per policy.

    Returns ``n`` (N,), ``genrl`` and ``model_free`` (N,) seconds, and ``break_even``: the smallest
    n at which GenRL is cheaper (None if it never is, i.e. its policies cost as much or more).
    """
    n = np.asarray(n_policies, dtype=float)
    genrl = world_model_seconds + n * genrl_policy_seconds
    model_free = n * model_free_policy_seconds
    gap = model_free_policy_seconds - genrl_policy_seconds
    break_even = None if gap <= 0 else int(math.floor(world_model_seconds / gap)) + 1
    return {"n": n, "genrl": genrl, "model_free": model_free, "break_even": break_even}


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


def paper_amortization(n_policies) -> dict:
    """The paper's amortization (hours on a V100): world model 5 days, GenRL 5 h, model-free 7 h per policy."""
    h = PAPER["compute_hours"]
    return amortization(h["world_model"] * 3600, h["genrl_policy"] * 3600, h["model_free_policy"] * 3600, n_policies)


# --- 6. the README's tables, generated ------------------------------------------------------------------

README_TABLES = {
    "main": (("genrl", "genrl_datafree", "wmclip_video", "wmclip_image", "td3bc_video"), BEHAVIOUR_TASKS,
             ("genrl", "td3bc_video")),
    "walker": (("genrl", "genrl_no_aligner", "align_b1", "align_none", "genrl_image")
               + tuple(f"data_{k}" for k in DATA_ABLATION if k != "all")
               + tuple(f"video_{k}" for k in VIDEO_PROMPTS if VIDEO_PROMPTS[k].task.startswith("walker_")),
               DATA_ABLATION_TASKS, ()),
}
"""The README's benchmark tables as (methods, tasks, methods with a "paper" line): the headline
table, and walker's ablations, data subsets and video prompts. Columns where nothing ran are left out."""
GENERALIZATION_METHODS = ("genrl", "genrl_datafree")
"""The columns of the README's generalization table (a row per custom task, see :func:`task_table`)."""


def method_label(method: str) -> str:
    """A row's name in tables: the method's label, or what a data subset / video prompt changes."""
    if method in METHODS:
        return METHODS[method].label
    if method.startswith("data_") and method[5:] in DATA_ABLATION:
        return f"start states from {method[5:]} data only"
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
    return tables


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
