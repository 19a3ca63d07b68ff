"""Exercises of the course module: one checker per exercise, telling a learner whether an answer is right.

Every notebook ends with a "## Exercises" section. Each exercise is a function the learner writes
(a stub that raises :class:`ExerciseNotDone` in the student version) and a checker cell that calls
``check_<name>(learner_fn)``. A checker runs the learner's function on small fixed inputs, compares it
with the genrl_lite function it mirrors (or with a property the answer must have), prints a short
verdict that helps without giving the answer away, and returns True or False. It never raises on a
wrong answer; on the unfilled stub it says "not done yet" and returns False. Checkers leave the
global random state as they found it, so running one does not change the rest of the notebook.

Shapes in the inputs use the letters of the modules they mirror (B batch, T/H time, G x C latents,
E embedding, F features, N states).

``EXERCISES`` maps an exercise id ("3.1": notebook 03, first exercise) to its :class:`Exercise`
(checker, function name, title); ``scripts/make_student_notebooks.py`` and ``tests/test_exercises.py``
use it together with the notebooks' cell metadata (``genrl_exercise``).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


class ExerciseNotDone(NotImplementedError):
    """Raised by an exercise stub until the learner fills it in."""

    def __init__(self, exercise: str):
        self.exercise = str(exercise)
        super().__init__(f"Exercise {self.exercise} is not done yet: fill in the function above, "
                         f"then run the checker cell")


class _Wrong(Exception):
    """A wrong answer: the message is the hint shown to the learner."""


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: where it lives and how it is checked."""

    id: str
    """"N.k": notebook N (00-06), k-th exercise of that notebook."""
    function: str
    """Name of the function the learner writes (the solution cell defines it)."""
    title: str
    """A few words for the course guide and the verdicts."""
    checker: Callable = None
    """``check_<name>(learner_fn) -> bool``."""


EXERCISES: dict[str, Exercise] = {}
"""Exercise id -> :class:`Exercise`, in notebook order."""


def _exercise(id_: str, function: str, title: str):
    def register(check_body):
        @functools.wraps(check_body)
        def checker(learner_fn) -> bool:
            return _run(id_, title, check_body, learner_fn)

        checker.__doc__ = (f"Check exercise {id_} ({title}): run ``{function}`` on small fixed inputs, print a "
                           f"verdict with a hint, return True if it is right. Never raises.")

        EXERCISES[id_] = Exercise(id_, function, title, checker)
        return checker

    return register


def _run(id_: str, title: str, body: Callable, learner_fn) -> bool:
    """Run one checker body, print the verdict, return whether the answer is right."""
    head = f"Exercise {id_} ({title})"
    if not callable(learner_fn):
        print(f"{head}: pass your function itself to the checker, not {type(learner_fn).__name__}.")
        return False
    try:
        with torch.random.fork_rng(devices=[]):
            note = body(learner_fn)
    except ExerciseNotDone as err:
        print(f"{head}: not done yet. {err}")
        return False
    except _Wrong as err:
        print(f"{head}: not right yet. {err}")
        return False
    except Exception as err:  # the learner's code failed: show where, do not crash the notebook
        print(f"{head}: your function raised {type(err).__name__}: {err}")
        return False
    print(f"{head}: correct." + (f" {note}" if note else ""))
    return True


# --- comparing answers ----------------------------------------------------------------------------

def _tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double()
    if isinstance(x, (np.ndarray, float, int, np.floating, np.integer, list, tuple)):
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    raise _Wrong(f"{what} should be a tensor or an array, got {type(x).__name__}.")


def _close(a, b, atol: float) -> bool:
    a, b = _tensor(a, "value"), _tensor(b, "value")
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=1e-4))


def _compare(got, want, what: str, atol: float = 1e-5, mistakes=(), otherwise: str = "") -> None:
    """Raise _Wrong unless ``got`` equals ``want``; name a known mistake when ``got`` matches one.

    ``mistakes``: (value or zero-argument function giving what that mistake would return, hint).
    """
    g, w = _tensor(got, what), _tensor(want, what)
    if g.shape != w.shape:
        raise _Wrong(f"{what} has shape {tuple(g.shape)}, expected {tuple(w.shape)}.")
    if not torch.isfinite(g).all():
        raise _Wrong(f"{what} contains NaN or inf.")
    if torch.allclose(g, w, atol=atol, rtol=1e-4):
        return
    for mistake, hint in mistakes:
        try:
            value = mistake() if callable(mistake) else mistake
        except Exception:
            continue
        if value is not None and _close(g, value, atol):
            raise _Wrong(f"{what}: shape ok, values differ: {hint}")
    bad = ~torch.isclose(g, w, atol=atol, rtol=1e-4)
    first = tuple(int(i) for i in bad.nonzero()[0]) if g.dim() else ()
    where = f" at index {first if len(first) != 1 else first[0]}" if first else ""
    raise _Wrong(f"{what}: shape ok, values differ{where} (largest difference "
                 f"{float((g - w).abs().max()):.3g}). {otherwise}".rstrip())


