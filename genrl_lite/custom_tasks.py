"""The paper's generalization tasks: new rewards on the same bodies, never in the world model's data.

GenRL is scored on behaviours nobody put in its dataset ("doing flips", "praying", "punch"). Each
one here is a *reward function of the physics state*, built from dm_control's ``tolerance``
(1 inside ``bounds``, decaying to ``value_at_margin`` at ``margin`` outside), registered with
:func:`genrl_lite.tasks.register_reward_task` together with its language prompt (paper v1 Table 3,
``../shared/GENRL_REFERENCE.md`` §10). The first line of each docstring says the reward in plain
words; it becomes the task's ``description``.

These rewards are ours: they follow the intent of the original GenRL tasks, not their code, so the
paper's expert/random returns are kept only for comparison (``PAPER_REFERENCES``, and a task's
``paper_reference``); normalized scores use the references we measured with our own reward
(``scripts/measure_references.py`` -> ``data/references/references.json``).

Every task also has a hand-set pose that should score high (:func:`pose_examples`, applied with
:func:`apply_pose`), used by the tests and by notebook 00's gallery of intended behaviours.

Shapes: a reward takes a dm_control ``Physics`` and returns a float in [0, 1] per environment
step, so an episode (1000 environment steps) returns at most 1000.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from genrl_lite.tasks import Reference, attach_measured_references, register_reward_task

INF = float("inf")


def tol(x, lo=-INF, hi=INF, margin=0.0, sigmoid="gaussian", value_at_margin=0.1) -> float:
    """dm_control's ``rewards.tolerance(x, bounds=(lo, hi), margin, ...)`` as a float."""
    from dm_control.utils import rewards

    return float(rewards.tolerance(x, bounds=(lo, hi), margin=margin, sigmoid=sigmoid,
                                   value_at_margin=value_at_margin))


def z(physics, body: str) -> float:
    """Height (m) of ``body``'s frame origin above the floor."""
    return float(physics.named.data.xpos[body, "z"])


def axis_z(physics, body: str, axis: str = "z") -> float:
    """World-z component of ``body``'s local ``axis`` (1: that axis points straight up)."""
    return float(physics.named.data.xmat[body, "z" + axis])


PAPER_REFERENCES: dict[str, Reference] = {}
"""The paper's expert/random returns for its own versions of these tasks (v1 Table 3), for comparison."""
REWARDS: dict = {}
"""Task key -> its reward function ``reward(physics) -> float`` (walker and stickman share some)."""


def _task(domain: str, name: str, prompt: str, base: str, paper: tuple[float, float]):
    """Register a reward as ``<domain>_<name>`` and remember the paper's numbers."""
    key = f"{domain}_{name}"
    PAPER_REFERENCES[key] = Reference(*paper, source="paper")

    def decorator(reward):
        REWARDS[key] = reward
        return register_reward_task(domain, name, prompt, base=base)(reward)

    return decorator


# --- walker and stickman: the same torso and legs ------------------------------------------------
# Standing straight, walker's torso centre is at 1.3 m and its feet at 0.05 m; shins ("leg"
# bodies) are 0.5 m long and their frame is at their middle.

BIPEDS = ("walker", "stickman")


def _feet(p) -> tuple[float, float]:
    """(lower, higher) foot height."""
    a, b = z(p, "left_foot"), z(p, "right_foot")
    return min(a, b), max(a, b)


def _standing(p, height: float = 1.0) -> float:
    """Torso at least ``height`` high, times how upright it is (walker's (1 + cos) / 2)."""
    return tol(z(p, "torso"), height, margin=height / 2) * (1 + axis_z(p, "torso")) / 2


def _partly(goal: float) -> float:
    """walker's ``(5 * move + 1) / 6`` idea: a quarter of the credit before the goal is met, so that
    getting into the base posture (standing, upside down) already pays and a planner finds its way."""
    return (1 + 3 * goal) / 4


def _lying(p) -> float:
    """Torso on the ground (centre below 0.15 m) and level."""
    return tol(z(p, "torso"), hi=0.15, margin=0.3) * tol(abs(axis_z(p, "torso")), hi=0.2, margin=0.5)


def flipping(p) -> float:
    """Spin head over heels: the torso turning at 10 rad/s (1.6 turns per second) or more, either way."""
    # no credit below 5 rad/s, so rolling about on the floor (as random actions do) earns little
    return tol(abs(p.named.data.qvel["rooty"][0]), 10.0, margin=5.0, sigmoid="linear", value_at_margin=0)


