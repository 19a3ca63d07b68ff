"""GenRL's reward from a prompt: a target sequence of latent states, and temporal alignment.

GenRL never sees a task reward. A prompt (text or video) is turned into a *target sequence of latent
states* -- prompt -> VLM embedding e -> aligner -> L2-normalize -> connector rollout -- and the
agent is rewarded for imagined states that look like that target (paper Eq. 3,
``../shared/GENRL_REFERENCE.md`` §5):

    r_j = sim( g(z_agent[j]), g(z_target[max(0, j - t*)]) )

with g the decoder's first Linear layer (``wm.reward_projection``), only the stochastic z compared
(not h), ``sim`` the "max-cosine" similarity, and t* the *best offset*: the target may start a few
steps into the agent's trajectory (a walker lying down must first get up before it can "walk").
(``features="spatial"`` swaps g for a variant, :data:`FEATURES`; the paper's is the default.)

Shapes (time-major, as everywhere in imagination):
    H   number of imagined states (the start state plus ``horizon`` steps; 17 in the paper)
    B   batch of imagined trajectories
    F   projected features, ``wm.reward_projection`` output (1536 in the paper)
    K   the alignment window b (8 in the paper = the VLM's frames per clip)
    O   number of candidate offsets, H - K + 1
    E   VLM embedding size

:class:`GenRLReward` has the call signature of every reward in imagination,
``reward_fn(states) -> (H, B, 1)``, where ``states`` is an RSSM state dict whose values are
(H, B, ...) (``{"deter", "stoch", "logits"}``), so the actor-critic (``genrl_lite.actor_critic``)
can use it or any of the baselines it is compared to (VLM-RM, WM-CLIP), which live with the
comparison on recorded episodes in :mod:`genrl_lite.baseline_rewards`.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
States = Mapping[str, torch.Tensor]

# --- similarity functions ------------------------------------------------------------------------


def cosine(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Cosine similarity over the last dim: (..., F), (..., F) -> (...). Broadcasts like ``u * v``."""
    return F.cosine_similarity(u, v, dim=-1, eps=1e-8)


