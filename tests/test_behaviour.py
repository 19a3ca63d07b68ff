"""Behaviour from prompts (issue 5): training in imagination with data and data-free, resume,
evaluation in the real task from pixels, and clear errors. Toy scale: a tiny world model trained
for a few steps on data/sample inside the test, and the fake world model of fake_world_model.py."""
import ast
import dataclasses
import inspect
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fake_world_model import make_all

import genrl_lite  # noqa: F401
from genrl_lite import behaviour as bh_mod
from genrl_lite.behaviour import BehaviourConfig, load_policy, task_action_dim, train_behaviour
from genrl_lite.evaluation import evaluate_behaviour, imagine_rollout
from genrl_lite.actor_critic import ActorCriticConfig
from genrl_lite.runtime import REPO_ROOT
from genrl_lite.tasks import UnknownNameError, get_task, normalized_score
from genrl_lite.training import CheckpointError, ModelBundle, _build, train_world_model
from genrl_lite.world_model import WorldModelConfig

E = 16


def tiny_cfg(**kw):
    return BehaviourConfig.tiny(**{"steps": 10, **kw})


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    """A tiny walker world model + connector + aligner, 5 training steps on data/sample (seconds)."""
    from genrl_lite.data import EpisodeDataset

    torch.set_num_threads(1)
    data = EpisodeDataset(REPO_ROOT / "data" / "sample", "walker", verbose=False)
    g = torch.Generator().manual_seed(0)

    def embed_fn(batch):
        return F.normalize(torch.randn(*batch["obs"].shape[:2], E, generator=g), dim=-1).numpy()

    cfg = WorldModelConfig.preset("tiny", save_every=1000)
    bundle = train_world_model(cfg, data, 5, tmp_path_factory.mktemp("wm"), embed_fn=embed_fn, show_progress=False)
    return bundle, data


def prompt_embedding(seed=0):
    return F.normalize(torch.randn(E, generator=torch.Generator().manual_seed(seed)), dim=0)


class ExplodingData:
    """A dataset that fails if anyone samples from it."""

    action_dim = 6

    def sample(self, *args, **kwargs):
        raise AssertionError("data-free training touched the dataset")


class FakeVLM:
    name, fingerprint = "fake-vlm", "0"

    def __init__(self, dim=E):
        self.dim, self.calls = dim, []

    def embed_text(self, prompts):
        self.calls.append(list(prompts))
        return torch.stack([prompt_embedding(len(p)) for p in prompts])


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


# --- configuration -------------------------------------------------------------------------------


def test_presets_overrides_and_docstrings():
    laptop, paper = BehaviourConfig.laptop(), BehaviourConfig.paper()
    assert (laptop.horizon, laptop.minutes, laptop.num_starts) == (15, 15.0, 512)
    assert (paper.horizon, paper.num_starts, paper.actor_critic) == (16, 1024, "paper")
    assert paper.actor_critic_config().units == 1024 and paper.actor_critic_config().horizon == 16
    assert BehaviourConfig.tiny().data_free_config().n * 2 == BehaviourConfig.tiny().num_starts
    assert BehaviourConfig.preset("laptop", data_free=True, seed=3).seed == 3
    lr = BehaviourConfig.laptop(actor_critic_overrides={"actor_lr": 3e-4}).actor_critic_config()
    assert (lr.actor_lr, lr.critic_lr, lr.horizon) == (3e-4, ActorCriticConfig.laptop().critic_lr, 15)
    with pytest.raises(UnknownNameError, match="tiny, laptop, paper"):
        BehaviourConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown BehaviourConfig field"):
        BehaviourConfig.tiny(horizn=3)
    body = ast.parse(inspect.getsource(BehaviourConfig)).body[0].body
    fields = [i for i, n in enumerate(body) if isinstance(n, ast.AnnAssign)]
    assert len(fields) == len(dataclasses.fields(BehaviourConfig))
    for i in fields:
        assert isinstance(body[i + 1], ast.Expr) and isinstance(body[i + 1].value, ast.Constant), body[i].target.id
    for letter in ("B ", "L ", "H ", "A ", "F ", "S "):
        assert f"    {letter}" in bh_mod.__doc__
    from genrl_lite import evaluation

    for letter in ("T ", "A ", "F ", "S "):
        assert f"    {letter}" in evaluation.__doc__


