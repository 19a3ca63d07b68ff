import pytest

from genrl_lite import tasks

STANDARD = ["walker_stand", "walker_walk", "walker_run", "cheetah_run",
            "quadruped_stand", "quadruped_walk", "quadruped_run"]


def test_standard_tasks_are_registered_with_paper_references():
    keys = tasks.list_tasks(kind="standard")
    for key in STANDARD:
        assert key in keys
        t = tasks.get_task(key)
        assert t.prompt and t.reference is not None and t.reference.expert > t.reference.random
    assert tasks.get_task("walker", "walk") is tasks.get_task("walker_walk")


def test_normalized_score_maps_references_to_zero_and_one():
    ref = tasks.get_task("cheetah_run").reference
    assert tasks.normalized_score("cheetah_run", ref.random) == pytest.approx(0.0)
    assert tasks.normalized_score("cheetah_run", ref.expert) == pytest.approx(1.0)
    mid = (ref.expert + ref.random) / 2
    assert tasks.normalized_score(tasks.get_task("cheetah_run"), mid) == pytest.approx(0.5)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(tasks.UnknownNameError, match="valid tasks for walker: .*walker_walk"):
        tasks.get_task("walker_dance")
    with pytest.raises(tasks.UnknownNameError, match="valid domains: .*cheetah.*walker"):
        tasks.get_task("octopus_swim")
    with pytest.raises(tasks.UnknownNameError, match="valid domains"):
        tasks.get_domain("octopus")
    with pytest.raises(tasks.UnknownNameError):
        tasks.list_tasks(domain="octopus")


def test_register_reward_task_is_a_one_function_job():
    calls = []

    @tasks.register_reward_task("walker", "test_always_half", prompt="a test prompt",
                                reference=tasks.Reference(1.0, 0.0, "test"))
    def half(physics):
        """Always one half."""
        calls.append(physics)
        return 0.5

    try:
        t = tasks.get_task("walker_test_always_half")
        assert t.kind == "custom" and t.description == "Always one half."
        env = t.make_env(0)
        env.reset()
        ts = env.step([0.0] * 6)
        assert ts.reward == 0.5 and calls
    finally:
        tasks.TASKS.pop("walker_test_always_half")


def test_reference_table_has_a_row_per_task():
    rows = tasks.reference_table()
    assert {r["task"] for r in rows} == set(tasks.TASKS)
    assert all({"prompt", "expert", "random", "source"} <= set(r) for r in rows)


def test_domain_names_cannot_contain_underscores():
    with pytest.raises(ValueError, match="cannot contain"):
        tasks.register_domain("two_words", camera=0)
