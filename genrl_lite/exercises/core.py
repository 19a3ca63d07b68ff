"""The machinery every checker shares: the registry, the verdict, and comparing an answer with the package.

A checker body (in the sibling modules, one per group of notebooks) raises :class:`_Wrong` with a hint
when an answer is wrong and returns an optional note when it is right; :func:`_exercise` registers it
in :data:`EXERCISES` and wraps it in :func:`_run`, which prints the verdict and never raises.
"""
from __future__ import annotations

import dataclasses
import functools
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


# --- a shared fixture -----------------------------------------------------------------------------

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
