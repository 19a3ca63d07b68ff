"""Data-free start states: policy learning that touches no data at all (``GENRL_REFERENCE.md`` §7).

With data, imagination starts from the posterior states of dataset frames. Without data, GenRL
builds the start states inside the world model itself:

1. N states with h = 0 and a z drawn **uniformly** over the classes of every group (pure noise,
   but every z decodes to *some* frame, since the decoder sees only z);
2. N states whose z comes from **random unit embeddings** sent through aligner + connector
   (``sample=True``): random "prompts", so realistic-looking frames of many kinds;
3. a **coin flip per state** (probability ``p_connector``) picks the uniform or the connector z.
   Only z is mixed; h stays 0;
4. a **warm-up** of k imagined steps from these N states, done twice: with uniform random actions
   in [-1, 1], and with the current policy. The final states of both are concatenated, so the
   actor-critic gets 2N start states with a warm h, half off-policy, half on-policy.

Shapes: N states per source half (512 in the paper, so 2N = 1024 = 32 x 32 starts), D deter size,
G x C stochastic groups x classes, E embedding size, A action size, L connector rollout length.

Difference from the reference, on purpose: the original feeds a *different* random embedding at
every connector step (B x L embeddings for B x L states); ``connector.rollout`` takes one
embedding per sequence, so we draw N / L embeddings and keep every state of each rollout. Both
give a spread of realistic latents; ours are "random prompts played for a while".
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
import torch.nn.functional as F

from genrl_lite.rewards import infer_embed_dim


@dataclasses.dataclass
class DataFreeConfig:
    """How to sample data-free start states; presets ``tiny``, ``laptop``, ``paper``."""

    n: int = 256
    """States per half (2N in total: N with random-action warm-up, N with policy warm-up)."""
    p_connector: float = 0.5
    """Probability that a state takes its z from the connector instead of the uniform distribution."""
    warmup_steps: int = 5
    """Imagined steps of warm-up (k) before the states are used as starts; 0 for none."""
    rollout_length: int = 16
    """Connector steps per random embedding (2 x the 8-frame clip length, as in the reference)."""

    @classmethod
    def tiny(cls) -> "DataFreeConfig":
        """2 x 16 starts, seconds on CI."""
        return cls(n=16, warmup_steps=2, rollout_length=4)

    @classmethod
    def laptop(cls) -> "DataFreeConfig":
        """2 x 256 = 512 starts, as many as the laptop actor-critic's 16 x 32 dataset starts."""
        return cls()

    @classmethod
    def paper(cls) -> "DataFreeConfig":
        """The reference: 2 x 512 = 1024 starts (32 x 32), 5 warm-up steps, 16-step rollouts."""
        return cls(n=512, p_connector=0.5, warmup_steps=5, rollout_length=16)

    @classmethod
    def preset(cls, name: str) -> "DataFreeConfig":
        if name not in ("tiny", "laptop", "paper"):
            from genrl_lite.tasks import UnknownNameError

            raise UnknownNameError(f"unknown data-free preset {name!r}; valid presets: tiny, laptop, paper")
        return getattr(cls, name)()


@dataclasses.dataclass
class DataFreeStarts:
    """Start states plus where each came from (for the notebook's gallery)."""

    states: dict
    """State dict with (2N, ...) values: rows 0..N-1 warmed up with random actions, N..2N-1 with the policy."""
    from_connector: torch.Tensor
    """(2N,) bool: True where z came from the connector, False where uniform."""
    warmup: torch.Tensor
    """(2N,) long: 0 = random-action warm-up, 1 = policy warm-up."""
    initial: dict
    """The N mixed states before warm-up, (N, ...) values (h = 0): what the coin flip produced."""

    def source_names(self) -> list[str]:
        """One label per start state, e.g. ``"connector z, policy warm-up"``."""
        return [f"{'connector' if c else 'uniform'} z, {'policy' if w else 'random'} warm-up"
                for c, w in zip(self.from_connector.tolist(), self.warmup.tolist())]


