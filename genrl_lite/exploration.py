"""Task-agnostic exploration data: *structured motor babbling* from diverse starting poses.

The paper explores with Plan2Explore. Uniformly random actions are a poor substitute: they average
out into jitter, and a walker that starts lying stays on the floor. We get pose diversity (lying,
kneeling, standing, falling, flipping, upside down) more cheaply with two ingredients:

1. **Pose resets** (:func:`set_random_pose`): for some episodes the initial root orientation and joint
   angles are re-drawn, either near *upright* (so it starts standing, then kneels or falls) or fully
   *random* (lying, upside down). The body is then lowered until it just touches nothing, so it never
   interpenetrates the floor (interpenetration launches it into the air).
2. **Babbling segments** (:class:`Babbler`): every 15-60 agent steps a new motor pattern is drawn:
   smooth Ornstein-Uhlenbeck noise, sinusoidal gaits (random frequency, per-joint phase and offset),
   a held random posture, bang-bang flailing, uniform noise, or rest.

Everything goes through the generic MuJoCo model (joint types, limits, contacts), so it works for any
registered domain. Episodes where the body is launched anyway (upward speed above ``launch_speed``)
are dropped by :func:`explore_episode`.

Shapes: A action dim; episodes as in :mod:`genrl_lite.data` (T frames).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from genrl_lite.data import rollout
from genrl_lite.envs import Step, flatten_observation

MODES = ("ou", "sine", "posture", "bang", "uniform", "rest")


@dataclasses.dataclass
class BabbleConfig:
    """How exploration episodes are generated (defaults are used for the datasets)."""

    segment: tuple = (15, 60)
    """Min and max agent steps of one babbling segment (drawn uniformly)."""
    mode_weights: tuple = (0.25, 0.25, 0.2, 0.15, 0.1, 0.05)
    """Probability of each segment mode, in the order of ``MODES``."""
    ou_theta: float = 0.15
    """Mean reversion of the OU noise per step (smaller = smoother, wider swings)."""
    ou_sigma: tuple = (0.2, 0.6)
    """Range of the OU noise scale."""
    sine_period: tuple = (6, 40)
    """Range of the gait period, in agent steps."""
    bang_hold: tuple = (2, 8)
    """Steps a bang-bang action is held before re-drawing its signs."""
    pose_probs: tuple = (0.4, 0.3, 0.3)
    """Probability of the initial pose being the task's default, ``upright`` or ``random``."""
    upright_tilt: float = 0.3
    """Std of the root tilt (radians) and joint noise (fraction of range) of the upright start."""
    launch_speed: float = 8.0
    """Upward speed (m/s) of the root that marks an unphysical launch; such episodes are dropped."""


class Babbler:
    """A task-agnostic action generator: ``babbler(step) -> action (A,)`` switching patterns by segment."""

    def __init__(self, action_dim: int, rng: np.random.Generator, cfg: BabbleConfig | None = None):
        self.A, self.rng, self.cfg = action_dim, rng, cfg or BabbleConfig()
        self.modes_used: list[str] = []
        self._left = 0

    def _new_segment(self) -> None:
        c, rng, A = self.cfg, self.rng, self.A
        p = np.asarray(c.mode_weights, float)
        self.mode = str(rng.choice(MODES, p=p / p.sum()))
        self.modes_used.append(self.mode)
        self._left, self._t = int(rng.integers(c.segment[0], c.segment[1] + 1)), 0
        if self.mode == "ou":
            self._x = rng.uniform(-0.5, 0.5, A)
            self._sigma = rng.uniform(*c.ou_sigma)
        elif self.mode == "sine":  # one gait frequency, per-joint amplitude, phase and offset
            self._omega = 2 * np.pi / rng.uniform(*c.sine_period)
            self._amp = rng.uniform(0.3, 1.0, A)
            self._phase = rng.uniform(0, 2 * np.pi, A)
            self._offset = rng.uniform(-0.4, 0.4, A)
        elif self.mode == "posture":
            self._target = rng.uniform(-1, 1, A)
        elif self.mode == "bang":
            self._hold = 0

    def __call__(self, step=None) -> np.ndarray:
        if self._left <= 0:
            self._new_segment()
        self._left -= 1
        self._t += 1
        c, rng, A = self.cfg, self.rng, self.A
        if self.mode == "ou":
            self._x += -c.ou_theta * self._x + self._sigma * rng.standard_normal(A)
            a = self._x
        elif self.mode == "sine":
            a = self._offset + self._amp * np.sin(self._omega * self._t + self._phase)
        elif self.mode == "posture":
            a = self._target + 0.05 * rng.standard_normal(A)
        elif self.mode == "bang":
            if self._hold <= 0:
                self._bang = rng.choice([-1.0, 1.0], A)
                self._hold = int(rng.integers(c.bang_hold[0], c.bang_hold[1] + 1))
            self._hold -= 1
            a = self._bang
        elif self.mode == "uniform":
            a = rng.uniform(-1, 1, A)
        else:  # rest: let gravity act (lying still, slumping)
            a = np.zeros(A)
        return np.clip(a, -1, 1).astype(np.float32)


# --- initial poses through the generic MuJoCo model ---------------------------------------------

def root_body(physics) -> int:
    """Id of the body that carries the root joints (the first child of the world with a joint)."""
    m = physics.model
    for j in range(m.njnt):
        if m.body_parentid[m.jnt_bodyid[j]] == 0:
            return int(m.jnt_bodyid[j])
    raise ValueError("model has no jointed body attached to the world")


