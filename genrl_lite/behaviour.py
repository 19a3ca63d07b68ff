"""Behaviour from a prompt: learn a policy in imagination, then measure it in the real environment.

This is GenRL's second stage (``../shared/GENRL_REFERENCE.md`` §5-7, §10) in one place:

1. **Target.** The prompt (text or a VLM embedding) becomes a target sequence of latent states:
   VLM -> aligner -> connector rollout (:class:`genrl_lite.rewards.GenRLReward`, cached).
2. **Start states.** With data: the posterior states of B dataset windows of L frames, computed by
   the frozen world model without gradient (``wm.rssm.observe``). Data-free: states made inside the
   model from noise and random "prompts" (:func:`genrl_lite.data_free.data_free_starts`).
3. **Imagination.** From every start state the actor imagines H steps in the frozen model; the
   reward compares the imagined z's with the target; the actor learns by dynamics backprop and the
   critic by λ-returns (:class:`genrl_lite.actor_critic.ActorCritic`). No true reward anywhere.
4. **Evaluation.** The policy acts in the real task from pixels: every frame goes through the world
   model's filter (``obs_step``: the posterior of the frame and the deterministic state carried
   from the previous step and action), the actor's mean action is applied. Only here does the true
   task reward appear, to score the behaviour (normalized: 0 random, 1 expert). That step has its
   own module, :mod:`genrl_lite.evaluation` (``evaluate_behaviour``, and ``imagine_rollout``, which
   decodes what the policy *dreams* from the same start, to show beside it).

Shapes:
    B   sequences of start states (dataset windows)
    L   frames per window, so N = B * L start states per update
    H   imagination horizon (15 at the laptop preset; 16 in the paper)
    A   action size
    F   actor/critic features ``rssm.feat(s)``, G*C + D
    E   VLM embedding size
    S   frame side in pixels (64)

Files in ``out_dir`` (all written atomically): ``policy.pt`` (:meth:`ActorCritic.save`, every
``save_every`` updates and at the end; the run resumes from it), ``metrics.jsonl`` (one JSON row
per ``log_every`` updates, averaged), ``behaviour.json`` (config, prompt, model: a resumed run must
match it).

Randomness: update k uses seeds derived from (seed, k) only, so a run stopped by its minutes
budget and resumed gives exactly the updates of an uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from genrl_lite.actor_critic import Actor, ActorCritic, ActorCriticConfig
from genrl_lite.data_free import DataFreeConfig, data_free_starts
from genrl_lite.rewards import GenRLReward
from genrl_lite.runtime import atomic_path, progress, repo_relative
from genrl_lite.training import CheckpointError, ModelBundle, read_metrics
from genrl_lite.world_model import batch_to_torch

POLICY_NAME, METRICS_NAME, INFO_NAME = "policy.pt", "metrics.jsonl", "behaviour.json"
FORMAT = "genrl_lite.behaviour/1"


# --- configuration -------------------------------------------------------------------------------


@dataclasses.dataclass
class BehaviourConfig:
    """How to learn one behaviour; presets ``tiny`` (CI, seconds), ``laptop`` (2-core CPU), ``paper``."""

    preset: str = "custom"
    """Name of the preset this config came from (recorded in behaviour.json)."""
    actor_critic: str = "laptop"
    """Preset of the actor-critic's networks and learning rates (see ``ActorCriticConfig``)."""
    actor_critic_overrides: dict = dataclasses.field(default_factory=dict)
    """Fields of that preset to change, e.g. ``{"actor_lr": 3e-4, "slow_target_every": 25}`` for short budgets."""
    horizon: int = 15
    """H, imagined steps per start state (15 here and in the reference code's laptop-sized runs; 16 in the paper)."""
    start_batch: int = 16
    """B, dataset windows per update (32 in the paper); data-free uses as many start states, B * L."""
    start_length: int = 32
    """L, frames per window; every frame's posterior is a start state (32 in the paper)."""
    steps: int = 1000
    """Total actor-critic updates (a resumed run continues to the same total; 50k in the paper)."""
    minutes: float | None = 15.0
    """Wall-time budget of the whole run in minutes, resumed calls included (None: no limit); then it saves."""
    data_free: bool = False
    """Start imagination from data-free states (no dataset touched) instead of dataset posteriors."""
    window: int | None = 8
    """Alignment window b of the reward: 8 (the VLM clip length, GenRL), 1 (initial-state), None (none)."""
    similarity: str = "max_cosine"
    """Similarity of the reward: ``max_cosine`` (the original code's default) or ``cosine`` (the paper's text)."""
    features: str = "projection"
    """Feature space of the reward: ``projection`` (g, the decoder's first Linear, the paper's) or
    ``spatial`` (g then the decoder's next linear map; ``genrl_lite.rewards.FEATURES``)."""
    seed: int = 0
    """Seed of the networks' initial weights, the data windows and all imagination sampling."""
    p_connector: float = 0.5
    """Data-free only: probability that a start state's z comes from the connector (else uniform)."""
    warmup_steps: int = 5
    """Data-free only: imagined warm-up steps (random actions and policy) before states are used."""
    connector_rollout: int = 16
    """Data-free only: connector steps per random embedding."""
    log_every: int = 10
    """Updates per row of metrics.jsonl (averaged over them)."""
    save_every: int = 100
    """Updates between checkpoints of the policy (one more is always written at the end)."""

    def __post_init__(self):
        # The classmethod ``preset`` below replaces this field's class-level default, so a config
        # built field by field would otherwise carry the method; give it the documented default.
        if not isinstance(self.preset, str):
            self.preset = "custom"

    @classmethod
    def tiny(cls, **overrides) -> "BehaviourConfig":
        """Seconds on CI: 32 start states, horizon 5, 30 updates, tiny networks."""
        return cls._make("tiny", dict(actor_critic="tiny", horizon=5, start_batch=4, start_length=8, steps=30,
                                      minutes=None, window=4, warmup_steps=2, connector_rollout=4,
                                      log_every=5, save_every=10), overrides)

    @classmethod
    def laptop(cls, **overrides) -> "BehaviourConfig":
        """A 2-core CPU: 512 start states x 15 steps, at most 15 minutes (see scripts/bench_behaviour.py --speed)."""
        return cls._make("laptop", {}, overrides)

    @classmethod
    def paper(cls, **overrides) -> "BehaviourConfig":
        """The paper's sizes (GPU): 32 x 32 starts, horizon 16, 50k updates, 4x1024 networks."""
        return cls._make("paper", dict(actor_critic="paper", horizon=16, start_batch=32, start_length=32,
                                       steps=50_000, minutes=None, log_every=100, save_every=2500), overrides)

    @classmethod
    def preset(cls, name: str, **overrides) -> "BehaviourConfig":
        """A preset by name (``tiny``, ``laptop``, ``paper``), with field overrides."""
        if name not in ("tiny", "laptop", "paper"):
            from genrl_lite.tasks import UnknownNameError

            raise UnknownNameError(f"unknown behaviour preset {name!r}; valid presets: tiny, laptop, paper")
        return getattr(cls, name)(**overrides)

    @classmethod
    def _make(cls, name: str, values: dict, overrides: dict) -> "BehaviourConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ValueError(f"unknown BehaviourConfig field(s) {bad}; valid: {', '.join(sorted(known))}")
        return cls(**{"preset": name, **values, **overrides})

    @property
    def num_starts(self) -> int:
        """N = B * L start states per update (with data or data-free)."""
        return self.start_batch * self.start_length

    def actor_critic_config(self) -> ActorCriticConfig:
        """The actor-critic preset with this config's horizon and start batch."""
        base = dataclasses.replace(ActorCriticConfig.preset(self.actor_critic), **self.actor_critic_overrides)
        return dataclasses.replace(base, horizon=self.horizon, start_batch=self.start_batch,
                                   start_length=self.start_length)

    def data_free_config(self) -> DataFreeConfig:
        """N / 2 states per warm-up half, so data-free updates see N start states like with data."""
        return DataFreeConfig(n=max(1, self.num_starts // 2), p_connector=self.p_connector,
                              warmup_steps=self.warmup_steps, rollout_length=self.connector_rollout)


@dataclasses.dataclass
class BehaviourResult:
    """What :func:`train_behaviour` returns."""

    actor_critic: ActorCritic
    """The trained actor, critic and optimizers (``.actor`` acts; ``.save(path)``)."""
    reward: GenRLReward
    """The prompt's reward function (its ``target`` and ``explain`` are handy for plots)."""
    metrics: dict
    """Training curves {name: (rows,) array} aligned on ``step`` (see :func:`genrl_lite.training.read_metrics`)."""
    steps: int
    """Updates done in total (including those of earlier, resumed calls)."""
    seconds: float
    """Wall time of this call."""
    config: BehaviourConfig
    """The configuration used."""
    out_dir: Path | None = None
    """Where the checkpoint and metrics are (None: nothing was written)."""

    @property
    def actor(self) -> Actor:
        """The policy network: ``actor.mode(feat (..., F)) -> (..., A)``."""
        return self.actor_critic.actor


# --- helpers -------------------------------------------------------------------------------------


def _as_bundle(model) -> ModelBundle:
    """A ModelBundle as given, or loaded from a shipped name (``"walker"``) or a checkpoint path."""
    if isinstance(model, ModelBundle):
        return model
    from genrl_lite.pretrained import load_model

    return load_model(model)


def task_action_dim(task: str) -> int:
    """A of a task's environment (raises ``UnknownNameError`` listing valid tasks for a bad name)."""
    from genrl_lite.tasks import get_task

    spec = get_task(task).make_env(0).action_spec()
    return int(np.prod(spec.shape))


def check_task_fits_model(bundle: ModelBundle, task: str) -> None:
    """Raise ``ValueError`` if the model's action size differs from the task's (a model per domain)."""
    from genrl_lite.tasks import get_task

    want = task_action_dim(task)
    if bundle.action_dim != want:
        domain = get_task(task).domain
        raise ValueError(f"the model {bundle.path or ''} has {bundle.action_dim}-d actions but task {task!r} "
                         f"({domain}) has {want}-d actions: use the {domain} model, e.g. load_model({domain!r})")


def _embedding_hash(embedding: torch.Tensor) -> str:
    return hashlib.sha1(embedding.detach().cpu().to(torch.float16).numpy().tobytes()).hexdigest()[:16]


def _step_seeds(seed: int, step: int) -> np.random.Generator:
    """Seed torch (global) for update ``step`` and return the numpy generator for its data windows."""
    torch.manual_seed((seed * 1_000_003 + step) % (2 ** 63))
    return np.random.default_rng([seed, step])


@torch.no_grad()
def dataset_starts(wm, data, batch: int, length: int, rng: np.random.Generator) -> dict:
    """Posterior states of ``batch`` dataset windows of ``length`` frames: values (B, L, ...).

    ``data.sample(B, L, rng)`` gives obs (B, L, S, S, 3), action (B, L, A), is_first (B, L); the
    frozen world model filters them from its initial state. Computed without gradient: start
    states are inputs to imagination, nothing learns through them.
    """
    raw = data.sample(batch, length, rng)
    b = batch_to_torch({k: raw[k] for k in ("obs", "action", "is_first")}, wm.device)
    posts, _ = wm.rssm.observe(wm.encode(wm.preprocess(b["obs"])), b["action"], b["is_first"])
    return posts


def _write_info(path: Path, info: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(info, indent=1))


def _check_resume(path: Path, info: dict) -> None:
    """A resumed run must learn the same thing: same prompt, model, start states and reward."""
    old = json.loads(path.read_text())
    same = ("prompt_hash", "model_step", "model_id", "action_dim", "feat_dim")
    diff = [k for k in same if old.get(k) != info.get(k)]
    keys = ("actor_critic", "actor_critic_overrides", "horizon", "start_batch", "start_length", "data_free",
            "window", "similarity", "seed")
    diff += [f"config.{k}" for k in keys if old["config"].get(k) != info["config"].get(k)]
    if diff:
        raise CheckpointError(f"{path.parent} holds a policy trained with other settings ({', '.join(diff)} differ); "
                              "use another out_dir, or pass resume=False to start over there")


def _truncate_metrics(path: Path, step: int) -> list[dict]:
    """Keep the rows up to the checkpoint's step (later ones died with the process); return them."""
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
    rows = [r for r in rows if r["step"] <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


# --- training ------------------------------------------------------------------------------------


def train_behaviour(bundle, prompt, cfg: BehaviourConfig | None = None, data=None, out_dir=None, vlm=None, *,
                    task: str | None = None, resume: bool = True, show_progress: bool = True,
                    reward_fn=None) -> BehaviourResult:
    """Learn a behaviour for ``prompt`` in the imagination of a frozen world model.

    Args:
        bundle: a ``ModelBundle`` with connector and aligner, or a shipped name / checkpoint path
            (``"walker"``, see :func:`genrl_lite.pretrained.load_model`).
        prompt: text (embedded by ``vlm``; default: :func:`genrl_lite.vlm.load_vlm`) or an embedding (E,);
            ``None`` with ``task`` given uses the task's prompt.
        cfg: the :class:`BehaviourConfig` (default: the laptop preset).
        data: with-data mode: any object with ``sample(B, L, rng) -> {obs (B, L, S, S, 3) uint8,
            action (B, L, A), is_first (B, L)}`` (e.g. ``genrl_lite.data.EpisodeDataset``). Never
            touched when ``cfg.data_free``.
        out_dir: where checkpoints and metrics go (resumes from a checkpoint there); None: in memory.
        vlm: the VLM for a text prompt (checked against the model's with ``pretrained.check_vlm``).
        task: optional task key; checks that the model's action size fits the task's domain.
        resume: continue from ``out_dir/policy.pt`` if present (else start over there).
        reward_fn: a reward to learn from instead of GenRL's (the benchmark's baselines and
            ablations: WM-CLIP, GenRL without aligner, ...): ``states (H, B, ...) -> (H, B, 1)``
            with an ``embedding`` (E,) attribute (recorded as the prompt hash); None: GenRLReward.
            With dataset start states such a reward needs no connector or aligner (e.g. the
            true-reward diagnostic, :mod:`genrl_lite.privileged`), and no VLM for a text prompt.

    Returns a :class:`BehaviourResult`. Raises ``ValueError`` for an empty prompt, missing data or
    a wrong action size, ``CheckpointError`` for a model without connector or a mismatched out_dir.
    """
    cfg = cfg or BehaviourConfig.laptop()
    bundle = _as_bundle(bundle)
    # GenRL's reward and data-free start states go through the connector and aligner; a reward_fn
    # of one's own with dataset starts (the true-reward diagnostic) needs only the world model.
    if (reward_fn is None or cfg.data_free) and (bundle.connector is None or bundle.aligner is None):
        raise CheckpointError(f"{bundle.path or 'this model'} has no connector/aligner (trained without VLM "
                              "embeddings), so it cannot turn a prompt into a target"
                              f"{' nor make data-free start states' if cfg.data_free else ''}: train them with "
                              "python -m genrl_lite.training --world-model <this checkpoint> --embed ...")
    if task is not None:
        check_task_fits_model(bundle, task)
        if prompt is None:
            from genrl_lite.tasks import get_task

            prompt = get_task(task).prompt
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise ValueError("empty prompt: describe the behaviour in words, e.g. 'standing up straight', "
                         "or pass a VLM embedding (E,) of a video prompt")
    if isinstance(prompt, str) and reward_fn is None:   # a given reward_fn already holds its embedding
        if vlm is None:
            from genrl_lite.vlm import load_vlm

            vlm = load_vlm()
        from genrl_lite.pretrained import check_vlm

        check_vlm(bundle, vlm)
    if not cfg.data_free:
        if data is None or not callable(getattr(data, "sample", None)):
            raise ValueError("with-data training needs data=... with sample(B, L, rng) (e.g. "
                             "EpisodeDataset('data', 'walker')), or set cfg.data_free=True to touch no data")
        if getattr(data, "action_dim", bundle.action_dim) != bundle.action_dim:
            raise ValueError(f"the data has {data.action_dim}-d actions but the model {bundle.action_dim}-d: "
                             "use episodes of the model's domain")

    wm, rssm = bundle.world_model, bundle.world_model.rssm
    device = wm.device
    reward = reward_fn if reward_fn is not None else GenRLReward(
        wm, bundle.connector, bundle.aligner, prompt, vlm=vlm, window=cfg.window, sim=cfg.similarity,
        embed_dim=bundle.embed_dim, features=cfg.features)
    feat_dim = bundle.cfg.feat_dim
    info = {"format": FORMAT, "config": dataclasses.asdict(cfg), "task": task,
            "prompt": prompt if isinstance(prompt, str) else None, "prompt_hash": _embedding_hash(reward.embedding),
            "model": repo_relative(bundle.path) if bundle.path else None, "model_step": bundle.step,
            "model_id": bundle.model_id, "model_preset": bundle.preset, "vlm_tag": bundle.vlm_tag, "action_dim": bundle.action_dim,
            "feat_dim": feat_dim, "reward": type(reward).__name__,
            "text_side": None if vlm is None else ("plain" if getattr(vlm, "text_memory", None) is None
                                                   else vlm.text_memory.describe())}

    out = Path(out_dir) if out_dir is not None else None
    rows: list[dict] = []
    ac = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if resume and (out / POLICY_NAME).exists():
            if (out / INFO_NAME).exists():
                _check_resume(out / INFO_NAME, info)
            ac = ActorCritic.load(out / POLICY_NAME, map_location=device)
            rows = _truncate_metrics(out / METRICS_NAME, ac.updates)
        else:
            (out / METRICS_NAME).unlink(missing_ok=True)
        _write_info(out / INFO_NAME, info)
    if ac is None:
        ac = ActorCritic(feat_dim, bundle.action_dim, cfg.actor_critic_config(), seed=cfg.seed, device=device)
    if (ac.feat_dim, ac.action_dim) != (feat_dim, bundle.action_dim):
        raise CheckpointError(f"the policy in {out} is for features {ac.feat_dim} / actions {ac.action_dim}, the "
                              f"model has {feat_dim} / {bundle.action_dim}: use another out_dir")

    def save() -> None:
        if out is not None:
            ac.save(out / POLICY_NAME)

    def log() -> None:
        nonlocal sums, count
        row = {"step": ac.updates, "elapsed_s": round(elapsed0 + time.perf_counter() - t_start, 2),
               **{k: round(v / count, 6) for k, v in sums.items()}}
        rows.append(row)
        if out is not None:
            with open(out / METRICS_NAME, "a") as f:
                f.write(json.dumps(row) + "\n")
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(reward=f"{row['reward_mean']:.3f}", ret=f"{row['return_mean']:.2f}")
        sums, count = {}, 0

    df_cfg = cfg.data_free_config()
    start_step, elapsed0 = ac.updates, (rows[-1]["elapsed_s"] if rows else 0.0)
    t_start = time.perf_counter()
    sums: dict = {}
    count = 0
    bar = progress(range(start_step, cfg.steps), initial=start_step, total=cfg.steps,
                   desc=f"behaviour ({cfg.preset}{', data-free' if cfg.data_free else ''})",
                   **({} if show_progress else {"disable": True}))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):   # per-update seeds, the caller's RNG left as it was
        for step in bar:
            if cfg.minutes is not None and elapsed0 + time.perf_counter() - t_start > 60 * cfg.minutes:
                break
            t0 = time.perf_counter()
            rng = _step_seeds(cfg.seed, step)
            if cfg.data_free:
                gen = torch.Generator(device=device).manual_seed(int(rng.integers(2 ** 62)))
                starts = data_free_starts(rssm, bundle.connector, bundle.aligner,
                                          lambda f: ac.actor(f).sample(), bundle.action_dim, df_cfg,
                                          embed_dim=bundle.embed_dim, generator=gen).states
            else:
                starts = dataset_starts(wm, data, cfg.start_batch, cfg.start_length, rng)
            t1 = time.perf_counter()
            metrics = ac.update(rssm, starts, reward)
            t2 = time.perf_counter()
            metrics.update(start_s=t1 - t0, update_s=t2 - t1,
                           imag_steps_per_s=cfg.num_starts * cfg.horizon / max(t2 - t0, 1e-9))
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if ac.updates % cfg.log_every == 0 or ac.updates == cfg.steps:
                log()
            if ac.updates % cfg.save_every == 0 and ac.updates < cfg.steps:
                save()
    if count:                                         # stopped by the minutes budget mid-window
        log()
    if ac.updates > start_step or not (out is not None and (out / POLICY_NAME).exists()):
        save()
    keys = sorted({k for r in rows for k in r})
    metrics = (read_metrics(out) if out is not None else
               {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys})
    return BehaviourResult(ac, reward, metrics, ac.updates, time.perf_counter() - t_start, cfg, out)


def load_policy(path, device=None) -> ActorCritic:
    """A trained policy from ``out_dir`` (or its ``policy.pt``): an :class:`ActorCritic`, eval-ready."""
    path = Path(path)
    return ActorCritic.load(path / POLICY_NAME if path.is_dir() else path, map_location=device or "cpu")
