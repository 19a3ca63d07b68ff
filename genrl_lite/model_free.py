"""The model-free baseline: offline TD3+BC on pixels, rewarded by the VLM (the paper's "TD3+BC-V").

GenRL's claim is that one world model, trained once, turns prompts into policies more cheaply and
better than training a model-free agent per prompt (``../shared/GENRL_REFERENCE.md`` §9, §14). This
is that model-free agent, on the same data and the same VLM, so the benchmark can compare them:

1. **Rewards from the prompt.** Every dataset step gets r_t = cos(e_prompt, e_t), with e_t the VLM
   embedding of the 8-frame clip ending at frame t ("-V", MineCLIP-style; the dataset's cached
   ``clip_video`` embeddings) or of frame t alone ("-I", VLM-RM-style).
2. **Offline RL.** TD3+BC (Fujimoto & Gu 2021): twin critics with clipped double-Q targets, target
   policy smoothing, delayed actor updates, and an actor loss that adds behaviour cloning to the
   Q-value: ``-lambda * Q(s, pi(s)) + (pi(s) - a)^2`` with ``lambda = alpha / mean|Q|``. The BC term
   keeps the actor near the dataset's actions, where the critic's estimates mean something.
3. **Pixels.** A small conv encoder on the last K stacked frames (DrQ-v2 style: the critic trains
   it, the actor reads its features detached; no augmentation, which hurt in the paper).
4. **Evaluation** in the real environment (``PixelEnv``), true task reward, normalized.

Shapes:
    B   batch of transitions
    K   stacked frames (3)
    S   frame side (64)
    A   action size
    E   VLM embedding size
    T   steps of one episode
    Z   encoder features

Files in ``out_dir`` (atomic): ``model_free.pt`` (all weights, optimizers, update count; a run
resumes from it), ``metrics.jsonl`` (one row per ``log_every`` updates).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from genrl_lite.runtime import atomic_path, atomic_torch_save, progress

CHECKPOINT_NAME, METRICS_NAME = "model_free.pt", "metrics.jsonl"
FORMAT = "genrl_lite.model_free/1"


@dataclasses.dataclass
class ModelFreeConfig:
    """TD3+BC on pixels; presets ``tiny`` (CI, seconds), ``laptop`` (2-core CPU), ``paper`` (GPU)."""

    preset: str = "custom"
    """Name of the preset this config came from."""
    frame_stack: int = 3
    """K, frames stacked as the agent's observation (3 in the paper's baselines)."""
    image_size: int = 64
    """S, frame side in pixels (the dataset's)."""
    depth: int = 32
    """Channels of each of the 4 conv layers (32 in DrQ-v2)."""
    feature_dim: int = 50
    """Z, encoder output after Linear + LayerNorm + tanh (50 in DrQ-v2)."""
    hidden: int = 256
    """Width of the actor and critic MLPs (1024 in the paper's larger baselines)."""
    layers: int = 2
    """Hidden layers of the actor and critic MLPs."""
    batch_size: int = 64
    """B, transitions per update (256 in the paper)."""
    steps: int = 100_000
    """Total updates (a resumed run continues to the same total; 500k in the paper)."""
    minutes: float | None = 10.0
    """Wall-time budget of the whole run, resumed calls included (None: no limit); then it saves."""
    lr: float = 3e-4
    """Adam learning rate of actor and critic."""
    discount: float = 0.99
    """gamma of the TD targets (no terminal states: dm_control episodes only time out)."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    policy_noise: float = 0.2
    """Std of the noise added to the target action (target policy smoothing)."""
    noise_clip: float = 0.5
    """Clip of that noise."""
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""
    alpha: float = 2.5
    """TD3+BC's weight of the Q term: lambda = alpha / mean|Q| (2.5 in the TD3+BC paper)."""
    reward: str = "video"
    """VLM reward: ``video`` (clip ending at each frame, "-V") or ``image`` (frame alone, "-I")."""
    seed: int = 0
    """Seed of the weights and of every sampled batch."""
    log_every: int = 50
    """Updates per row of metrics.jsonl (averaged over them)."""
    save_every: int = 1000
    """Updates between checkpoints (one more is always written at the end)."""

    def __post_init__(self):
        # The classmethod ``preset`` below replaces this field's class-level default, so a config
        # built field by field would otherwise carry the method; give it the documented default.
        if not isinstance(self.preset, str):
            self.preset = "custom"

    @classmethod
    def tiny(cls, **overrides) -> "ModelFreeConfig":
        """Seconds on CI: thin convs, small MLPs, 20 updates of 8 transitions."""
        return cls._make("tiny", dict(depth=8, feature_dim=16, hidden=32, layers=1, batch_size=8, steps=20,
                                      minutes=None, lr=1e-3, log_every=5, save_every=10), overrides)

    @classmethod
    def laptop(cls, **overrides) -> "ModelFreeConfig":
        """A 2-core CPU: DrQ-v2-sized encoder, batch 64, 10 minutes (the GenRL policies' budget)."""
        return cls._make("laptop", {}, overrides)

    @classmethod
    def paper(cls, **overrides) -> "ModelFreeConfig":
        """The paper's baselines (GPU): MLPs 3x1024, batch 256, 500k updates (~7 h on a V100)."""
        return cls._make("paper", dict(hidden=1024, layers=3, batch_size=256, steps=500_000, minutes=None,
                                       log_every=500, save_every=10_000), overrides)

    @classmethod
    def preset(cls, name: str, **overrides) -> "ModelFreeConfig":
        """A preset by name (``tiny``, ``laptop``, ``paper``) with field overrides."""
        if name not in ("tiny", "laptop", "paper"):
            from genrl_lite.tasks import UnknownNameError

            raise UnknownNameError(f"unknown model-free preset {name!r}; valid presets: tiny, laptop, paper")
        return getattr(cls, name)(**overrides)

    @classmethod
    def _make(cls, name, values, overrides) -> "ModelFreeConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ValueError(f"unknown ModelFreeConfig field(s) {bad}; valid: {', '.join(sorted(known))}")
        return cls(**{"preset": name, **values, **overrides})


# --- data: transitions with VLM rewards ----------------------------------------------------------


def vlm_rewards(episodes, prompt_embedding, vlm=None, mode: str = "video", embeds=None) -> list[np.ndarray]:
    """Reward of every dataset step, cos(e_prompt, e_t): a list of (T,) float32, one per episode.

    ``episodes``: dicts with ``obs`` (T, S, S, 3) uint8. ``mode="video"`` uses ``embeds`` (a list of
    (T, E), e.g. ``EpisodeDataset.attach_embeddings(vlm).embeds``; rows without a full clip, which are
    zero, get the first full clip's value) or computes them with ``vlm.embed_windows``;
    ``mode="image"`` embeds each frame alone (``vlm.embed_image``).
    """
    if mode not in ("video", "image"):
        from genrl_lite.tasks import UnknownNameError

        raise UnknownNameError(f"unknown model-free reward {mode!r}; valid: image, video")
    e = F.normalize(torch.as_tensor(prompt_embedding).float().reshape(-1), dim=0)
    out = []
    for i, ep in enumerate(episodes):
        if mode == "image":
            emb = torch.as_tensor(vlm.embed_image(ep["obs"])).float()
        elif embeds is not None:
            emb = torch.as_tensor(embeds[i]).float()
            valid = emb.norm(dim=-1) > 1e-6
            first = int(valid.float().argmax())
            emb = torch.where(valid[:, None], emb, emb[first])     # pad = the first full clip
        else:
            emb = torch.as_tensor(vlm.embed_windows(ep["obs"], pad="repeat")).float()
        assert emb.shape == (len(ep["obs"]), e.shape[0]), (
            f"embeddings of episode {i} are {tuple(emb.shape)}, expected (T={len(ep['obs'])}, E={e.shape[0]})")
        out.append(F.cosine_similarity(emb, e[None], dim=-1).numpy().astype(np.float32))
    return out


class Transitions:
    """Offline transitions (s, a, r, s') with stacked frames, cut from episodes.

    ``episodes``: dicts with ``obs`` (T, S, S, 3) uint8 and ``action`` (T, A), in the dataset's
    convention (``action[t]`` led to ``obs[t]``); ``rewards``: (T,) per episode, ``reward[t]``
    received on arriving at ``obs[t]``. So from frame t the agent took ``action[t+1]``, got
    ``reward[t+1]`` and saw frame t+1.
    """

    def __init__(self, episodes, rewards, frame_stack: int = 3):
        assert len(episodes) == len(rewards) > 0, f"{len(episodes)} episodes but {len(rewards)} reward arrays"
        self.obs = [np.asarray(ep["obs"]) for ep in episodes]
        self.action = [np.asarray(ep["action"], dtype=np.float32) for ep in episodes]
        self.reward = [np.asarray(r, dtype=np.float32) for r in rewards]
        for o, a, r in zip(self.obs, self.action, self.reward):
            assert len(o) == len(a) == len(r) >= 2, f"episode lengths differ: obs {len(o)}, action {len(a)}, reward {len(r)}"
        self.k = frame_stack
        self.lengths = np.array([len(o) - 1 for o in self.obs])      # transitions per episode
        self.action_dim = self.action[0].shape[1]

    def __len__(self) -> int:
        return int(self.lengths.sum())

    def stack(self, i: int, t: int) -> np.ndarray:
        """Frames t-K+1 .. t of episode i (the first frame repeated before the start): (K, S, S, 3)."""
        idx = np.clip(np.arange(t - self.k + 1, t + 1), 0, None)
        return self.obs[i][idx]

    def sample(self, batch: int, rng: np.random.Generator) -> dict:
        """obs/next_obs (B, K, S, S, 3) uint8, action (B, A), reward (B,): uniform over transitions."""
        flat = rng.integers(len(self), size=batch)
        ends = np.cumsum(self.lengths)
        ep = np.searchsorted(ends, flat, side="right")
        t = flat - (ends[ep] - self.lengths[ep])
        return {"obs": np.stack([self.stack(i, s) for i, s in zip(ep, t)]),
                "next_obs": np.stack([self.stack(i, s + 1) for i, s in zip(ep, t)]),
                "action": np.stack([self.action[i][s + 1] for i, s in zip(ep, t)]),
                "reward": np.array([self.reward[i][s + 1] for i, s in zip(ep, t)], dtype=np.float32)}


# --- networks ------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """Stacked frames (B, K, S, S, 3) uint8 -> features (B, Z): 4 convs, Linear, LayerNorm, tanh."""

    def __init__(self, cfg: ModelFreeConfig):
        super().__init__()
        d, layers, ch = cfg.depth, [], 3 * cfg.frame_stack
        for i in range(4):
            layers += [nn.Conv2d(ch if i == 0 else d, d, 3, stride=2), nn.ReLU()]
        self.convs = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, ch, cfg.image_size, cfg.image_size)).shape[1]
        self.trunk = nn.Sequential(nn.Linear(flat, cfg.feature_dim), nn.LayerNorm(cfg.feature_dim), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        assert obs.ndim == 5 and obs.shape[-1] == 3, f"obs must be (B, K, S, S, 3), got {tuple(obs.shape)}"
        x = obs.float().div(255).sub(0.5).permute(0, 1, 4, 2, 3).flatten(1, 2)   # (B, 3K, S, S)
        return self.trunk(self.convs(x))


def _mlp(inp: int, hidden: int, layers: int, out: int) -> nn.Sequential:
    blocks, width = [], inp
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*blocks, nn.Linear(width, out))