def one_foot(p) -> float:
    """Stand tall on one foot, the other foot lifted at least 0.4 m off the ground."""
    low, high = _feet(p)
    return _standing(p) * tol(low, hi=0.1, margin=0.2) * _partly(tol(high, 0.4, margin=0.2))


def high_kick(p) -> float:
    """Stand on one foot and kick the other foot up above 1.1 m."""
    low, high = _feet(p)
    return _standing(p) * tol(low, hi=0.1, margin=0.2) * _partly(tol(high, 1.1, margin=0.55))


def lying_down(p) -> float:
    """Lie flat on the ground: torso and both feet below 0.15 m, torso level."""
    return _lying(p) * tol(_feet(p)[1], hi=0.15, margin=0.3)


def _knee(p, side: str) -> float:
    """Height of the knee: the top end of the 0.5 m shin (the ``<side>_leg`` body)."""
    return z(p, f"{side}_leg") + 0.25 * axis_z(p, f"{side}_leg")


def sit_knees(p) -> float:
    """Kneel as if praying: both knees on the ground, torso upright at 0.45 to 1 m."""
    knees = max(_knee(p, "left"), _knee(p, "right"))
    return (tol(knees, hi=0.1, margin=0.2) * tol(z(p, "torso"), 0.45, 1.0, margin=0.3)
            * tol(axis_z(p, "torso"), 0.9, margin=0.5))


def lunge_pose(p) -> float:
    """Lunge: torso upright, back knee on the ground, front foot planted 0.4 m or more ahead of the hips."""
    front, back = sorted(["left", "right"], key=lambda s: -p.named.data.xpos[f"{s}_foot", "x"])
    ahead = p.named.data.xpos[f"{front}_foot", "x"] - p.named.data.xpos["torso", "x"]
    return (tol(axis_z(p, "torso"), 0.9, margin=0.5) * tol(_knee(p, back), hi=0.1, margin=0.2)
            * tol(ahead, 0.4, margin=0.3) * tol(z(p, f"{front}_foot"), hi=0.1, margin=0.2))


_BIPED_TASKS = [  # reward, name, prompt, paper (expert, random) for walker, then for stickman
    (flipping, "flipping", "doing backflips", "doing flips", (720, 20), (790, 45)),
    (one_foot, "one_foot", "stand on one foot", "stand on one foot", (955, 20), (865, 20)),
    (high_kick, "high_kick", "stand up and kick", "stand up and kick", (960, 25), (920, 55)),
    (lying_down, "lying_down", "lying down horizontally", "lying down horizontally", (975, 170), (965, 380)),
    (sit_knees, "sit_knees", "praying", "praying", (945, 100), (966, 40)),
    (lunge_pose, "lunge_pose", "lunge_pose", "lunge_pose", (945, 150), (950, 100)),
]
for _fn, _name, _walker_prompt, _stickman_prompt, _walker_paper, _stickman_paper in _BIPED_TASKS:
    _task("walker", _name, _walker_prompt, "stand", _walker_paper)(_fn)
    _task("stickman", _name, _stickman_prompt, "stand", _stickman_paper)(_fn)


# --- stickman only: the head and the arms ---------------------------------------------------------

@_task("stickman", "headstand", "headstand", "stand", (955, 180))
def headstand(p) -> float:
    """Stand on the head: torso upside down, head near the ground, both feet above 1.1 m."""
    inverted = (1 - axis_z(p, "torso")) / 2  # walker's upright term, turned over
    return inverted * _partly(tol(z(p, "head"), hi=0.3, margin=0.3) * tol(_feet(p)[0], 1.1, margin=0.55))


@_task("stickman", "boxing", "punch", "stand", (920, 80))
def boxing(p) -> float:
    """Stand tall and punch: a hand moving at 3 m/s or more relative to the body's centre of mass."""
    body = p.named.data.sensordata["torso_subtreelinvel"]
    hand = max(np.linalg.norm(p.named.data.subtree_linvel[h] - body) for h in ("left_hand", "right_hand"))
    return _standing(p, 1.1) * tol(hand, 3.0, margin=3.0, sigmoid="linear", value_at_margin=0)


@_task("stickman", "hands_up", "standing with the hands up", "stand", (830, 5))
def hands_up(p) -> float:
    """Stand tall with both hands raised above the head (above 1.9 m)."""
    hands = min(z(p, "left_hand"), z(p, "right_hand"))
    return _standing(p, 1.1) * _partly(tol(hands, 1.9, margin=0.5))


