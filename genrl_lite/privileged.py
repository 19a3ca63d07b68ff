"""A privileged reward: the task's true reward, predicted from the latent state (a diagnostic).

GenRL never sees a task reward. When its policies score low, two things could be to blame: the
*reward* (prompt -> VLM -> aligner -> connector target, compared with the imagined states), or
everything else (the world model's imagination, the actor-critic, the update budget). This
module separates them. It trains a small MLP to predict the task's **true** reward from the
world model's latent features, on the dataset episodes that were collected with that task's reward
(their evaluation sidecars, which the world model never reads), and hands it to the same
actor-critic in place of GenRL's reward. That is DreamerV3's reward head, trained after the fact.

A policy learned from it is a ceiling for GenRL with the same model and budget: if it, too,
scores low, a better prompt reward cannot help much and the model or the learner must improve; if
it scores high, the reward is the bottleneck. It is *not* a GenRL method (it uses the reward
GenRL is built to do without) and never enters the benchmark's tables.

Around the head: :func:`imagined_rewards` and :func:`real_rewards` (does the model promise more
than reality gives?), :func:`imagined_by_start_level` (do policies get *up* in imagination, from
fallen starts?), and :func:`reward_shape` (does a prompt reward climb with the true reward short of
the goal, or only spot the goal?).

Shapes:
    N   (latent, reward) pairs from dataset frames
    H   imagined states (horizon + 1), B trajectories, as in ``genrl_lite.actor_critic``
    F   latent features ``rssm.feat(s)``, D + G*C
    E   VLM embedding size (only to give the reward an ``embedding`` like the prompt rewards)
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from genrl_lite.runtime import atomic_torch_save, progress


class RewardHead(nn.Module):
    """MLP from latent features (..., F) to a scalar reward (..., 1); LayerNorm + SiLU like the model's."""

    def __init__(self, feat_dim: int, units: int = 256, layers: int = 2):
        super().__init__()
        blocks, width = [], feat_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, units), nn.LayerNorm(units), nn.SiLU()]
            width = units
        self.net = nn.Sequential(*blocks, nn.Linear(width, 1))
        self.feat_dim = feat_dim

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        assert feat.shape[-1] == self.feat_dim, f"features must be (..., {self.feat_dim}), got {tuple(feat.shape)}"
        return self.net(feat)


@torch.no_grad()
def true_reward_pairs(wm, dataset, task: str) -> dict:
    """Latent features and true rewards of the dataset episodes collected with ``task``'s reward.

    ``dataset`` is a :class:`genrl_lite.data.EpisodeDataset` (its ``paths``); each episode's sidecar
    (``.eval.npz``) holds the reward of the task it was collected with (``meta["task"]``), so only
    those episodes are used. The frame at t = 0 has no reward (the reset) and is dropped.

    Returns ``{"feat": (N, F) float32, "reward": (N,) float32, "heldout": (N,) bool, "episodes": int}``
    (held-out = :func:`genrl_lite.data.is_heldout` episodes, to measure the head's fit honestly).
    Raises ``ValueError`` naming the tasks found if no episode was collected with ``task``.
    """
    from genrl_lite.data import is_heldout, load_episode
    from genrl_lite.baseline_rewards import episode_posteriors

    feats, rewards, held, found = [], [], [], set()
    for path in progress(dataset.paths, desc=f"true rewards of {task}"):
        ep = load_episode(path, with_eval=True)
        found.add(ep["meta"].get("task"))
        if ep["meta"].get("task") != task or "reward" not in ep:
            continue
        posts = episode_posteriors(wm, ep)                      # (T, 1, ...)
        feat = wm.rssm.feat(posts)[1:, 0].float().cpu()         # (T-1, F)
        feats.append(feat)
        rewards.append(torch.as_tensor(ep["reward"][1:], dtype=torch.float32))
        held.append(torch.full((len(feat),), is_heldout(path), dtype=torch.bool))
    if not feats:
        raise ValueError(f"no episode under {dataset.root}/{dataset.domain} was collected with the reward of "
                         f"{task!r} (tasks found: {', '.join(sorted(str(t) for t in found))}); collect its "
                         f"replay with scripts/collect_data.py --domain {dataset.domain}")
    return {"feat": torch.cat(feats), "reward": torch.cat(rewards), "heldout": torch.cat(held),
            "episodes": len(feats)}


