"""Structured motor babbling reaches diverse poses in every domain (genrl_lite.exploration)."""
from __future__ import annotations

import numpy as np
import pytest

import genrl_lite  # noqa: F401
from genrl_lite import tasks
from genrl_lite.data import rollout, validate_episode
from genrl_lite.envs import PixelEnv
from genrl_lite.exploration import (MODES, Babbler, BabbleConfig, _touches_world, explore_episode,
                                    pose_features, root_body, set_random_pose)

DOMAIN_TASKS = [t for t in ("walker_stand", "cheetah_run", "quadruped_stand", "stickman_stand")
                if t in tasks.list_tasks()]


def test_babbler_actions_are_bounded_and_use_every_mode():
    rng = np.random.default_rng(0)
    babbler = Babbler(6, rng)
    actions = np.stack([babbler() for _ in range(3000)])
    assert actions.shape == (3000, 6) and actions.dtype == np.float32
    assert actions.min() >= -1 and actions.max() <= 1
    assert set(babbler.modes_used) == set(MODES)
    # Segments are structured: consecutive actions are far more alike than i.i.d. uniform ones.
    assert np.abs(np.diff(actions, axis=0)).mean() < 0.6 * np.abs(np.diff(rng.uniform(-1, 1, (3000, 6)), axis=0)).mean()


def _joint_spread(qpos_rows, physics) -> float:
    """Mean over limited joints of the std of the joint angle, as a fraction of the joint's range."""
    m = physics.model
    idx = [j for j in range(m.njnt) if m.jnt_limited[j] and m.jnt_type[j] in (2, 3)]
    q = np.array(qpos_rows)[:, [m.jnt_qposadr[j] for j in idx]]
    return float((q.std(0) / (m.jnt_range[idx, 1] - m.jnt_range[idx, 0])).mean())


@pytest.mark.parametrize("task", DOMAIN_TASKS)
def test_babbling_covers_more_poses_than_zero_actions(task):
    env = PixelEnv(task, seed=0, size=16)
    stats = {}
    for name in ("zero", "babble"):
        rng = np.random.default_rng(0)
        poses, qpos = [], []

        def record(physics):
            poses.append(pose_features(physics))
            qpos.append(physics.data.qpos.copy())

        for _ in range(3):
            if name == "babble":
                ep = explore_episode(env, rng, max_steps=100, on_step=record)
                validate_episode(ep)
            else:
                rollout(env, lambda step: (record(env.physics), np.zeros(env.action_dim))[1], max_steps=100)
        f = np.array(poses)
        # Posture cells visited: root height (20 cm bins) x uprightness (8 bins, upright..upside down).
        cells = set(zip(np.digitize(f[:, 0], np.linspace(0, 2, 11)), np.digitize(f[:, 1], np.linspace(-1, 1, 9))))
        stats[name] = dict(cells=len(cells), joints=_joint_spread(qpos, env.physics))
    env.close()
    assert stats["babble"]["cells"] >= stats["zero"]["cells"] + 2, stats
    assert stats["babble"]["joints"] > 1.2 * stats["zero"]["joints"], stats
    assert stats["babble"]["joints"] > 0.15, stats


@pytest.mark.parametrize("task", DOMAIN_TASKS)
def test_pose_resets_are_upright_or_anything_and_never_inside_the_floor(task):
    env = PixelEnv(task, seed=0, size=16)
    env.reset()
    rng = np.random.default_rng(0)
    physics = env.physics
    upright, anything, heights = [], [], []
    for kind, out in (("upright", upright), ("random", anything)):
        for _ in range(8):
            set_random_pose(physics, rng, kind)
            assert not _touches_world(physics), f"{kind} pose starts inside the floor"
            h, up = pose_features(physics)
            out.append(up)
            heights.append(h)
            assert np.all(physics.data.qvel == 0)
    assert min(upright) > 0.8, upright
    assert min(anything) < 0.0 and max(anything) > 0.3, anything  # some on their back, some not
    # Lowered until just clear of the floor, not dropped from high above.
    root = root_body(physics)
    assert max(heights) < 2.0 and physics.data.xpos[root, 2] < 2.0
    env.close()


def test_launched_episodes_are_dropped_and_retried():
    env = PixelEnv("walker_stand", seed=0, size=16)
    rng = np.random.default_rng(0)
    # Any upward motion counts as a launch: every try is dropped, so no episode comes back.
    assert explore_episode(env, rng, BabbleConfig(launch_speed=-1e9), max_steps=10, max_tries=2) is None
    ep = explore_episode(env, rng, max_steps=10)
    assert ep["meta"]["dropped_launches"] == 0 and ep["meta"]["initial_pose"] in ("default", "upright", "random")
    assert ep["obs"].shape == (11, 16, 16, 3)
    env.close()