def _unit(shape, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


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


# --- notebook 02: categorical latents and the balanced KL -----------------------------------------------

def _logits(shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@_exercise("2.1", "kl_categorical", "the KL of G categoricals")
def check_kl_categorical(fn):
    from genrl_lite.world_model import kl_categorical, mixed_probs

    lhs, rhs = _logits((2, 3, 4, 5), 0, 2.0), _logits((2, 3, 4, 5), 1, 2.0)
    for unimix in (0.01, 0.0):
        got = fn(lhs.clone(), rhs.clone(), unimix)
        p, q = mixed_probs(lhs, unimix), mixed_probs(rhs, unimix)
        _compare(got, kl_categorical(lhs, rhs, unimix), f"kl_categorical(lhs, rhs, unimix={unimix})", mistakes=[
            (lambda: (p * (p.log() - q.log())).sum(-1).mean(-1),
             "you averaged over the G groups: the KL of independent variables is their sum."),
            (lambda: kl_categorical(rhs, lhs, unimix), "that is KL(rhs || lhs): the expectation is under lhs."),
            (lambda: kl_categorical(lhs, rhs, 0.0), "mix the uniform distribution into both sides first "
                                                    "(the unimix argument)."),
            (lambda: (p * (p.log() - q.log())).sum(-1), "sum over the C classes and over the G groups.")])
    return "Summed over groups, one KL per (batch, time) element."


@_exercise("2.2", "straight_through", "straight-through one-hot samples")
def check_straight_through(fn):
    from genrl_lite.world_model import mixed_probs

    logits = _logits((3, 4, 5), 2, 1.5).requires_grad_(True)
    index = torch.randint(5, (3, 4), generator=torch.Generator().manual_seed(3))
    weights = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(4))
    z = fn(logits, index, 0.01)
    _compare(z, F.one_hot(index, 5).float(), "the value of z", 1e-5, mistakes=[
        (mixed_probs(logits, 0.01), "the forward value must be the one-hot of the sampled index, not the probabilities.")])
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        raise _Wrong("the value is right, but no gradient reaches the logits: z must stay connected to "
                     "the probabilities (something whose value is 0 but whose gradient is theirs).")
    (grad,) = torch.autograd.grad((z * weights).sum(), logits, allow_unused=True)
    if grad is None or not grad.abs().sum():
        raise _Wrong("the value is right, but the gradient to the logits is zero.")
    logits2 = logits.detach().clone().requires_grad_(True)
    (want,) = torch.autograd.grad((mixed_probs(logits2, 0.01) * weights).sum(), logits2)
    logits3 = logits.detach().clone().requires_grad_(True)
    (plain,) = torch.autograd.grad((logits3.softmax(-1) * weights).sum(), logits3)
    _compare(grad, want, "the gradient of z", 1e-6, mistakes=[
        (plain, "that is the gradient of the plain softmax: mix in the 1% uniform first.")])
    return "One-hot forward, the mixed probabilities' gradient backward."


def _kl_pair(seed: int = 5):
    """(B=4, T=6, G=3, C=5) posterior and prior logits: two sequences far apart, two close (below 1 nat)."""
    post = _logits((4, 6, 3, 5), seed, 1.5)
    noise = _logits((4, 6, 3, 5), seed + 1) * torch.tensor([2.0, 2.0, 0.02, 0.02]).reshape(4, 1, 1, 1)
    return post, post + noise


@_exercise("2.3", "kl_balance", "KL balancing with free nats")
def check_kl_balance(fn):
    from genrl_lite.world_model import kl_balance_loss, kl_categorical

    post, prior = _kl_pair()
    for balance, free, unimix in ((0.85, 1.0, 0.01), (0.6, 0.5, 0.01), (0.85, 0.0, 0.0)):
        args = f"balance={balance}, free={free}, unimix={unimix}"
        got = fn(post.clone(), prior.clone(), balance, free, unimix)
        want, kl = kl_balance_loss(post, prior, balance, free, unimix)
        _compare(got, want, f"the loss ({args})", mistakes=[
            (max(free, float(kl.mean())), "clip each (batch, time) KL at the free nats *before* averaging, "
                                         "not the average."),
            (kl.mean(), "the free nats are missing: KLs below `free` must be raised to `free`."),
            (kl.clamp(min=free).sum(), "average over batch and time, do not sum.")])
    # The gradient split: plain KL gradients vs the learner's, with free nats off.
    q, p = post.clone().requires_grad_(True), prior.clone().requires_grad_(True)
    gq, gp = torch.autograd.grad(fn(q, p, 0.85, 0.0, 0.01), (q, p), allow_unused=True)
    q2, p2 = post.clone().requires_grad_(True), prior.clone().requires_grad_(True)
    pq, pp = torch.autograd.grad(kl_categorical(q2, p2, 0.01).mean(), (q2, p2))
    share = lambda g, ref: 0.0 if g is None else float((g * ref).sum() / (ref * ref).sum())
    to_prior, to_post = share(gp, pp), share(gq, pq)
    if abs(to_prior - 0.85) > 1e-3 or abs(to_post - 0.15) > 1e-3:
        raise _Wrong(f"the value is right, but your loss sends {to_prior:.2f} of the KL's gradient to the prior "
                     f"and {to_post:.2f} to the posterior (with balance 0.85 it should be 0.85 and 0.15): "
                     f"which term stops the gradient on which side?")
    return "Value and gradient split (0.85 to the prior, 0.15 to the posterior) both match."


# --- notebook 03: the aligner and the connector ---------------------------------------------------------

@_exercise("3.1", "lafite", "the aligner's noise model")
def check_lafite(fn):
    from genrl_lite.aligner import add_lafite_noise

    e = _unit((64, 16), 7)
    for alpha in (0.5, 0.2):
        got = fn(e.clone(), alpha, torch.Generator().manual_seed(8))
        want = add_lafite_noise(e, alpha, torch.Generator().manual_seed(8))
        n = torch.randn(e.shape, generator=torch.Generator().manual_seed(8))
        g = _tensor(got, "your noisy embeddings")
        if g.shape == want.shape and not torch.allclose(g.norm(dim=-1), torch.ones(len(g), dtype=g.dtype), atol=1e-4):
            raise _Wrong("the noisy embeddings must be unit vectors (normalize the result).")
        _compare(got, want, f"lafite(e, alpha={alpha})", mistakes=[
            (F.normalize((1 - alpha) * e + alpha * n, dim=-1), "is n-hat a *unit* vector? Normalize the Gaussian "
                                                              "noise before mixing it in."),
            (F.normalize(alpha * e + (1 - alpha) * F.normalize(n, dim=-1), dim=-1),
             "the weights are swapped: alpha is the weight of the noise.")],
            otherwise="Draw the noise with torch.randn(e.shape, generator=generator), one row per embedding, "
                      "so that it is the same draw as the package's.")
    cos = float((add_lafite_noise(_unit((4096, 384), 9), 0.5) * _unit((4096, 384), 9)).sum(1).mean())
    return f"At alpha = 0.5 in 384 dimensions the noisy vector keeps cos {cos:.2f} to the clean one."


@functools.lru_cache(maxsize=1)
def _toy_model():
    """A tiny random world model, connector and aligner (E = 16, A = 3): fixed weights, CPU, eval mode."""
    from genrl_lite.aligner import Aligner
    from genrl_lite.connector import Connector
    from genrl_lite.world_model import WorldModel, WorldModelConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cfg = WorldModelConfig.preset("tiny", channels_last=False)
        wm, conn, al = WorldModel(cfg, action_dim=3), Connector(cfg, 16), Aligner(16)
    for m in (wm, conn, al):
        m.eval().requires_grad_(False)
    return wm, conn, al


class _ToyVLM:
    """Stands in for the VLM: a fixed unit vector per prompt (E = 16)."""

    dim = 16

    def embed_text(self, prompts):
        return torch.stack([_unit(16, zlib.crc32(p.encode())) for p in prompts])


@_exercise("3.2", "aligner_loss", "the aligner's training loss")
def check_aligner_loss(fn):
    from genrl_lite.aligner import Aligner, add_lafite_noise

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        aligner = Aligner(16)
    e = torch.cat([_unit((3, 16), 10), torch.zeros(2, 16), _unit((5, 16), 11)])   # rows 3-4: padding
    e = e * 1.5                                                                  # not unit: normalize
    got = fn(aligner, e.clone(), torch.Generator().manual_seed(12))
    if isinstance(got, torch.Tensor) and not got.requires_grad:
        raise _Wrong("the loss must stay differentiable with respect to the aligner's weights "
                     "(no torch.no_grad, .item() or .detach()).")
    want = aligner.loss(e, torch.Generator().manual_seed(12))[0]
    clean = F.normalize(e[e.norm(dim=-1) > 0], dim=-1)
    noisy = add_lafite_noise(clean, 0.5, torch.Generator().manual_seed(12))

    def no_drop():
        all_rows = F.normalize(e, dim=-1)
        out = aligner(add_lafite_noise(all_rows, 0.5, torch.Generator().manual_seed(12)))
        return 1 - F.cosine_similarity(out, all_rows, dim=-1).mean()

    _compare(got, want, "the loss", 1e-5, mistakes=[
        (no_drop, "zero rows (padding at episode starts) must be left out before adding noise."),
        (lambda: 1 - F.cosine_similarity(aligner(noisy), noisy, dim=-1).mean(),
         "compare the aligner's output with the *clean* embedding, not with its noisy input."),
        (lambda: 1 - F.cosine_similarity(aligner(clean), clean, dim=-1).mean(),
         "the aligner's input must be the noisy embedding."),
        (lambda: 1 - F.cosine_similarity(aligner(noisy), clean, dim=-1).sum(),
         "average the cosine distance over rows, do not sum.")],
        otherwise="Use add_lafite_noise(e, aligner.alpha, generator) on the clean, unit-norm rows.")
    return "Same loss as Aligner.loss: trained on visual embeddings only."


@_exercise("3.3", "decode_prompt", "from a prompt to an imagined video")
def check_decode_prompt(fn):
    from types import SimpleNamespace

    from genrl_lite.connector import imagine_prompt

    wm, conn, al = _toy_model()
    bundle, vlm = SimpleNamespace(world_model=wm, connector=conn, aligner=al), _ToyVLM()
    for prompt, length in (("walk fast clean", 6), ("a person sitting on the floor", 3)):
        got = fn(bundle, vlm, prompt, length)
        if isinstance(got, torch.Tensor):
            got = got.detach().cpu().numpy()
        if not isinstance(got, np.ndarray):
            raise _Wrong(f"return the video as a numpy array, got {type(got).__name__}.")
        with torch.no_grad():
            e = vlm.embed_text([prompt])
            ref = lambda aligner: (wm.decode(imagine_prompt(conn, e, length, aligner)["stoch"].flatten(-2))[0]
                                   * 255).round().to(torch.uint8).numpy()
            want, no_aligner = ref(al), ref(None)
        if got.shape == (1, *want.shape):
            raise _Wrong(f"the video has shape {got.shape}: drop the batch axis, (T, 64, 64, 3) for one prompt.")
        if got.shape != want.shape:
            raise _Wrong(f"the video has shape {got.shape}, expected {want.shape} (T = length frames, the "
                         f"connector's rollout without its initial state).")
        if got.dtype != np.uint8:
            raise _Wrong(f"return uint8 frames in 0..255 (like a recorded video), got {got.dtype}.")
        again = fn(bundle, vlm, prompt, length)
        again = again.detach().cpu().numpy() if isinstance(again, torch.Tensor) else again
        if not np.array_equal(got, again):
            raise _Wrong("two calls give different videos: the target uses the mode latents (sample=False).")
        diff = np.abs(got.astype(int) - want.astype(int)).max()
        if diff > 1:
            if np.abs(got.astype(int) - no_aligner.astype(int)).max() <= 1:
                raise _Wrong("this is the no-aligner ablation: pass the text embedding through the aligner first.")
            raise _Wrong(f"the frames differ from the package's path by up to {diff} grey levels: text embedding "
                         f"-> aligner -> connector rollout -> decoder of the flattened z.")
    return "Same video as imagine_prompt + the decoder (checked on a toy model; now try the real one)."


# --- notebook 04: sequence-aligned rewards -------------------------------------------------------------

@_exercise("4.1", "max_cos", "the max-cosine similarity")
def check_max_cos(fn):
    from genrl_lite.rewards import cosine, max_cosine

    g = torch.Generator().manual_seed(13)
    u = torch.randn(5, 8, generator=g) * torch.rand(5, 1, generator=g) * 3
    v = torch.randn(5, 8, generator=g)
    _compare(fn(u.clone(), u.clone()), torch.ones(5), "max_cos(u, u)", mistakes=[
        (u.norm(dim=-1) ** 2, "divide by the squared norm, so that a vector's similarity with itself is 1.")])
    for a, b, what in ((u, v, "max_cos(u, v)"), (u[None].expand(3, 5, 8) * 2, v, "max_cos(u (3, 5, 8), v (5, 8))")):
        _compare(fn(a.clone(), b.clone()), max_cosine(a, b), what, mistakes=[
            (cosine(a, b), "that is the plain cosine: it ignores that the two vectors differ in length."),
            (lambda: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8) ** 2,
             "divide by the *larger* of the two norms, squared.")])
    return "Cosine, shrunk by the ratio of the smaller to the larger norm."