def train_reward_head(pairs: dict, steps: int = 2000, batch: int = 1024, lr: float = 1e-3, seed: int = 0,
                      units: int = 256, layers: int = 2) -> tuple[RewardHead, dict]:
    """Fit a :class:`RewardHead` to ``pairs`` (from :func:`true_reward_pairs`) by mean squared error.

    Trains on the non-held-out pairs (all of them if none is held out) and reports, on the held-out
    ones: ``mse``, the variance of the true reward (``var``, the MSE of predicting the mean) and the
    Pearson ``r``. Returns the head (eval mode, on the CPU) and those metrics.
    """
    feat, reward, held = pairs["feat"], pairs["reward"], pairs["heldout"]
    assert feat.ndim == 2 and reward.shape == feat.shape[:1] == held.shape, (
        f"feat (N, F), reward (N,), heldout (N,) expected, got {tuple(feat.shape)}, {tuple(reward.shape)}, "
        f"{tuple(held.shape)}")
    train = ~held if (~held).any() and held.any() else torch.ones_like(held)
    test = held if held.any() else train
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = RewardHead(feat.shape[1], units, layers)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    x, y = feat[train], reward[train]
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(x), (min(batch, len(x)),), generator=gen)
        loss = F.mse_loss(head(x[idx])[:, 0], y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    head.eval()
    with torch.no_grad():
        pred = head(feat[test])[:, 0]
        true = reward[test]
        r = np.corrcoef(pred.numpy(), true.numpy())[0, 1] if len(true) > 1 else math.nan
        metrics = {"train_pairs": int(train.sum()), "heldout_pairs": int(test.sum()) if held.any() else 0,
                   "train_mse_last": float(np.mean(losses[-50:])), "mse": float(F.mse_loss(pred, true)),
                   "var": float(true.var()), "r": float(r)}
    return head.requires_grad_(False), metrics


class TrueRewardHead:
    """The privileged reward ``head(rssm.feat(s))``: states (H, B, ...) -> (H, B, 1).

    Has the attributes the behaviour learner expects of a reward (``head`` is frozen during the
    actor's backward pass; ``embedding`` (E,) identifies the reward in ``behaviour.json``, here a
    fixed vector derived from the task name, since there is no prompt; E = ``embed_dim``, 32 if None).
    """

    def __init__(self, head: RewardHead, rssm, task: str, embed_dim: int | None = None):
        self.head, self.rssm, self.task = head, rssm, task
        embed_dim = embed_dim or 32     # a world model without connector has no E; any size identifies
        digest = hashlib.sha256(f"true reward of {task}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        self.embedding = F.normalize(torch.randn(embed_dim, generator=gen), dim=0)

    def __call__(self, states) -> torch.Tensor:
        feat = self.rssm.feat(states)
        return self.head.to(feat.device)(feat)


def save_head(head: RewardHead, metrics: dict, path) -> None:
    """Atomically save a head with its fit metrics (a resumed policy run reuses it)."""
    atomic_torch_save({"head": head.state_dict(), "feat_dim": head.feat_dim, "units": head.net[0].out_features,
                       "layers": sum(isinstance(m, nn.Linear) for m in head.net) - 1, "metrics": metrics}, path)


def load_head(path) -> tuple[RewardHead, dict]:
    """A head saved by :func:`save_head` and its metrics (``ValueError`` if the file is corrupted)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        head = RewardHead(ckpt["feat_dim"], ckpt["units"], ckpt["layers"])
        head.load_state_dict(ckpt["head"])
    except Exception as err:
        raise ValueError(f"corrupted reward head {path}: {err}; delete it to train it again") from err
    return head.eval().requires_grad_(False), ckpt["metrics"]


# --- imagination vs reality ----------------------------------------------------------------------


@torch.no_grad()
def imagined_rewards(bundle, policy, reward, data, starts: int = 8, length: int = 32, horizon: int = 15,
                     seed: int = 0) -> dict:
    """Mean reward per imagined step from dataset start states, for the policy and two references.

    Start states: posteriors of ``starts`` windows of ``length`` frames of ``data`` (use held-out
    episodes). From each, H = ``horizon`` steps are imagined with mode latents (``sample=False``) and
    actions from: ``policy`` (its mean, feat (N, F) -> (N, A)), ``zero`` actions and ``uniform``
    random actions in [-1, 1]. ``reward(states (H+1, N, ...)) -> (H+1, N, 1)`` scores them.
    Returns ``{name: {"start": r_0, "last": r_H, "mean": mean over steps 1..H}}`` (floats).
    """
    from genrl_lite.actor_critic import _flatten_starts
    from genrl_lite.behaviour import dataset_starts

    wm = bundle.world_model
    start = _flatten_starts(dataset_starts(wm, data, starts, length, np.random.default_rng(seed)))
    gen = torch.Generator(device=wm.device).manual_seed(seed)
    n, a = start["deter"].shape[0], bundle.action_dim
    actors = {"policy": policy,
              "zero": lambda f: torch.zeros(len(f), a, device=f.device),
              "uniform": lambda f: torch.rand(len(f), a, generator=gen, device=f.device) * 2 - 1}
    out = {}
    for name, act in actors.items():
        r = reward(wm.rssm.imagine(start, act, horizon, sample=False))[..., 0]       # (H+1, N)
        assert r.shape == (horizon + 1, n), f"reward must be (H+1, N) = {(horizon + 1, n)}, got {tuple(r.shape)}"
        out[name] = {"start": float(r[0].mean()), "last": float(r[-1].mean()), "mean": float(r[1:].mean())}
    return out


@torch.no_grad()
def imagined_by_start_level(bundle, policies: dict, reward, data, below: float, starts: int = 64, length: int = 32,
                            horizons=(15,), seed: int = 0) -> dict:
    """Which policies get *up* in imagination: reward of imagined rollouts, split by how good the
    start state already is.

    Start states as in :func:`imagined_rewards` (``starts`` x ``length`` posteriors of ``data``), the
    same for every policy and horizon, and for every call with the same ``seed``; a start is *low* when ``reward`` scores it below ``below``
    (walker stand: fallen, e.g. 0.6 per agent step of 0-2). ``policies``: {name: policy (feat (N, F)
    -> (N, A))}; each imagines H steps (mode latents) for every H in ``horizons`` and ``reward``
    scores them. Returns ``{"low_starts": n, "high_starts": n, "H": {name: {"low": {"mean", "last"},
    "high": {...}}}}``: mean over steps 1..H and the reward of the last step. A policy trained on a
    reward that only spots the goal matches one trained on the true reward from high starts but
    falls behind from low ones.
    """
    from genrl_lite.actor_critic import _flatten_starts
    from genrl_lite.behaviour import dataset_starts

    wm = bundle.world_model
    device = torch.device(wm.device)
    # the filter samples z: fork the global RNG so that one seed gives the same starts on every call
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        start = _flatten_starts(dataset_starts(wm, data, starts, length, np.random.default_rng(seed)))
    r0 = reward({k: v[None] for k, v in start.items()})[0, :, 0]                      # (N,)
    low = r0 < below
    out = {"low_starts": int(low.sum()), "high_starts": int((~low).sum())}
    for horizon in horizons:
        out[str(horizon)] = {}
        for name, policy in policies.items():
            r = reward(wm.rssm.imagine(start, policy, horizon, sample=False))[..., 0]   # (H+1, N)
            out[str(horizon)][name] = {
                level: ({"mean": float(r[1:, m].mean()), "last": float(r[-1, m].mean())} if m.any() else None)
                for level, m in (("low", low), ("high", ~low))}
    return out


@torch.no_grad()
def real_rewards(bundle, episodes: list[dict], reward, policy=None, horizon: int = 15, every: int = 10) -> dict:
    """Predicted reward per step along real episodes, from the world model's filter; and, with
    ``policy``, what the model imagines from the same real states.

    ``episodes``: dicts with ``frames`` (T+1, S, S, 3) uint8 and ``actions`` (T, A) (as recorded by
    ``evaluate_behaviour(..., record=True)``). The frames go through ``rssm.observe`` (mode latents),
    ``reward`` scores the posteriors; the reset frame is left out, as the true return leaves it out.
    Compare ``real`` with the true return / T to check the head on the policy's own states.

    With ``policy`` (feat (N, F) -> (N, A)): from the posterior at every ``every``-th step t, the
    model imagines ``horizon`` steps with the policy; ``imagined`` is their mean reward and
    ``matched_real`` the mean head reward of the real posteriors at t+1..t+H, the same steps in
    reality. Two controls imagine from the same states open loop: ``replayed``, with the actions the
    episode really took at t..t+H-1, and ``zero_actions``. If ``replayed`` is far from
    ``matched_real`` and close to ``zero_actions``, the model does not see what those actions did.
    Returns ``{"real": [per episode], "imagined": [...], "matched_real": [...], "replayed": [...],
    "zero_actions": [...]}`` (floats; all but the first empty without a policy).
    """
    from genrl_lite.baseline_rewards import episode_posteriors

    def replay(seq):                                   # (H, N, A) -> a "policy" that plays it back
        steps = iter(seq)
        return lambda feat: next(steps)

    out = {"real": [], "imagined": [], "matched_real": [], "replayed": [], "zero_actions": []}
    for ep in episodes:
        frames, actions = np.asarray(ep["frames"]), np.asarray(ep["actions"], dtype=np.float32)
        assert len(frames) == len(actions) + 1, (
            f"frames (T+1, S, S, 3) and actions (T, A) expected, got {frames.shape} and {actions.shape}")
        first = np.zeros(len(frames), bool)
        first[0] = True
        prev = np.concatenate([np.zeros((1, actions.shape[1]), np.float32), actions])
        posts = episode_posteriors(bundle.world_model, {"obs": frames, "action": prev, "is_first": first})
        r_real = reward(posts)[:, 0, 0]                                             # (T+1,)
        out["real"].append(float(r_real[1:].mean()))
        if policy is None or len(frames) <= horizon + 1:
            continue
        t = torch.arange(1, len(frames) - horizon, every)                            # start steps
        start = {k: v[t, 0] for k, v in posts.items()}
        rssm = bundle.world_model.rssm
        dream = reward(rssm.imagine(start, policy, horizon, sample=False))[1:, :, 0]  # (H, N)
        same = torch.stack([r_real[t + k] for k in range(1, horizon + 1)])           # (H, N)
        taken = torch.as_tensor(actions)[torch.stack([t + k for k in range(horizon)])].to(start["deter"])  # (H, N, A)
        out["imagined"].append(float(dream.mean()))
        out["matched_real"].append(float(same.mean()))
        for key, seq in (("replayed", taken), ("zero_actions", torch.zeros_like(taken))):
            out[key].append(float(reward(rssm.imagine(start, replay(seq), horizon, sample=False))[1:].mean()))
    return out


def reward_shape(pred, true, window: int = 10, top: float = 0.8, bins: int = 5) -> dict:
    """How well a prompt reward *shapes* the true one, not only whether it spots the goal.

    ``pred``, ``true``: lists of (T,) rewards, one per episode (``baseline_rewards.episode_rewards`` and the
    evaluation sidecar's ``reward``). Both are averaged over non-overlapping windows of ``window``
    steps (the first step, the reset frame, is dropped). A reward can correlate well with the true
    one only because it tells expert windows from all others, and still be flat among the others:
    then a policy that starts lying down gets no signal for getting halfway up. So this reports

    - ``r_all``: Pearson r over all windows;
    - ``r_below``: r over the windows whose true mean is below ``top`` x the largest true window
      mean (everything short of the goal), the shaping that learning from a fallen state needs;
    - ``bin_edges``, ``bin_means``: the mean prompt reward in ``bins`` equal-width bins of the true
      window mean (NaN where a bin is empty), the curve a scatter plot would show.
    """
    from genrl_lite.baseline_rewards import window_means

    assert len(pred) == len(true) and len(pred) > 0, f"one pred and one true per episode, got {len(pred)}, {len(true)}"
    p = np.concatenate([window_means(np.asarray(x)[1:], window) for x in pred])
    t = np.concatenate([window_means(np.asarray(x)[1:], window) for x in true])
    assert len(p) == len(t) and len(p) >= 3, f"episodes too short or mismatched: {len(p)} vs {len(t)} windows"

    def r(a, b):
        return float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else float("nan")

    below = t < top * t.max()
    edges = np.linspace(t.min(), t.max(), bins + 1)
    idx = np.clip(np.digitize(t, edges[1:-1]), 0, bins - 1)
    means = [float(p[idx == i].mean()) if (idx == i).any() else float("nan") for i in range(bins)]
    return {"r_all": r(p, t), "r_below": r(p[below], t[below]), "windows": int(len(p)),
            "windows_below": int(below.sum()), "bin_edges": edges.tolist(), "bin_means": means}
