"""Custom (generalization) tasks: load by name, rewards behave as documented on hand-set poses."""
import json

import numpy as np
import pytest

from genrl_lite import custom_tasks as ct
from genrl_lite import tasks

EXPECTED = {
    "walker": ["flipping", "one_foot", "high_kick", "lying_down", "sit_knees", "lunge_pose"],
    "cheetah": ["standing", "lying_down"],
    "quadruped": ["jump", "two_legs", "lie_down"],
    "stickman": ["flipping", "one_foot", "high_kick", "lying_down", "sit_knees", "lunge_pose",
                 "headstand", "boxing", "hands_up", "legs_up"],
}
KEYS = [f"{d}_{n}" for d, names in EXPECTED.items() for n in names]

# Poses that must score low for each domain (besides the other tasks' poses checked below).
STANDING = ct.Pose({})
LYING = ct.Pose(dict(rooty=np.pi / 2))
UPSIDE_DOWN = ct.Pose(dict(rooty=np.pi))
LOW_POSES = {
    "walker": [STANDING, LYING, UPSIDE_DOWN],
    "stickman": [STANDING, LYING, UPSIDE_DOWN],
    "cheetah": [STANDING, ct.Pose(dict(rooty=-1.2)), UPSIDE_DOWN],
    "quadruped": [STANDING, ct.Pose({}, quat=(0.0, 1.0, 0.0, 0.0))],
}
# Which of these low poses legitimately score high (the intended pose *is* that posture).
ALLOWED_HIGH = {("walker_lying_down", 1), ("stickman_lying_down", 1), ("stickman_headstand", 2),
                ("cheetah_standing", 1), ("cheetah_lying_down", 2)}


@pytest.fixture(scope="module")
def physics():
    """One physics per domain (built from the first custom task of the domain)."""
    return {d: tasks.get_task(f"{d}_{names[0]}").make_env(0).physics for d, names in EXPECTED.items()}


def test_every_custom_task_loads_by_name_with_prompt_and_one_line_description():
    assert set(tasks.list_tasks(kind="custom")) >= set(KEYS)
    for key in KEYS:
        t = tasks.get_task(key)
        assert t.kind == "custom" and t.prompt and t.paper_reference is not None
        assert t.description and "\n" not in t.description, key
        assert ct.REWARDS[key].__doc__.splitlines()[0] == t.description
    assert set(ct.pose_examples()) == set(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_reward_is_high_on_its_pose_and_low_on_others(key, physics):
    domain = key.split("_", 1)[0]
    p, reward = physics[domain], ct.REWARDS[key]
    ct.apply_pose(p, ct.pose_examples()[key])
    assert reward(p) > 0.7, f"{key} on its own pose: {reward(p):.2f}"
    lows = [(i, pose) for i, pose in enumerate(LOW_POSES[domain]) if (key, i) not in ALLOWED_HIGH]
    assert len(lows) >= 2
    for i, pose in lows:
        ct.apply_pose(p, pose)
        assert reward(p) < 0.3, f"{key} on low pose {i}: {reward(p):.2f}"


def test_intended_poses_are_distinguishable(physics):
    """Most tasks' intended poses score low on most *other* tasks of the same domain."""
    poses = ct.pose_examples()
    for domain, names in EXPECTED.items():
        keys = [f"{domain}_{n}" for n in names]
        p = physics[domain]
        confusions = 0
        for a in keys:
            ct.apply_pose(p, poses[a])
            confusions += sum(ct.REWARDS[b](p) > 0.5 for b in keys if b != a)
        assert confusions <= len(keys) // 3 + 1, (domain, confusions)


def test_environment_reward_is_the_custom_reward():
    env = tasks.get_task("stickman_hands_up").make_env(0)
    env.reset()
    ts = env.step(np.zeros(10))
    assert ts.reward == pytest.approx(ct.hands_up(env.physics))
    env = tasks.get_task("quadruped_lie_down").make_env(0)
    env.reset()
    ts = env.step(np.zeros(12))
    assert ts.reward == pytest.approx(ct.quadruped_lie_down(env.physics))


def test_apply_pose_rests_on_the_floor_or_lifts(physics):
    p = physics["walker"]
    ct.apply_pose(p, ct.Pose({}))
    assert ct.lowest_point(p) == pytest.approx(0.0, abs=1e-6)
    ct.apply_pose(p, ct.Pose({}, lift=0.4, qvel=dict(rooty=3.0)))
    assert ct.lowest_point(p) == pytest.approx(0.4, abs=1e-6) and p.named.data.qvel["rooty"][0] == 3.0
    with pytest.raises(KeyError, match="unknown joint"):
        ct.apply_pose(p, ct.Pose(dict(elbow=1.0)))


def _fake_table(tmp_path, measured_expert: bool):
    entry = {"random": {"status": "measured", "mean": 20.0, "std": 1.0, "seeds": [0, 1, 2]},
             "expert": ({"status": "measured", "mean": 820.0, "std": 5.0, "seeds": [0, 1, 2],
                         "command": "python scripts/measure_references.py"} if measured_expert
                        else {"status": "pending"})}
    path = tmp_path / "references.json"
    path.write_text(json.dumps({"version": 1, "tasks": {"walker_flipping": entry}}))
    return path


def test_measured_references_are_attached_and_pending_ones_refuse_to_score(tmp_path):
    try:
        tasks.attach_measured_references(_fake_table(tmp_path, measured_expert=True))
        t = tasks.get_task("walker_flipping")
        assert (t.reference.expert, t.reference.random) == (820.0, 20.0)
        assert t.reference.source.startswith("genrl_lite: ") and t.paper_reference.expert == 720
        assert tasks.normalized_score("walker_flipping", 420.0) == pytest.approx(0.5)
        tasks.attach_measured_references(_fake_table(tmp_path, measured_expert=False))
        assert tasks.get_task("walker_flipping").reference is None
        with pytest.raises(ValueError, match="pending"):
            tasks.normalized_score("walker_flipping", 100.0)
        (tmp_path / "references.json").write_text("{not json")
        with pytest.warns(RuntimeWarning, match="unreadable"):
            tasks.attach_measured_references(tmp_path / "references.json")
    finally:
        tasks.attach_measured_references()  # back to the repository's table


def test_repository_references_table_loads():
    """The shipped table: every measured custom task scores 0 at random and 1 at expert."""
    tasks.attach_measured_references()
    for key in KEYS:
        t = tasks.get_task(key)
        if t.reference is None:
            with pytest.raises(ValueError, match="pending"):
                tasks.normalized_score(key, 0.0)
        else:
            assert tasks.normalized_score(key, t.reference.random) == pytest.approx(0.0)
            assert tasks.normalized_score(key, t.reference.expert) == pytest.approx(1.0)