def _sequences(H: int = 12, B: int = 4, Fd: int = 6):
    """Agent (H, B, F) and target (H, F) features; trajectory 3 is the target played H - 4 steps late."""
    g = torch.Generator().manual_seed(14)
    target = torch.randn(H, Fd, generator=g)
    agent = torch.randn(H, B, Fd, generator=g)
    late = H - 4
    agent[:, 3] = target[(torch.arange(H) - late).clamp_min(0)] + 0.01 * torch.randn(H, Fd, generator=g)
    agent[:, 2] = target + 0.3 * torch.randn(H, Fd, generator=g)
    return agent, target


@_exercise("4.2", "best_offsets", "the temporal-alignment offset search")
def check_best_offsets(fn):
    from genrl_lite.rewards import best_offsets, max_cosine

    agent, target = _sequences()
    H = agent.shape[0]
    for K in (4, 1, H):
        got = fn(agent.clone(), target.clone(), K)
        want = best_offsets(agent, target, K)

        def mistake(offsets: int, worst: bool = False, moving_target: bool = False):
            head = lambda t: target[t:t + K] if moving_target else target[:K]
            s = torch.stack([max_cosine(agent[t:t + K], head(t)[:, None]).mean(0) for t in range(offsets)])
            return s.argmin(0) if worst else s.argmax(0)

        _compare(got, want, f"best_offsets(agent, target, window={K})", 0, mistakes=[
            (lambda: mistake(H - K), "you never try the last offset t = H - K."),
            (lambda: mistake(H - K + 1, worst=True), "you picked the offset with the worst score."),
            (lambda: mistake(H - K + 1, moving_target=True),
             "the agent window starting at t is compared with the target's *first* K steps, not steps t..t+K.")],
            otherwise="score(t) = mean over i < K of sim(agent[t + i], target[i]), for t = 0 .. H - K.")
    return "With window = H there is a single offset 0: no alignment."


