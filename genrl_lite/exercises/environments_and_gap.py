"""Checkers of notebooks 00 (tasks, scores, rewards) and 01 (the modality gap).

Each ``check_<name>(learner_fn)`` runs the learner's function on small fixed inputs, prints a verdict
with a hint and returns True or False (see ``genrl_lite/exercises/__init__.py``).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from genrl_lite.exercises.core import _Wrong, _compare, _exercise


# --- notebook 00: tasks, scores, rewards ------------------------------------------------------------

@_exercise("0.1", "normalized", "the normalized score")
def check_normalized(fn):
    from genrl_lite.tasks import get_task, normalized_score

    for task in ("walker_stand", "walker_walk", "walker_run"):
        ref = get_task(task).reference
        for ret in (ref.random, ref.expert, 500.0, 0.0):
            got = fn(ret, ref.expert, ref.random)
            want = normalized_score(task, ret)
            _compare(got, want, f"normalized({ret:g}, expert={ref.expert:g}, random={ref.random:g})", 1e-6, [
                (ret / ref.expert, "you divided by the expert's return; a random policy must score exactly 0."),
                ((ret - ref.random) / ref.expert,
                 "a random policy scores 0 now, but the expert does not score 1: what should the denominator be?"),
                (-want, "the sign is flipped: better than random must be positive.")],
                otherwise="A random policy's return must give 0 and the expert's 1.")
    return "A random policy scores 0, the expert 1, and a policy worse than random is negative."


_SQUAT_POSES = {  # hip, knee, ankle angles of both legs (radians); torso centre at 0.78 and 0.86 m
    "deep squat": dict(right_hip=1.2, left_hip=1.2, right_knee=-2.2, left_knee=-2.2, right_ankle=1.0, left_ankle=1.0),
    "squat": dict(right_hip=1.0, left_hip=1.0, right_knee=-2.0, left_knee=-2.0, right_ankle=1.0, left_ankle=1.0),
}


@functools.lru_cache(maxsize=1)
def _walker_physics():
    from genrl_lite.tasks import get_task

    return get_task("walker_stand").make_env(0).physics


@_exercise("0.2", "squat_reward", "a reward for a new pose")
def check_squat_reward(fn):
    from genrl_lite.custom_tasks import Pose, apply_pose, pose_examples

    examples = pose_examples()
    poses = {name: Pose(q) for name, q in _SQUAT_POSES.items()}
    poses.update({"standing straight": Pose({}), "kneeling": examples["walker_sit_knees"],
                  "lying down": examples["walker_lying_down"], "on one foot": examples["walker_one_foot"]})
    why = {"standing straight": "a squat needs the torso well below its standing height (1.3 m).",
           "kneeling": "when kneeling the torso is at squat height too, but the feet are off the ground "
                       "(the shins lie on it): ask for both feet on the ground.",
           "lying down": "ask for an upright torso.",
           "on one foot": "ask for both feet on the ground, and a lower torso."}
    physics, scores = _walker_physics(), {}
    for name, pose in poses.items():
        apply_pose(physics, pose)
        value = fn(physics)
        try:
            scores[name] = float(value)
        except (TypeError, ValueError):
            raise _Wrong(f"the reward must be a number, got {type(value).__name__}.") from None
        if not 0.0 <= scores[name] <= 1.0 or math.isnan(scores[name]):
            raise _Wrong(f"rewards must lie in [0, 1] (tolerance() terms multiplied together do); "
                         f"{name} got {scores[name]:.3f}.")
    table = ", ".join(f"{k} {v:.2f}" for k, v in scores.items())
    low = [k for k in _SQUAT_POSES if scores[k] < 0.7]
    if low:
        raise _Wrong(f"the squat poses should score at least 0.7 ({table}): check the bounds and margins "
                     f"of your height term (the torso centre is at 0.78 and 0.86 m in them).")
    for name in why:
        if scores[name] > 0.3:
            raise _Wrong(f"'{name}' scores {scores[name]:.2f} (should be below 0.3): {why[name]} ({table})")
    return f"Scores: {table}."


# --- notebook 01: the modality gap ------------------------------------------------------------------

def _gap_embeddings(n: int = 12, dim: int = 16, seed: int = 0):
    """Matched (N, E) unit clip and text embeddings with a built-in gap: two cones around two directions."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, dim, generator=g)
    v_dir, t_dir = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    return F.normalize(base + 2 * v_dir, dim=-1), F.normalize(base + 0.5 * torch.randn(n, dim, generator=g) + 2 * t_dir, dim=-1)


@_exercise("1.1", "gap_cosines", "cosines within and across modalities")
def check_gap_cosines(fn):
    from genrl_lite.vlm import modality_gap_stats

    V, T = _gap_embeddings()
    got = fn(V.clone(), T.clone())
    if not isinstance(got, dict):
        raise _Wrong(f"return a dict with keys clip_clip, text_text, clip_text, matched; got {type(got).__name__}.")
    missing = {"clip_clip", "text_text", "clip_text", "matched"} - set(got)
    if missing:
        raise _Wrong(f"missing keys: {', '.join(sorted(missing))}.")
    stats = modality_gap_stats(V, T)
    off = ~torch.eye(len(V), dtype=torch.bool)
    diag_hint = "did you leave out the diagonal (each embedding with itself, cosine 1)?"
    _compare(got["clip_clip"], stats["clip_clip"]["mean"], "clip_clip", mistakes=[((V @ V.T).mean(), diag_hint)])
    _compare(got["text_text"], stats["text_text"]["mean"], "text_text", mistakes=[((T @ T.T).mean(), diag_hint)])
    _compare(got["clip_text"], stats["clip_text"]["mean"], "clip_text", mistakes=[
        ((V @ T.T)[off].mean(), "clip_text averages over all N x N clip-caption pairs, matched ones included."),
        ((V * T).sum(1).mean(), "that is the matched mean; clip_text is over all pairs.")])
    _compare(got["matched"], stats["matched"]["mean"], "matched", mistakes=[
        ((V @ T.T).mean(), "matched pairs only: row i of V with row i of T.")])
    return (f"On these toy embeddings: clip-clip {stats['clip_clip']['mean']:.2f}, matched clip-text "
            f"{stats['matched']['mean']:.2f}: a gap, as in the real VLM.")


@_exercise("1.2", "shift_towards_text", "shifting clips along the gap vector")
def check_shift_towards_text(fn):
    V, T = _gap_embeddings(seed=1)
    gap = T.mean(0) - V.mean(0)
    for lam in (0.0, 0.5, 1.0):
        got = fn(V.clone(), T.clone(), lam)
        want = F.normalize(V + lam * gap, dim=-1)
        _compare(got, want, f"shift_towards_text(V, T, lam={lam})", mistakes=[
            (F.normalize(V - lam * gap, dim=-1), "you moved the clips away from the captions: the gap vector "
                                                 "points from the clip centroid to the text centroid."),
            (V + lam * gap, "the shifted rows must be unit vectors again."),
            (F.normalize(V + lam * (T - V), dim=-1), "shift every clip by the same vector (the difference of the "
                                                     "centroids), not towards its own caption.")])
    before = (V * T).sum(1).mean()
    after = (F.normalize(V + gap, dim=-1) * T).sum(1).mean()
    return f"cos(clip, own caption) rises from {before:.2f} to {after:.2f} at lam = 1 on these toy embeddings."


__all__ = [name for name in dir() if name.startswith("check_")]
