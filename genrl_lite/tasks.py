"""The task registry: every domain and task by name, its language prompt, and its score references.

A *task* is a dm_control environment with a true reward that the agent never sees during
training: GenRL learns from prompts, and the true reward is only used to *evaluate* the behaviour.
Scores are reported normalized, as in the paper (``../shared/GENRL_REFERENCE.md`` §10):

    normalized = (return - random) / (expert - random)

so 0 is a random policy and 1 a specialized expert trained on the true reward.

Adding a task is a one-function job. A custom reward on top of an existing domain::

    @register_reward_task("walker", "lying_down", prompt="lying down horizontally",
                          reference=Reference(975, 170, "paper"))
    def walker_lying_down(physics) -> float:
        "Torso low and horizontal."
        return tolerance(physics.torso_height(), bounds=(0, 0.2), margin=0.5)

or any dm_control environment with ``@register_task(domain, name, prompt)`` over ``make(seed)``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

Physics = object  # a dm_control ``mujoco.Physics``; kept loose so this module imports fast


class UnknownNameError(ValueError):
    """An unknown domain or task name; the message lists the valid ones."""


@dataclasses.dataclass(frozen=True)
class Reference:
    """Returns of a specialized expert and of a random policy, for normalizing scores."""

    expert: float
    """Mean episode return of an expert trained on the true reward (500 agent steps, 1000 sim steps)."""
    random: float
    """Mean episode return of uniformly random actions."""
    source: str = "paper"
    """Where the numbers come from: ``paper`` (v1 Table 3) or the command that measured ours."""


@dataclasses.dataclass(frozen=True)
class Domain:
    """A body to control: dm_control's walker, cheetah, quadruped, or our stickman."""

    name: str
    """Short name used in task keys (``walker`` in ``walker_walk``); no underscores."""
    camera: int
    """Camera id used for the 64x64 pixels (the paper uses 2 for quadruped, 0 otherwise)."""
    load: Callable[[str, int], object]
    """``load(base_task, seed)`` returns a dm_control ``control.Environment`` of this domain."""
    description: str = ""
    """One line for tables and notebooks."""


@dataclasses.dataclass(frozen=True)
class Task:
    """A named task: how to build its environment, its prompt, and how to normalize its score."""

    domain: str
    """Name of the :class:`Domain`."""
    name: str
    """Task name within the domain (``walk``, ``one_foot``)."""
    prompt: str
    """The language prompt that asks GenRL for this behaviour (paper v1 Table 3)."""
    make_env: Callable[[int], object]
    """``make_env(seed)`` returns a fresh dm_control environment with the true task reward."""
    reference: Reference | None = None
    """Expert and random returns for normalized scores (``None`` until measured)."""
    description: str = ""
    """The true reward in one line of plain words."""
    kind: str = "standard"
    """``standard`` (dm_control's own reward, in the world model's data) or ``custom`` (generalization)."""
    paper_reference: Reference | None = None
    """The paper's expert/random returns (v1 Table 3), kept for comparison; for custom tasks they were
    measured on the paper's own version of the reward, so ``reference`` holds ours instead."""

    @property
    def key(self) -> str:
        """The registry key, ``<domain>_<name>``."""
        return f"{self.domain}_{self.name}"


DOMAINS: dict[str, Domain] = {}
TASKS: dict[str, Task] = {}


def _suite_loader(domain: str) -> Callable[[str, int], object]:
    def load(task: str, seed: int):
        from dm_control import suite

        return suite.load(domain, task, task_kwargs={"random": seed})

    return load


def register_domain(name: str, camera: int, load: Callable[[str, int], object] | None = None,
                    description: str = "") -> Domain:
    """Add a domain; ``load`` defaults to ``dm_control.suite.load(name, task, random=seed)``."""
    if "_" in name:
        raise ValueError(f"domain names cannot contain '_' (got {name!r}); task keys are <domain>_<task>")
    domain = Domain(name, camera, load or _suite_loader(name), description)
    DOMAINS[name] = domain
    return domain


def register_task(domain: str, name: str, prompt: str, reference: Reference | None = None,
                  description: str = "", kind: str = "standard"):
    """Decorator: register ``make(seed) -> dm_control environment`` as task ``<domain>_<name>``."""
    get_domain(domain)

    def decorator(make: Callable[[int], object]):
        paper = reference if reference is not None and reference.source == "paper" else None
        task = Task(domain, name, prompt, make, reference, description or (make.__doc__ or "").strip(), kind,
                    paper_reference=paper)
        TASKS[task.key] = task
        return make

    return decorator


