"""The benchmark: GenRL against its baselines and ablations, on one table (issue 7).

Read top to bottom, this module is the whole experimental design:

1. **The paper's numbers** (:data:`PAPER`), each with its source, to print next to ours.
2. **The methods** (:data:`METHODS`): GenRL and every variant the paper compares it with, each a
   small declarative entry saying what it changes: fields of the :class:`BehaviourConfig`
   (``window=1``), the reward (WM-CLIP, no aligner), the embedding the connector was trained on
   (image instead of video), or the learner (model-free TD3+BC).
3. **The other axes**: training data, of the policy's start states (:data:`DATA_ABLATION`) or of
   the world model itself (:data:`WM_DATA`), on walker; and video prompts (:data:`VIDEO_PROMPTS`, a
   clip instead of words, one from another body).
4. **Cells**: one (method, task, seed) = one policy = one folder with a ``result.json``.
   ``genrl_lite.benchmark_run.run_cell`` trains and evaluates one.
5. **The cost of many policies** (:func:`amortization`): GenRL pays for its world model once,
   a model-free learner pays for every prompt.

What the cells' results say (which are current, their mean ± standard error, the README's tables)
is the next module, ``genrl_lite.benchmark_results``.

``scripts/benchmark.py`` is the one command that runs it; ``notebooks/07_benchmark.ipynb`` reads
its JSON. Shapes here are few: E is the VLM embedding size, T the steps of an episode.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np

from genrl_lite.runtime import REPO_ROOT

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
"""Walker, GenRL, cells ``data_<subset>``: the dataset subsets the policy's start states come from
(None: all). The world model is the shipped one, which saw all the data."""
WM_DATA = dict(DATA_ABLATION)
"""Walker, GenRL, cells ``wmdata_<subset>``: the paper's training-data ablation. The world model,
connector and aligner are trained from scratch on these subsets only, for as many steps as the
shipped walker model (``genrl_lite.benchmark_run.prepare_wmdata``, ~40 min of one core each), and
the policy's start states come from the same subsets. ``wmdata_all`` is that recipe on all of
today's data, not the shipped model, whose replay came from earlier, weaker experts
(``data/models/README.md``): all five models then saw data collected the same way."""
DATA_ABLATION_TASKS = ("walker_stand", "walker_walk", "walker_run")
"""Tasks of both data ablations (the paper's Fig. 5 uses all walker tasks)."""


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
    """The prompt clip (8, S, S, 3) uint8 and where it came from (episode path, start frame, return,
    :func:`clip_id`).

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
    clip = obs[start:start + 8]
    return clip, {"episode": str(path), "start": start, "episode_return": float(reward.sum()), "clip_id": clip_id(clip)}


def clip_id(clip: np.ndarray) -> str:
    """A short fingerprint of a clip's pixels (sha1 prefix): a re-collected episode gives another one."""
    return hashlib.sha1(np.ascontiguousarray(clip).tobytes()).hexdigest()[:12]


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
    """One policy: a method (or ``data_<subset>`` / ``wmdata_<subset>`` / ``video_<prompt>``) on a task
    with a seed."""

    method: str
    """A key of :data:`METHODS`, ``data_<subset>`` (:data:`DATA_ABLATION`), ``wmdata_<subset>``
    (:data:`WM_DATA`) or ``video_<name>``."""
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

    valid = (list(METHODS) + [f"data_{k}" for k in DATA_ABLATION] + [f"wmdata_{k}" for k in WM_DATA]
             + [f"video_{k}" for k in VIDEO_PROMPTS])
    bad = [m for m in methods if m not in valid]
    if bad:
        raise UnknownNameError(f"unknown method(s) {bad}; valid methods: {', '.join(valid)}")
    for t in tasks:
        get_task(t)


def plan(methods, tasks, seeds) -> list[Cell]:
    """The cells of a run: methods x tasks x seeds, where data_* and wmdata_* cells only take walker
    tasks and a video_* cell only its own task."""
    check_names(methods, tasks)
    cells = []
    for m in methods:
        if m.startswith("video_"):
            cells += [Cell(m, VIDEO_PROMPTS[m[6:]].task, s) for s in seeds]
        elif m.startswith(("data_", "wmdata_")):
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
    "wmdata": (tuple(f"wmdata_{k}" for k in WM_DATA), DATA_ABLATION_TASKS),
    "video": (tuple(f"video_{k}" for k in VIDEO_PROMPTS), ()),
}
"""The default benchmark, as (methods, tasks) blocks: the headline table on the behaviour tasks,
GenRL on the generalization (custom) tasks, the ablations and the data/video axes on walker
(``wmdata`` trains five walker models first)."""


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


# --- 5. the cost of many policies ------------------------------------------------------------------


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


def paper_amortization(n_policies) -> dict:
    """The paper's amortization (hours on a V100): world model 5 days, GenRL 5 h, model-free 7 h per policy."""
    h = PAPER["compute_hours"]
    return amortization(h["world_model"] * 3600, h["genrl_policy"] * 3600, h["model_free_policy"] * 3600, n_policies)