# --- training ------------------------------------------------------------------------------------


def test_training_with_data_changes_the_actor_logs_and_saves(model_and_data, tmp_path):
    bundle, data = model_and_data
    wm_before = params(bundle.world_model)
    result = train_behaviour(bundle, prompt_embedding(), tiny_cfg(), data=data, out_dir=tmp_path,
                             task="walker_stand", show_progress=False)
    fresh = bh_mod.ActorCritic(bundle.cfg.feat_dim, 6, tiny_cfg().actor_critic_config(), seed=0)
    assert result.steps == 10 and result.actor_critic.updates == 10
    assert changed(params(fresh.actor), result.actor) and changed(params(fresh.critic), result.actor_critic.critic)
    assert not changed(wm_before, bundle.world_model)                    # the world model stays frozen
    assert list(result.metrics["step"]) == [5, 10]                       # log_every = 5
    for key in ("reward_mean", "entropy", "return_mean", "imag_steps_per_s", "elapsed_s"):
        assert np.isfinite(result.metrics[key]).all(), key
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10]
    info = json.loads((tmp_path / "behaviour.json").read_text())
    assert info["config"]["data_free"] is False and info["task"] == "walker_stand" and info["action_dim"] == 6
    loaded = load_policy(tmp_path)
    for a, b in zip(loaded.actor.parameters(), result.actor.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_gives_the_same_policy_as_an_uninterrupted_run(model_and_data, tmp_path):
    bundle, data = model_and_data
    full = train_behaviour(bundle, prompt_embedding(), tiny_cfg(), data=data, out_dir=tmp_path / "a",
                           show_progress=False)
    part = train_behaviour(bundle, prompt_embedding(), tiny_cfg(steps=7, save_every=3), data=data,
                           out_dir=tmp_path / "b", show_progress=False)
    assert part.steps == 7 and list(part.metrics["step"]) == [5, 7]
    # As if the process had died after logging step 9 but before saving it: the row is dropped.
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 9, "elapsed_s": 1.0, "reward_mean": 123.0}) + "\n")
    resumed = train_behaviour(bundle, prompt_embedding(), tiny_cfg(), data=data, out_dir=tmp_path / "b",
                              show_progress=False)
    assert resumed.steps == 10 and list(resumed.metrics["step"]) == [5, 7, 10]
    for a, b in zip(full.actor_critic.state_dict().values(), resumed.actor_critic.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)                 # bit-identical updates
    assert full.metrics["reward_mean"][0] == resumed.metrics["reward_mean"][0]
    assert (np.diff(resumed.metrics["elapsed_s"]) > 0).all()
    # A budget of 0.12 s stops after a few updates, logs the partial window, saves; a later call
    # with a larger total continues from there.
    short = train_behaviour(bundle, prompt_embedding(), tiny_cfg(steps=200, minutes=0.002), data=data,
                            out_dir=tmp_path / "c", show_progress=False)
    assert 1 <= short.steps < 200 and short.metrics["step"][-1] == short.steps
    assert load_policy(tmp_path / "c").updates == short.steps
    longer = train_behaviour(bundle, prompt_embedding(), tiny_cfg(steps=short.steps + 2, minutes=None), data=data,
                             out_dir=tmp_path / "c", show_progress=False)
    assert longer.steps == short.steps + 2 and longer.metrics["elapsed_s"][-1] > short.metrics["elapsed_s"][-1]
    # A zero-minute budget stops at once and leaves the checkpoint as it was.
    again = train_behaviour(bundle, prompt_embedding(), tiny_cfg(steps=20, minutes=0.0), data=data,
                            out_dir=tmp_path / "b", show_progress=False)
    assert again.steps == 10
    with pytest.raises(CheckpointError, match="prompt_hash"):
        train_behaviour(bundle, prompt_embedding(seed=1), tiny_cfg(), data=data, out_dir=tmp_path / "b",
                        show_progress=False)
    fresh = train_behaviour(bundle, prompt_embedding(seed=1), tiny_cfg(steps=2, log_every=1), data=data,
                            out_dir=tmp_path / "b", resume=False, show_progress=False)
    assert fresh.steps == 2 and list(fresh.metrics["step"]) == [1, 2]


