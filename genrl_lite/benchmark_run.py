"""Running the benchmark: one cell (method x task x seed) = one policy trained and evaluated.

``genrl_lite.benchmark`` says *what* is measured (methods, axes, cells) and how results are read;
this module says how a cell is *run*:

- :class:`Settings`: budgets, data and output folders (``laptop``, or :func:`fast_settings` for CI);
- :class:`Context`: what cells share and is slow to load (the VLM, each domain's model and data);
- the **preparation** stages trained once per domain and amortized over every prompt: the WM-CLIP
  heads (:func:`prepare_wmclip`), the image-embedding connector (:func:`prepare_image_connector`)
  and, for the training-data ablation, whole models trained on part of the data (:func:`prepare_wmdata`);
- :func:`run_cell`: train the policy (GenRL, a variant, or the model-free TD3+BC), evaluate it in
  the real environment and write the cell's ``result.json`` atomically. A killed cell resumes from
  its checkpoint.

Shapes: B windows, L frames per window, S image side, A action size, E the VLM embedding size.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from genrl_lite.benchmark import (DATA_ABLATION, LAPTOP_OVERRIDES, VIDEO_PROMPTS, WM_DATA, Cell, Method,
                                  video_prompt_clip)
from genrl_lite.runtime import REPO_ROOT, atomic_path, git_commit, repo_relative as rel


@dataclasses.dataclass
class Settings:
    """How cells are run: budgets, data, and where everything goes."""

    preset: str = "laptop"
    """Preset of the policies (behaviour / model-free / preparation)."""
    results: Path = REPO_ROOT / "results"
    """Root of the cells (``policies/``, ``benchmark/``) and of the preparation artifacts."""
    data: Path = REPO_ROOT / "data"
    """Dataset root (``<domain>/<subset>/*.npz``)."""
    episodes: int = 10
    """Evaluation episodes per policy."""
    max_steps: int | None = None
    """Cut evaluation episodes short (fast mode only: scores are then not comparable)."""
    steps: int | None = None
    """Updates per policy (None: the preset's)."""
    minutes: float | None = None
    """Minutes per policy (None: the preset's, 10 at laptop)."""
    prep_steps: int | None = None
    """Updates of the preparation stages (WM-CLIP heads, image connector, each stage of a
    training-data ablation model; None: the preset's)."""
    models: dict = dataclasses.field(default_factory=dict)
    """Model per domain (default: the shipped ``data/models/<domain>``)."""
    command: str = ""
    """The command line that runs this benchmark (recorded in every cell)."""
    fast: bool = False
    """Fast mode: a smoke run whose numbers mean nothing (recorded in every cell)."""


def fast_settings(results: Path) -> Settings:
    """The fast mode: tiny presets, a handful of updates, one short episode, the sample data."""
    return Settings(preset="tiny", results=Path(results), data=REPO_ROOT / "data" / "sample", episodes=1,
                    max_steps=30, steps=3, minutes=None, prep_steps=3, fast=True)


def prep_dir(settings: Settings, domain: str) -> Path:
    """Where a domain's shared, amortized artifacts go (WM-CLIP heads, image connector)."""
    return Path(settings.results) / "benchmark" / "prep" / f"{domain}-{settings.preset}"


def _model_name(settings: Settings, domain: str) -> str:
    return settings.models.get(domain, domain)


class Context:
    """Loaded once per run and shared by cells: the VLM, models, datasets (heavy to load)."""

    def __init__(self, settings: Settings):
        self.settings, self._cache = settings, {}

    def get(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def vlm(self):
        from genrl_lite.vlm import load_vlm

        return self.get("vlm", load_vlm)

    def bundle(self, domain: str):
        from genrl_lite.pretrained import load_model

        return self.get(("model", domain), lambda: load_model(_model_name(self.settings, domain)))

    def data(self, domain: str, subsets=None, embeddings: bool = False):
        from genrl_lite.data import EpisodeDataset

        key = ("data", domain, tuple(subsets) if subsets else None)
        ds = self.get(key, lambda: EpisodeDataset(self.settings.data, domain, subsets, verbose=False))
        if embeddings and ds.embeds is None:
            ds.attach_embeddings(self.vlm(), verbose=False)
        return ds


# --- preparation: artifacts trained once per domain, shared by every prompt ---------------------------


class ImageEmbeddings:
    """Single-frame VLM embeddings of a dataset's frames, computed when first sampled and cached.

    Indexes like ``EpisodeDataset.embeds``: ``emb[i][t0:t1]`` -> (t1 - t0, E) float32 for episode i.
    Lazy because ``vlm.embed_image`` runs the video tower on the frame repeated 8 times (as costly as
    a clip), and short runs touch only a few windows.
    """

    def __init__(self, ds, vlm):
        self.ds, self.vlm, self.cache = ds, vlm, {}

    def __len__(self) -> int:
        return len(self.ds.episodes)

    def __getitem__(self, i: int) -> "_EpisodeImageEmbeddings":
        return _EpisodeImageEmbeddings(self, int(i))


class _EpisodeImageEmbeddings:
    def __init__(self, parent: ImageEmbeddings, i: int):
        self.parent, self.i = parent, i

    def __getitem__(self, window: slice) -> np.ndarray:
        p, obs = self.parent, self.parent.ds.episodes[self.i]["obs"]
        ts = range(*window.indices(len(obs)))
        todo = [t for t in ts if (self.i, t) not in p.cache]
        if todo:
            for t, e in zip(todo, p.vlm.embed_image(obs[todo]).numpy().astype(np.float32)):
                p.cache[(self.i, t)] = e
        return np.stack([p.cache[(self.i, t)] for t in ts])


def prepare_wmclip(ctx: Context, domain: str, embedding: str):
    """Train (or load) the domain's WM-CLIP head: latent features -> VLM embedding (video or image).

    Trained on the posteriors of dataset windows (frozen world model), loss 1 - cosine
    (:func:`genrl_lite.baseline_rewards.wmclip_loss`). Saved atomically under :func:`prep_dir`, with its wall
    time (counted once per domain in the cost section).
    """
    import torch

    from genrl_lite.baseline_rewards import WMCLIPHead, wmclip_loss
    from genrl_lite.runtime import atomic_torch_save
    from genrl_lite.world_model import batch_to_torch

    s = ctx.settings
    path = prep_dir(s, domain) / f"wmclip_{embedding}.pt"
    bundle = ctx.bundle(domain)
    units, layers, steps = {"tiny": (32, 1, 20), "laptop": (512, 2, 1500), "paper": (1024, 4, 20_000)}[s.preset]
    steps = s.prep_steps or steps
    head = WMCLIPHead(bundle.cfg.feat_dim, bundle.embed_dim, units=units, layers=layers).to(bundle.world_model.device)
    if path.exists():
        ckpt = torch.load(path, map_location=bundle.world_model.device, weights_only=False)
        head.load_state_dict(ckpt["head"])
        return head.eval()
    ds = ctx.data(domain, embeddings=embedding == "video")
    embeds = ds.embeds if embedding == "video" else ctx.get(("image_emb", domain), lambda: ImageEmbeddings(ds, ctx.vlm()))
    wm, t0 = bundle.world_model, time.perf_counter()
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    losses = []
    for _ in range(steps):
        raw = _windows(ds, embeds, 8, 32, rng)
        b = batch_to_torch(raw, wm.device)
        with torch.no_grad():
            posts, _ = wm.rssm.observe(wm.encode(wm.preprocess(b["obs"])), b["action"], b["is_first"])
        loss = wmclip_loss(head, wm.rssm.feat(posts), b["embed"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    info = {"seconds": round(time.perf_counter() - t0, 1), "steps": steps, "embedding": embedding, "units": units,
            "layers": layers, "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:]))}
    atomic_torch_save({"head": head.state_dict(), **info}, path)
    with atomic_path(path.with_suffix(".json")) as tmp:     # the cost section reads this (the .pt is not shipped)
        tmp.write_text(json.dumps(info, indent=1))
    return head.eval()


def _windows(ds, embeds, batch: int, length: int, rng) -> dict:
    """``batch`` windows of ``length`` frames with their embeddings: obs (B, L, S, S, 3), action
    (B, L, A), is_first (B, L), embed (B, L, E) (embeddings of any kind, one (T, E) per episode)."""
    eligible = np.flatnonzero(ds.lengths >= length)
    out = {k: [] for k in ("obs", "action", "is_first", "embed")}
    for _ in range(batch):
        i = eligible[rng.integers(len(eligible))]
        t = rng.integers(0, ds.lengths[i] - length + 1)
        for k in ("obs", "action", "is_first"):
            out[k].append(ds.episodes[i][k][t:t + length])
        out["embed"].append(np.asarray(embeds[i][t:t + length], dtype=np.float32))
    return {k: np.stack(v) for k, v in out.items()}


def prepare_image_connector(ctx: Context, domain: str):
    """Train (or load) a connector + aligner on single-frame embeddings, on the frozen world model.

    The "image-language instead of video-language" ablation: the same world model, the connector
    learns from embeddings of one frame repeated (``vlm.embed_image``), which carry no motion.
    Resumable (``genrl_lite.training.train_world_model`` with ``world_model_from``). Returns a
    ModelBundle with the image connector and aligner.
    """
    import copy

    from genrl_lite.training import load_checkpoint, train_world_model

    s = ctx.settings
    out = prep_dir(s, domain) / "image_connector"
    bundle = ctx.bundle(domain)
    shipped = REPO_ROOT / "data" / "models" / domain / "info.json"      # as many steps as the shipped connector
    laptop = json.loads(shipped.read_text()).get("connector_steps", 2800) if shipped.exists() else 2800
    steps = s.prep_steps or {"tiny": 20, "laptop": int(laptop), "paper": 50_000}[s.preset]
    done = out / "checkpoint.pt"
    if not (done.exists() and load_checkpoint(out).step >= steps):
        ds = ctx.data(domain)
        img = copy.copy(ds)
        img.embeds = ctx.get(("image_emb", domain), lambda: ImageEmbeddings(ds, ctx.vlm()))
        t0 = time.perf_counter()
        train_world_model(bundle.cfg, img, steps, out, world_model_from=bundle.path, show_progress=False,
                          device=bundle.world_model.device)
        with atomic_path(out.parent / "image_connector.json") as tmp:
            tmp.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "steps": steps}, indent=1))
    return load_checkpoint(out, device=bundle.world_model.device)


def prepare_wmdata(ctx: Context, domain: str, subset: str):
    """Train (or load) the training-data ablation's model: world model, connector and aligner trained
    from scratch on the :data:`genrl_lite.benchmark.WM_DATA` subsets ``subset`` of the domain's data.

    The same recipe as the shipped model (:func:`genrl_lite.pretrained.train_domain_model`, as many
    steps of each stage as ``data/models/<domain>/info.json`` records), so that the data is the only
    difference. Resumable (its runs live next to it); exported to ``prep_dir/wmdata_<subset>/model.pt``
    (not shipped: ~40 min of one core each at laptop, rebuilt on each machine) with its ``info.json``,
    and a summary ``wmdata_<subset>.json`` that the cost section reads. The summary records the
    model's ``weights_id``: training is deterministic on one thread, so retraining on the same data
    and the same kind of CPU gives the same one, and the cells of the committed model stay current;
    where it does not (another CPU's float32 kernels), a warning says so. Returns the ModelBundle.
    """
    from genrl_lite.pretrained import MODEL_FILE, load_model, train_domain_model

    s = ctx.settings
    out = prep_dir(s, domain) / f"wmdata_{subset}"
    summary = prep_dir(s, domain) / f"wmdata_{subset}.json"
    trained = not (out / MODEL_FILE).exists()
    if trained:
        shipped = REPO_ROOT / "data" / "models" / domain / "info.json"
        info = json.loads(shipped.read_text()) if shipped.exists() else {}
        wm_steps, conn_steps = {"tiny": (20, 20), "paper": (500_000, 500_000),   # GENRL_REFERENCE §1: 500k steps
                                "laptop": (int(info.get("world_model_steps", 2744)),
                                           int(info.get("connector_steps", 2801)))}[s.preset]
        if s.prep_steps:
            wm_steps = conn_steps = s.prep_steps
        train_domain_model(domain, s.data, out, out, preset=s.preset, wm_steps=wm_steps, conn_steps=conn_steps,
                           subsets=WM_DATA[subset], command=s.command, show_progress=False,
                           eval_windows=8 if s.fast else 128, vlm=ctx.vlm())
    info = json.loads((out / "info.json").read_text())
    if WM_DATA[subset] is not None and info["train_data"]["subsets"] != sorted(WM_DATA[subset]):
        from genrl_lite.training import CheckpointError

        raise CheckpointError(f"{out} holds a model trained on {info['train_data']['subsets']}, not on "
                              f"{WM_DATA[subset]}: move that folder away and run again to retrain it")
    bundle = load_model(out / MODEL_FILE)
    try:
        before = json.loads(summary.read_text())
    except (OSError, ValueError):
        before = {}
    if trained and before.get("weights_id") not in (None, bundle.weights_id):
        warnings.warn(f"{out / MODEL_FILE} was retrained with other weights ({bundle.weights_id}) than the "
                      f"ones {summary} records ({before['weights_id']}): the cells of that model are stale "
                      "and will be run again", stacklevel=2)
    if trained or "weights_id" not in before:
        minutes = info["training_minutes_total"]
        seconds = round(60 * (minutes["world_model"] + minutes["connector_aligner"]), 1)
        with atomic_path(summary) as tmp:
            tmp.write_text(json.dumps({"seconds": seconds,
                                       "steps": [info["world_model_steps"], info["connector_steps"]],
                                       "subsets": info["train_data"]["subsets"],
                                       "frames": info["train_data"]["frames"],
                                       "heldout_quality": {k: v for k, v in info["heldout_quality"].items()
                                                           if not isinstance(v, list)},
                                       "reproduce": info["reproduce"], "weights_id": bundle.weights_id},
                                      indent=1))
    return bundle


# --- running one cell ----------------------------------------------------------------------------------


def cell_prompt(ctx: Context, cell: Cell):
    """The prompt of a cell: the task's text, or a clip's VLM embedding (E,) for ``video_*`` cells."""
    from genrl_lite.tasks import get_task

    if cell.method.startswith("video_"):
        entry = VIDEO_PROMPTS[cell.method[6:]]
        clip, where = video_prompt_clip(entry, ctx.settings.data)
        where["episode"] = rel(where["episode"])
        return ctx.vlm().embed_video(clip[None])[0], {"video_prompt": dataclasses.asdict(entry), **where}
    return get_task(cell.task).prompt, {}


def run_cell(ctx: Context, cell: Cell, show_progress: bool = False) -> dict:
    """Train one policy and evaluate it; write ``result.json`` into the cell's folder; return it.

    Resumes from the folder's checkpoint if a previous call was killed.
    """
    from genrl_lite.behaviour import train_behaviour
    from genrl_lite.evaluation import evaluate_behaviour
    from genrl_lite.tasks import get_task

    s, method = ctx.settings, cell.base
    task = get_task(cell.task)
    out = cell.path(s.results)
    out.mkdir(parents=True, exist_ok=True)
    prompt, extra = cell_prompt(ctx, cell)
    overrides = {"seed": cell.seed, **(LAPTOP_OVERRIDES if s.preset == "laptop" else {})}
    if s.minutes is not None:
        overrides["minutes"] = s.minutes
    if s.steps is not None:
        overrides["steps"] = s.steps
    record = {"command": s.command, "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "machine": f"{os.cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}",
              "fast_mode": s.fast, "benchmark_method": cell.method, "task": task.key, "seed": cell.seed,
              "preset": s.preset, "prompt": prompt if isinstance(prompt, str) else "(video clip)", **extra}
    if method.learner == "model_free":
        record.update(_run_model_free(ctx, cell, prompt, out, show_progress))
    else:
        bundle = ctx.bundle(task.domain)
        cfg = method.behaviour_config(s.preset, **overrides)
        subsets = DATA_ABLATION[cell.method[5:]] if cell.method.startswith("data_") else None
        if cell.method.startswith("wmdata_"):       # a model of its own, and start states from its data
            subset = cell.method[7:]
            bundle = ctx.get(("wmdata", task.domain, subset), lambda: prepare_wmdata(ctx, task.domain, subset))
            subsets = WM_DATA[subset]
        data = None if cfg.data_free else ctx.data(task.domain, subsets)
        reward = None
        if method.embedding == "image" and method.reward == "genrl":
            bundle = ctx.get(("image_bundle", task.domain), lambda: prepare_image_connector(ctx, task.domain))
        elif method.reward != "genrl":
            reward = make_reward(ctx, method, task.domain, prompt, cfg)
        if method.reward == "wmclip":     # the head is rebuilt per clone (not shipped): say which one this was
            from genrl_lite.training import checkpoint_id

            head = prep_dir(s, task.domain) / f"wmclip_{method.embedding}.pt"
            record.update({"reward_head": rel(head), "reward_head_id": checkpoint_id(head)})
        vlm = ctx.vlm() if isinstance(prompt, str) else None
        res = train_behaviour(bundle, prompt, cfg, data=data, out_dir=out, vlm=vlm, task=task.key,
                              show_progress=show_progress, reward_fn=reward)
        ev = evaluate_behaviour(bundle, res, task.key, episodes=s.episodes, seed=cell.seed, max_steps=s.max_steps,
                                show_progress=show_progress)
        tail = max(1, len(res.metrics["step"]) // 10)
        record.update({"mode": "data-free" if cfg.data_free else "data", "config": dataclasses.asdict(cfg),
                       "model": rel(bundle.path), "model_step": bundle.step, "model_id": bundle.model_id,
                       "weights_id": bundle.weights_id, "model_preset": bundle.preset,
                       "data": None if cfg.data_free else {"root": rel(s.data), "subsets": subsets},
                       "reward": method.reward, "embedding": method.embedding, "train_updates": res.steps,
                       "train_seconds": round(float(res.metrics["elapsed_s"][-1]), 1),
                       "stopped_by": "steps" if res.steps >= cfg.steps else "minutes",
                       "final_reward_mean": float(np.mean(res.metrics["reward_mean"][-tail:]))})
        record.update(_eval_fields(ev, s))
    with atomic_path(out / "result.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    return record


def make_reward(ctx: Context, method: Method, domain: str, prompt, cfg):
    """The reward object of a non-GenRL method (``reward_fn`` for ``train_behaviour``)."""
    from genrl_lite.baseline_rewards import WMCLIPReward
    from genrl_lite.rewards import GenRLReward

    bundle = ctx.bundle(domain)
    vlm = ctx.vlm() if isinstance(prompt, str) else None
    if method.reward == "genrl_no_aligner":
        return GenRLReward(bundle.world_model, bundle.connector, None, prompt, vlm=vlm, window=cfg.window,
                           sim=cfg.similarity, embed_dim=bundle.embed_dim, features=cfg.features)
    if method.reward == "wmclip":
        head = ctx.get(("wmclip", domain, method.embedding), lambda: prepare_wmclip(ctx, domain, method.embedding))
        return WMCLIPReward(head, bundle.world_model.rssm, prompt, vlm=vlm, embed_dim=bundle.embed_dim)
    raise ValueError(f"method {method.name!r} has unknown reward {method.reward!r}; valid: genrl, "
                     "genrl_no_aligner, wmclip")


def _eval_fields(ev: dict, s: Settings) -> dict:
    return {"eval_episodes": s.episodes, "eval_max_steps": s.max_steps, "eval_seconds": round(ev["seconds"], 1),
            "returns": [round(float(r), 2) for r in ev["returns"]], "return_mean": ev["return_mean"],
            "return_stderr": ev["return_stderr"],
            "normalized": None if ev["normalized"] is None else [round(float(x), 4) for x in ev["normalized"]],
            "normalized_mean": ev["normalized_mean"], "normalized_stderr": ev["normalized_stderr"]}


def _run_model_free(ctx: Context, cell: Cell, prompt, out: Path, show_progress: bool) -> dict:
    from genrl_lite.model_free import (ModelFreeConfig, Transitions, evaluate_model_free, train_model_free,
                                       vlm_rewards)
    from genrl_lite.rewards import prompt_embedding
    from genrl_lite.tasks import get_task

    s = ctx.settings
    domain = get_task(cell.task).domain
    overrides = {"seed": cell.seed, "reward": cell.base.embedding}
    if s.minutes is not None:
        overrides["minutes"] = s.minutes
    if s.steps is not None:
        overrides["steps"] = s.steps
    cfg = ModelFreeConfig.preset(s.preset, **overrides)
    ds = ctx.data(domain, embeddings=cfg.reward == "video")
    e = prompt_embedding(prompt, ctx.vlm())
    rewards = vlm_rewards(ds.episodes, e, ctx.vlm(), mode=cfg.reward, embeds=ds.embeds)
    res = train_model_free(Transitions(ds.episodes, rewards, cfg.frame_stack), cfg, out, show_progress=show_progress,
                           info={"prompt": prompt if isinstance(prompt, str) else "(video clip)"})
    ev = evaluate_model_free(res.agent, cell.task, episodes=s.episodes, seed=cell.seed, max_steps=s.max_steps,
                             show_progress=show_progress)
    return {"mode": "model-free", "config": dataclasses.asdict(cfg), "data": {"root": rel(s.data), "subsets": None},
            "reward": f"vlm_cosine_{cfg.reward}", "train_updates": res.steps, "train_seconds": round(res.seconds, 1),
            "stopped_by": "steps" if res.steps >= cfg.steps else "minutes",
            "final_reward_mean": float(np.nanmean(res.metrics["reward_mean"][-5:])) if len(res.metrics) else None,
            **_eval_fields(ev, s)}