@_task("stickman", "legs_up", "lifting legs up while lying down", "stand", (935, 115))
def legs_up(p) -> float:
    """Lie on the back with both feet lifted above 0.6 m."""
    return _lying(p) * tol(_feet(p)[0], 0.6, margin=0.3)


# --- cheetah (standing it is 0.6 m high, its torso's local x axis points to the head) ------------

@_task("cheetah", "standing", "standing like a human", "run", (930, 5))
def cheetah_standing(p) -> float:
    """Rear up on the back foot: torso pointing up (over 45 degrees) and the front foot above 1 m."""
    return tol(axis_z(p, "torso", "x"), 0.7, margin=0.7) * tol(z(p, "ffoot"), 1.0, margin=0.5)


@_task("cheetah", "lying_down", "lying down", "run", (920, 430))
def cheetah_lying_down(p) -> float:
    """Lie flat: torso below 0.25 m and level."""
    return tol(z(p, "torso"), hi=0.25, margin=0.3) * tol(abs(axis_z(p, "torso", "x")), hi=0.25, margin=0.5)


# --- quadruped (standing it is about 0.55 m high; base task walk starts from a random orientation) --

_TOES = ("toe_front_left", "toe_front_right", "toe_back_left", "toe_back_right")


def _quadruped_upright(p) -> float:
    """1 when the torso is upright, falling linearly to 0 when it is upside down (dm_control's)."""
    return tol(axis_z(p, "torso"), 1.0, margin=2.0, sigmoid="linear", value_at_margin=0)


@_task("quadruped", "jump", "spider jumping", "walk", (875, 15))
def quadruped_jump(p) -> float:
    """Jump: torso upright and at least 1 m high."""
    return _quadruped_upright(p) * tol(z(p, "torso"), 1.0, margin=0.5)


@_task("quadruped", "two_legs", "on two legs", "walk", (875, 14))
def quadruped_two_legs(p) -> float:
    """Stand on two feet: the two lowest toes on the ground, the two highest above 0.6 m."""
    toes = sorted(z(p, t) for t in _TOES)
    return tol((toes[0] + toes[1]) / 2, hi=0.1, margin=0.2) * tol((toes[2] + toes[3]) / 2, 0.6, margin=0.3)


@_task("quadruped", "lie_down", "lying down", "walk", (965, 750))
def quadruped_lie_down(p) -> float:
    """Lie on the belly: torso upright and below 0.2 m."""
    return _quadruped_upright(p) * tol(z(p, "torso"), hi=0.2, margin=0.3)


# Our measured references (or "pending") and the paper's numbers, now that every task is registered.
attach_measured_references()


# --- hand-set poses that each reward should like -----------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Pose:
    """A body configuration to put the physics in, for tests and galleries (angles in radians)."""

    qpos: dict
    """Joint name -> angle (hinges) or offset (slides); joints not named stay at 0."""
    qvel: dict = dataclasses.field(default_factory=dict)
    """Joint name -> velocity; a free joint takes 6 numbers (linear then angular)."""
    quat: tuple | None = None
    """Orientation (w, x, y, z) of a free-floating root (quadruped); planar bodies use ``rooty``."""
    lift: float = 0.0
    """Height (m) of the lowest point above the floor (0: resting on it; > 0: in the air)."""


def lowest_point(physics) -> float:
    """Height (m) of the lowest point of the body's geoms (capsules, spheres, ellipsoids, boxes)."""
    import mujoco

    m, d = physics.model, physics.data
    low = INF
    for g in range(m.ngeom):
        if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE or m.geom_bodyid[g] == 0:
            continue
        R = d.geom_xmat[g].reshape(3, 3)
        size, t = m.geom_size[g], m.geom_type[g]
        if t == mujoco.mjtGeom.mjGEOM_SPHERE:
            ext = size[0]
        elif t == mujoco.mjtGeom.mjGEOM_CAPSULE:
            ext = size[0] + size[1] * abs(R[2, 2])
        elif t == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
            ext = np.sqrt(np.sum((R[2, :] * size[:3]) ** 2))
        elif t == mujoco.mjtGeom.mjGEOM_BOX:
            ext = np.sum(np.abs(R[2, :]) * size[:3])
        else:  # anything else: its bounding sphere
            ext = m.geom_rbound[g]
        low = min(low, d.geom_xpos[g, 2] - ext)
    return float(low)