@_exercise("4.3", "align_target", "the aligned target sequence")
def check_align_target(fn):
    from genrl_lite.rewards import align_target

    T, Fd = 10, 3
    target = torch.arange(T * Fd, dtype=torch.float32).reshape(T, Fd)
    offsets = torch.tensor([0, 2, 5, 9])
    got = fn(target.clone(), offsets.clone(), T)
    j = torch.arange(T)[:, None]
    gather = lambda index: target[index]                                        # (T, B, F)
    _compare(got, align_target(target, offsets, T), "align_target(target, offsets=[0, 2, 5, 9], length=10)", 0,
             mistakes=[
                 (lambda: gather(j - offsets[None]), "did you clamp the target index at 0? Before its offset the "
                                                     "agent is compared with the target's first state."),
                 (lambda: gather((j + offsets[None]).clamp_max(T - 1)), "agent step j is compared with target step "
                                                                        "j - offset, not j + offset."),
                 (lambda: gather(j.expand(T, 4)), "the offsets are not used.")],
             otherwise="aligned[j, b] = target[max(0, j - offsets[b])], shape (length, B, F).")
    return "Before the offset: the target's first state; afterwards the target in lockstep."


# --- notebook 05: returns ----------------------------------------------------------------------------

@_exercise("5.1", "lambda_return", "the lambda-return")
def check_lambda_return(fn):
    from genrl_lite.actor_critic import lambda_returns

    g = torch.Generator().manual_seed(15)
    r, v = torch.rand(6, 3, 1, generator=g), torch.randn(7, 3, 1, generator=g)
    gamma = 0.99

    def recursion(lam, last, value_at):
        out, R = [], last
        for t in reversed(range(6)):
            R = r[t] + gamma * ((1 - lam) * v[value_at(t)] + lam * R)
            out.append(R)
        return torch.stack(out[::-1])

    for lam in (0.0, 1.0, 0.95):
        got = fn(r.clone(), v.clone(), gamma, lam)
        _compare(got, lambda_returns(r, v, gamma, lam), f"lambda_return(r, v, gamma=0.99, lam={lam})", 1e-5, mistakes=[
            (lambda: recursion(lam, torch.zeros_like(v[-1]), lambda t: t + 1),
             "the recursion must start from the value of the last state (R_T = v_T): bootstrap."),
            (lambda: recursion(lam, v[-1], lambda t: t), "step t bootstraps from the value of the *next* state, v_{t+1}."),
            (lambda: r + gamma * v[:-1], "the one-step target uses v_{t+1}, the value after the step.")],
            otherwise={0.0: "with lam = 0 it is the one-step TD target r_t + gamma v_{t+1}.",
                       1.0: "with lam = 1 it is the discounted sum of rewards plus the discounted last value.",
                       0.95: "lam = 0 and lam = 1 are right; check how the recursion mixes v_{t+1} and R_{t+1}."}[lam])
    return "lam = 0 (one-step TD), lam = 1 (Monte-Carlo + bootstrap) and lam = 0.95 all match."