class Critic(nn.Module):
    """The encoder and two Q heads: (features (B, Z), action (B, A)) -> q1, q2 (B, 1)."""

    def __init__(self, cfg: ModelFreeConfig, action_dim: int):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.q1 = _mlp(cfg.feature_dim + action_dim, cfg.hidden, cfg.layers, 1)
        self.q2 = _mlp(cfg.feature_dim + action_dim, cfg.hidden, cfg.layers, 1)

    def forward(self, feat: torch.Tensor, action: torch.Tensor):
        x = torch.cat([feat, action], -1)
        return self.q1(x), self.q2(x)


class TD3BC(nn.Module):
    """Actor, critic (with the encoder), their targets and optimizers; :meth:`update` is one step."""

    def __init__(self, action_dim: int, cfg: ModelFreeConfig | None = None, device=None):
        super().__init__()
        self.cfg = cfg = cfg or ModelFreeConfig.laptop()
        torch.manual_seed(cfg.seed)
        self.action_dim = action_dim
        self.critic = Critic(cfg, action_dim)
        self.actor = nn.Sequential(_mlp(cfg.feature_dim, cfg.hidden, cfg.layers, action_dim), nn.Tanh())
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), cfg.lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), cfg.lr)
        self.updates = 0
        if device is not None:
            self.to(device)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        """Deterministic actions for stacked frames: (B, K, S, S, 3) or (K, S, S, 3) uint8 -> (B, A) or (A,)."""
        obs = torch.as_tensor(np.asarray(obs), device=self.device)
        single = obs.ndim == 4
        a = self.actor(self.critic.encoder(obs[None] if single else obs))
        return a[0].cpu().numpy() if single else a.cpu().numpy()

    def update(self, batch: dict) -> dict[str, float]:
        """One critic step (and every ``policy_delay`` updates one actor + target step) on numpy
        arrays obs/next_obs (B, K, S, S, 3), action (B, A), reward (B,)."""
        cfg, dev = self.cfg, self.device
        obs, nxt = (torch.as_tensor(batch[k], device=dev) for k in ("obs", "next_obs"))
        action = torch.as_tensor(batch["action"], device=dev).float()
        reward = torch.as_tensor(batch["reward"], device=dev).float()[:, None]
        assert action.shape == (len(obs), self.action_dim), (
            f"actions must be (B={len(obs)}, A={self.action_dim}), got {tuple(action.shape)}")
        with torch.no_grad():
            next_feat = self.critic_target.encoder(nxt)
            noise = (torch.randn_like(action) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_action = (self.actor_target(next_feat) + noise).clamp(-1, 1)
            target = reward + cfg.discount * torch.min(*self.critic_target(next_feat, next_action))
        feat = self.critic.encoder(obs)
        q1, q2 = self.critic(feat, action)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        metrics = {"critic_loss": critic_loss.item(), "q_mean": q1.mean().item(), "reward_mean": reward.mean().item()}
        if self.updates % cfg.policy_delay == 0:
            feat = feat.detach()                                  # the actor does not train the encoder
            pi = self.actor(feat)
            q = self.critic.q1(torch.cat([feat, pi], -1))
            lam = cfg.alpha / q.abs().mean().detach().clamp_min(1e-6)
            bc = F.mse_loss(pi, action)
            actor_loss = -lam * q.mean() + bc
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            with torch.no_grad():
                for net, tgt in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                    for p, tp in zip(net.parameters(), tgt.parameters()):
                        tp.lerp_(p, cfg.tau)
            metrics.update(actor_loss=actor_loss.item(), bc_loss=bc.item())
        self.updates += 1
        return metrics

    def save(self, path, extra: dict | None = None) -> None:
        """Atomically save weights, optimizers, update count, config (and ``extra`` JSON-able info)."""
        atomic_torch_save({"format": FORMAT, "config": dataclasses.asdict(self.cfg), "action_dim": self.action_dim,
                           "model": self.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                           "actor_opt": self.actor_opt.state_dict(), "updates": self.updates,
                           "extra": extra or {}}, path)

    @classmethod
    def load(cls, path, device=None) -> "TD3BC":
        """Load :meth:`save`'s checkpoint; a clear error for a missing or corrupted file."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no model-free checkpoint at {path}; train one with train_model_free(...)")
        try:
            ckpt = torch.load(path, map_location=device or "cpu", weights_only=False)
            agent = cls(ckpt["action_dim"], ModelFreeConfig(**ckpt["config"]), device=device)
            agent.load_state_dict(ckpt["model"])
            agent.critic_opt.load_state_dict(ckpt["critic_opt"])
            agent.actor_opt.load_state_dict(ckpt["actor_opt"])
        except Exception as err:
            raise ValueError(f"corrupted or incompatible model-free checkpoint {path}: {err}; delete it and "
                             "train again") from err
        agent.updates = int(ckpt["updates"])
        agent.extra = ckpt.get("extra", {})
        return agent


# --- training and evaluation ---------------------------------------------------------------------


@dataclasses.dataclass
class ModelFreeResult:
    """What :func:`train_model_free` returns."""

    agent: TD3BC
    """The trained agent (``agent.act(stacked frames)``)."""
    metrics: dict
    """Curves {name: (rows,) array} from metrics.jsonl (or memory)."""
    steps: int
    """Updates done in total (resumed calls included)."""
    seconds: float
    """Training wall time, resumed calls included."""
    config: ModelFreeConfig
    """The configuration used."""


def train_model_free(transitions: Transitions, cfg: ModelFreeConfig | None = None, out_dir=None, *,
                     resume: bool = True, show_progress: bool = True, info: dict | None = None) -> ModelFreeResult:
    """Train TD3+BC on ``transitions`` (with their VLM rewards) until ``cfg.steps`` or ``cfg.minutes``.

    ``out_dir``: checkpoint and metrics (a later call resumes there; ``info``, e.g. the prompt, is
    stored in the checkpoint and must match on resume). Batches of update k depend only on
    (seed, k), so a resumed run sees the batches an uninterrupted one would have.
    """
    cfg = cfg or ModelFreeConfig.laptop()
    out = Path(out_dir) if out_dir is not None else None
    info = json.loads(json.dumps(info or {}))
    agent, rows = None, []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if resume and (out / CHECKPOINT_NAME).exists():
            agent = TD3BC.load(out / CHECKPOINT_NAME)
            same = {"steps": agent.cfg.steps, "minutes": agent.cfg.minutes, "log_every": agent.cfg.log_every,
                    "save_every": agent.cfg.save_every}                  # budgets and logging may change
            if agent.extra != info or agent.cfg != dataclasses.replace(cfg, **same):
                raise ValueError(f"{out} holds a model-free agent trained with other settings or prompt; "
                                 "use another out_dir or resume=False")
            agent.cfg = cfg
            lines = (out / METRICS_NAME).read_text().splitlines() if (out / METRICS_NAME).exists() else []
            rows = [r for r in (json.loads(ln) for ln in lines if ln.strip()) if r["step"] <= agent.updates]
            with atomic_path(out / METRICS_NAME) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            (out / METRICS_NAME).unlink(missing_ok=True)
    agent = agent or TD3BC(transitions.action_dim, cfg)
    if agent.action_dim != transitions.action_dim:
        raise ValueError(f"the agent has {agent.action_dim}-d actions, the data {transitions.action_dim}-d")
    elapsed0 = rows[-1]["elapsed_s"] if rows else 0.0
    t0, sums, count = time.perf_counter(), {}, 0
    bar = progress(range(agent.updates, cfg.steps), initial=agent.updates, total=cfg.steps,
                   desc=f"TD3+BC ({cfg.preset})", **({} if show_progress else {"disable": True}))
    start = agent.updates

    def log():
        nonlocal sums, count
        row = {"step": agent.updates, "elapsed_s": round(elapsed0 + time.perf_counter() - t0, 2),
               **{k: round(v / count, 6) for k, v in sums.items()}}
        rows.append(row)
        if out is not None:
            with open(out / METRICS_NAME, "a") as f:
                f.write(json.dumps(row) + "\n")
        sums, count = {}, 0

    with torch.random.fork_rng():
        for step in bar:
            if cfg.minutes is not None and elapsed0 + time.perf_counter() - t0 > 60 * cfg.minutes:
                break
            torch.manual_seed((cfg.seed * 1_000_003 + step) % (2 ** 63))
            metrics = agent.update(transitions.sample(cfg.batch_size, np.random.default_rng([cfg.seed, step])))
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if agent.updates % cfg.log_every == 0:
                log()
            if out is not None and agent.updates % cfg.save_every == 0 and agent.updates < cfg.steps:
                agent.save(out / CHECKPOINT_NAME, info)
    if count:
        log()
    if out is not None and (agent.updates > start or not (out / CHECKPOINT_NAME).exists()):
        agent.save(out / CHECKPOINT_NAME, info)
    keys = sorted({k for r in rows for k in r})
    curves = {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys}
    seconds = rows[-1]["elapsed_s"] if rows else 0.0
    return ModelFreeResult(agent, curves, agent.updates, seconds, cfg)


@torch.no_grad()
def evaluate_model_free(agent: TD3BC, task_key: str, episodes: int = 10, seed: int = 0,
                        max_steps: int | None = None, show_progress: bool = True) -> dict:
    """Run the agent in the real task from stacked pixels; score with the true reward.

    Returns ``returns`` (episodes,), ``normalized`` (episodes,) or None without a reference, their
    ``*_mean`` and ``*_stderr`` (None for one episode), ``steps`` per episode and ``seconds``, like
    :func:`genrl_lite.evaluation.evaluate_behaviour`.
    """
    from genrl_lite.envs import PixelEnv
    from genrl_lite.tasks import get_task, normalized_score

    task = get_task(task_key)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = PixelEnv(task.key, seed=seed, size=agent.cfg.image_size)
    if env.action_dim != agent.action_dim:
        raise ValueError(f"task {task.key!r} has {env.action_dim}-d actions but the agent {agent.action_dim}-d: "
                         f"train it on {task.domain} data")
    k, returns, lengths, t0 = agent.cfg.frame_stack, [], [], time.perf_counter()
    quiet = {} if show_progress and episodes > 1 else {"disable": True}
    for _ in progress(range(episodes), desc=f"evaluating {task.key}", **quiet):
        step = env.reset()
        frames, total, t = [step.obs] * k, 0.0, 0
        while not step.is_last and (max_steps is None or t < max_steps):
            step = env.step(agent.act(np.stack(frames[-k:])))
            frames = frames[-k + 1:] + [step.obs] if k > 1 else [step.obs]
            total += step.reward
            t += 1
        returns.append(total)
        lengths.append(t)
    returns = np.array(returns)
    normalized = np.array([normalized_score(task, r) for r in returns]) if task.reference is not None else None

    def stderr(x):
        return float(x.std(ddof=1) / math.sqrt(len(x))) if x is not None and len(x) > 1 else None

    return {"task": task.key, "episodes": episodes, "returns": returns, "return_mean": float(returns.mean()),
            "return_stderr": stderr(returns), "normalized": normalized,
            "normalized_mean": float(normalized.mean()) if normalized is not None else None,
            "normalized_stderr": stderr(normalized), "steps": lengths, "seconds": time.perf_counter() - t0}
