"""The rewards GenRL is compared to, and how to compare rewards on recorded episodes.

A prompt can be turned into a reward without GenRL's target sequence; the paper's baselines do it
with the VLM's embeddings directly (``../shared/GENRL_REFERENCE.md`` §10, §14):

- :class:`VLMRMReward`   VLM-RM: cosine between the prompt embedding and the VLM embedding of
                          frames (image mode per frame, or video mode over the last 8 frames);
- :class:`WMCLIPReward`  WM-CLIP: an MLP (:class:`WMCLIPHead`, trained with :func:`wmclip_loss`)
                          predicts the VLM visual embedding from the latent state; cosine to the
                          prompt embedding.

Both have the call signature of :class:`genrl_lite.rewards.GenRLReward`,
``reward_fn(states (H, B, ...)) -> (H, B, 1)``, so the actor-critic can use any of them.
:func:`episode_rewards` computes any of the three along a *recorded* episode (T,), so they can be
compared with the true task reward (:func:`reward_correlation`; notebook 04).

Shapes:
    H   imagined states per trajectory;  B   batch;  T   steps of a recorded episode
    K   frames per VLM clip (8);  E   VLM embedding size;  S   frame side in pixels (64)
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from genrl_lite.rewards import (GenRLReward, Similarity, States, cosine, device_of, prompt_embedding,
                                time_major)


# --- baseline: VLM-RM (image-language / video-language reward on frames) -------------------------


def _as_uint8_frames(frames) -> torch.Tensor:
    """Frames as uint8: decoders give floats in [0, 1]; a VLM takes what a camera gives."""
    frames = torch.as_tensor(frames)
    if frames.dtype != torch.uint8:
        frames = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return frames


def frame_windows(frames: torch.Tensor, k: int = 8) -> torch.Tensor:
    """The last k frames at every step: (T, B, ...) -> (T, B, k, ...).

    Window t holds frames t-k+1 .. t; before the sequence starts the first frame is repeated
    (the dataset's precomputed embeddings zero-pad instead; a repeated frame is a valid clip).
    """
    steps = frames.shape[0]
    index = (torch.arange(steps)[:, None] + torch.arange(-k + 1, 1)[None]).clamp_min(0)   # (T, k)
    return frames[index.to(frames.device)].transpose(1, 2)


class VLMRMReward:
    """VLM-RM (Rocamonde et al. 2023; the paper's -I and -V baselines): cosine between the prompt
    embedding and the VLM embedding of what the agent sees.

    - ``mode="image"``: each frame on its own, ``vlm.embed_image(frames (N, S, S, 3) uint8) -> (N, E)``;
    - ``mode="video"``: the last ``clip_length`` frames at each step (default ``vlm.n_frames``, 8),
      ``vlm.embed_video(clips (N, K, S, S, 3) uint8) -> (N, E)`` (MineCLIP-style).

    :meth:`frames_reward` scores real frames (dataset episodes). Called on imagined states it needs
    ``decode(states (H, B, ...)) -> frames (H, B, S, S, 3)``, uint8 or float in [0, 1] (e.g.
    ``lambda s: wm.decode(wm.rssm.stoch_flat(s))``). Frames go to the VLM as uint8, so this reward
    carries no gradient: the dynamics-backprop actor learns from it only through the critic.
    """

    def __init__(self, vlm, prompt, mode: str = "video", *, decode: Callable | None = None,
                 clip_length: int | None = None, embed_dim: int | None = None):
        if mode not in ("image", "video"):
            from genrl_lite.tasks import UnknownNameError

            raise UnknownNameError(f"unknown VLM-RM mode {mode!r}; valid modes: image, video")
        self.vlm, self.mode, self.decode = vlm, mode, decode
        self.clip_length = clip_length or getattr(vlm, "n_frames", 8)
        dim = getattr(vlm, "dim", None)
        embed_dim = embed_dim or (dim if isinstance(dim, int) and dim > 0 else None)
        self.embedding = F.normalize(prompt_embedding(prompt, vlm, embed_dim), dim=-1)

    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """VLM embeddings of (T, B, S, S, 3) frames, image or video mode: (T, B, E)."""
        steps, batch = frames.shape[:2]
        if self.mode == "image":
            emb = self.vlm.embed_image(frames.reshape(steps * batch, *frames.shape[2:]))
        else:
            clips = frame_windows(frames, self.clip_length)                     # (T, B, K, S, S, 3)
            emb = self.vlm.embed_video(clips.reshape(steps * batch, *clips.shape[2:]))
        return torch.as_tensor(emb).reshape(steps, batch, -1)

    def embeddings_reward(self, embeddings) -> torch.Tensor:
        """Reward of precomputed VLM embeddings (a dataset's ``clip_video``): (T, E) or (T, B, E)
        -> (T, B, 1). Zero embeddings (padding before the first full clip) get reward 0."""
        emb = torch.as_tensor(embeddings).float()
        emb = emb[:, None] if emb.ndim == 2 else emb
        assert emb.ndim == 3 and emb.shape[-1] == self.embedding.shape[0], (
            f"embeddings must be (T, E) or (T, B, E) with E = {self.embedding.shape[0]}, got {tuple(emb.shape)}")
        return cosine(emb, self.embedding.to(emb.device))[..., None]

    def frames_reward(self, frames) -> torch.Tensor:
        """Reward of real frames: (T, S, S, 3) or (T, B, S, S, 3) -> (T, B, 1)."""
        frames = _as_uint8_frames(frames)
        if frames.ndim == 4:
            frames = frames[:, None]
        assert frames.ndim == 5 and frames.shape[-1] == 3, (
            f"frames must be (T, S, S, 3) or (T, B, S, S, 3), got {tuple(frames.shape)}")
        return self.embeddings_reward(self.embed_frames(frames))

    def __call__(self, states: States) -> torch.Tensor:
        if self.decode is None:
            raise ValueError("VLM-RM on imagined states needs the decoder: pass decode=... "
                             "(states (H, B, ...) -> frames (H, B, S, S, 3) uint8)")
        return self.frames_reward(self.decode(states))


# --- baseline: WM-CLIP (predict the visual embedding from the latent state) ----------------------


class WMCLIPHead(nn.Module):
    """MLP from the latent features (..., D + G*C) to the VLM visual embedding (..., E).

    The "inverse connector" of the NeurIPS review (§14 of the reference): 4 layers of 1024 there;
    LayerNorm + SiLU like every MLP in the world model.
    """

    def __init__(self, feat_dim: int, embed_dim: int, units: int = 1024, layers: int = 4):
        super().__init__()
        blocks, width = [], feat_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, units), nn.LayerNorm(units), nn.SiLU()]
            width = units
        self.net = nn.Sequential(*blocks, nn.Linear(width, embed_dim))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Predicted embedding, unit norm: (..., D + G*C) -> (..., E)."""
        return F.normalize(self.net(feat), dim=-1)


def wmclip_loss(head: WMCLIPHead, feat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cosine distance 1 - cos(head(feat), target), averaged: feat (..., D+G*C), target (..., E).

    Targets of zero norm (the dataset's zero padding before the first full 8-frame window) are
    ignored. Train the head on *detached* posterior features of the dataset; the world model stays
    as it is.
    """
    assert feat.shape[:-1] == target.shape[:-1], (
        f"features {tuple(feat.shape)} and target embeddings {tuple(target.shape)} must share leading dims")
    valid = (target.norm(dim=-1) > 1e-6).float()
    distance = 1 - cosine(head(feat), target)
    return (distance * valid).sum() / valid.sum().clamp_min(1.0)


class WMCLIPReward:
    """WM-CLIP reward: cos(head(rssm.feat(s)), e_prompt), ``(H, B, ...) -> (H, B, 1)``.

    With ``aligner`` given, the prompt embedding goes through it first (the "WM-CLIP + aligner"
    arm of the review's ablation, 0.68 vs 0.67 without).
    """

    def __init__(self, head: WMCLIPHead, rssm, prompt, *, vlm=None, aligner=None,
                 embed_dim: int | None = None):
        self.head, self.rssm = head, rssm
        embed_dim = embed_dim or head.net[-1].out_features
        e = prompt_embedding(prompt, vlm, embed_dim)
        if aligner is not None:
            with torch.no_grad():
                e = aligner(e.to(device_of(aligner))[None])[0]
        self.embedding = F.normalize(e, dim=-1)

    def __call__(self, states: States) -> torch.Tensor:
        pred = self.head(self.rssm.feat(states))
        return cosine(pred, self.embedding.to(pred.device))[..., None]


# --- rewards of recorded episodes (for comparisons against the true task reward) ------------------

REWARD_KINDS = ("genrl", "vlmrm_image", "vlmrm_video", "wmclip")
"""What :func:`episode_rewards` computes: GenRL's latent reward, VLM-RM on single frames or on
8-frame clips, and WM-CLIP."""


@torch.no_grad()
def episode_posteriors(wm, episode: Mapping) -> dict:
    """The world model's filtered latent states of one recorded episode, time-major (T, 1, ...).

    Mode latents (``sample=False``), so the result is deterministic. ``episode`` has ``obs``
    (T, S, S, 3) uint8, ``action`` (T, A) and ``is_first`` (T,) (see ``genrl_lite.data``).
    """
    device = device_of(wm)
    obs = torch.as_tensor(episode["obs"], device=device)[None]
    action = torch.as_tensor(episode["action"], device=device).float()[None]
    is_first = torch.as_tensor(episode["is_first"], device=device).bool()[None]
    posts, _ = wm.rssm.observe(wm.encode(wm.preprocess(obs)), action, is_first, sample=False)
    return time_major(posts)


def _chunked(states: States, reward_fn: Callable, length: int) -> torch.Tensor:
    """Apply a sequence reward to a long (T, 1, ...) trajectory in pieces of ``length`` states.

    The pieces start at 0, L, 2L, ...; if T is not a multiple of L a last piece ends at T, and only
    its steps not covered before are used. Returns (T,).
    """
    steps = next(iter(states.values())).shape[0]
    length = min(length, steps)
    starts = list(range(0, steps - length + 1, length))
    if starts[-1] + length < steps:
        starts.append(steps - length)
    pieces = {k: torch.cat([v[s:s + length] for s in starts], 1) for k, v in states.items()}  # (L, N, ...)
    r = reward_fn(pieces)[..., 0]                                                             # (L, N)
    out, done = torch.empty(steps, device=r.device), 0
    for n, s in enumerate(starts):
        out[done:s + length] = r[done - s:, n]
        done = s + length
    return out


@torch.no_grad()
def episode_rewards(bundle, episode: Mapping, prompt, kind: str = "genrl", *, vlm=None, head=None,
                    horizon: int = 16, window: int | None = 8, sim: str | Similarity = "max_cosine",
                    cache: dict | None = None, features: str = "projection"):
    """One reward over a recorded episode, step by step: (T,) numpy float32.

    For comparing prompt-based rewards with the true task reward (``load_episode(path,
    with_eval=True)["reward"]``). ``kind`` is one of :data:`REWARD_KINDS`:

    - ``"genrl"``: :class:`GenRLReward` on the episode's posteriors (:func:`episode_posteriors`), cut
      into pieces of ``horizon + 1`` states (what one imagined trajectory holds), each aligned to the
      prompt's target on its own;
    - ``"vlmrm_video"``: VLM-RM on the window of the last 8 frames at every step (the first 7 steps
      reuse the first full window: ``vlm.embed_windows(obs, pad="repeat")``);
    - ``"vlmrm_image"``: VLM-RM on each frame alone;
    - ``"wmclip"``: :class:`WMCLIPReward` of a trained ``head`` on the posteriors.

    ``bundle``: a ``ModelBundle`` (world_model, connector, aligner); unused by the VLM-RM kinds.
    ``window``, ``sim``, ``features``: those of :class:`GenRLReward` (``"genrl"`` only).
    ``prompt``: text (needs ``vlm``) or an embedding (E,). ``cache``: a dict kept per episode;
    posteriors and VLM embeddings are stored in it and reused by later calls (other prompts/kinds).
    """
    if kind not in REWARD_KINDS:
        from genrl_lite.tasks import UnknownNameError

        raise UnknownNameError(f"unknown reward kind {kind!r}; valid kinds: {', '.join(REWARD_KINDS)}")
    cache = {} if cache is None else cache
    if kind.startswith("vlmrm"):
        if vlm is None:
            raise ValueError(f"the {kind} reward needs the VLM: pass vlm=load_vlm()")
        mode = kind.split("_")[1]
        reward = VLMRMReward(vlm, prompt, mode=mode)
        if mode not in cache:
            obs = _as_uint8_frames(episode["obs"])
            if mode == "image":
                cache[mode] = torch.as_tensor(vlm.embed_image(obs))
            elif hasattr(vlm, "embed_windows"):
                cache[mode] = torch.as_tensor(vlm.embed_windows(obs, pad="repeat"))
            else:
                cache[mode] = reward.embed_frames(obs[:, None])[:, 0]
        return reward.embeddings_reward(cache[mode])[:, 0, 0].float().cpu().numpy()
    wm = bundle.world_model
    if "posts" not in cache:
        cache["posts"] = episode_posteriors(wm, episode)
    posts = cache["posts"]
    if kind == "wmclip":
        if head is None:
            raise ValueError("the wmclip reward needs a trained WMCLIPHead: pass head=... "
                             "(train it with wmclip_loss on the dataset's posteriors)")
        return WMCLIPReward(head, wm.rssm, prompt, vlm=vlm)(posts)[:, 0, 0].float().cpu().numpy()
    if bundle.connector is None:
        raise ValueError("the genrl reward needs the connector and aligner: this model was trained "
                         "without VLM embeddings (python -m genrl_lite.training ... --embed)")
    reward = GenRLReward(wm, bundle.connector, bundle.aligner, prompt, vlm=vlm, window=window, sim=sim,
                         features=features)
    return _chunked(posts, reward, horizon + 1).float().cpu().numpy()


def window_means(x, window: int):
    """Means over consecutive non-overlapping windows: (T,) -> (T // window,) (the remainder is dropped)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = len(x) // window
    return x[:n * window].reshape(n, window).mean(1)


def reward_correlation(pred, true, window: int = 1) -> float:
    """Pearson correlation between a reward and the true reward after averaging both over windows of
    ``window`` steps; ``pred``/``true`` are (T,) arrays or lists of them (one per episode; windows
    never cross episodes, and all windows are pooled). NaN if either side is constant."""
    pred = [pred] if np.ndim(pred[0]) == 0 else list(pred)
    true = [true] if np.ndim(true[0]) == 0 else list(true)
    assert len(pred) == len(true) and all(len(p) == len(t) for p, t in zip(pred, true)), (
        f"pred and true must have the same episodes and lengths, got {[len(p) for p in pred]} "
        f"and {[len(t) for t in true]}")
    p = np.concatenate([window_means(x, window) for x in pred])
    t = np.concatenate([window_means(x, window) for x in true])
    if len(p) < 2 or p.std() == 0 or t.std() == 0:
        return float("nan")
    return float(np.corrcoef(p, t)[0, 1])
