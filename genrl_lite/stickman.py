"""Stickman: dm_control's planar walker with two arms and a head, for upper-body behaviours.

GenRL adds this domain so that prompts like "punch" or "standing with the hands up" have a body
that can do them, without the data cost of a full humanoid (``../shared/GENRL_REFERENCE.md`` §14).
Ours is written from scratch in the dm_control style (``assets/stickman.xml``):

* the body is walker's torso and legs, unchanged (same masses, joints, ranges and gears), plus a
  head on a short neck and two arms, each with a shoulder hinge (-60..180 degrees, so the hands can
  go overhead) and an elbow hinge (0..150 degrees);
* 10 actuated joints, actions in [-1, 1], ordered as walker's six leg motors then
  right shoulder, right elbow, left shoulder, left elbow;
* the floor, skybox, light and tracking side camera (camera 0) are walker's; the camera sits a
  little further back, higher and less tilted so that raised hands and a headstand stay in a 64x64 frame;
* episodes are 25 s of simulated time, control every 0.025 s, so 1000 environment steps
  (500 agent steps at action repeat 2), and every episode starts from walker's random pose
  (random joint angles and body orientation, dropped onto the floor).

Rewards are walker's, computed the same way (``standing`` = torso high and upright, times a
forward-speed term for walk and run), so a stickman score means what a walker score means.

Shapes: action (A=10,) in [-1, 1]; observation dict: orientations (2*15,), height (), velocity (13,).
"""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from genrl_lite import tasks as _tasks

XML_PATH = Path(__file__).resolve().parent / "assets" / "stickman.xml"
"""The MJCF model (includes dm_control's common skybox/visual/materials files)."""

TIME_LIMIT = 25.0
"""Seconds of simulated time per episode (as walker)."""
CONTROL_TIMESTEP = 0.025
"""Seconds between two environment steps (10 physics steps of 2.5 ms, as walker)."""
STAND_HEIGHT = 1.2
"""Torso height (m) above which the standing term is 1 (walker's value: same legs and torso)."""
WALK_SPEED = 1.0
"""Forward speed (m/s) above which the walk move term is 1."""
RUN_SPEED = 8.0
"""Forward speed (m/s) above which the run move term is 1."""

JOINTS = ("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
          "right_shoulder", "right_elbow", "left_shoulder", "left_elbow")
"""The actuated joints, in action order."""


def _physics_class():
    from dm_control.suite import walker

    class Physics(walker.Physics):
        """walker's Physics (torso_height, torso_upright, horizontal_velocity, orientations) plus limbs."""

        def body_height(self, name: str) -> float:
            """Height (m) of a body's frame origin above the floor, e.g. ``body_height("head")``."""
            return float(self.named.data.xpos[name, "z"])

    return Physics


def _task_class():
    from dm_control.suite import base
    from dm_control.suite.utils import randomizers
    from dm_control.utils import rewards

    class Stickman(base.Task):
        """Stand (``move_speed=0``), walk or run: walker's reward on the stickman body."""

        def __init__(self, move_speed: float, random=None):
            self._move_speed = move_speed
            super().__init__(random=random)

        def initialize_episode(self, physics):
            # Random joint angles and a random body orientation; the body then falls to the floor.
            randomizers.randomize_limited_and_rotational_joints(physics, self.random)
            super().initialize_episode(physics)

        def get_observation(self, physics):
            obs = collections.OrderedDict()
            obs["orientations"] = physics.orientations()
            obs["height"] = physics.torso_height()
            obs["velocity"] = physics.velocity()
            return obs

        def get_reward(self, physics):
            return stickman_reward(physics, self._move_speed, rewards.tolerance)

    return Stickman


def stickman_reward(physics, move_speed: float, tolerance=None) -> float:
    """walker's reward: ``standing * (5 * moving + 1) / 6`` (just ``standing`` when ``move_speed`` is 0).

    standing = (3 * [torso at least 1.2 m high] + [torso upright]) / 4, each term in [0, 1];
    moving = [forward speed at least ``move_speed``], linear down to 0.5 at half that speed.
    """
    if tolerance is None:
        from dm_control.utils.rewards import tolerance
    high = tolerance(physics.torso_height(), bounds=(STAND_HEIGHT, float("inf")), margin=STAND_HEIGHT / 2)
    upright = (1 + physics.torso_upright()) / 2
    standing = (3 * high + upright) / 4
    if move_speed == 0:
        return float(standing)
    moving = tolerance(physics.horizontal_velocity(), bounds=(move_speed, float("inf")),
                       margin=move_speed / 2, value_at_margin=0.5, sigmoid="linear")
    return float(standing * (5 * moving + 1) / 6)


def load(task: str = "stand", seed: int | None = None, time_limit: float = TIME_LIMIT):
    """A dm_control ``control.Environment`` for stickman ``stand``, ``walk`` or ``run``.

    ``seed`` seeds the initial-pose randomness (an int, or None for a fresh random stream).
    """
    from dm_control.rl import control
    from dm_control.suite import common

    speeds = {"stand": 0.0, "walk": WALK_SPEED, "run": RUN_SPEED}
    if task not in speeds:
        raise _tasks.UnknownNameError(f"unknown stickman base task {task!r}; valid: {', '.join(speeds)}")
    physics = _physics_class().from_xml_string(XML_PATH.read_text(), common.ASSETS)
    env_task = _task_class()(move_speed=speeds[task], random=seed)
    return control.Environment(physics, env_task, time_limit=time_limit, control_timestep=CONTROL_TIMESTEP)


_tasks.register_domain("stickman", camera=0, load=load,
                       description="planar walker with arms and a head, 10 actuated joints (genrl_lite)")

# Prompts and the paper's expert/random returns: v1 Table 3 (GENRL_REFERENCE.md §10); the paper's
# stickman is a different model file, so these numbers are indicative (see scripts/measure_references.py).
for _name, _prompt, _expert, _random, _desc in [
    ("stand", "standing up", 970, 70, "upright torso high above the feet"),
    ("walk", "robot walk fast clean", 960, 35, "upright and moving forward at 1 m/s or more"),
    ("run", "robot run fast clean", 830, 25, "upright and moving forward at 8 m/s or more"),
]:
    _tasks.register_task("stickman", _name, _prompt, _tasks.Reference(_expert, _random, "paper"), _desc,
                         kind="standard")((lambda n: lambda seed: load(n, seed))(_name))