def register_reward_task(domain: str, name: str, prompt: str, base: str = "stand",
                         reference: Reference | None = None, description: str = ""):
    """Decorator: a custom task whose reward is ``reward(physics) -> float in [0, 1]``.

    The environment is the domain's ``base`` task (its initial state distribution and time limit)
    with the reward replaced, so a new behaviour needs only its reward function.
    """

    def decorator(reward: Callable[[Physics], float]):
        loader = get_domain(domain).load

        def make(seed: int):
            env = loader(base, seed)
            env.task.get_reward = lambda physics: float(reward(physics))
            return env

        doc = description or (reward.__doc__ or "").strip().splitlines()[0] if (description or reward.__doc__) else ""
        register_task(domain, name, prompt, reference, doc, kind="custom")(make)
        reward.task_key = f"{domain}_{name}"
        return reward

    return decorator


def _valid(names) -> str:
    return ", ".join(sorted(names))


def get_domain(name: str) -> Domain:
    """The :class:`Domain` called ``name``; raises :class:`UnknownNameError` listing valid names."""
    _load_builtin_tasks()
    if name not in DOMAINS:
        raise UnknownNameError(f"unknown domain {name!r}; valid domains: {_valid(DOMAINS)}")
    return DOMAINS[name]


def get_task(key: str, name: str | None = None) -> Task:
    """A task by key (``get_task("walker_walk")``) or by domain and name (``get_task("walker", "walk")``)."""
    _load_builtin_tasks()
    if isinstance(key, Task):
        return key
    if name is not None:
        key = f"{key}_{name}"
    if key not in TASKS:
        domain = key.split("_", 1)[0]
        if domain in DOMAINS:
            valid = [t for t in TASKS if t.startswith(domain + "_")]
            raise UnknownNameError(f"unknown task {key!r}; valid tasks for {domain}: {_valid(valid)}")
        raise UnknownNameError(f"unknown task {key!r}: unknown domain {domain!r}; valid domains: "
                               f"{_valid(DOMAINS)}; valid tasks: {_valid(TASKS)}")
    return TASKS[key]


def list_tasks(domain: str | None = None, kind: str | None = None) -> list[str]:
    """Sorted task keys, optionally of one domain and/or one kind (``standard`` or ``custom``)."""
    _load_builtin_tasks()
    if domain is not None:
        get_domain(domain)
    return sorted(k for k, t in TASKS.items()
                  if (domain is None or t.domain == domain) and (kind is None or t.kind == kind))


def normalized_score(task: str | Task, episode_return: float) -> float:
    """``(return - random) / (expert - random)``: 0 for a random policy, 1 for the expert."""
    task = get_task(task) if isinstance(task, str) else task
    if task.reference is None:
        raise ValueError(f"task {task.key!r} has no expert/random reference yet (pending in "
                         f"data/references/references.json); measure it with `python "
                         f"scripts/measure_references.py --tasks {task.key}` (the paper's numbers, "
                         f"{task.paper_reference}, were measured on the paper's version of the reward)")
    ref = task.reference
    return (float(episode_return) - ref.random) / (ref.expert - ref.random)


def reference_table() -> list[dict]:
    """One row per task: key, domain, kind, prompt, expert, random, source (for notebooks/README)."""
    _load_builtin_tasks()
    rows = []
    for key in sorted(TASKS):
        t = TASKS[key]
        ref = t.reference
        paper = t.paper_reference
        measured = MEASURED.get(key, {})
        rows.append(dict(task=key, domain=t.domain, kind=t.kind, prompt=t.prompt,
                         expert=None if ref is None else ref.expert,
                         random=None if ref is None else ref.random,
                         source=None if ref is None else ref.source, description=t.description,
                         paper_expert=None if paper is None else paper.expert,
                         paper_random=None if paper is None else paper.random,
                         measured_expert=measured.get("expert", {}).get("mean"),
                         measured_random=measured.get("random", {}).get("mean")))
    return rows


# --- built-in domains and the paper's standard tasks ------------------------------------------

