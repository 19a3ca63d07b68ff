"""The privileged true-reward head (a diagnostic, genrl_lite.privileged): pairs from the dataset's
evaluation sidecars, a head that fits them, the reward's interface, and the train_behaviour.py switch.
Toy scale: an untrained tiny world model on data/sample."""
import json

import numpy as np
import pytest
import torch

import genrl_lite  # noqa: F401
from genrl_lite.actor_critic import ActorCritic, ActorCriticConfig
from genrl_lite.data import EpisodeDataset, load_episode
from genrl_lite.privileged import (RewardHead, TrueRewardHead, load_head, reward_shape, save_head, train_reward_head,
                                   true_reward_pairs)
from genrl_lite.runtime import REPO_ROOT
from genrl_lite.tasks import UnknownNameError
from genrl_lite.world_model import WorldModel, WorldModelConfig

SAMPLE = REPO_ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def wm_and_data():
    data = EpisodeDataset(SAMPLE, "walker", verbose=False)
    torch.manual_seed(0)
    return WorldModel(WorldModelConfig.preset("tiny"), data.action_dim).eval(), data


def test_pairs_use_only_the_episodes_collected_with_the_task(wm_and_data):
    wm, data = wm_and_data
    pairs = true_reward_pairs(wm, data, "walker_walk")
    walk = [p for p in data.paths if load_episode(p, with_eval=True)["meta"]["task"] == "walker_walk"]
    assert 0 < len(walk) < len(data.paths) and pairs["episodes"] == len(walk)
    want = np.concatenate([load_episode(p, with_eval=True)["reward"][1:] for p in walk])
    assert pairs["feat"].shape == (len(want), wm.cfg.feat_dim)
    np.testing.assert_allclose(pairs["reward"].numpy(), want, rtol=0, atol=1e-6)
    assert pairs["heldout"].dtype == torch.bool and len(pairs["heldout"]) == len(want)
    with pytest.raises(ValueError, match="tasks found: .*walker_stand"):
        true_reward_pairs(wm, data, "cheetah_run")


def test_head_fits_a_reward_that_the_features_determine():
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(4000, 12, generator=g)
    reward = torch.tanh(feat[:, 0]) + 0.5 * feat[:, 3] ** 2
    held = torch.arange(4000) % 10 == 9
    head, fit = train_reward_head({"feat": feat, "reward": reward, "heldout": held}, steps=300, batch=256)
    assert fit["heldout_pairs"] == int(held.sum()) and fit["train_pairs"] == 4000 - int(held.sum())
    assert fit["r"] > 0.95 and fit["mse"] < 0.1 * fit["var"], fit
    # shuffled rewards carry no information the head could learn
    noise = reward[torch.randperm(4000, generator=g)]
    _, bad = train_reward_head({"feat": feat, "reward": noise, "heldout": held}, steps=300, batch=256)
    assert bad["r"] < 0.3 and bad["mse"] > 0.7 * bad["var"], bad
    with pytest.raises(AssertionError, match="feat"):
        train_reward_head({"feat": feat, "reward": reward[:10], "heldout": held}, steps=1)


def test_reward_interface_checkpoint_and_frozen_head(wm_and_data, tmp_path):
    wm, data = wm_and_data
    pairs = true_reward_pairs(wm, data, "walker_stand")
    head, fit = train_reward_head(pairs, steps=20, units=16, layers=1)
    save_head(head, fit, tmp_path / "head.pt")
    again, fit2 = load_head(tmp_path / "head.pt")
    assert fit2 == fit and all(torch.equal(a, b) for a, b in zip(head.state_dict().values(),
                                                                  again.state_dict().values()))
    reward = TrueRewardHead(again, wm.rssm, "walker_stand", embed_dim=16)
    other = TrueRewardHead(again, wm.rssm, "walker_walk", embed_dim=16)
    assert reward.embedding.shape == (16,) and not torch.allclose(reward.embedding, other.embedding)
    states = {k: v[:8] for k, v in wm.rssm.initial(8).items()}
    ac = ActorCritic(pairs["feat"].shape[1], data.action_dim, ActorCriticConfig.tiny(), seed=0)
    before = [p.clone() for p in again.parameters()]
    metrics = ac.update(wm.rssm, states, reward)
    assert np.isfinite(metrics["actor_loss"]) and all(torch.equal(a, b) for a, b in zip(before, again.parameters()))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="delete it"):
        load_head(tmp_path / "bad.pt")
    with pytest.raises(AssertionError, match="features must be"):
        RewardHead(5)(torch.zeros(2, 4))


