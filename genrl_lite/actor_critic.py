"""Actor-critic in imagination (DreamerV3-style, as GenRL uses it; ``../shared/GENRL_REFERENCE.md`` §6).

The world model is frozen. From a batch of start states the actor imagines H steps inside it, a
reward function scores every imagined state (``genrl_lite.rewards``), and:

- the **critic** learns to predict λ-returns, as a distribution over 255 bins on a symlog scale
  (*twohot*), so one set of hyperparameters works whatever the reward's scale;
- the **actor** maximizes the λ-returns by **dynamics backpropagation**: the returns are a
  differentiable function of the actions through the model's ``img_step``, so the gradient of the
  return flows straight into the actor (the model's own parameters receive none);
- returns are normalized by a slow estimate of their 5th-95th percentile range, never scaled *up*
  (divided by max(1, P95 - P5)), so that sparse small rewards are not amplified into noise.

Shapes (time-major):
    H   imagination horizon (imagined steps); states have H + 1 entries including the start
    B   number of start states (imagined trajectories)
    F   RSSM features ``rssm.feat(s)``, D + G*C
    A   action size
    K   twohot bins (255)

Differences from the reference, on purpose:
- the λ-return of state t uses the reward of the state the action leads to, r_{t+1} (DreamerV3),
  where the original (DreamerV2 code) uses the reward of state t itself; ours never spends a
  return on the start state's reward, which no action can change, and does use the last imagined
  state's reward;
- weight decay is the original's multiplicative shrinkage, applied before each Adam step.
"""
from __future__ import annotations

import copy
import dataclasses
from contextlib import contextmanager
from typing import Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import distributions as D

