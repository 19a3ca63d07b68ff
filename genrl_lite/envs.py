"""What the agent sees and does: a dm_control task as 64x64 RGB frames, with action repeat 2.

Shapes (one environment step):
    obs     (S, S, 3) uint8   the rendered frame, S = 64 by default
    action  (A,) float32      in [-1, 1], A = 6 (walker, cheetah), 12 (quadruped), 10 (stickman)
    state   (P,) float64      the proprioceptive observation, flattened (evaluation/experts only)

The world model only ever gets ``obs`` and ``action``. ``reward`` (the true task reward, summed
over the repeated simulator steps, so up to 2 per agent step) and ``state`` exist for evaluation
and for the privileged experts that generate task-replay data.

Rendering on a CPU uses Mesa's llvmpipe. Shadows, reflections and multisampling are most of its
cost, so they are switched off on the model before the first frame (about 4x faster, same image
content for a 64x64 agent).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from genrl_lite import tasks as _tasks


@dataclasses.dataclass
class Step:
    """One agent step: the frame, the true reward (evaluation only), flags and proprio state."""

    obs: np.ndarray
    """(S, S, 3) uint8 RGB frame."""
    reward: float
    """True task reward summed over the action repeat (never given to the world model)."""
    is_first: bool
    """True on the frame returned by :meth:`PixelEnv.reset`."""
    is_last: bool
    """True on the final step of an episode (time limit)."""
    state: np.ndarray
    """(P,) flattened proprioceptive observation (for experts and evaluation only)."""


def flatten_observation(observation) -> np.ndarray:
    """Concatenate a dm_control observation dict into one float64 vector (P,), in key order."""
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in observation.values()])


def repeat_step(env, action, repeat: int):
    """Apply ``action`` for ``repeat`` steps of a dm_control ``env`` (stopping at the episode's end).

    Returns ``(last timestep, reward summed over the repeated steps)``.
    """
    reward = 0.0
    for _ in range(repeat):
        ts = env.step(action)
        reward += float(ts.reward or 0.0)
        if ts.last():
            break
    return ts, reward


def make_fast_to_render(physics, size: int) -> None:
    """Switch off shadows, reflections and multisampling; set the offscreen buffer to ``size``.

    Must run before the first ``physics.render``: the GL context is sized from the model then.
    """
    model = physics.model
    model.light_castshadow[:] = 0
    model.mat_reflectance[:] = 0
    model.vis.quality.offsamples = 0
    model.vis.global_.offwidth = max(size, 1)
    model.vis.global_.offheight = max(size, 1)


class PixelEnv:
    """A task by name as a pixel environment: ``reset()`` and ``step(action)`` return a :class:`Step`.

    >>> env = PixelEnv("walker_walk", seed=0)           # doctest: +SKIP
    >>> step = env.reset(); step.obs.shape, step.obs.dtype
    ((64, 64, 3), dtype('uint8'))
    """

    def __init__(self, task: str, seed: int = 0, size: int = 64, action_repeat: int = 2,
                 camera: int | None = None):
        if size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {size}")
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        self.task = _tasks.get_task(task)
        self.domain = _tasks.get_domain(self.task.domain)
        self.seed = seed
        self.size = size
        self.action_repeat = action_repeat
        self.camera = self.domain.camera if camera is None else camera
        self._env = self.task.make_env(seed)
        self.physics = self._env.physics
        make_fast_to_render(self.physics, size)
        spec = self._env.action_spec()
        self.action_shape = tuple(spec.shape)
        # dm_control's locomotion specs are already [-1, 1]; keep the true bounds to be safe.
        self._low = np.asarray(spec.minimum, dtype=np.float64) * np.ones(spec.shape)
        self._high = np.asarray(spec.maximum, dtype=np.float64) * np.ones(spec.shape)
        self._needs_reset = True

    @property
    def action_dim(self) -> int:
        """A, the number of actuators."""
        return int(np.prod(self.action_shape))

    @property
    def episode_steps(self) -> int:
        """Agent steps per episode (500 for the 1000-step dm_control tasks at action repeat 2)."""
        limit = self._env._step_limit  # dm_control: time_limit / control_timestep
        return int(np.ceil(limit / self.action_repeat))

    def render(self) -> np.ndarray:
        """The current frame, (S, S, 3) uint8."""
        # physics.render() builds a new Camera (and its MjvScene) on every call; reusing one is
        # 2-4x faster on llvmpipe and gives the same pixels. The camera returns a view of its own
        # buffer, overwritten by the next render, hence the copy.
        if getattr(self, "_camera_obj", None) is None:
            from dm_control.mujoco.engine import Camera

            self._camera_obj = Camera(self.physics, self.size, self.size, self.camera)
        return self._camera_obj.render().copy()

    def reset(self) -> Step:
        """Start a new episode (the seed's random stream continues across episodes)."""
        ts = self._env.reset()
        self._needs_reset = False
        return Step(self.render(), 0.0, True, False, flatten_observation(ts.observation))

    def step(self, action) -> Step:
        """Apply ``action`` (A,) in [-1, 1] for ``action_repeat`` simulator steps."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step(): the episode has ended or not started")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_shape:
            raise ValueError(f"action for {self.task.key} must have shape {self.action_shape}, "
                             f"got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action}")
        action = np.clip(action, self._low, self._high)
        ts, reward = repeat_step(self._env, action, self.action_repeat)
        last = bool(ts.last())
        self._needs_reset = last
        return Step(self.render(), reward, False, last, flatten_observation(ts.observation))

    def sample_action(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random action (A,) in the action bounds."""
        return rng.uniform(self._low, self._high).astype(np.float32)

    def close(self) -> None:
        """Free the physics and its GL context."""
        self._env.close()