def test_data_free_training_touches_no_dataset(model_and_data, tmp_path):
    bundle, _ = model_and_data
    for data in (None, ExplodingData()):
        before = bh_mod.ActorCritic(bundle.cfg.feat_dim, 6, tiny_cfg().actor_critic_config(), seed=0)
        result = train_behaviour(bundle, prompt_embedding(), tiny_cfg(data_free=True, steps=5), data=data,
                                 show_progress=False)
        assert result.steps == 5 and result.out_dir is None
        assert changed(params(before.actor), result.actor)
        assert np.isfinite(result.metrics["reward_mean"]).all()
    with pytest.raises(ValueError, match="data_free=True"):
        train_behaviour(bundle, prompt_embedding(), tiny_cfg(), data=None, show_progress=False)


def test_text_prompts_go_through_the_vlm_and_are_checked(model_and_data):
    bundle, _ = model_and_data
    vlm = FakeVLM()
    result = train_behaviour(bundle, None, tiny_cfg(data_free=True, steps=1), vlm=vlm, task="walker_stand",
                             show_progress=False)
    assert vlm.calls == [[get_task("walker_stand").prompt]]
    torch.testing.assert_close(result.reward.embedding, prompt_embedding(len(get_task("walker_stand").prompt)))
    with pytest.raises(CheckpointError, match="16-d embeddings"):
        train_behaviour(bundle, "walking", tiny_cfg(data_free=True), vlm=FakeVLM(dim=384), show_progress=False)