# --- symlog and twohot ---------------------------------------------------------------------------


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): compresses large magnitudes, identity-like near 0."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`symlog`: sign(x) * (exp(|x|) - 1)."""
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHot:
    """A scalar as a distribution over K bins equally spaced on the symlog scale over [low, high].

    ``encode(x)`` puts weight on the two bins around symlog(x) so that their weighted mean is
    exactly symlog(x); ``decode(logits)`` = symexp(softmax(logits) . bins); ``nll(logits, x)`` is
    the cross-entropy to the twohot encoding (the critic's loss). Values beyond symexp(high)
    (about 4.9e8 for 20) are clipped.
    """

    def __init__(self, bins: int = 255, low: float = -20.0, high: float = 20.0):
        assert bins >= 2 and high > low, (bins, low, high)
        self.num_bins, self.low, self.high = bins, low, high
        self.bins = torch.linspace(low, high, bins)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(...) -> (..., K) twohot probabilities."""
        y = symlog(x).clamp(self.low, self.high)
        pos = (y - self.low) / (self.high - self.low) * (self.num_bins - 1)
        below = pos.floor().long().clamp(0, self.num_bins - 2)
        frac = (pos - below).unsqueeze(-1)
        return (F.one_hot(below, self.num_bins) * (1 - frac)
                + F.one_hot(below + 1, self.num_bins) * frac)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """The distribution's mean in value space: (..., K) -> (...)."""
        bins = self.bins.to(logits.device, logits.dtype)
        return symexp((logits.softmax(-1) * bins).sum(-1))

    mean = decode

    def nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of values x (...) under logits (..., K): (...)."""
        assert logits.shape[:-1] == x.shape, f"logits {tuple(logits.shape)} vs values {tuple(x.shape)}"
        return -(self.encode(x).to(logits.dtype) * logits.log_softmax(-1)).sum(-1)


# --- returns -------------------------------------------------------------------------------------


def lambda_returns(rewards: torch.Tensor, values: torch.Tensor, discount: float | torch.Tensor = 0.99,
                   lam: float = 0.95, continues: torch.Tensor | None = None) -> torch.Tensor:
    """TD(λ) returns, bootstrapped from the last value: rewards (T, B, 1), values (T+1, B, 1) -> (T, B, 1).

    R_T = v_T and, backwards,  R_t = r_t + γ_t ((1 - λ) v_{t+1} + λ R_{t+1}),
    with γ_t = discount * continues_t (``continues`` (T, B, 1) in [0, 1], default all ones; a
    tensor ``discount`` is used as γ_t directly). r_t is the reward received on the step from t to
    t + 1. λ = 1 gives the discounted Monte-Carlo return plus γ^(T-t) v_T; λ = 0 the one-step TD target.
    """
    assert values.shape[0] == rewards.shape[0] + 1 and values.shape[1:] == rewards.shape[1:], (
        f"values must be (T+1, ...) for rewards (T, ...): got {tuple(values.shape)} and {tuple(rewards.shape)}")
    gamma = discount if torch.is_tensor(discount) else torch.full_like(rewards, float(discount))
    if continues is not None:
        gamma = gamma * continues
    returns, last = [], values[-1]
    for t in reversed(range(rewards.shape[0])):
        last = rewards[t] + gamma[t] * ((1 - lam) * values[t + 1] + lam * last)
        returns.append(last)
    return torch.stack(returns[::-1])


class ReturnNormalizer(nn.Module):
    """Slow percentile range of the returns: normalized = (R - P5) / max(1, P95 - P5).

    P5 and P95 are exponential moving averages (rate ``alpha``, from 0) of the batch percentiles
    (linear interpolation, as ``numpy.percentile``). Dividing by at least 1 means returns are
    scaled down when large but never amplified when small (DreamerV3).
    """

    def __init__(self, alpha: float = 0.01, low: float = 0.05, high: float = 0.95, min_scale: float = 1.0):
        super().__init__()
        self.alpha, self.min_scale = alpha, min_scale
        self.register_buffer("quantiles", torch.tensor([low, high]))
        self.register_buffer("ema", torch.zeros(2))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold a batch of returns into the EMA; return (offset, scale) to normalize with."""
        batch = torch.quantile(returns.detach().float().flatten(), self.quantiles.to(returns.device))
        self.ema.mul_(1 - self.alpha).add_(self.alpha * batch.to(self.ema.device))
        return self.stats()

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offset P5, scale max(1, P95 - P5)) from the current EMA."""
        return self.ema[0], (self.ema[1] - self.ema[0]).clamp_min(self.min_scale)

    def forward(self, returns: torch.Tensor) -> torch.Tensor:
        offset, scale = self.stats()
        return (returns - offset.to(returns.device)) / scale.to(returns.device)


# --- networks ------------------------------------------------------------------------------------


def mlp(inp: int, units: int, layers: int, out: int) -> nn.Sequential:
    """``layers`` x (Linear, LayerNorm, SiLU), then a Linear to ``out``."""
    blocks, width = [], inp
    for _ in range(layers):
        blocks += [nn.Linear(width, units), nn.LayerNorm(units), nn.SiLU()]
        width = units
    return nn.Sequential(*blocks, nn.Linear(width, out))


class Actor(nn.Module):
    """π(a | s): a Normal with mean tanh(μ) and std = (max - min) * sigmoid(σ + 2) + min, per dim.

    ``forward(feat (..., F))`` returns a ``torch.distributions.Independent`` over A dims (use
    ``rsample`` so gradients reach the actor); ``mode(feat)`` the mean action in [-1, 1] (used for
    evaluation). Samples are not clipped, as in the reference.
    """

    def __init__(self, feat_dim: int, action_dim: int, units: int = 256, layers: int = 2,
                 min_std: float = 0.1, max_std: float = 1.0):
        super().__init__()
        self.action_dim, self.min_std, self.max_std = action_dim, min_std, max_std
        self.net = mlp(feat_dim, units, layers, 2 * action_dim)

    def forward(self, feat: torch.Tensor) -> D.Independent:
        mean, std = self.net(feat).chunk(2, -1)
        std = (self.max_std - self.min_std) * torch.sigmoid(std + 2.0) + self.min_std
        return D.Independent(D.Normal(torch.tanh(mean), std), 1)

    def mode(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(feat).chunk(2, -1)[0])


class Critic(nn.Module):
    """v(s): twohot logits over symlog bins; the output layer starts at zero, so the first value
    estimate is exactly 0 instead of a random large number."""

    def __init__(self, feat_dim: int, units: int = 256, layers: int = 2, bins: int = 255):
        super().__init__()
        self.twohot = TwoHot(bins)
        self.net = mlp(feat_dim, units, layers, bins)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Logits (..., K)."""
        return self.net(feat)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        """Expected value (..., 1)."""
        return self.twohot.decode(self.net(feat))[..., None]