@_exercise("5.2", "normalize_returns", "percentile return normalization")
def check_normalize_returns(fn):
    from genrl_lite.actor_critic import ReturnNormalizer

    g = torch.Generator().manual_seed(16)
    scenarios = {"returns with a growing spread": [10 + (1 + i / 10) * torch.randn(5, 8, 1, generator=g) for i in range(60)],
                 "returns with a tiny spread": [3 + 0.05 * torch.randn(5, 8, 1, generator=g) for _ in range(60)]}
    for name, batches in scenarios.items():
        norm = ReturnNormalizer(alpha=0.01)
        for b in batches:
            norm.update(b)
        want = norm(batches[-1])
        ema = torch.zeros(2)
        for b in batches:
            ema = 0.99 * ema + 0.01 * torch.quantile(b.flatten(), torch.tensor([0.05, 0.95]))
        got = fn([b.clone() for b in batches], 0.01)
        _compare(got, want, f"normalized last batch ({name})", 1e-4, mistakes=[
            (lambda: (batches[-1] - ema[0]) / (ema[1] - ema[0]),
             "small spreads were amplified: divide by max(1, P95 - P5), never by less than 1."),
            (lambda: (batches[-1] - batches[-1].min()) / max(1.0, float(batches[-1].max() - batches[-1].min())),
             "use the exponential moving averages of the 5th and 95th percentiles, not the last batch's min and max.")],
            otherwise="the EMA starts at 0 and moves by alpha towards each batch's 5th and 95th percentiles "
                      "(torch.quantile); normalized = (R - P5) / max(1, P95 - P5), using the EMA after the last batch.")
    return "Large spreads are scaled down; small ones are left as they are."


