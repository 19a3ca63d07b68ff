"""The model-free baseline (offline TD3+BC on pixels with VLM rewards) at toy scale."""
import numpy as np
import pytest
import torch

from genrl_lite import model_free as mf


def toy_episodes(n=4, T=40, sign=1.0, seed=0, size=32):
    """Noise frames (size x size); actions +-0.8 at random; reward 1 after a positive (sign=1) action."""
    rng = np.random.default_rng(seed)
    eps, rewards = [], []
    for _ in range(n):
        obs = rng.integers(0, 255, size=(T, size, size, 3), dtype=np.uint8)
        action = rng.choice([-0.8, 0.8], size=(T, 1)).astype(np.float32)
        action[0] = 0
        eps.append({"obs": obs, "action": action})
        rewards.append((sign * action[:, 0] > 0).astype(np.float32))
    return eps, rewards


def test_transitions_pair_frame_with_next_action_and_reward():
    eps, rewards = toy_episodes(n=2, T=10)
    data = mf.Transitions(eps, rewards, frame_stack=3)
    assert len(data) == 18
    b = data.sample(64, np.random.default_rng(0))
    assert b["obs"].shape == (64, 3, 32, 32, 3) and b["next_obs"].shape == (64, 3, 32, 32, 3)
    # the next stack is the current one shifted by a frame, and the reward belongs to the action taken
    np.testing.assert_array_equal(b["obs"][:, 1:], b["next_obs"][:, :-1])
    np.testing.assert_array_equal(b["reward"], (b["action"][:, 0] > 0).astype(np.float32))
    # before the episode starts the first frame is repeated
    np.testing.assert_array_equal(data.stack(0, 0), np.stack([eps[0]["obs"][0]] * 3))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_td3bc_prefers_the_rewarded_action(sign):
    torch.set_num_threads(1)
    eps, rewards = toy_episodes(sign=sign)
    data = mf.Transitions(eps, rewards, frame_stack=2)
    cfg = mf.ModelFreeConfig.tiny(frame_stack=2, image_size=32, steps=300, batch_size=32, discount=0.5, alpha=5.0)
    res = mf.train_model_free(data, cfg, show_progress=False)
    crit = res.metrics["critic_loss"]
    assert crit[-5:].mean() < crit[:2].mean()
    batch = data.sample(64, np.random.default_rng(1))
    acts = res.agent.act(batch["obs"])
    # the dataset's actions average 0; only the reward can push the policy to one side
    assert sign * acts.mean() > 0.3, acts.mean()
    with torch.no_grad():
        feat = res.agent.critic.encoder(torch.as_tensor(batch["obs"]))
        plus = res.agent.critic(feat, torch.full((64, 1), 0.8))[0].mean()
        minus = res.agent.critic(feat, torch.full((64, 1), -0.8))[0].mean()
    assert sign * (plus - minus) > 0


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    torch.set_num_threads(1)
    eps, rewards = toy_episodes(n=2, T=12)
    data = mf.Transitions(eps, rewards, frame_stack=2)
    cfg = mf.ModelFreeConfig.tiny(frame_stack=2, image_size=32, steps=12, save_every=100)
    full = mf.train_model_free(data, cfg, tmp_path / "a", show_progress=False, info={"prompt": "x"})
    mf.train_model_free(data, mf.ModelFreeConfig.tiny(frame_stack=2, image_size=32, steps=6), tmp_path / "b",
                        show_progress=False, info={"prompt": "x"})
    resumed = mf.train_model_free(data, cfg, tmp_path / "b", show_progress=False, info={"prompt": "x"})
    assert resumed.steps == full.steps == 12
    for p, q in zip(full.agent.parameters(), resumed.agent.parameters()):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="other settings or prompt"):
        mf.train_model_free(data, cfg, tmp_path / "b", show_progress=False, info={"prompt": "y"})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / mf.CHECKPOINT_NAME).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupted"):
        mf.TD3BC.load(tmp_path / "c" / mf.CHECKPOINT_NAME)


def test_vlm_rewards_cosine_and_padding():
    e = torch.tensor([1.0, 0.0])
    emb = np.array([[0, 0], [0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    eps = [{"obs": np.zeros((5, 64, 64, 3), np.uint8)}]
    r = mf.vlm_rewards(eps, e, mode="video", embeds=[emb])[0]
    np.testing.assert_allclose(r, [1, 1, 1, 0, np.sqrt(0.5)], atol=1e-6)
    with pytest.raises(ValueError, match="valid: image, video"):
        mf.vlm_rewards(eps, e, mode="audio")


def test_evaluate_in_the_real_environment():
    torch.set_num_threads(1)
    agent = mf.TD3BC(6, mf.ModelFreeConfig.tiny())
    ev = mf.evaluate_model_free(agent, "walker_stand", episodes=1, max_steps=5, show_progress=False)
    assert ev["steps"] == [5] and ev["normalized"].shape == (1,) and ev["normalized_stderr"] is None
    with pytest.raises(ValueError, match="actions"):
        mf.evaluate_model_free(mf.TD3BC(2, mf.ModelFreeConfig.tiny()), "walker_stand", episodes=1, max_steps=2)