_BUILTIN_LOADED = False
_EXTENSIONS = ("genrl_lite.stickman", "genrl_lite.custom_tasks")
"""Modules that register more domains/tasks on import (added by later issues; absent is fine)."""


def _load_builtin_tasks() -> None:
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    import importlib
    import importlib.util

    for module in _EXTENSIONS:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    attach_measured_references()


MEASURED: dict[str, dict] = {}
"""Task key -> its entry in ``data/references/references.json`` (written by scripts/measure_references.py)."""


def attach_measured_references(path=None) -> None:
    """Give custom tasks our measured references (expert and random on *our* reward, 3 seeds).

    Every task keeps the paper's numbers as ``paper_reference``. A custom task whose expert or
    random return is not measured yet gets ``reference=None`` (pending), so ``normalized_score``
    refuses it instead of silently using the paper's numbers for a different reward. Standard
    tasks keep the paper's reference; their measured random returns are in :func:`reference_table`.
    """
    import json
    import sys
    import warnings
    from pathlib import Path

    from genrl_lite.runtime import REPO_ROOT

    path = Path(path) if path else REPO_ROOT / "data" / "references" / "references.json"
    MEASURED.clear()
    if path.exists():
        try:
            MEASURED.update(json.loads(path.read_text())["tasks"])
        except (ValueError, KeyError) as err:
            warnings.warn(f"ignoring unreadable references file {path} ({err!r}); "
                          "re-create it with scripts/measure_references.py", RuntimeWarning, stacklevel=2)
    for key, t in list(TASKS.items()):
        if t.kind != "custom":
            continue
        paper = t.paper_reference or getattr(sys.modules.get("genrl_lite.custom_tasks"),
                                             "PAPER_REFERENCES", {}).get(key)
        m = MEASURED.get(key, {})
        if all(m.get(w, {}).get("status") == "measured" for w in ("expert", "random")):
            ref = Reference(m["expert"]["mean"], m["random"]["mean"],
                            "genrl_lite: " + m["expert"].get("command", "scripts/measure_references.py"))
        elif t.reference is not None and t.reference.source != "paper" \
                and not t.reference.source.startswith("genrl_lite: "):
            ref = t.reference  # a reference given at registration (not the paper's): keep it
        else:
            ref = None  # pending: normalized_score raises
        TASKS[key] = dataclasses.replace(t, reference=ref, paper_reference=paper)


register_domain("walker", camera=0, description="planar biped, 6 actuated joints (dm_control)")
register_domain("cheetah", camera=0, description="planar half-cheetah, 6 actuated joints (dm_control)")
register_domain("quadruped", camera=2, description="3-D four-legged body, 12 actuated joints (dm_control)")

# Prompts, expert and random returns: paper v1 Table 3 (GENRL_REFERENCE.md §10).
_STANDARD = [
    ("walker", "stand", "standing up straight", 970, 150, "upright torso high above the feet"),
    ("walker", "walk", "walk fast clean", 960, 45, "upright and moving forward at 1 m/s or more"),
    ("walker", "run", "run fast clean", 770, 30, "upright and moving forward at 8 m/s or more"),
    ("cheetah", "run", "running like a quadruped", 890, 9, "forward speed, linear up to 10 m/s"),
    ("quadruped", "stand", "spider standing", 990, 15, "torso upright from a random initial orientation (GenRL's quadruped stand)"),
    ("quadruped", "walk", "spider walking fast", 960, 10, "upright and moving forward at 0.5 m/s or more"),
    ("quadruped", "run", "spider running fast", 930, 10, "upright and moving forward at 5 m/s or more"),
]


def _standard_maker(domain: str, name: str):
    def make(seed: int):
        if domain == "quadruped" and name == "stand":
            return _quadruped_stand(seed)
        return get_domain(domain).load(name, seed)

    return make


def _quadruped_stand(seed: int):
    """dm_control has no quadruped stand; GenRL's is the walk task's upright term alone (same start)."""
    env = get_domain("quadruped").load("walk", seed)
    from dm_control.suite import quadruped

    env.task.get_reward = lambda physics: float(quadruped._upright_reward(physics))
    return env


for _d, _n, _p, _e, _r, _desc in _STANDARD:
    register_task(_d, _n, _p, Reference(_e, _r, "paper"), _desc, kind="standard")(_standard_maker(_d, _n))