def test_a_world_model_without_connector_learns_from_the_true_reward_with_data(wm_and_data):
    from genrl_lite.behaviour import BehaviourConfig, train_behaviour
    from genrl_lite.training import CheckpointError, _build

    _, data = wm_and_data
    bundle = _build(WorldModelConfig.preset("tiny"), data.action_dim, None, "cpu")
    assert bundle.connector is None
    pairs = true_reward_pairs(bundle.world_model, data, "walker_stand")
    head, _ = train_reward_head(pairs, steps=5, units=8, layers=1)
    reward = TrueRewardHead(head, bundle.world_model.rssm, "walker_stand", embed_dim=bundle.embed_dim)
    assert bundle.embed_dim is None and reward.embedding.shape == (32,)
    cfg = BehaviourConfig.tiny(steps=3)
    result = train_behaviour(bundle, "standing up straight", cfg, data=data, reward_fn=reward, show_progress=False)
    assert result.steps == 3 and np.isfinite(result.metrics["reward_mean"]).all()
    with pytest.raises(CheckpointError, match="no connector.*data-free"):
        train_behaviour(bundle, "standing up straight", BehaviourConfig.tiny(steps=3, data_free=True),
                        reward_fn=reward, show_progress=False)
    with pytest.raises(CheckpointError, match="no connector"):
        train_behaviour(bundle, "standing up straight", cfg, data=data, show_progress=False)


def test_train_behaviour_script_true_reward(load_script, tmp_path):
    script = load_script("train_behaviour")
    out = tmp_path / "true"
    record = script.main(["--task", "walker_stand", "--reward", "true", "--out", str(out), "--steps", "3",
                          "--episodes", "1", "--max-steps", "5"])
    assert record["reward"] == "true" and record["train_updates"] == 3
    assert set(record["reward_head_fit"]) >= {"r", "mse", "var"} and (out / "reward_head.pt").exists()
    info = json.loads((out / "behaviour.json").read_text())
    assert info["reward"] == "TrueRewardHead"
    assert script.default_out("walker_stand", False, 0, "true").parent.name == "true_reward"


def test_imagined_and_real_rewards(wm_and_data):
    from genrl_lite.privileged import imagined_rewards, real_rewards

    wm, data = wm_and_data
    bundle = type("B", (), {"world_model": wm, "action_dim": data.action_dim})()
    # a reward that reads the first deterministic unit, and a policy that pushes all actions to +1
    reward = lambda s: s["deter"][..., :1]   # noqa: E731
    out = imagined_rewards(bundle, lambda f: torch.ones(len(f), data.action_dim), reward, data, starts=2,
                           length=4, horizon=3)
    assert set(out) == {"policy", "zero", "uniform"}
    assert out["policy"]["start"] == out["zero"]["start"] == out["uniform"]["start"]   # same start states
    assert out["policy"]["mean"] != out["zero"]["mean"]                               # actions matter
    ep = load_episode(data.paths[0])
    frames, actions = ep["obs"][:6], ep["action"][1:6]
    res = real_rewards(bundle, [{"frames": frames, "actions": actions}], reward)
    from genrl_lite.baseline_rewards import episode_posteriors
    posts = episode_posteriors(wm, {"obs": frames, "action": ep["action"][:6], "is_first": ep["is_first"][:6]})
    assert res["real"] == [pytest.approx(float(posts["deter"][1:, 0, 0].mean()), abs=1e-6)]
    assert res["imagined"] == res["matched_real"] == res["replayed"] == res["zero_actions"] == []
    # imagining with the recorded actions from real states: the model's prediction of the same steps
    recorded = iter(torch.as_tensor(actions[1:3]))
    res = real_rewards(bundle, [{"frames": frames, "actions": actions}], reward,
                       policy=lambda f: next(recorded)[None], horizon=2, every=10)
    assert len(res["imagined"]) == len(res["matched_real"]) == 1
    assert res["matched_real"][0] == pytest.approx(float(posts["deter"][2:4, 0, 0].mean()), abs=1e-6)
    # the open-loop controls: replaying the recorded actions is what that policy did; zero actions differ
    assert res["replayed"] == [pytest.approx(res["imagined"][0], abs=1e-6)]
    assert len(res["zero_actions"]) == 1 and res["zero_actions"][0] != pytest.approx(res["replayed"][0], abs=1e-6)
    with pytest.raises(AssertionError, match="frames"):
        real_rewards(bundle, [{"frames": frames, "actions": actions[:-1]}], reward)