def uniform_stoch(n: int, groups: int, classes: int, device=None, generator=None) -> torch.Tensor:
    """(n, G, C) one-hot with each group's class drawn uniformly."""
    idx = torch.randint(classes, (n, groups), device=device, generator=generator)
    return F.one_hot(idx, classes).float()


@torch.no_grad()
def data_free_starts(rssm, connector, aligner, policy: Callable[[torch.Tensor], torch.Tensor],
                     action_dim: int, config: DataFreeConfig | None = None, *,
                     embed_dim: int | None = None, generator: torch.Generator | None = None) -> DataFreeStarts:
    """Sample 2N data-free start states (see the module docstring).

    Args:
        rssm: has ``initial(B)``, ``imagine(start, policy, horizon)`` and ``feat``.
        connector: has ``rollout(embed (B, E), length, sample=True) -> states (B, L, ...)``.
        aligner: ``aligner(e (B, E)) -> (B, E)``, or ``None`` to feed random embeddings directly.
        policy: features (B, F) -> actions (B, A), e.g. ``lambda f: actor(f).sample()``.
        action_dim: A, for the uniform random actions.
        embed_dim: E; default: the input size of the aligner's first Linear layer.
        generator: a ``torch.Generator`` for the coin flips, uniform z and embeddings (the model's
            own sampling uses the global seed).
    """
    cfg = config or DataFreeConfig()
    if cfg.n < 1 or not 0.0 <= cfg.p_connector <= 1.0 or cfg.warmup_steps < 0 or cfg.rollout_length < 1:
        raise ValueError(f"bad data-free config {cfg}: need n >= 1, 0 <= p_connector <= 1, "
                         f"warmup_steps >= 0, rollout_length >= 1")
    n = cfg.n
    init = rssm.initial(n)
    device = init["deter"].device
    gen_device = generator.device if generator is not None else device
    groups, classes = init["stoch"].shape[-2:]

    # 1. h = 0 and z uniform over the classes (logits 0 = the uniform distribution).
    state = {k: torch.zeros_like(v) for k, v in init.items()}
    state["stoch"] = uniform_stoch(n, groups, classes, gen_device, generator).to(device, init["stoch"].dtype)

    # 2. z from random unit embeddings through aligner + connector.
    from_connector = torch.rand(n, device=gen_device, generator=generator).to(device) < cfg.p_connector
    if from_connector.any():
        embed_dim = embed_dim or infer_embed_dim(aligner)
        if embed_dim is None:
            raise ValueError("cannot tell the embedding size E: pass embed_dim=...")
        rollouts = math.ceil(n / cfg.rollout_length)
        e = F.normalize(torch.randn(rollouts, embed_dim, device=gen_device, generator=generator), dim=-1)
        e = e.to(device)
        if aligner is not None:
            e = F.normalize(aligner(e), dim=-1)
        video = connector.rollout(e, cfg.rollout_length, sample=True)
        # 3. Per-state coin flip; only z (and its logits) is mixed, h stays 0.
        for key in ("stoch", "logits"):
            if key in state and key in video:
                conn = video[key].reshape(-1, *video[key].shape[2:])[:n].to(state[key].dtype)
                mask = from_connector.view(-1, *([1] * (conn.ndim - 1)))
                state[key] = torch.where(mask, conn, state[key])

    # 4. Warm-up twice: uniform random actions, and the current policy; keep the final states.
    def random_policy(feat):
        a = torch.rand(feat.shape[0], action_dim, device=gen_device, generator=generator)
        return (a * 2 - 1).to(feat.device)

    halves = []
    for act in (random_policy, policy):
        if cfg.warmup_steps == 0:
            halves.append(state)
            continue
        rolled = rssm.imagine(state, act, cfg.warmup_steps)
        halves.append({k: v[-1] for k, v in rolled.items() if torch.is_tensor(v)})
    keys = [k for k in halves[0] if k in halves[1]]
    starts = {k: torch.cat([halves[0][k], halves[1][k]]) for k in keys}
    warmup = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)]).to(device)
    return DataFreeStarts(starts, from_connector.repeat(2), warmup, state)
