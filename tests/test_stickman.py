"""The stickman domain: loads by name, 10 actions in [-1, 1], renders, walker-like reward, seeded."""
import numpy as np
import pytest

from genrl_lite import custom_tasks, tasks
from genrl_lite.envs import PixelEnv
from genrl_lite.stickman import JOINTS, stickman_reward


@pytest.fixture(scope="module")
def env():
    e = PixelEnv("stickman_walk", seed=0)
    yield e
    e.close()


def test_registered_by_name_with_prompts():
    assert tasks.get_domain("stickman").camera == 0
    for name, prompt in [("stand", "standing up"), ("walk", "robot walk fast clean"), ("run", "robot run fast clean")]:
        t = tasks.get_task("stickman", name)
        assert t.kind == "standard" and t.prompt == prompt and t.paper_reference is not None
    with pytest.raises(tasks.UnknownNameError, match="stickman_walk"):
        tasks.get_task("stickman_dance")


def test_ten_actions_in_unit_box_and_500_agent_steps(env):
    assert env.action_dim == 10 and env.episode_steps == 500
    spec = env._env.action_spec()
    assert np.all(spec.minimum == -1) and np.all(spec.maximum == 1)
    assert [env.physics.model.id2name(env.physics.model.actuator_trnid[i, 0], "joint")
            for i in range(10)] == list(JOINTS)


def test_frames_are_64x64_rgb_and_show_the_body(env):
    step = env.reset()
    assert step.obs.shape == (64, 64, 3) and step.obs.dtype == np.uint8
    step = env.step(np.zeros(10))
    assert step.obs.shape == (64, 64, 3) and not step.is_first
    # the body (orange "self" material) is in the frame: some pixels are much redder than blue
    r, b = step.obs[..., 0].astype(int), step.obs[..., 2].astype(int)
    assert ((r - b) > 60).sum() > 20


def test_reward_high_when_upright_high_and_moving_low_when_lying():
    walk = tasks.get_task("stickman_walk").make_env(0)
    p = walk.physics
    custom_tasks.apply_pose(p, custom_tasks.Pose({}, qvel=dict(rootx=1.5)))
    assert walk.task.get_reward(p) > 0.95
    custom_tasks.apply_pose(p, custom_tasks.Pose({}))  # standing still: stand part only
    assert 0.1 < walk.task.get_reward(p) < 0.3
    custom_tasks.apply_pose(p, custom_tasks.Pose(dict(rooty=np.pi / 2), qvel=dict(rootx=1.5)))
    assert walk.task.get_reward(p) < 0.3
    stand = tasks.get_task("stickman_stand").make_env(0)
    custom_tasks.apply_pose(stand.physics, custom_tasks.Pose({}))
    assert stickman_reward(stand.physics, 0.0) > 0.95
    custom_tasks.apply_pose(stand.physics, custom_tasks.Pose(dict(rooty=np.pi / 2)))
    assert stickman_reward(stand.physics, 0.0) < 0.5


def test_same_seed_same_episode():
    def rollout(seed):
        e = PixelEnv("stickman_stand", seed=seed)
        rng = np.random.default_rng(0)
        obs = [e.reset().obs]
        rewards = []
        for _ in range(5):
            s = e.step(e.sample_action(rng))
            obs.append(s.obs)
            rewards.append(s.reward)
        e.close()
        return np.stack(obs), np.array(rewards)

    o1, r1 = rollout(3)
    o2, r2 = rollout(3)
    o3, _ = rollout(4)
    assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    assert not np.array_equal(o1, o3)