def pose_features(physics) -> tuple[float, float]:
    """``(root height in m, uprightness)``: uprightness is the world-z component of the root's z axis
    (1 upright, 0 on its side, -1 upside down)."""
    b = root_body(physics)
    return float(physics.data.xpos[b, 2]), float(physics.data.xmat[b].reshape(3, 3)[2, 2])


def _random_quat(rng) -> np.ndarray:
    q = rng.standard_normal(4)
    return q / np.linalg.norm(q)


def _tilt_quat(rng, tilt: float) -> np.ndarray:
    """A random yaw plus a small random tilt (upright for a free-floating body)."""
    yaw = rng.uniform(-np.pi, np.pi)
    axis = np.array([*rng.standard_normal(2), 0.0])
    axis /= np.linalg.norm(axis) + 1e-9
    angle = rng.normal(0, tilt)
    qy = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])
    qt = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
    w1, x1, y1, z1 = qt
    w2, x2, y2, z2 = qy
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def set_random_pose(physics, rng: np.random.Generator, kind: str = "random", tilt: float = 0.3) -> None:
    """Re-draw the root orientation and joint angles, then lower the body onto the floor.

    ``kind="upright"``: root near its zero orientation (standing for walker/stickman, on its feet
    for cheetah/quadruped), joints near the middle of their range. ``kind="random"``: any root
    orientation, joints uniform in their range. Velocities are zeroed. The height is the lowest at
    which nothing is in contact, so the body drops a few cm instead of exploding out of the floor.
    """
    if kind not in ("upright", "random"):
        raise ValueError(f"pose kind must be 'upright' or 'random', got {kind!r}")
    m, d = physics.model, physics.data
    root = root_body(physics)
    z_adr = None
    with physics.reset_context():
        for j in range(m.njnt):
            adr, jtype = m.jnt_qposadr[j], m.jnt_type[j]
            if m.jnt_bodyid[j] == root:
                if jtype == 0:  # free joint: position (3) + quaternion (4)
                    d.qpos[adr + 3:adr + 7] = _tilt_quat(rng, tilt) if kind == "upright" else _random_quat(rng)
                    z_adr = adr + 2
                elif jtype == 3:  # planar root rotation
                    d.qpos[adr] = rng.normal(0, tilt) if kind == "upright" else rng.uniform(-np.pi, np.pi)
                elif jtype == 2 and abs(m.jnt_axis[j][2]) > 0.9:  # vertical slide
                    z_adr = adr
            elif jtype in (2, 3) and m.jnt_limited[j]:
                lo, hi = m.jnt_range[j]
                if kind == "upright":
                    mid = np.clip(0.0, lo, hi)  # the model's rest pose, kept inside the limits
                    d.qpos[adr] = np.clip(mid + rng.normal(0, tilt) * (hi - lo) / 2, lo, hi)
                else:
                    d.qpos[adr] = rng.uniform(lo, hi)
        d.qvel[:] = 0
        if z_adr is None:
            return
        # Start with the root at floor level (everything below it penetrates), then rise in 1 cm steps.
        physics.forward()
        d.qpos[z_adr] -= d.xpos[root, 2]
        for _ in range(1000):
            physics.forward()
            if not _touches_world(physics):
                break
            d.qpos[z_adr] += 0.01


def _touches_world(physics) -> bool:
    """Whether any contact involves a world geom (the floor); self-contacts do not count."""
    d, body = physics.data, physics.model.geom_bodyid
    ncon = d.ncon
    return bool(ncon and np.any((body[d.contact.geom1[:ncon]] == 0) | (body[d.contact.geom2[:ncon]] == 0)))


def state_of(env) -> np.ndarray:
    """The flattened proprio state (P,) of ``env``'s current physics (after a pose change)."""
    return flatten_observation(env._env.task.get_observation(env.physics))


def explore_episode(env, rng: np.random.Generator, cfg: BabbleConfig | None = None,
                    max_steps: int | None = None, max_tries: int = 5, on_step=None) -> dict | None:
    """One exploration episode (dict as :func:`genrl_lite.data.rollout`) plus ``meta`` about it.

    Draws the initial pose (default / upright / random), babbles, and retries (up to ``max_tries``)
    if the body gets launched. Returns ``None`` only if every try was launched. ``on_step(physics)``
    is called after every agent step (e.g. to record poses).
    """
    cfg = cfg or BabbleConfig()
    for attempt in range(max_tries):
        first = env.reset()
        p = np.asarray(cfg.pose_probs, float)
        kind = str(rng.choice(["default", "upright", "random"], p=p / p.sum()))
        if kind != "default":
            set_random_pose(env.physics, rng, kind, cfg.upright_tilt)
            first = Step(env.render(), 0.0, True, False, state_of(env))
        babbler = Babbler(env.action_dim, rng, cfg)
        dt = env._env.control_timestep() * env.action_repeat
        height = [pose_features(env.physics)[0]]

        def launched(step) -> bool:
            if on_step is not None:
                on_step(env.physics)
            h = pose_features(env.physics)[0]
            up_speed = (h - height[0]) / dt
            height[0] = h
            return up_speed > cfg.launch_speed

        ep = rollout(env, babbler, max_steps=max_steps, first=first, stop=launched)
        if ep is not None:
            ep["meta"] = dict(policy="babbling", initial_pose=kind, modes=babbler.modes_used,
                              dropped_launches=attempt)
            return ep
    return None