def test_imagined_by_start_level_splits_the_same_starts_for_every_policy(wm_and_data):
    from genrl_lite.privileged import imagined_by_start_level

    wm, data = wm_and_data
    bundle = type("B", (), {"world_model": wm, "action_dim": data.action_dim})()
    reward = lambda s: s["deter"][..., :1]   # noqa: E731
    a = data.action_dim
    policies = {"plus": lambda f: torch.ones(len(f), a), "minus": lambda f: -torch.ones(len(f), a)}
    first = imagined_by_start_level(bundle, policies, reward, data, below=float("inf"), starts=2, length=4,
                                    horizons=(1, 3))
    assert (first["low_starts"], first["high_starts"]) == (8, 0)             # every start is below infinity
    assert set(first) == {"low_starts", "high_starts", "1", "3"} and set(first["3"]) == {"plus", "minus"}
    assert first["3"]["plus"]["high"] is None and first["3"]["plus"]["low"] != first["3"]["minus"]["low"]
    # same seed, same starts, same numbers; a threshold below every start makes them all high
    again = imagined_by_start_level(bundle, policies, reward, data, below=float("inf"), starts=2, length=4,
                                    horizons=(1, 3))
    assert again == first
    high = imagined_by_start_level(bundle, policies, reward, data, below=-float("inf"), starts=2, length=4,
                                   horizons=(3,))
    assert (high["low_starts"], high["high_starts"]) == (0, 8) and high["3"]["plus"]["low"] is None
    assert high["3"]["plus"]["high"] == first["3"]["plus"]["low"]          # the same rollouts, other label


def test_diagnose_imagination_script(load_script, tmp_path):
    out = tmp_path / "true"
    load_script("train_behaviour").main(["--task", "walker_stand", "--reward", "true", "--out", str(out),
                                         "--steps", "2", "--episodes", "1", "--max-steps", "5"])
    record = load_script("diagnose_imagination").main([str(out), "--episodes", "1", "--max-steps", "12"])
    assert json.loads((out / "imagination.json").read_text()) == json.loads(json.dumps(record))
    assert len(record["real_true_per_step"]) == len(record["real_head_per_step"]) == 1
    fr = record["from_real_states"]
    assert fr["imagined_mean"] is not None and fr["horizon"] == record["horizon"] and fr["every"] == 10
    assert len(fr["replayed_per_step"]) == len(fr["zero_actions_per_step"]) == 1
    # one start per episode (its first state), a longer look ahead
    reset = load_script("diagnose_imagination").main([str(out), "--episodes", "1", "--max-steps", "12",
                                                      "--real-horizon", "6", "--real-every", "1000",
                                                      "--out", str(tmp_path / "reset.json")])
    fr6 = reset["from_real_states"]
    assert (fr6["horizon"], fr6["every"]) == (6, 1000) and len(fr6["real_per_step"]) == 1
    assert fr6["real_mean"] != fr["real_mean"]                  # other steps of the same episode
    with pytest.raises(SystemExit, match="no reward_head.pt"):
        load_script("diagnose_imagination").main([str(tmp_path)])
    genrl = tmp_path / "genrl"
    load_script("train_behaviour").main(["--task", "walker_stand", "--out", str(genrl), "--steps", "2",
                                         "--episodes", "1", "--max-steps", "5", "--set", "features=spatial",
                                         "window=4", "--ac", "actor_lr=3e-4"])
    config = json.loads((genrl / "behaviour.json").read_text())["config"]      # plain strings and JSON values
    assert (config["features"], config["window"], config["actor_critic_overrides"]) == ("spatial", 4, {"actor_lr": 3e-4})
    record = load_script("diagnose_imagination").main([str(out), "--episodes", "1", "--max-steps", "12", "--compare",
                                                       str(genrl), "--horizons", "3", "--below", "0.5",
                                                       "--out", str(tmp_path / "cmp.json")])
    assert json.loads((tmp_path / "cmp.json").read_text()) == json.loads(json.dumps(record))
    by = record["by_start_level"]
    assert by["low_starts"] + by["high_starts"] == by["starts"] * 32
    levels = by["3"]
    names = list(levels)
    assert len(names) == 2 and names[0].endswith("true") and names[1].endswith("genrl")
    assert all(set(levels[n]) == {"low", "high"} for n in names)
    assert levels[names[0]] != levels[names[1]]                     # two policies, two imaginations
    # a GenRL policy scored by the true-reward run's head
    other = load_script("diagnose_imagination").main([str(genrl), "--head", str(out / "reward_head.pt"),
                                                      "--episodes", "1", "--max-steps", "12"])
    assert other["reward_head"].endswith("true/reward_head.pt") and (genrl / "imagination.json").exists()
    assert other["policy_updates"] == 2 and other["reward_head_fit"] == record["reward_head_fit"]
    with pytest.raises(SystemExit, match="no behaviour.json"):
        load_script("diagnose_imagination").main([str(out), "--compare", str(tmp_path)])