# --- notebook 06: data-free start states -----------------------------------------------------------------

@_exercise("6.1", "uniform_z", "uniform categorical latents")
def check_uniform_z(fn):
    from genrl_lite.data_free import uniform_stoch

    got = fn(200, 4, 5, torch.Generator().manual_seed(17))
    g = _tensor(got, "z")
    if g.shape != (200, 4, 5):
        raise _Wrong(f"z has shape {tuple(g.shape)}, expected (n, G, C) = (200, 4, 5).")
    if not ((g == 0) | (g == 1)).all() or not (g.sum(-1) == 1).all():
        raise _Wrong("each group must be a one-hot vector over its C classes.")
    if (g.argmax(-1) == g.argmax(-1)[:, :1]).all():
        raise _Wrong("every group of a state has the same class: draw one class per group.")
    _compare(got, uniform_stoch(200, 4, 5, generator=torch.Generator().manual_seed(17)), "z", 0,
             otherwise="the statistics may be right, but it is not the same draw: draw the class indices with "
                       "torch.randint(classes, (n, groups), generator=generator).")
    return "One uniformly drawn class per group: every z decodes to some frame."


def _toy_policy(wm):
    w = torch.randn(wm.cfg.feat_dim, wm.action_dim, generator=torch.Generator().manual_seed(18)) * 0.3
    return lambda feat: torch.tanh(feat @ w)