class _FakeWM(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.rssm = inner, inner.rssm

    def reward_projection(self, x):
        return self.inner.reward_projection(x)

    @property
    def device(self):
        return torch.device("cpu")


def test_a_data_free_policy_learns_the_prompted_action_in_the_fake_world_model():
    # The fake connector plays a* for any prompt and z tokenizes tanh(action): GenRL's reward is
    # highest for actions in a*'s bins, so the trained policy's mean action must move there.
    a_star = [math.atanh(0.75), math.atanh(-0.25)]
    rssm, wm, connector, aligner = make_all(target_action=a_star, seed=0)
    cfg = SimpleNamespace(feat_dim=rssm.deter + rssm.groups * rssm.classes, preset="fake")
    bundle = ModelBundle(cfg, _FakeWM(wm), connector, aligner, 0, 2, 5)
    config = BehaviourConfig.tiny(data_free=True, steps=60, window=3, start_batch=6, start_length=8,
                                  warmup_steps=1, log_every=10)
    result = train_behaviour(bundle, prompt_embedding()[:5], config, show_progress=False)
    starts = bh_mod.data_free_starts(rssm, connector, aligner, lambda f: torch.zeros(len(f), 2), 2,
                                     config.data_free_config())
    fresh = bh_mod.ActorCritic(cfg.feat_dim, 2, config.actor_critic_config(), seed=0)
    first = torch.tanh(fresh.actor.mode(rssm.feat(starts.states))).mean(0)
    assert not (0.5 < first[0] < 1.0 and -0.5 < first[1] < 0.0), first
    action = torch.tanh(result.actor.mode(rssm.feat(starts.states))).mean(0)
    assert 0.5 < action[0] < 1.0 and -0.5 < action[1] < 0.0, action
    rewards = result.metrics["reward_mean"]
    assert rewards[-1] > rewards[0] + 0.1, rewards


# --- evaluation ----------------------------------------------------------------------------------


def test_evaluation_returns_true_returns_scores_and_frames(model_and_data, monkeypatch):
    bundle, data = model_and_data
    result = train_behaviour(bundle, prompt_embedding(), tiny_cfg(steps=2), data=data, show_progress=False)
    ev = evaluate_behaviour(bundle, result, "walker_stand", episodes=2, max_steps=15, record=1, show_progress=False)
    assert ev["returns"].shape == (2,) and ev["normalized"].shape == (2,) and ev["steps"] == [15, 15]
    np.testing.assert_allclose(ev["normalized"], [normalized_score("walker_stand", r) for r in ev["returns"]])
    assert ev["normalized_mean"] == pytest.approx(ev["normalized"].mean())
    assert ev["return_stderr"] == pytest.approx(ev["returns"].std(ddof=1) / math.sqrt(2))
    assert len(ev["frames"]) == 1 and ev["frames"][0].shape == (16, 64, 64, 3) and ev["frames"][0].dtype == np.uint8
    assert ev["actions"][0].shape == (15, 6) and np.abs(ev["actions"][0]).max() <= 1
    rssm, starts = bundle.world_model.rssm, []
    imagine = rssm.imagine
    monkeypatch.setattr(rssm, "imagine", lambda start, *a, **k: starts.append(start) or imagine(start, *a, **k))
    dream = imagine_rollout(bundle, result, ev["frames"][0], ev["actions"][0], context=4, horizon=6)
    assert dream.shape == (10, 64, 64, 3) and dream.min() >= 0 and dream.max() <= 1
    # The first frames are reconstructions of the real ones through the same filter the policy
    # acts with in the environment: obs_step, one frame at a time, with the previous action.
    wm = bundle.world_model
    state, action, recon = rssm.initial(1), torch.zeros(1, 6), []
    for t in range(4):
        embed = wm.encode(wm.preprocess(torch.as_tensor(ev["frames"][0][t:t + 1])))
        state, _ = rssm.obs_step(state, action, embed, torch.tensor([t == 0]), sample=False)
        recon.append(wm.decode(rssm.stoch_flat(state))[0])
        action = torch.as_tensor(ev["actions"][0][t:t + 1])
    np.testing.assert_allclose(dream[:4], torch.stack(recon).detach().numpy(), atol=1e-5)
    # The dream starts from that filtered state: h carries the previous actions.
    torch.testing.assert_close(starts[0]["deter"], state["deter"], rtol=0, atol=1e-5)
    nxt = rssm.img_step(state, result.actor.mode(rssm.feat(state)), sample=False)
    np.testing.assert_allclose(dream[4], wm.decode(rssm.stoch_flat(nxt))[0].detach().numpy(), atol=1e-5)
    again = evaluate_behaviour(bundle, result.actor_critic, "walker_stand", episodes=2, max_steps=15,
                               show_progress=False)
    np.testing.assert_array_equal(again["returns"], ev["returns"])        # mode latents and actions
    assert "frames" not in again


def test_evaluation_feeds_the_previous_action_and_scores_with_the_true_reward(model_and_data, monkeypatch):
    from genrl_lite.envs import PixelEnv

    bundle, _ = model_and_data
    rssm = bundle.world_model.rssm
    fed, taken = [], []
    original = rssm.obs_step

    def spy(prev, action, embed, is_first, sample=True):
        fed.append((action.clone(), bool(is_first[0])))
        return original(prev, action, embed, is_first, sample)

    monkeypatch.setattr(rssm, "obs_step", spy)

    def policy(feat):
        a = torch.full((1, 6), 0.1 * (len(taken) % 5) - 0.2)
        taken.append(a)
        return a

    def probe(physics):
        return {"torso_z": float(physics.named.data.xpos["torso", "z"]), "time": float(physics.data.time)}

    ev = evaluate_behaviour(bundle, policy, "walker_walk", episodes=1, max_steps=8, seed=3, show_progress=False,
                            probe=probe)
    assert [f for _, f in fed] == [True] + [False] * 7
    assert torch.equal(fed[0][0], torch.zeros(1, 6))
    for (action, _), prev in zip(fed[1:], taken[:-1]):
        assert torch.equal(action, prev)
    env = PixelEnv("walker_walk", seed=3)
    env.reset()
    rewards, heights = [], []
    for a in taken:
        rewards.append(env.step(a[0].numpy()).reward)
        heights.append(float(env.physics.named.data.xpos["torso", "z"]))
    assert ev["returns"][0] == pytest.approx(sum(rewards))
    # the probe measured the simulator after every step: the same heights and rewards as the replay
    measured = ev["probes"][0]
    assert set(measured) == {"torso_z", "time", "reward"} and measured["torso_z"].shape == (8,)
    np.testing.assert_allclose(measured["torso_z"], heights)
    np.testing.assert_allclose(measured["reward"], rewards)
    assert np.all(np.diff(measured["time"]) > 0)


# --- bad input -----------------------------------------------------------------------------------


def test_bad_inputs_fail_clearly(model_and_data, tmp_path):
    bundle, data = model_and_data
    for empty in ("", "   ", None):
        with pytest.raises(ValueError, match="empty prompt"):
            train_behaviour(bundle, empty, tiny_cfg(), data=data, vlm=FakeVLM(), show_progress=False)
    with pytest.raises(UnknownNameError, match="valid tasks for walker"):
        train_behaviour(bundle, prompt_embedding(), tiny_cfg(), data=data, task="walker_moonwalk")
    with pytest.raises(UnknownNameError, match="valid tasks for walker"):
        evaluate_behaviour(bundle, lambda f: torch.zeros(1, 6), "walker_moonwalk", episodes=1)
    with pytest.raises(ValueError, match="use the quadruped model"):
        train_behaviour(bundle, prompt_embedding(), tiny_cfg(), data=data, task="quadruped_stand")
    with pytest.raises(ValueError, match="use the quadruped model"):
        evaluate_behaviour(bundle, lambda f: torch.zeros(1, 12), "quadruped_stand", episodes=1)
    assert task_action_dim("quadruped_stand") == 12
    with pytest.raises(ValueError, match="E = 16"):
        train_behaviour(bundle, torch.ones(384), tiny_cfg(), data=data, show_progress=False)
    no_connector = _build(bundle.cfg, 6, None, "cpu")
    with pytest.raises(CheckpointError, match="no connector"):
        train_behaviour(no_connector, prompt_embedding(), tiny_cfg(), data=data)
    other = bh_mod.ActorCritic(bundle.cfg.feat_dim, 12, tiny_cfg().actor_critic_config())
    with pytest.raises(ValueError, match="12-d actions"):
        evaluate_behaviour(bundle, other, "walker_stand", episodes=1)
    with pytest.raises(CheckpointError, match="no shipped model named 'humanoid'; shipped: walker, cheetah, "
                                              "quadruped, stickman"):
        train_behaviour("humanoid", prompt_embedding(), tiny_cfg(), data=data)
    with pytest.raises(FileNotFoundError, match="no actor-critic checkpoint"):
        load_policy(tmp_path)


def test_dream_vs_target_plot_shows_the_aligned_target_frame_and_the_step_reward():
    from genrl_lite import plotting

    dream = np.zeros((6, 8, 8, 3), np.uint8)
    target = np.stack([np.full((8, 8, 3), 10 * (i + 1), np.uint8) for i in range(4)])
    rewards = np.linspace(0.1, 0.6, 6)
    fig = plotting.dream_vs_target(dream, target, rewards, step=3, offset=2)
    ax_dream, ax_target, ax_curve = fig.axes[:3]
    # step 3 with offset 2 is compared with target frame max(0, 3 - 2) = 1
    assert ax_target.images[0].get_array()[0, 0, 0] == 20 and "step 1" in ax_target.get_title()
    assert "step 3" in ax_dream.get_title() and f"{rewards[3]:.3f}" in ax_curve.get_title()
    np.testing.assert_allclose(ax_curve.lines[0].get_ydata(), rewards)
    # before the offset the first target frame; past the target's end its last frame
    fig2 = plotting.dream_vs_target(dream.astype(np.float32), target, rewards, step=5, offset=0)
    assert fig2.axes[1].images[0].get_array()[0, 0, 0] == 40
    plotting.close(fig), plotting.close(fig2)
    with pytest.raises(AssertionError, match="rewards"):
        plotting.dream_vs_target(dream, target, rewards[:5], step=0)
    with pytest.raises(AssertionError, match="outside"):
        plotting.dream_vs_target(dream, target, rewards, step=6)