# --- configuration -------------------------------------------------------------------------------


@dataclasses.dataclass
class ActorCriticConfig:
    """Hyperparameters of the actor-critic; presets ``tiny`` (CI), ``laptop`` (2-core CPU), ``paper``."""

    units: int = 256
    """Hidden width of the actor and critic MLPs (1024 in the paper)."""
    layers: int = 2
    """Hidden layers of the actor and critic MLPs (4 in the paper)."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor (3e-5 in the paper; larger here because far fewer steps)."""
    critic_lr: float = 1e-4
    """Adam learning rate of the critic."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    grad_clip: float = 100.0
    """Global gradient-norm clip, for actor and critic separately."""
    weight_decay: float = 1e-6
    """Multiplicative shrinkage of the weights before every step (the reference's weight decay)."""
    horizon: int = 15
    """Imagined steps per start state (16 in the paper); states per trajectory = horizon + 1."""
    discount: float = 0.99
    """γ, constant (GenRL's world model has no continue head)."""
    lam: float = 0.95
    """λ of the λ-returns."""
    entropy: float = 0.0
    """Actor entropy bonus (0 for GenRL; plain Dreamer uses 3e-4)."""
    min_std: float = 0.1
    """Lower bound of the actor's standard deviation."""
    max_std: float = 1.0
    """Upper bound of the actor's standard deviation."""
    slow_target_every: int = 100
    """Updates between hard copies of the critic into the slow target critic (fraction 1)."""
    return_ema_alpha: float = 0.01
    """EMA rate of the return percentiles."""
    return_percentiles: tuple[float, float] = (0.05, 0.95)
    """Low and high quantiles of the return normalization."""
    bins: int = 255
    """Twohot bins of the critic."""
    start_batch: int = 16
    """Sequences per batch of start states (posteriors of B x L dataset frames; 32 in the paper)."""
    start_length: int = 32
    """Frames per sequence of start states (32 in the paper): start_batch * start_length starts."""

    @classmethod
    def tiny(cls) -> "ActorCriticConfig":
        """Seconds on CI: small MLPs, short horizon, large learning rates."""
        return cls(units=32, layers=1, actor_lr=1e-3, critic_lr=1e-3, horizon=5,
                   slow_target_every=10, start_batch=4, start_length=8)

    @classmethod
    def laptop(cls) -> "ActorCriticConfig":
        """A 2-core CPU, minutes per policy: 512 starts x 15 steps (about 0.5 s/update, STACK.md)."""
        return cls()

    @classmethod
    def paper(cls) -> "ActorCriticConfig":
        """The paper's sizes (GPU): MLP 4x1024, lr 3e-5, horizon 16, 32x32 starts."""
        return cls(units=1024, layers=4, actor_lr=3e-5, critic_lr=3e-5, adam_eps=1e-5, grad_clip=100.0,
                   horizon=16, discount=0.99, lam=0.95, entropy=0.0, slow_target_every=100,
                   start_batch=32, start_length=32)

    @classmethod
    def preset(cls, name: str) -> "ActorCriticConfig":
        if name not in ("tiny", "laptop", "paper"):
            from genrl_lite.tasks import UnknownNameError

            raise UnknownNameError(f"unknown actor-critic preset {name!r}; valid presets: tiny, laptop, paper")
        return getattr(cls, name)()


# --- the learner ---------------------------------------------------------------------------------


@contextmanager
def frozen(*modules):
    """Temporarily set ``requires_grad=False`` on every parameter of the given modules (so that
    backpropagating through a frozen world model stores no gradients for it), then restore."""
    params = [p for m in modules if isinstance(m, nn.Module) for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _flatten_starts(start: Mapping[str, torch.Tensor]) -> dict:
    """Start states (B, ...) or (B, L, ...) (dataset posteriors) -> (B*L, ...), detached."""
    deter = start["deter"]
    lead = 2 if deter.ndim == 3 else 1
    return {k: v.detach().reshape(-1, *v.shape[lead:]) for k, v in start.items() if torch.is_tensor(v)}


class ActorCritic(nn.Module):
    """Actor, critic, slow critic, return normalizer and their optimizers.

    ``update(rssm, start_states, reward_fn)`` does one step of policy learning in imagination and
    returns float metrics. ``rssm`` needs ``img_step(state, action)`` and ``feat(state)``;
    ``reward_fn(states (H+1, B, ...)) -> (H+1, B, 1)``. Put it on the model's device with
    ``device=...`` (or ``.to(device)``); ``seed`` fixes the initial weights.
    """

    def __init__(self, feat_dim: int, action_dim: int, config: ActorCriticConfig | None = None,
                 seed: int | None = None, device: str | torch.device | None = None):
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.config = cfg = config or ActorCriticConfig.laptop()
        self.feat_dim, self.action_dim = feat_dim, action_dim
        self.actor = Actor(feat_dim, action_dim, cfg.units, cfg.layers, cfg.min_std, cfg.max_std)
        self.critic = Critic(feat_dim, cfg.units, cfg.layers, cfg.bins)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.normalizer = ReturnNormalizer(cfg.return_ema_alpha, *cfg.return_percentiles)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), cfg.actor_lr, eps=cfg.adam_eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), cfg.critic_lr, eps=cfg.adam_eps)
        self.updates = 0
        if device is not None:
            self.to(device)  # parameters move in place, so the optimizers stay valid

    def act(self, feat: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """An action for features (..., F): the mean (evaluation) or a sample."""
        with torch.no_grad():
            return self.actor(feat).sample() if sample else self.actor.mode(feat)

    def imagine(self, rssm, start: Mapping[str, torch.Tensor], horizon: int):
        """Roll the policy in the model: states (H+1, B, ...) incl. the start, feats (H+1, B, F),
        and the action distributions of steps 0..H-1. The actor sees detached features (it learns
        only through the actions it outputs); the actions carry gradients into the dynamics."""
        state = dict(start)
        states, dists = [state], []
        for _ in range(horizon):
            dist = self.actor(rssm.feat(state).detach())
            state = rssm.img_step(state, dist.rsample())
            states.append(state)
            dists.append(dist)
        stacked = {k: torch.stack([s[k] for s in states]) for k in states[-1] if torch.is_tensor(states[-1][k])}
        return stacked, rssm.feat(stacked), dists

    @staticmethod
    def _step(opt, params, clip: float, wd: float) -> float:
        """Clip, shrink (weight decay), Adam step; returns the gradient norm before clipping."""
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        with torch.no_grad():
            for p in params:
                p.mul_(1 - wd)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(norm)

    def update(self, rssm, start_states: Mapping[str, torch.Tensor],
               reward_fn: Callable[[dict], torch.Tensor], horizon: int | None = None) -> dict[str, float]:
        """One actor and one critic step from ``start_states`` (B, ...) or (B, L, ...)."""
        cfg = self.config
        horizon = horizon or cfg.horizon
        start = _flatten_starts(start_states)
        with frozen(rssm, getattr(reward_fn, "wm", None), getattr(reward_fn, "head", None)):
            states, feats, dists = self.imagine(rssm, start, horizon)
            reward = reward_fn(states)
            assert reward.shape == (horizon + 1, feats.shape[1], 1), (
                f"reward_fn must return (H+1, B, 1) = {(horizon + 1, feats.shape[1], 1)}, got {tuple(reward.shape)}")
            values = self.slow_critic.value(feats)                             # (H+1, B, 1), grad to feats
            returns = lambda_returns(reward[1:], values, cfg.discount, cfg.lam)   # (H, B, 1)
            weight = cfg.discount ** torch.arange(horizon, device=feats.device, dtype=feats.dtype)[:, None, None]
            self.normalizer.update(returns)
            normed = self.normalizer(returns)
            entropy = torch.stack([d.entropy() for d in dists])[..., None]   # (H, B, 1)
            actor_loss = -(weight * (normed + cfg.entropy * entropy)).mean()
            # Gradients for the actor only: the frozen model's parameters never receive any.
            actor_params = list(self.actor.parameters())
            grads = torch.autograd.grad(actor_loss, actor_params)
        for p, g in zip(actor_params, grads):
            p.grad = g
        actor_norm = self._step(self.actor_opt, actor_params, cfg.grad_clip, cfg.weight_decay)

        logits = self.critic(feats[:-1].detach())
        critic_loss = (weight[..., 0] * self.critic.twohot.nll(logits, returns.detach()[..., 0])).mean()
        critic_loss.backward()
        critic_norm = self._step(self.critic_opt, list(self.critic.parameters()), cfg.grad_clip,
                                 cfg.weight_decay)

        if self.updates % cfg.slow_target_every == 0:
            self.slow_critic.load_state_dict(self.critic.state_dict())
        self.updates += 1
        with torch.no_grad():
            actions = torch.stack([d.mean for d in dists])
            return {"actor_loss": float(actor_loss), "critic_loss": float(critic_loss),
                    "reward_mean": float(reward.mean()), "reward_max": float(reward.max()),
                    "return_mean": float(returns.mean()), "normed_return_mean": float(normed.mean()),
                    "value_mean": float(values.mean()), "return_p05": float(self.normalizer.ema[0]),
                    "return_p95": float(self.normalizer.ema[1]), "entropy": float(entropy.mean()),
                    "action_mean_abs": float(actions.abs().mean()),
                    "actor_std": float(torch.stack([d.stddev for d in dists]).mean()),
                    "actor_grad_norm": actor_norm, "critic_grad_norm": critic_norm}

    # --- checkpoints ---

    def save(self, path) -> None:
        """Atomically save weights, optimizer states, normalizer, update count and config."""
        from genrl_lite.runtime import atomic_torch_save

        atomic_torch_save({"config": dataclasses.asdict(self.config), "feat_dim": self.feat_dim,
                           "action_dim": self.action_dim, "model": self.state_dict(),
                           "actor_opt": self.actor_opt.state_dict(),
                           "critic_opt": self.critic_opt.state_dict(), "updates": self.updates}, path)

    @classmethod
    def load(cls, path, map_location="cpu") -> "ActorCritic":
        """Load a checkpoint written by :meth:`save` (resumes training where it stopped)."""
        from pathlib import Path

        if not Path(path).exists():
            raise FileNotFoundError(f"no actor-critic checkpoint at {path}; train one with "
                                    f"ActorCritic.update(...) and save it with .save(path)")
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=False)
            cfg = dict(ckpt["config"])
            cfg["return_percentiles"] = tuple(cfg["return_percentiles"])
            ac = cls(ckpt["feat_dim"], ckpt["action_dim"], ActorCriticConfig(**cfg))
            ac.load_state_dict(ckpt["model"])
            ac.actor_opt.load_state_dict(ckpt["actor_opt"])
            ac.critic_opt.load_state_dict(ckpt["critic_opt"])
        except Exception as err:  # truncated file, another format, another version
            raise ValueError(f"corrupted or incompatible actor-critic checkpoint {path}: {err}; "
                             f"delete it and train again") from err
        ac.updates = int(ckpt["updates"])
        return ac


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

