"""Evaluation: a policy learned in imagination acts in the real task, from pixels, and is scored.

The last step of GenRL's second stage (``../shared/GENRL_REFERENCE.md`` §10). Nothing here trains:
the world model only *filters* what the camera shows (``rssm.obs_step``: the posterior of the new
frame and the deterministic state carried from the previous step and action), the actor picks its
mean action from those features, and the task's true reward, never seen in training, scores the
episode (normalized: 0 random, 1 expert, ``genrl_lite.tasks.normalized_score``).

- :func:`evaluate_behaviour`: returns, normalized scores, optionally the frames, actions and any
  per-step measurement of the simulator (``probe``: e.g. body heights, to see *what* a policy does
  when its score is low; ``scripts/inspect_policy.py``);
- :func:`imagine_rollout`: what the policy *dreams* from a real start, to show next to what it did.

Shapes:
    T   agent steps of a real episode (500 with action repeat 2)
    A   action size
    F   actor features ``rssm.feat(s)``, G*C + D
    S   frame side in pixels (64)
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch

from genrl_lite.actor_critic import Actor, ActorCritic
from genrl_lite.behaviour import _as_bundle
from genrl_lite.runtime import progress
from genrl_lite.training import ModelBundle


def _policy_fn(actor, bundle: ModelBundle):
    """Mean action from features: accepts a BehaviourResult, ActorCritic, Actor or a callable."""
    actor = getattr(actor, "actor_critic", actor)
    net = actor.actor if isinstance(actor, ActorCritic) else actor
    if isinstance(net, Actor):
        if net.action_dim != bundle.action_dim:
            raise ValueError(f"the policy outputs {net.action_dim}-d actions but the model has "
                             f"{bundle.action_dim}-d actions: it was trained on another domain's model")
        return net.mode
    if callable(net):
        return net
    raise TypeError(f"actor must be an ActorCritic, Actor, BehaviourResult or a function feat -> action, "
                    f"got {type(actor).__name__}")


def body_heights(physics) -> dict:
    """A ``probe`` for :func:`evaluate_behaviour`: what the body is doing, in a few numbers.

    ``<body>_z``: the height (m) of every body's frame origin above the floor (``xpos``; for walker
    and stickman: torso, thighs, legs, feet, and stickman's head and arms), and ``torso_up``: the
    world-z component of the torso's up axis (1 upright, 0 lying, -1 upside down).
    """
    names = [n for n in physics.named.data.xpos.axes.row.names if n != "world"]
    out = {f"{n}_z": float(physics.named.data.xpos[n, "z"]) for n in names}
    if "torso" in names:
        out["torso_up"] = float(physics.named.data.xmat["torso", "zz"])
    return out


@torch.no_grad()
def evaluate_behaviour(bundle, actor, task_key: str, episodes: int = 10, seed: int = 0, record: bool | int = False,
                       max_steps: int | None = None, show_progress: bool = True,
                       probe: Callable[[object], dict] | None = None) -> dict:
    """Run the policy in the real task from pixels, and score it with the true reward.

    Each step: frame (S, S, 3) -> ``wm.encode`` -> ``rssm.obs_step(state, previous action, embed,
    is_first)`` (mode latents, so evaluation is deterministic given the env seed) -> features (1, F)
    -> the actor's mean action (A,) -> ``env.step``. The action that led to a frame is the one fed
    with it, as in the data.

    Args:
        bundle: the world model the policy was trained in (a ``ModelBundle``, name or path).
        actor: a ``BehaviourResult``, ``ActorCritic``, ``Actor``, or a function feat (1, F) -> (1, A).
        task_key: e.g. ``"walker_stand"`` (unknown names raise ``UnknownNameError``).
        episodes: episodes to run; ``seed`` seeds the environment.
        record: keep frames: True for every episode, an int for the first that many.
        max_steps: cut episodes short (tests; scores are then not comparable to the references).
        probe: called with the dm_control ``Physics`` after every step, returns a dict of floats
            (e.g. ``{"torso_z": ...}``); the policy never sees it.

    Returns a dict: ``returns`` (episodes,) true returns, ``normalized`` (episodes,) scores
    (None without a reference), their ``*_mean`` and ``*_stderr`` (standard error; None for one
    episode), ``steps`` per episode, ``seconds``, ``task``, and when recording ``frames`` (list of
    (T+1, S, S, 3) uint8 arrays, the first being the reset frame) and ``actions`` (list of (T, A)),
    and with ``probe`` ``probes``: per episode, a dict of (T,) float arrays (one per key it returned)
    plus ``reward`` (T,), the true reward of each step.
    """
    from genrl_lite.envs import PixelEnv
    from genrl_lite.tasks import get_task, normalized_score

    task = get_task(task_key)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    bundle = _as_bundle(bundle)
    policy = _policy_fn(actor, bundle)
    env = PixelEnv(task.key, seed=seed)
    if env.action_dim != bundle.action_dim:
        raise ValueError(f"task {task.key!r} ({task.domain}) has {env.action_dim}-d actions but the model has "
                         f"{bundle.action_dim}-d actions: use the {task.domain} model and a policy trained in it")
    wm, rssm = bundle.world_model, bundle.world_model.rssm
    n_record = episodes if record is True else int(record)
    returns, lengths, videos, taken, probes = [], [], [], [], []
    t0 = time.perf_counter()
    quiet = {} if show_progress and episodes > 1 else {"disable": True}
    for ep in progress(range(episodes), desc=f"evaluating {task.key}", **quiet):
        step = env.reset()
        state = rssm.initial(1)
        action = torch.zeros(1, bundle.action_dim, device=wm.device)
        total, frames, actions, t, measured = 0.0, [step.obs], [], 0, []
        while not step.is_last and (max_steps is None or t < max_steps):
            obs = torch.as_tensor(step.obs, device=wm.device)[None]
            first = torch.tensor([step.is_first], device=wm.device)
            state, _ = rssm.obs_step(state, action, wm.encode(wm.preprocess(obs)), first, sample=False)
            action = policy(rssm.feat(state)).reshape(1, -1)
            step = env.step(action[0].cpu().numpy())
            total += step.reward
            t += 1
            if probe is not None:
                measured.append({**probe(env.physics), "reward": step.reward})
            if ep < n_record:
                frames.append(step.obs)
                actions.append(action[0].cpu().numpy())
        returns.append(total)
        lengths.append(t)
        if probe is not None:
            probes.append({k: np.array([m[k] for m in measured], dtype=np.float64) for k in measured[0]}
                          if measured else {})
        if ep < n_record:
            videos.append(np.stack(frames))
            taken.append(np.stack(actions))
    returns = np.array(returns)
    normalized = np.array([normalized_score(task, r) for r in returns]) if task.reference is not None else None

    def stderr(x):
        return float(x.std(ddof=1) / math.sqrt(len(x))) if x is not None and len(x) > 1 else None

    out = {"task": task.key, "episodes": episodes, "returns": returns, "return_mean": float(returns.mean()),
           "return_stderr": stderr(returns), "normalized": normalized,
           "normalized_mean": float(normalized.mean()) if normalized is not None else None,
           "normalized_stderr": stderr(normalized), "steps": lengths, "seconds": time.perf_counter() - t0}
    if n_record:
        out["frames"], out["actions"] = videos, taken
    if probe is not None:
        out["probes"] = probes
    return out


@torch.no_grad()
def imagine_rollout(bundle, actor, frames, actions, context: int = 5, horizon: int = 15) -> np.ndarray:
    """What the policy *imagines* from a real start, to show next to what it really did.

    ``frames`` (T, S, S, 3) uint8 and ``actions`` (T-1, A) of a real episode (``actions[t]`` taken
    after ``frames[t]``; e.g. ``evaluate_behaviour(..., record=1)``'s ``frames[0]``, ``actions[0]``).
    The world model filters the first ``context`` frames, then the policy acts for ``horizon`` steps
    in imagination (mode latents, mean actions). Returns decoded frames (context + horizon, S, S, 3)
    float in [0, 1]: posterior reconstructions, then the dream; compare with ``frames[:context + horizon]``.
    """
    bundle = _as_bundle(bundle)
    policy = _policy_fn(actor, bundle)
    wm, rssm = bundle.world_model, bundle.world_model.rssm
    frames, actions = torch.as_tensor(np.asarray(frames)), torch.as_tensor(np.asarray(actions)).float()
    assert frames.ndim == 4 and actions.ndim == 2 and len(actions) >= context - 1 >= 0, (
        f"frames must be (T, S, S, 3) and actions (T-1, A) with T >= context = {context}, got "
        f"{tuple(frames.shape)} and {tuple(actions.shape)}")
    obs = frames[:context].to(wm.device)[None]
    prev = torch.cat([torch.zeros(1, actions.shape[1]), actions[:context - 1]])[None].to(wm.device)
    first = torch.zeros(1, context, dtype=torch.bool, device=wm.device)
    first[0, 0] = True
    posts, _ = rssm.observe(wm.encode(wm.preprocess(obs)), prev, first, sample=False)
    start = {k: v[:, -1] for k, v in posts.items()}
    dream = rssm.imagine(start, lambda f: policy(f).reshape(len(f), -1), horizon, sample=False)
    stoch = torch.cat([rssm.stoch_flat(posts)[0], rssm.stoch_flat(dream)[1:, 0]])
    return wm.decode(stoch).cpu().numpy()