@_exercise("6.2", "start_mixture", "the data-free start-state mixture")
def check_start_mixture(fn):
    from genrl_lite.data_free import DataFreeConfig, data_free_starts

    wm, conn, al = _toy_model()
    for n, p, L in ((24, 0.5, 5), (8, 1.0, 4)):
        torch.manual_seed(19)
        ref = data_free_starts(wm.rssm, conn, al, _toy_policy(wm), wm.action_dim,
                               DataFreeConfig(n=n, p_connector=p, warmup_steps=0, rollout_length=L),
                               embed_dim=16, generator=torch.Generator().manual_seed(20))
        torch.manual_seed(19)
        got = fn(wm.rssm, conn, al, n, p, L, 16, torch.Generator().manual_seed(20))
        if not isinstance(got, tuple) or len(got) != 2 or not isinstance(got[0], dict):
            raise _Wrong("return (state, coin): a dict with deter, stoch and logits, and the (n,) bool coin flips.")
        state, coin = got
        missing = {"deter", "stoch", "logits"} - set(state)
        if missing:
            raise _Wrong(f"the state dict is missing {', '.join(sorted(missing))}.")
        want_coin = ref.from_connector[:n]
        what = f"(n={n}, p_connector={p}, rollout_length={L})"
        _compare(torch.as_tensor(coin).float(), want_coin.float(), f"the coin flips {what}", 0, mistakes=[
            ((~want_coin).float(), "True must mean 'z from the connector', drawn with probability p_connector.")],
            otherwise="draw, in this order: the uniform z, then the n coin flips torch.rand(n, generator=...) "
                      "< p_connector, then the embeddings.")
        if _tensor(state["deter"], "deter").abs().max() > 0:
            raise _Wrong("h (deter) must stay 0 before the warm-up: only z comes from the connector.")
        _compare(state["stoch"], ref.initial["stoch"], f"z {what}", 1e-6,
                 otherwise="rows with coin False keep the uniform z; rows with coin True take, in order, the states "
                           "of the connector rollouts (one random unit embedding -> aligner -> unit norm -> "
                           "connector.rollout(e, L, sample=True) per L states, ceil(n / L) embeddings).")
        _compare(state["logits"], ref.initial["logits"], f"the logits {what}", 1e-5, mistakes=[
            (torch.zeros_like(ref.initial["logits"]), "mix the logits with the same coin flips as z.")],
            otherwise="logits: 0 (uniform) where coin is False, the connector's where it is True.")
    return "Half uniform noise, half random 'prompts' through aligner and connector, h = 0."


@_exercise("6.3", "warm_up", "the warm-up of data-free start states")
def check_warm_up(fn):
    from genrl_lite.data_free import DataFreeConfig, data_free_starts

    wm, conn, al = _toy_model()
    rssm, policy, A, k = wm.rssm, _toy_policy(wm), wm.action_dim, 3
    torch.manual_seed(21)
    state = data_free_starts(rssm, conn, al, policy, A, DataFreeConfig(n=10, warmup_steps=0, rollout_length=4),
                             embed_dim=16, generator=torch.Generator().manual_seed(22)).initial

    def reference(low, order):
        torch.manual_seed(23)
        gen = torch.Generator().manual_seed(24)
        rand = lambda f: torch.rand(len(f), A, generator=gen) * (1 - low) + low
        acts = {"random": rand, "policy": policy}
        halves = [{key: v[-1] for key, v in rssm.imagine(state, acts[name], k).items()} for name in order]
        return {key: torch.cat([h[key] for h in halves]) for key in state}

    with torch.no_grad():
        want = reference(-1.0, ("random", "policy"))
        swapped = reference(-1.0, ("policy", "random"))
        unit_actions = reference(0.0, ("random", "policy"))
        torch.manual_seed(23)
        got = fn(rssm, {key: v.clone() for key, v in state.items()}, policy, A, k, torch.Generator().manual_seed(24))
    if not isinstance(got, dict) or "deter" not in got or "stoch" not in got:
        raise _Wrong("return a state dict (deter, stoch, logits) of the 2N start states.")
    for key in ("deter", "stoch"):
        g = _tensor(got[key], key)
        if g.shape[0] == 10:
            raise _Wrong(f"{key} has {g.shape[0]} rows: return both halves, random-action warm-up first, then "
                         f"policy warm-up (2N = 20 rows).")
        if g.dim() == want[key].dim() + 1:
            raise _Wrong(f"{key} has shape {tuple(g.shape)}: keep only the final state of each warm-up.")
        _compare(got[key], want[key], f"{key} of the start states", 1e-5, mistakes=[
            (swapped[key], "the random-action half comes first, then the policy half."),
            (unit_actions[key], "random actions must be uniform in [-1, 1], not [0, 1].")],
            otherwise="imagine k steps from the mixed states with uniform random actions in [-1, 1] drawn from "
                      "the generator (torch.rand(N, A, generator=...) * 2 - 1), then k steps with the policy; "
                      "keep the final state of each and concatenate.")
    return "2N start states with a warm h: half off-policy, half on-policy."