def max_cosine(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(u . v) / max(|u|, |v|)^2 over the last dim: (..., F), (..., F) -> (...).

    The original's default score. It equals ``cosine * min(|u|,|v|) / max(|u|,|v|)``: the cosine,
    shrunk when the two vectors differ in length. In the projected latent space a vector's norm
    carries information (how "confident"/which mixture of classes), so plain cosine would call two
    different states equal if they only differ in scale.
    """
    max_norm = torch.maximum(u.norm(dim=-1), v.norm(dim=-1)).clamp_min(1e-8)
    return (u * v).sum(-1) / max_norm.square()


SIMILARITIES: dict[str, Similarity] = {"cosine": cosine, "max_cosine": max_cosine}
"""Similarity functions by name (the paper's text says cosine; the code's default is max_cosine)."""


def get_similarity(sim: str | Similarity) -> Similarity:
    """Resolve a similarity by name (see :data:`SIMILARITIES`), or pass a callable through."""
    if callable(sim):
        return sim
    if sim not in SIMILARITIES:
        from genrl_lite.tasks import UnknownNameError

        raise UnknownNameError(f"unknown similarity {sim!r}; valid similarities: "
                               f"{', '.join(sorted(SIMILARITIES))} (or pass a function (u, v) -> sim)")
    return SIMILARITIES[sim]


# --- feature spaces ------------------------------------------------------------------------------


def projection_features(wm, z_flat: torch.Tensor) -> torch.Tensor:
    """The paper's g: the decoder's first Linear, (..., G*C) -> (..., F)."""
    return wm.reward_projection(z_flat)


def spatial_features(wm, z_flat: torch.Tensor) -> torch.Tensor:
    """g followed by the decoder's next linear map, the 5x5 feature map before its first norm:
    (..., G*C) -> (..., 4d*25). Still a linear function of z, but spread over image positions."""
    return wm.decoder.first(wm.reward_projection(z_flat))


FEATURES: dict[str, Callable] = {"projection": projection_features, "spatial": spatial_features}
"""Latent feature spaces the reward compares in: ``projection`` is the paper's (and the default);
``spatial`` is a variant (see ``results/diagnostics/README.md`` for what it changes)."""


def get_features(name: str) -> Callable:
    """Resolve a feature space by name (see :data:`FEATURES`)."""
    if name not in FEATURES:
        from genrl_lite.tasks import UnknownNameError

        raise UnknownNameError(f"unknown reward features {name!r}; valid: {', '.join(FEATURES)}")
    return FEATURES[name]


# --- temporal alignment --------------------------------------------------------------------------


def _check_sequences(agent: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Validate shapes; return the target as (T, B or 1, F) so it broadcasts against the agent."""
    assert agent.ndim == 3, f"agent features must be (H, B, F), got {tuple(agent.shape)}"
    if target.ndim == 2:
        target = target[:, None]
    assert target.ndim == 3 and target.shape[-1] == agent.shape[-1] and target.shape[1] in (1, agent.shape[1]), (
        f"target features must be (T, F) or (T, B, F) matching agent {tuple(agent.shape)}, "
        f"got {tuple(target.shape)}")
    if target.shape[0] < agent.shape[0]:
        raise ValueError(f"the target sequence ({target.shape[0]} steps) is shorter than the agent's "
                         f"({agent.shape[0]} states); roll the connector for at least as many steps")
    return target


def _check_window(window: int | None, horizon: int) -> int:
    window = horizon if window is None else int(window)
    if not 1 <= window <= horizon:
        raise ValueError(f"alignment window must be in 1..{horizon} (the number of imagined states), "
                         f"got {window}")
    return window


def offset_scores(agent: torch.Tensor, target: torch.Tensor, window: int | None = 8,
                  sim: str | Similarity = "max_cosine") -> torch.Tensor:
    """How well each offset t aligns the target's first K steps with the agent: (O, B).

    score[t, b] = mean_{i < K} sim(agent[t + i, b], target[i]),  for t = 0 .. H - K (O = H - K + 1).

    agent (H, B, F); target (T, F) or (T, B, F) with T >= H. ``window=None`` means K = H.
    Note: the original loops ``t in range(H - K)`` and so never tries the last offset t = H - K;
    we include it, which is what makes K = H ("no alignment", a single offset 0) a special case.
    """
    target = _check_sequences(agent, target)
    horizon = agent.shape[0]
    window = _check_window(window, horizon)
    sim = get_similarity(sim)
    head = target[:window]
    return torch.stack([sim(agent[t:t + window], head).mean(0) for t in range(horizon - window + 1)])


def best_offsets(agent: torch.Tensor, target: torch.Tensor, window: int | None = 8,
                 sim: str | Similarity = "max_cosine") -> torch.Tensor:
    """The offset t* in 0..H-K maximizing :func:`offset_scores`, per trajectory: (B,) long.

    Ties go to the smallest offset. Computed without gradient: the choice of offset is discrete.
    """
    with torch.no_grad():
        return offset_scores(agent.detach(), target.detach(), window, sim).argmax(0)


def align_target(target: torch.Tensor, offsets: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """The target each agent step is compared to: aligned[j, b] = target[max(0, j - offsets[b])].

    target (T, F), (T, 1, F) or (T, B, F); offsets (B,) long; returns (length, B, F) with length <= T
    (default T). Before its offset the agent is compared with the target's first state (it should
    get into the target's initial pose); afterwards the target advances in lockstep with the agent.
    """
    if target.ndim == 2:
        target = target[:, None]
    if target.ndim == 3 and target.shape[1] == 1:
        target = target.expand(-1, offsets.shape[0], -1)
    assert target.ndim == 3 and target.shape[1] == offsets.shape[0], (
        f"target must be (T, F) or (T, B, F) with B = len(offsets) = {offsets.shape[0]}, got {tuple(target.shape)}")
    length = target.shape[0] if length is None else length
    assert length <= target.shape[0], f"cannot align {length} steps to a target of {target.shape[0]}"
    steps = torch.arange(length, device=target.device)[:, None]
    index = (steps - offsets.to(target.device)[None]).clamp_min(0)           # (length, B)
    return torch.gather(target, 0, index[..., None].expand(-1, -1, target.shape[-1]))


def sequence_reward(agent_feats: torch.Tensor, target_feats: torch.Tensor, window: int | None = 8,
                    sim: str | Similarity = "max_cosine") -> torch.Tensor:
    """GenRL's temporally aligned reward: (H, B, F), (T >= H, F) or (T, B, F) -> (H, B, 1).

    r[j, b] = sim(agent[j, b], target[max(0, j - t*_b)]) with t*_b from :func:`best_offsets`.
    Differentiable in ``agent_feats`` (the offset itself is not). The paper's ablation arms
    (v1 Fig. 7) are values of ``window``:

    - ``window=8`` (K = the VLM clip length): "best matching trajectory", GenRL's default;
    - ``window=1``: "initial-state alignment": the offset is the step at which the agent is closest
      to the target's *first* state (the original's ``align_initial``), then the target plays on;
    - ``window=H`` (or ``None``): no alignment: a single offset 0, so r[j] = sim(agent[j], target[j]).
    """
    sim_fn = get_similarity(sim)
    offsets = best_offsets(agent_feats, target_feats, window, sim_fn)
    aligned = align_target(_check_sequences(agent_feats, target_feats), offsets, agent_feats.shape[0])
    return sim_fn(agent_feats, aligned.to(agent_feats.dtype))[..., None]


# --- prompts -------------------------------------------------------------------------------------


def infer_embed_dim(*modules) -> int | None:
    """E, read from the first module that tells: its ``embed_dim`` attribute, else the input size
    of its first Linear layer (the aligner is an MLP on embeddings); None if none does."""
    for module in modules:
        if isinstance(getattr(module, "embed_dim", None), int):
            return module.embed_dim
        if isinstance(module, nn.Module):
            for m in module.modules():
                if isinstance(m, nn.Linear):
                    return m.in_features
    return None


def device_of(module, default=None) -> torch.device:
    """The device of a module's first parameter (``default``, else the CPU, for parameter-free
    modules and plain functions)."""
    if isinstance(module, nn.Module):
        for p in module.parameters():
            return p.device
    return default if default is not None else torch.device("cpu")


def prompt_embedding(prompt, vlm=None, embed_dim: int | None = None) -> torch.Tensor:
    """A prompt as one embedding (E,): text goes through ``vlm.embed_text([text])``; a tensor or
    array of shape (E,) or (1, E) is used as given (e.g. a video prompt already embedded).

    Raises ``ValueError`` for an empty prompt or an embedding of the wrong shape.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("empty prompt: describe the behaviour in words, e.g. 'walking fast', "
                             "or pass a VLM embedding (E,) of a video prompt")
        if vlm is None:
            raise ValueError("a text prompt needs a VLM to embed it: pass vlm=... (with embed_text), "
                             "or pass the prompt's embedding (E,) instead of the text")
        emb = torch.as_tensor(vlm.embed_text([prompt]))
        emb = emb.reshape(-1) if emb.ndim == 2 and emb.shape[0] == 1 else emb
    else:
        if prompt is None:
            raise ValueError("empty prompt: pass a text prompt or an embedding (E,)")
        emb = torch.as_tensor(prompt)
        if emb.ndim == 2 and emb.shape[0] == 1:
            emb = emb[0]
    expected = f"(E,) with E = {embed_dim}" if embed_dim else "(E,)"
    if emb.ndim != 1 or (embed_dim is not None and emb.shape[0] != embed_dim):
        raise ValueError(f"wrong prompt embedding shape {tuple(emb.shape)}: expected {expected} "
                         f"(or (1, E)); embed the prompt with the same VLM the world model was trained with")
    emb = emb.float()
    if not torch.isfinite(emb).all() or emb.norm() == 0:
        raise ValueError("the prompt embedding is zero or not finite; check the VLM output")
    return emb


def _prompt_key(prompt) -> tuple:
    if isinstance(prompt, str):
        return ("text", prompt)
    t = torch.as_tensor(prompt).detach().float().cpu().reshape(-1)
    return ("embedding", t.numpy().tobytes())


def time_major(states: States) -> dict:
    """(B, T, ...) -> (T, B, ...) for every tensor of a state dict: connector rollouts and
    ``rssm.observe`` are batch-major, imagination and the rewards time-major."""
    return {k: v.transpose(0, 1) for k, v in states.items() if torch.is_tensor(v)}


# --- GenRL's reward ------------------------------------------------------------------------------


class GenRLReward:
    """The paper's reward for one prompt: ``reward_fn(states (H, B, ...)) -> (H, B, 1)``.

    Target: e = prompt embedding -> ``aligner`` -> L2-normalize -> ``connector.rollout(e, H + 1,
    sample=False)`` (mode latents; any rescaling such as x sqrt(E) is the connector's business);
    the first rolled state is dropped (``skip_first_target`` in the reference), leaving H targets.
    The target is computed once per (prompt, H) and cached: it is the same for every batch element
    and every update while the model is frozen (call :meth:`clear_cache` if the world model or
    connector changes).

    Features: only the stochastic state, ``wm.reward_projection(rssm.stoch_flat(s))`` for agent and
    target; the agent's z keeps its straight-through gradient, so the dynamics-backprop actor gets
    a gradient from this reward directly.

    Args:
        wm: the world model; only ``wm.reward_projection`` is used.
        connector: has ``rollout(embed (B, E), length, sample) -> states (B, T, ...)``.
        aligner: ``aligner(e (B, E)) -> (B, E)``; ``None`` for the "no aligner" ablation.
        prompt: text (needs ``vlm``) or an embedding (E,).
        rssm: has ``stoch_flat``; defaults to ``wm.rssm``.
        vlm: has ``embed_text(list[str]) -> (N, E)``; needed for text prompts.
        window: the alignment window K (8 in the paper); clipped to H when H is shorter.
        sim: similarity name or function (``max_cosine`` in the paper's code).
        embed_dim: E, to check prompt shapes; default: the aligner's input size.
        features: the feature space g, a key of :data:`FEATURES` (``projection``, the paper's).
    """

    def __init__(self, wm, connector, aligner, prompt, *, rssm=None, vlm=None, window: int | None = 8,
                 sim: str | Similarity = "max_cosine", embed_dim: int | None = None,
                 features: str = "projection"):
        self.wm, self.connector, self.aligner, self.vlm = wm, connector, aligner, vlm
        self.rssm = rssm if rssm is not None else getattr(wm, "rssm", None)
        if self.rssm is None or not hasattr(self.rssm, "stoch_flat"):
            raise ValueError("GenRLReward needs the RSSM (with stoch_flat): pass rssm=...")
        self.window = window
        self.sim = get_similarity(sim)
        self.features = features
        self._g = get_features(features)
        self.embed_dim = embed_dim or infer_embed_dim(aligner)
        self._cache: dict = {}
        self.set_prompt(prompt)

    def set_prompt(self, prompt) -> "GenRLReward":
        """Switch prompts (targets already computed for other prompts stay cached)."""
        self.embedding = prompt_embedding(prompt, self.vlm, self.embed_dim)
        self.prompt, self._key = prompt, _prompt_key(prompt)
        return self

    def clear_cache(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def target(self, length: int) -> tuple[dict, torch.Tensor]:
        """The prompt's target: states (length, 1, ...) time-major and features (length, F)."""
        key = (self._key, length)
        if key not in self._cache:
            device = device_of(self.connector, device_of(self.aligner))
            e = self.embedding.to(device)[None]
            if self.aligner is not None:
                e = self.aligner(e)
            e = F.normalize(e, dim=-1)
            rolled = self.connector.rollout(e, length + 1, sample=False)
            states = {k: v[1:] for k, v in time_major(rolled).items()}  # drop the first state
            feats = self._g(self.wm, self.rssm.stoch_flat(states))[:, 0]
            self._cache[key] = (states, feats)
        return self._cache[key]

    def agent_features(self, states: States) -> torch.Tensor:
        """g(z) of imagined states: (H, B, ...) -> (H, B, F), differentiable."""
        return self._g(self.wm, self.rssm.stoch_flat(states))

    def __call__(self, states: States) -> torch.Tensor:
        agent = self.agent_features(states)
        _, target = self.target(agent.shape[0])
        window = None if self.window is None else min(self.window, agent.shape[0])
        return sequence_reward(agent, target.to(agent.device), window, self.sim)

    def explain(self, states: States) -> dict:
        """Everything behind one reward computation, for plots: rewards (H, B, 1), offsets (B,),
        offset scores (O, B), agent and target features."""
        with torch.no_grad():
            agent = self.agent_features(states)
            target = self.target(agent.shape[0])[1].to(agent.device)
            window = None if self.window is None else min(self.window, agent.shape[0])
            return {"rewards": sequence_reward(agent, target, window, self.sim),
                    "offsets": best_offsets(agent, target, window, self.sim),
                    "scores": offset_scores(agent, target, window, self.sim),
                    "agent_feats": agent, "target_feats": target}
