"""Evaluation in the real task: the body-height probe and scripts/inspect_policy.py, which shows what a
policy does next to random actions. (evaluate_behaviour itself is tested in test_behaviour.py.)"""
import json

import numpy as np
import pytest

from genrl_lite.envs import PixelEnv
from genrl_lite.evaluation import body_heights


def test_body_heights_reads_every_body_and_how_upright_the_torso_is():
    env = PixelEnv("walker_stand", seed=0)
    env.reset()
    physics = env.physics
    physics.named.data.qpos["rootz"] = 0.0
    physics.named.data.qpos["rooty"] = 0.0
    physics.forward()
    upright = body_heights(physics)
    assert {"torso_z", "left_foot_z", "right_thigh_z", "torso_up"} <= set(upright) and "world_z" not in upright
    assert upright["torso_z"] == pytest.approx(float(physics.named.data.xpos["torso", "z"]))
    assert upright["torso_up"] == pytest.approx(1.0) and upright["torso_z"] > upright["left_foot_z"]
    physics.named.data.qpos["rooty"] = np.pi         # turned over: the feet are now above the torso
    physics.forward()
    flipped = body_heights(physics)
    assert flipped["torso_up"] == pytest.approx(-1.0) and flipped["left_foot_z"] > flipped["torso_z"]
    quadruped = PixelEnv("quadruped_stand", seed=0)
    quadruped.reset()
    assert "torso_up" in body_heights(quadruped.physics)


def test_summarize_pools_episodes_after_the_settling_steps(load_script):
    summarize = load_script("inspect_policy").summarize
    probes = [{"a": np.array([9.0, 1.0, 2.0]), "reward": np.array([0.0, 1.0, 1.0])},
              {"a": np.array([9.0, 3.0]), "reward": np.array([0.0, 0.0])}]
    assert summarize(probes, settle=1) == {"a": pytest.approx(2.0), "reward": pytest.approx(2 / 3)}
    assert summarize(probes, settle=5)["a"] == pytest.approx((12 + 12) / 5)      # short episodes count whole
    with pytest.raises(ValueError, match="probe=body_heights"):
        summarize([], settle=1)


def test_inspect_policy_script_measures_the_policy_random_and_zero_actions(load_script, tmp_path):
    policy = tmp_path / "policy"
    load_script("train_behaviour").main(["--task", "walker_stand", "--out", str(policy), "--steps", "2",
                                         "--episodes", "1", "--max-steps", "5"])
    out = tmp_path / "inspect"
    record = load_script("inspect_policy").main([str(policy), "--episodes", "2", "--max-steps", "12", "--settle",
                                                 "4", "--every", "3", "--out", str(out)])
    assert json.loads((out / "inspect.json").read_text()) == json.loads(json.dumps(record))
    assert (out / "inspect.png").stat().st_size > 1000
    assert record["task"] == "walker_stand" and record["policy_updates"] == 2
    assert record["target_shown"]                              # a GenRL policy: its prompt's target is drawn
    assert set(record["returns"]) == {"policy", "random", "zero"} and len(record["returns"]["random"]) == 2
    means = record["means_after_settle"]
    assert {"torso_z", "left_foot_z", "torso_up", "reward"} <= set(means["policy"])
    assert means["policy"] != means["random"] != means["zero"]  # three behaviours, three sets of heights
    assert record["action_abs_mean"]["zero"] == record["action_saturated"]["zero"] == 0
    assert 0.4 < record["action_abs_mean"]["random"] < 0.6        # uniform in [-1, 1]: mean |a| 0.5
    assert 0 < record["action_saturated"]["random"] < 0.3         # P(|a| > 0.9) = 0.1
    assert 0 <= means["random"]["reward"] <= 2                # walker stand pays 0-2 per agent step
    with pytest.raises(SystemExit, match="no behaviour.json"):
        load_script("inspect_policy").main([str(tmp_path)])
    (policy / "policy.pt").unlink()
    with pytest.raises(SystemExit, match="no policy.pt"):
        load_script("inspect_policy").main([str(policy)])


def test_recorded_score_is_the_cells_first_episodes(load_script):
    mod = load_script("cross_evaluate")
    assert mod.recorded_score({"normalized": [0.1, 0.3, 0.8]}, 2) == pytest.approx(0.2)
    assert mod.recorded_score({"normalized": [0.1]}, 2) is None and mod.recorded_score({}, 1) is None