def test_reward_shape_tells_a_goal_detector_from_a_shaping_reward():
    rng = np.random.default_rng(0)
    true = [np.repeat(rng.uniform(0, 2, 20), 10) for _ in range(6)]          # (200,) per episode, 20 windows
    true[0][100:] = 2.0                                                        # an expert stretch: the goal
    detector = [(t > 1.9).astype(float) + 0.01 * rng.standard_normal(len(t)) for t in true]
    shaping = [t + 0.1 * rng.standard_normal(len(t)) for t in true]
    # the first step is dropped (the reset), so windows start at 1: shift to keep them aligned
    true = [np.concatenate([[0.0], t]) for t in true]
    detector = [np.concatenate([[5.0], d]) for d in detector]
    shaping = [np.concatenate([[5.0], s]) for s in shaping]
    d = reward_shape(detector, true, window=10, bins=4)
    s = reward_shape(shaping, true, window=10, bins=4)
    assert d["windows"] == s["windows"] == 120 and d["windows_below"] < 120
    assert d["r_all"] > 0.5 and abs(d["r_below"]) < 0.3                        # spots the goal, flat below it
    assert s["r_all"] > 0.95 and s["r_below"] > 0.95
    assert len(s["bin_means"]) == 4 and len(s["bin_edges"]) == 5
    assert s["bin_means"] == sorted(s["bin_means"])                           # rises with the true reward
    with pytest.raises(AssertionError, match="one pred and one true per episode"):
        reward_shape(shaping[:2], true, window=10)


def test_diagnose_reward_shape_script(load_script, tmp_path):
    out = tmp_path / "shape.json"
    record = load_script("diagnose_reward_shape").main(["--task", "walker_stand", "--episodes", "2", "--out", str(out),
                                                         "--features", "projection", "spatial", "--window", "25"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    rows = {(r["reward"], r["features"]): r for r in record["rows"]}
    assert set(rows) == {("genrl", "projection"), ("genrl", "spatial"), ("vlmrm_image", None), ("vlmrm_video", None)}
    windows = sum((len(load_episode(REPO_ROOT / e)["action"]) - 1) // 25 for e in record["episodes"])
    assert all(r["windows"] == windows and -1 <= r["r_all"] <= 1 for r in rows.values())
    assert rows["genrl", "projection"]["r_all"] != rows["genrl", "spatial"]["r_all"]
    with pytest.raises(UnknownNameError, match="projection, spatial"):
        load_script("diagnose_reward_shape").main(["--features", "pixels", "--out", str(out)])