# --- notebook 07: the benchmark ---------------------------------------------------------------------

@_exercise("7.1", "mean_stderr", "mean and standard error over seeds")
def check_mean_stderr(fn):
    from genrl_lite.benchmark import mean_stderr

    cases = ([0.21, 0.27, 0.24], [0.05, 0.30, 0.12, 0.18, 0.25], [None, 0.4, 0.6], [0.5], [None], [])
    for values in cases:
        got, want = fn(list(values)), mean_stderr(values)
        if not isinstance(got, tuple) or len(got) != 2:
            raise _Wrong(f"return a pair (mean, stderr), got {got!r} for {list(values)}.")
        v = np.array([x for x in values if x is not None], dtype=float)
        for part, g, w in (("mean", got[0], want[0]), ("stderr", got[1], want[1])):
            if w is None:
                if g is not None:
                    raise _Wrong(f"{part} of {list(values)} must be None: " + (
                        "no seed has a result." if len(v) == 0 else "one seed has no spread to measure."))
                continue
            if g is None:
                raise _Wrong(f"{part} of {list(values)} is None, expected a number.")
            _compare(g, w, f"the {part} of {list(values)}", 1e-6, mistakes=[
                (lambda: v.std() / math.sqrt(len(v)), "use the *sample* standard deviation (divide by n - 1)."),
                (lambda: v.std(ddof=1) / len(v), "divide the standard deviation by sqrt(n), not by n."),
                (lambda: v.std(ddof=1), "that is the standard deviation of the seeds, not the standard error "
                                        "of their mean.")])
    return "Seeds without a result are left out; one seed gives no standard error."


@_exercise("7.2", "break_even", "the amortization break-even")
def check_break_even(fn):
    from genrl_lite.benchmark import amortization

    h = 3600.0
    cases = ((120 * h, 5 * h, 7 * h), (120 * h, 3 * h, 7 * h), (10.0, 1.0, 3.0), (50.0, 4.0, 4.0), (50.0, 5.0, 4.0))
    for wm, genrl, model_free in cases:
        got = fn(wm, genrl, model_free)
        want = amortization(wm, genrl, model_free, [1])["break_even"]
        what = f"break_even(world model {wm:g} s, GenRL {genrl:g} s, model-free {model_free:g} s per policy)"
        if want is None:
            if got is not None:
                raise _Wrong(f"{what} should be None: GenRL's policies cost as much or more, so it is never cheaper.")
            continue
        if got is None or not float(got).is_integer():
            raise _Wrong(f"{what} should be a whole number of policies, got {got!r}.")
        if int(got) == want - 1:
            raise _Wrong(f"{what}: at n = {int(got)} both cost the same or GenRL still costs more: 'cheaper' means "
                         f"strictly less.")
        _compare(float(got), float(want), what, 0, otherwise="GenRL costs world model + n x its policy, model-free "
                                                              "n x its policy: the smallest n where GenRL's total is lower.")
    return "With the paper's numbers: 61 policies with data, 31 data-free."


@_exercise("7.3", "vlm_reward_labels", "the model-free baseline's reward labels")
def check_vlm_reward_labels(fn):
    from genrl_lite.model_free import vlm_rewards

    g = torch.Generator().manual_seed(25)
    embeds = F.normalize(torch.randn(20, 16, generator=g), dim=-1)
    embeds[:7] = 0                                                     # no full 8-frame clip yet
    prompt = torch.randn(16, generator=g) * 3
    got = fn(embeds.clone(), prompt.clone())
    want = vlm_rewards([{"obs": np.zeros((20, 1, 1, 3), np.uint8)}], prompt, embeds=[embeds.numpy()])[0]
    _compare(got, want, "the rewards of the 20 steps", 1e-5, mistakes=[
        (lambda: F.cosine_similarity(embeds, prompt[None], dim=-1), "the first 7 steps have no full clip (zero "
                                                                   "rows): give them the first full clip's reward."),
        (lambda: embeds @ prompt, "normalize the prompt embedding: the reward is a cosine.")],
        otherwise="reward_t = cos(e_t, e_prompt), with the zero rows replaced by the first full clip.")
    return "One reward per dataset step, computed once before offline RL starts."


__all__ = ["EXERCISES", "Exercise", "ExerciseNotDone"] + [f"check_{e.function}" for e in EXERCISES.values()]