def test_cross_evaluate_replot_redraws_from_the_json_with_the_tables_method_names(load_script, tmp_path, monkeypatch):
    from genrl_lite import plotting
    from genrl_lite.benchmark import METHODS

    cross = load_script("cross_evaluate")
    score = {"normalized_mean": 0.4, "return_mean": 300.0, "normalized": [0.4]}
    record = {"domain": "quadruped", "tasks": ["quadruped_stand", "quadruped_walk"],
              "policies": [{"method": m, "trained_task": "quadruped_walk", "seed": 1,
                            "scores": {"quadruped_stand": score, "quadruped_walk": dict(score, normalized_mean=None)}}
                           for m in ("wmclip_video", "genrl")]}
    (tmp_path / "cross_eval.json").write_text(json.dumps(record))
    drawn, draw = [], plotting.similarity_matrix
    monkeypatch.setattr(plotting, "similarity_matrix", lambda m, rows, cols, **kw: drawn.append((m, rows, cols)) or draw(m, rows, cols, **kw))
    cross.main(["--replot", str(tmp_path / "cross_eval.json")])
    assert (tmp_path / "cross_eval.png").stat().st_size > 1000
    matrix, rows, cols = drawn[0]
    assert rows == [f"{METHODS['wmclip_video'].label}: walk s1", f"{METHODS['genrl'].label}: walk s1"]
    assert cols == ["stand", "walk"] and matrix[0, 0] == 0.4 and np.isnan(matrix[1, 1])
    (tmp_path / "cross_eval.json").write_text('{"domain": "quadruped"')        # cut short
    with pytest.raises(SystemExit, match="not a cross_eval.json record"):
        cross.main(["--replot", str(tmp_path / "cross_eval.json")])
    with pytest.raises(SystemExit, match="policy folders"):
        cross.main([])


def test_cross_evaluate_runs_every_policy_on_every_task_of_its_body(load_script, tmp_path):
    import genrl_lite.model_free as mf

    genrl = tmp_path / "genrl"
    load_script("train_behaviour").main(["--task", "walker_stand", "--out", str(genrl), "--steps", "2",
                                         "--episodes", "1", "--max-steps", "5"])
    free = tmp_path / "free"
    free.mkdir()
    agent = mf.TD3BC(6, mf.ModelFreeConfig.tiny())
    agent.save(free / "model_free.pt")
    (free / "result.json").write_text(json.dumps({"task": "walker_walk", "seed": 3, "benchmark_method": "td3bc_video",
                                                   "prompt": "walk", "normalized": [0.5, 0.7]}))
    cross = load_script("cross_evaluate")
    out = tmp_path / "cross"
    record = cross.main([str(genrl), str(free), "--tasks", "walker_stand", "walker_walk", "--episodes", "2",
                         "--max-steps", "8", "--out", str(out)])
    assert json.loads((out / "cross_eval.json").read_text()) == json.loads(json.dumps(record))
    assert (out / "cross_eval.png").stat().st_size > 1000
    rows = {r["kind"]: r for r in record["policies"]}
    assert rows["world model"]["trained_task"] == "walker_stand" and rows["model-free"]["seed"] == 3
    assert all(set(r["scores"]) == {"walker_stand", "walker_walk"} for r in record["policies"])
    # each method was asked for one task only: nothing to compare its prompt with
    assert len(record["prompt_effect"]) == 4 and all(r["effect"] is None for r in record["prompt_effect"])
    # each entry is the policy run as the benchmark runs it, with the cell's seed, on that task
    direct = mf.evaluate_model_free(mf.TD3BC.load(free / "model_free.pt"), "walker_stand", episodes=2, seed=3,
                                    max_steps=8, show_progress=False)
    assert rows["model-free"]["scores"]["walker_stand"]["return_mean"] == pytest.approx(direct["return_mean"], abs=0.01)
    assert rows["model-free"]["scores"]["walker_stand"]["normalized"] == pytest.approx(list(direct["normalized"]), abs=1e-4)
    with pytest.raises(SystemExit, match="not a walker task"):
        cross.main([str(genrl), "--tasks", "cheetah_run", "--max-steps", "2", "--out", str(out)])
    other = tmp_path / "other"
    other.mkdir()
    mf.TD3BC(6, mf.ModelFreeConfig.tiny()).save(other / "model_free.pt")
    (other / "result.json").write_text(json.dumps({"task": "cheetah_run", "seed": 0}))
    with pytest.raises(SystemExit, match="several domains"):
        cross.main([str(genrl), str(other), "--max-steps", "2", "--out", str(out)])
    (free / "model_free.pt").unlink()
    with pytest.raises(SystemExit, match="no policy.pt or model_free.pt"):
        cross.main([str(free), "--out", str(out)])
    with pytest.raises(SystemExit, match="not a policy folder"):
        cross.main([str(tmp_path), "--out", str(out)])
