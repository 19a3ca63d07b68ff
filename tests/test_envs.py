import numpy as np
import pytest

from genrl_lite.envs import PixelEnv

CASES = [("walker_walk", 6, 0), ("cheetah_run", 6, 0), ("quadruped_walk", 12, 2)]


@pytest.mark.parametrize("key,action_dim,camera", CASES)
def test_shapes_dtypes_and_camera(key, action_dim, camera):
    env = PixelEnv(key, seed=0)
    first = env.reset()
    assert first.obs.shape == (64, 64, 3) and first.obs.dtype == np.uint8
    assert first.is_first and not first.is_last and first.reward == 0.0
    assert env.action_dim == action_dim and env.camera == camera
    step = env.step(np.zeros(action_dim))
    assert step.obs.shape == (64, 64, 3) and not step.is_first
    assert step.state.ndim == 1 and step.state.dtype == np.float64
    assert 0.0 <= step.reward <= 2.0  # dm_control rewards are in [0, 1], summed over 2 repeats
    assert first.obs.std() > 1  # a real picture, not a blank buffer
    env.close()


def test_actions_are_bounded_and_validated():
    env = PixelEnv("walker_stand", seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    a = env.sample_action(rng)
    assert a.shape == (6,) and np.all(a >= -1) and np.all(a <= 1)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        env.step(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(6, np.nan))
    # Out-of-range actions are clipped to [-1, 1], so 5 and 1 act identically.
    e1, e2 = PixelEnv("walker_stand", seed=3), PixelEnv("walker_stand", seed=3)
    e1.reset(), e2.reset()
    np.testing.assert_array_equal(e1.step(np.full(6, 5.0)).obs, e2.step(np.ones(6)).obs)


def test_same_seed_same_frames_other_seed_other_frames():
    def rollout(seed):
        env = PixelEnv("cheetah_run", seed=seed)
        frames = [env.reset().obs]
        rng = np.random.default_rng(1)
        for _ in range(5):
            frames.append(env.step(env.sample_action(rng)).obs)
        return np.stack(frames)

    np.testing.assert_array_equal(rollout(7), rollout(7))
    assert np.abs(rollout(7).astype(int) - rollout(8).astype(int)).sum() > 0


def test_episode_ends_after_500_agent_steps_and_needs_reset():
    env = PixelEnv("walker_walk", seed=0, size=16)
    env.reset()
    assert env.episode_steps == 500
    n, last = 0, False
    while not last:
        last = env.step(np.zeros(6)).is_last
        n += 1
    assert n == 500
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(6))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="valid tasks for walker"):
        PixelEnv("walker_fly")
    with pytest.raises(ValueError, match="size"):
        PixelEnv("walker_walk", size=2)