def apply_pose(physics, pose: Pose) -> None:
    """Put ``physics`` in ``pose``, resting on the floor (or ``pose.lift`` above it), velocities as given."""
    names = physics.named.data.qpos.axes.row.names
    free = physics.model.jnt_type[0] == 0  # mjJNT_FREE: the quadruped's root
    with physics.reset_context():
        physics.data.qpos[:] = physics.model.qpos0
        physics.data.qvel[:] = 0
        for name, value in pose.qpos.items():
            if name not in names:
                raise KeyError(f"unknown joint {name!r}; joints: {', '.join(names)}")
            physics.named.data.qpos[name] = value
        if pose.quat is not None:
            q = np.asarray(pose.quat, dtype=float)
            physics.data.qpos[3:7] = q / np.linalg.norm(q)
        for name, value in pose.qvel.items():
            physics.named.data.qvel[name] = value
        physics.forward()
        shift = pose.lift - lowest_point(physics)
        if free:
            physics.data.qpos[2] += shift
        else:
            physics.named.data.qpos["rootz"] += shift


def pose_examples() -> dict[str, Pose]:
    """Per custom task key, a hand-set pose (and velocity) that its reward scores high (> 0.7)."""
    kneel = dict(right_hip=0.1, right_knee=-2.5, left_hip=0.1, left_knee=-2.5, right_ankle=0.8, left_ankle=0.8)
    biped = {
        "flipping": Pose(dict(rooty=2.5, right_hip=1.5, left_hip=1.5, right_knee=-2.0, left_knee=-2.0),
                         qvel=dict(rooty=12.0), lift=0.5),
        "one_foot": Pose(dict(right_hip=1.5, right_knee=-1.4)),
        "high_kick": Pose(dict(rooty=-0.3, right_hip=1.74)),
        "lying_down": Pose(dict(rooty=np.pi / 2)),
        "sit_knees": Pose(kneel),
        "lunge_pose": Pose(dict(rooty=-0.25, right_hip=1.4, right_knee=-1.5, left_hip=-0.05, left_knee=-2.3)),
    }
    poses = {f"{d}_{k}": v for d in BIPEDS for k, v in biped.items()}
    poses.update({
        "stickman_headstand": Pose(dict(rooty=np.pi, right_shoulder=2.0, left_shoulder=2.0,
                                        right_elbow=1.5, left_elbow=1.5)),
        "stickman_boxing": Pose(dict(right_shoulder=1.5, right_elbow=0.3, left_shoulder=0.3, left_elbow=2.3),
                                qvel=dict(right_shoulder=-2.0, right_elbow=-12.0)),
        "stickman_hands_up": Pose(dict(right_shoulder=np.pi, left_shoulder=np.pi)),
        "stickman_legs_up": Pose(dict(rooty=-np.pi / 2, right_hip=1.57, left_hip=1.57)),
        "cheetah_standing": Pose(dict(rooty=-1.2, bthigh=0.3, fthigh=0.0)),
        "cheetah_lying_down": Pose(dict(rooty=np.pi)),
        "quadruped_jump": Pose({}, lift=0.5),
        "quadruped_two_legs": Pose({}, quat=(np.cos(-0.6), 0.0, np.sin(-0.6), 0.0)),
        "quadruped_lie_down": Pose({f"pitch_{leg}": -0.6 for leg in ("front_left", "front_right", "back_left", "back_right")}),
    })
    return poses


def render_poses(keys=None, size: int = 64):
    """Frames of each task's hand-set pose, from its domain's camera, and titles with their rewards.

    Returns ``(frames (N, S, S, 3) uint8, titles [N])``, ready for ``plotting.frame_grid``.
    """
    from genrl_lite.envs import make_fast_to_render
    from genrl_lite.tasks import get_domain, get_task

    poses = pose_examples()
    keys = list(poses) if keys is None else list(keys)
    envs, frames, titles = {}, [], []
    for key in keys:
        task = get_task(key)
        if task.domain not in envs:  # one physics per domain, sized before its first render
            envs[task.domain] = task.make_env(0)
            make_fast_to_render(envs[task.domain].physics, size)
        p = envs[task.domain].physics
        apply_pose(p, poses[key])
        frames.append(p.render(size, size, camera_id=get_domain(task.domain).camera))
        titles.append(f"{key}\n{REWARDS[key](p):.2f}")
    for env in envs.values():
        env.close()
    return np.stack(frames), titles
