"""Rewards from prompts (issue 5): similarities, temporal alignment on hand-made sequences,
GenRL's reward on a fake world model, and the VLM-RM / WM-CLIP baselines."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fake_world_model import make_all

from genrl_lite import baseline_rewards as baselines
from genrl_lite import plotting, rewards
from genrl_lite.tasks import UnknownNameError

# --- similarities ---------------------------------------------------------------------------------


def test_max_cosine_equals_cosine_when_norms_are_equal():
    g = torch.Generator().manual_seed(0)
    u = F.normalize(torch.randn(20, 7, generator=g), dim=-1) * 3.0
    v = F.normalize(torch.randn(20, 7, generator=g), dim=-1) * 3.0
    torch.testing.assert_close(rewards.max_cosine(u, v), rewards.cosine(u, v))
    torch.testing.assert_close(rewards.max_cosine(u, u), torch.ones(20))


def test_max_cosine_penalizes_norm_mismatch():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(10, 5, generator=g)
    # Same direction, twice as long: cosine says identical, max-cosine says 2|v|^2 / (2|v|)^2 = 1/2.
    torch.testing.assert_close(rewards.cosine(2 * v, v), torch.ones(10))
    torch.testing.assert_close(rewards.max_cosine(2 * v, v), torch.full((10,), 0.5))
    u = torch.randn(10, 5, generator=g) * torch.rand(10, 1, generator=g) * 4
    mc, cos = rewards.max_cosine(u, v), rewards.cosine(u, v)
    ratio = torch.minimum(u.norm(dim=-1), v.norm(dim=-1)) / torch.maximum(u.norm(dim=-1), v.norm(dim=-1))
    torch.testing.assert_close(mc, cos * ratio)                       # cosine times the norm ratio
    torch.testing.assert_close(rewards.max_cosine(v, u), mc)          # symmetric
    assert (mc.abs() <= cos.abs() + 1e-6).all()


def test_unknown_similarity_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="cosine, max_cosine"):
        rewards.get_similarity("dot")
    assert rewards.get_similarity("max_cosine") is rewards.max_cosine
    custom = lambda u, v: -(u - v).norm(dim=-1)  # noqa: E731
    assert rewards.get_similarity(custom) is custom


# --- temporal alignment on hand-made sequences ------------------------------------------------


def _random_unit(n, f=6, seed=0):
    return F.normalize(torch.randn(n, f, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_agent_equal_to_target_shifted_by_three_gets_offset_three_and_perfect_reward_after():
    horizon, window, shift = 12, 4, 3
    target = _random_unit(horizon, seed=0)
    agent = torch.cat([_random_unit(shift, seed=1), target[:horizon - shift]])[:, None]   # (H, 1, F)
    assert rewards.best_offsets(agent, target, window).tolist() == [shift]
    r = rewards.sequence_reward(agent, target, window)
    assert r.shape == (horizon, 1, 1)
    torch.testing.assert_close(r[shift:, 0, 0], torch.ones(horizon - shift))
    # Before the offset, each agent step is compared to the target's *first* state.
    torch.testing.assert_close(r[:shift, 0, 0], rewards.max_cosine(agent[:shift, 0], target[0]))
    assert (r[:shift] < 0.999).all()


def test_each_trajectory_gets_its_own_offset():
    horizon, window = 10, 3
    target = _random_unit(horizon, seed=2)
    agents = [torch.cat([_random_unit(s, seed=10 + s), target[:horizon - s]]) for s in (0, 2, 5)]
    agent = torch.stack(agents, 1)                                                # (H, 3, F)
    assert rewards.best_offsets(agent, target, window).tolist() == [0, 2, 5]
    # A per-trajectory target (T, B, F) gives the same answer as the shared (T, F) one.
    per_batch = target[:, None].expand(-1, 3, -1)
    torch.testing.assert_close(rewards.sequence_reward(agent, per_batch, window),
                               rewards.sequence_reward(agent, target, window))


def test_window_one_aligns_on_the_target_initial_state():
    horizon = 9
    target = _random_unit(horizon, seed=3)
    agent = _random_unit(horizon, seed=4).clone()
    agent[5:] = target[:horizon - 5]           # reaches the target's first state at step 5, then follows
    agent = agent[:, None]
    assert rewards.best_offsets(agent, target, window=1).tolist() == [5]
    scores = rewards.offset_scores(agent, target, window=1)
    assert scores.shape == (horizon, 1)        # every step is a candidate
    torch.testing.assert_close(scores[:, 0], rewards.max_cosine(agent[:, 0], target[0]))
    torch.testing.assert_close(rewards.sequence_reward(agent, target, 1)[5:, 0, 0], torch.ones(horizon - 5))


def test_window_h_means_no_alignment():
    horizon = 8
    target, agent = _random_unit(horizon, seed=5), _random_unit(horizon, seed=6)[:, None]
    agent[3:] = target[:horizon - 3, None]     # a shift that alignment would find ...
    assert rewards.offset_scores(agent, target, window=horizon).shape == (1, 1)
    assert rewards.best_offsets(agent, target, window=horizon).tolist() == [0]
    r = rewards.sequence_reward(agent, target, window=horizon)  # ... is ignored: step j vs target j
    torch.testing.assert_close(r[:, 0, 0], rewards.max_cosine(agent[:, 0], target))
    torch.testing.assert_close(rewards.sequence_reward(agent, target, window=None), r)
    assert rewards.best_offsets(agent, target, window=4).tolist() == [3]


def test_offset_scores_match_a_naive_loop():
    g = torch.Generator().manual_seed(7)
    agent, target = torch.randn(11, 4, 5, generator=g), torch.randn(13, 5, generator=g)
    window = 4
    scores = rewards.offset_scores(agent, target, window, "cosine")
    naive = np.zeros((11 - window + 1, 4))
    for t in range(11 - window + 1):
        for b in range(4):
            naive[t, b] = np.mean([F.cosine_similarity(agent[t + i, b], target[i], dim=0).item()
                                   for i in range(window)])
    np.testing.assert_allclose(scores.numpy(), naive, rtol=1e-5, atol=1e-6)


def test_align_target_index_is_max_zero_j_minus_offset():
    target = torch.arange(10.0)[:, None]       # feature = its own index
    aligned = rewards.align_target(target, torch.tensor([0, 3, 9]), length=10)
    assert aligned.shape == (10, 3, 1)
    for b, off in enumerate([0, 3, 9]):
        assert aligned[:, b, 0].tolist() == [max(0, j - off) for j in range(10)]


def test_reward_is_differentiable_in_the_agent_features():
    target = _random_unit(6, seed=8)
    agent = _random_unit(6, seed=9)[:, None].requires_grad_(True)
    rewards.sequence_reward(agent, target, 3).sum().backward()
    assert agent.grad is not None and agent.grad.abs().sum() > 0


def test_alignment_bad_input():
    agent, target = torch.randn(6, 2, 4), torch.randn(6, 4)
    with pytest.raises(ValueError, match="window must be in 1..6"):
        rewards.sequence_reward(agent, target, window=7)
    with pytest.raises(ValueError, match="window must be in 1..6"):
        rewards.sequence_reward(agent, target, window=0)
    with pytest.raises(ValueError, match="shorter"):
        rewards.sequence_reward(agent, target[:4], window=2)
    with pytest.raises(AssertionError, match="matching agent"):
        rewards.sequence_reward(agent, torch.randn(6, 3), window=2)
    with pytest.raises(AssertionError, match=r"\(H, B, F\)"):
        rewards.sequence_reward(agent[:, 0], target, window=2)


# --- GenRL's reward on a fake world model -------------------------------------------------------


@pytest.fixture
def fake():
    rssm, wm, connector, aligner = make_all(embed_dim=5, seed=0)
    return rssm, wm, connector, aligner


def test_genrl_target_is_the_connector_rollout_without_its_first_state(fake):
    rssm, wm, connector, aligner = fake
    prompt = torch.randn(5, generator=torch.Generator().manual_seed(0))
    reward = rewards.GenRLReward(wm, connector, aligner, prompt, window=3)
    states, feats = reward.target(7)
    assert states["stoch"].shape == (7, 1, rssm.groups, rssm.classes) and feats.shape == (7, 12)
    with torch.no_grad():
        e = F.normalize(aligner(prompt[None]), dim=-1)
        rolled = connector.rollout(e, 8, sample=False)          # H + 1 steps with mode latents
    torch.testing.assert_close(states["stoch"][:, 0], rolled["stoch"][0, 1:])
    torch.testing.assert_close(feats, wm.reward_projection(rssm.stoch_flat(rolled)[0, 1:]))


def test_genrl_target_is_cached_per_prompt(fake):
    rssm, wm, connector, aligner = fake
    p1, p2 = torch.randn(5), torch.randn(5)
    reward = rewards.GenRLReward(wm, connector, aligner, p1)
    states = rssm.imagine(rssm.initial(4), lambda f: torch.zeros(4, 2), 5)
    reward(states), reward(states)
    assert connector.calls == 1
    reward.set_prompt(p2)(states)
    assert connector.calls == 2
    reward.set_prompt(p1)(states)              # back to the first prompt: still cached
    assert connector.calls == 2
    reward.clear_cache()
    reward(states)
    assert connector.calls == 3


def test_genrl_reward_is_perfect_on_the_target_itself_and_lower_elsewhere(fake):
    rssm, wm, connector, aligner = fake
    reward = rewards.GenRLReward(wm, connector, aligner, torch.randn(5), window=3)
    target_states, _ = reward.target(6)
    r = reward({k: v.expand(-1, 4, *v.shape[2:]) for k, v in target_states.items()})
    assert r.shape == (6, 4, 1)
    torch.testing.assert_close(r, torch.ones(6, 4, 1))
    torch.manual_seed(0)
    other = rssm.imagine(rssm.initial(32), lambda f: torch.rand(f.shape[0], 2) * 2 - 1, 5)
    r_other = reward(other)
    assert r_other.shape == (6, 32, 1) and r_other.mean() < 0.9
    info = reward.explain(other)
    assert info["offsets"].shape == (32,) and info["scores"].shape == (4, 32)
    torch.testing.assert_close(info["rewards"], r_other.detach())


def test_genrl_reward_gradient_reaches_the_agent_latents(fake):
    rssm, wm, connector, aligner = fake
    reward = rewards.GenRLReward(wm, connector, aligner, torch.randn(5), window=2)
    action = torch.zeros(8, 2, requires_grad=True)
    states = rssm.imagine(rssm.initial(8), lambda f: action, 4)   # z sampled, straight-through
    reward(states).sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0


def test_genrl_reward_window_longer_than_horizon_means_no_alignment(fake):
    rssm, wm, connector, aligner = fake
    states = rssm.imagine(rssm.initial(3), lambda f: torch.zeros(3, 2), 4)      # H = 5 states
    long = rewards.GenRLReward(wm, connector, aligner, torch.ones(5), window=8)(states)
    none = rewards.GenRLReward(wm, connector, aligner, torch.ones(5), window=None)(states)
    torch.testing.assert_close(long, none)


def test_spatial_features_are_what_the_decoder_convolves_and_genrl_can_compare_in_them(fake):
    from genrl_lite.world_model import WorldModel, WorldModelConfig

    real = WorldModel(WorldModelConfig.preset("tiny"), action_dim=2)
    z = F.one_hot(torch.randint(0, 4, (6, 4)), 4).float().flatten(-2)               # (N, G*C)
    spatial = rewards.spatial_features(real, z)
    d = real.decoder
    assert spatial.shape == (6, 4 * d.depth * 25)
    torch.testing.assert_close(d.net(spatial.reshape(6, 4 * d.depth, 5, 5)), d(z))  # the conv stack's input
    torch.testing.assert_close(rewards.projection_features(real, z), real.reward_projection(z))

    rssm, wm, connector, aligner = fake
    wm.decoder = torch.nn.Module()
    wm.decoder.first = torch.nn.Linear(12, 30, bias=False)
    prompt = torch.randn(5)
    reward = rewards.GenRLReward(wm, connector, aligner, prompt, window=3, features="spatial")
    states, feats = reward.target(6)
    assert feats.shape == (6, 30)
    torch.testing.assert_close(feats, wm.decoder.first(wm.reward_projection(rssm.stoch_flat(states)[:, 0])))
    r = reward({k: v.expand(-1, 2, *v.shape[2:]) for k, v in states.items()})
    torch.testing.assert_close(r, torch.ones(6, 2, 1))
    with pytest.raises(UnknownNameError, match="projection, spatial"):
        rewards.GenRLReward(wm, connector, aligner, prompt, features="pixels")


class FakeVLM:
    """Embeds frames by their mean colour (E = 3); text by a fixed colour per word."""

    COLOURS = {"red": [1.0, 0.0, 0.0], "green": [0.0, 1.0, 0.0], "blue": [0.0, 0.0, 1.0]}

    def embed_text(self, prompts):
        return torch.tensor([self.COLOURS[p] for p in prompts])

    def embed_image(self, frames):
        assert frames.ndim == 4 and frames.shape[-1] == 3
        return frames.float().mean((1, 2)) / 255

    def embed_video(self, clips):
        assert clips.ndim == 5 and clips.shape[-1] == 3
        return clips.float().mean((1, 2, 3)) / 255


def test_bad_prompts_give_clear_errors(fake):
    rssm, wm, connector, aligner = fake
    with pytest.raises(ValueError, match="empty prompt"):
        rewards.GenRLReward(wm, connector, aligner, "   ", vlm=FakeVLM())
    with pytest.raises(ValueError, match="empty prompt"):
        rewards.GenRLReward(wm, connector, aligner, "")
    with pytest.raises(ValueError, match=r"wrong prompt embedding shape \(7,\): expected \(E,\) with E = 5"):
        rewards.GenRLReward(wm, connector, aligner, torch.randn(7))
    with pytest.raises(ValueError, match="wrong prompt embedding shape"):
        rewards.GenRLReward(wm, connector, aligner, torch.randn(2, 5))
    with pytest.raises(ValueError, match="needs a VLM"):
        rewards.GenRLReward(wm, connector, aligner, "walking")
    with pytest.raises(ValueError, match="zero or not finite"):
        rewards.GenRLReward(wm, connector, aligner, torch.zeros(5))
    ok = rewards.GenRLReward(wm, connector, aligner, torch.randn(1, 5))          # (1, E) is fine
    assert ok.embedding.shape == (5,)


def test_genrl_reward_accepts_text_through_the_vlm():
    rssm, wm, connector, aligner = make_all(embed_dim=3, seed=0)
    reward = rewards.GenRLReward(wm, connector, aligner, "red", vlm=FakeVLM())
    torch.testing.assert_close(reward.embedding, torch.tensor([1.0, 0.0, 0.0]))


# --- VLM-RM and WM-CLIP baselines ---------------------------------------------------------------


def _frames_turning_red(steps=12, red_from=4, size=4):
    frames = np.zeros((steps, size, size, 3), dtype=np.uint8)
    frames[:, :, :, 2] = 255                   # blue ...
    frames[red_from:] = 0
    frames[red_from:, :, :, 0] = 255           # ... then red
    return frames


def test_frame_windows_hold_the_last_k_frames_repeating_the_first():
    frames = torch.arange(6.0).reshape(6, 1)   # (T, B=1) frame "ids"
    windows = baselines.frame_windows(frames, k=3)
    assert windows.shape == (6, 1, 3)
    assert windows[:, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]


def test_vlmrm_image_and_video_modes():
    frames = _frames_turning_red()
    image = baselines.VLMRMReward(FakeVLM(), "red", mode="image").frames_reward(frames)
    assert image.shape == (12, 1, 1)
    assert image[:4].abs().max() < 1e-6 and torch.allclose(image[4:], torch.ones(8, 1, 1))
    video = baselines.VLMRMReward(FakeVLM(), "red", mode="video").frames_reward(frames)[:, 0, 0]   # 8 frames
    # Video mode sees the last 8 frames: the reward rises gradually and is 1 once all 8 are red.
    assert video[:4].abs().max() < 1e-6
    assert (video[4:11].diff() > 0).all() and 0 < video[4] < video[10] < 1
    assert video[11] == pytest.approx(1.0)
    batched = baselines.VLMRMReward(FakeVLM(), "red", mode="image").frames_reward(np.stack([frames] * 2, 1))
    assert batched.shape == (12, 2, 1)
    # Float frames in [0, 1] (a decoder's output) are scored like the same uint8 frames.
    as_float = baselines.VLMRMReward(FakeVLM(), "red", mode="video").frames_reward(frames / 255.0)
    torch.testing.assert_close(as_float[:, 0, 0], video)
    # Precomputed embeddings (the dataset's clip_video), zero padding included.
    emb = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    r = baselines.VLMRMReward(FakeVLM(), "red").embeddings_reward(emb)
    assert r.shape == (3, 1, 1) and r[:, 0, 0].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(AssertionError, match="E = 3"):
        baselines.VLMRMReward(FakeVLM(), "red").embeddings_reward(torch.zeros(3, 4))


def test_vlmrm_in_imagination_decodes_states_and_errors_without_decoder():
    frames = torch.as_tensor(_frames_turning_red())[:, None]
    decode = lambda states: frames  # noqa: E731  (a stand-in for the world model's decoder)
    r = baselines.VLMRMReward(FakeVLM(), "blue", mode="image", decode=decode)({"deter": torch.zeros(12, 1, 2)})
    assert r.shape == (12, 1, 1) and r[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs the decoder"):
        baselines.VLMRMReward(FakeVLM(), "blue")({"deter": torch.zeros(12, 1, 2)})
    with pytest.raises(UnknownNameError, match="image, video"):
        baselines.VLMRMReward(FakeVLM(), "blue", mode="audio")
    with pytest.raises(ValueError, match="empty prompt"):
        baselines.VLMRMReward(FakeVLM(), "")


def test_wmclip_head_learns_to_predict_embeddings_and_ignores_padding():
    torch.manual_seed(0)
    feat = torch.randn(256, 10)
    target = F.normalize(feat @ torch.randn(10, 4), dim=-1)
    head = baselines.WMCLIPHead(10, 4, units=32, layers=2)
    opt = torch.optim.Adam(head.parameters(), 1e-2)
    first = baselines.wmclip_loss(head, feat, target).item()
    for _ in range(150):
        loss = baselines.wmclip_loss(head, feat, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    padded = target.clone()
    padded[:100] = 0                            # zero embeddings = padding before a full clip
    torch.testing.assert_close(baselines.wmclip_loss(head, feat, padded),
                               baselines.wmclip_loss(head, feat[100:], target[100:]))


def test_wmclip_reward_is_the_cosine_to_the_prompt(fake):
    rssm, wm, connector, aligner = fake
    head = baselines.WMCLIPHead(rssm.deter + 12, 5, units=16, layers=1)
    prompt = torch.randn(5)
    reward = baselines.WMCLIPReward(head, rssm, prompt)
    states = rssm.imagine(rssm.initial(3), lambda f: torch.zeros(3, 2), 4)
    r = reward(states)
    assert r.shape == (5, 3, 1)
    torch.testing.assert_close(r[..., 0], F.cosine_similarity(head(rssm.feat(states)), prompt, dim=-1))
    with_aligner = baselines.WMCLIPReward(head, rssm, prompt, aligner=aligner)
    with torch.no_grad():
        torch.testing.assert_close(with_aligner.embedding, F.normalize(aligner(prompt[None])[0], dim=-1))
    with pytest.raises(ValueError, match="E = 5"):
        baselines.WMCLIPReward(head, rssm, torch.randn(6))


# --- plots --------------------------------------------------------------------------------------


def test_alignment_and_reward_plots_draw():
    target = _random_unit(10, seed=0)
    agent = torch.stack([torch.cat([_random_unit(s, seed=s + 1), target[:10 - s]]) for s in (1, 4)], 1)
    scores = rewards.offset_scores(agent, target, 4)
    fig = plotting.alignment_scores(scores.numpy(), window=4)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and np.argmax(ax.lines[1].get_ydata()) == 4
    plotting.close(fig)
    fig = plotting.rewards_over_time({"GenRL": np.random.rand(10), "true": np.random.rand(10)}, offset=3,
                                     standardize=True)
    assert len(fig.axes[0].lines) == 3          # two series and the offset marker
    plotting.close(fig)


# --- rewards along recorded episodes (reward vs true reward) -----------------------------------


def _tiny_bundle(embed_dim=3):
    from genrl_lite.training import _build
    from genrl_lite.world_model import WorldModelConfig

    bundle = _build(WorldModelConfig.preset("tiny"), action_dim=2, embed_dim=embed_dim, device="cpu")
    for m in (bundle.world_model, bundle.connector, bundle.aligner):
        m.eval()
    return bundle


def _episode(steps=23, seed=0):
    rng = np.random.default_rng(seed)
    action = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
    action[0] = 0
    return {"obs": rng.integers(0, 256, (steps, 64, 64, 3), dtype=np.uint8), "action": action,
            "is_first": np.arange(steps) == 0}


def test_episode_rewards_genrl_is_the_reward_of_consecutive_imagination_sized_pieces():
    bundle = _tiny_bundle()
    wm, ep, prompt = bundle.world_model, _episode(23), torch.tensor([0.3, -1.0, 0.5])
    cache = {}
    r = baselines.episode_rewards(bundle, ep, prompt, "genrl", horizon=4, window=3, cache=cache)
    assert r.shape == (23,) and r.dtype == np.float32 and np.isfinite(r).all()
    posts = cache["posts"]
    assert posts["stoch"].shape[:2] == (23, 1)
    with torch.no_grad():
        obs = torch.as_tensor(ep["obs"])[None]
        direct, _ = wm.rssm.observe(wm.encode(wm.preprocess(obs)), torch.as_tensor(ep["action"])[None],
                                    torch.as_tensor(ep["is_first"])[None], sample=False)
    torch.testing.assert_close(posts["stoch"][:, 0], direct["stoch"][0])
    reward = rewards.GenRLReward(wm, bundle.connector, bundle.aligner, prompt, window=3)
    with torch.no_grad():
        # pieces of H = 5 states at 0, 5, 10, 15, then one ending at T = 23 for the 3 steps left
        for start in (0, 5, 10, 15):
            piece = {k: v[start:start + 5] for k, v in posts.items()}
            np.testing.assert_allclose(r[start:start + 5], reward(piece)[:, 0, 0].numpy(), rtol=1e-5, atol=1e-6)
        last = reward({k: v[18:23] for k, v in posts.items()})[:, 0, 0].numpy()
    np.testing.assert_allclose(r[20:], last[2:], rtol=1e-5, atol=1e-6)
    # the posteriors were cached: a second prompt reuses them
    cache["posts"] = {k: v.clone() for k, v in posts.items()}
    cache["posts"]["stoch"] = cache["posts"]["stoch"][:, :, torch.randperm(posts["stoch"].shape[2])]
    other = baselines.episode_rewards(bundle, ep, prompt, "genrl", horizon=4, window=3, cache=cache)
    assert not np.allclose(other, r)


def test_episode_rewards_wmclip_and_vlmrm_match_their_reward_classes():
    bundle = _tiny_bundle()
    ep, prompt = _episode(12, seed=1), torch.tensor([1.0, 0.0, 0.0])
    head = baselines.WMCLIPHead(bundle.cfg.feat_dim, 3, units=8, layers=1)
    r = baselines.episode_rewards(bundle, ep, prompt, "wmclip", head=head)
    posts = baselines.episode_posteriors(bundle.world_model, ep)
    with torch.no_grad():
        np.testing.assert_allclose(r, baselines.WMCLIPReward(head, bundle.world_model.rssm, prompt)(posts)[:, 0, 0],
                                   rtol=1e-5, atol=1e-6)
    frames = {"obs": _frames_turning_red(steps=12, red_from=4)}
    image = baselines.episode_rewards(None, frames, "red", "vlmrm_image", vlm=FakeVLM())
    np.testing.assert_allclose(image, [0.0] * 4 + [1.0] * 8, atol=1e-6)
    video = baselines.episode_rewards(None, frames, "red", "vlmrm_video", vlm=FakeVLM())
    expected = baselines.VLMRMReward(FakeVLM(), "red", mode="video").frames_reward(frames["obs"])[:, 0, 0]
    np.testing.assert_allclose(video, expected.numpy(), atol=1e-6)


def test_episode_rewards_bad_input():
    bundle, ep = _tiny_bundle(), _episode(10)
    with pytest.raises(UnknownNameError, match="genrl, vlmrm_image, vlmrm_video, wmclip"):
        baselines.episode_rewards(bundle, ep, torch.ones(3), "clip")
    with pytest.raises(ValueError, match="needs a trained WMCLIPHead"):
        baselines.episode_rewards(bundle, ep, torch.ones(3), "wmclip")
    with pytest.raises(ValueError, match="needs the VLM"):
        baselines.episode_rewards(bundle, ep, torch.ones(3), "vlmrm_video")
    with pytest.raises(ValueError, match="empty prompt"):
        baselines.episode_rewards(bundle, ep, "  ", "genrl", vlm=FakeVLM())
    with pytest.raises(ValueError, match=r"wrong prompt embedding shape \(4,\)"):
        baselines.episode_rewards(bundle, ep, torch.ones(4), "genrl")


def test_reward_correlation_pools_window_means_over_episodes():
    rng = np.random.default_rng(0)
    true = rng.random(40)
    assert baselines.reward_correlation(2 * true + 1, true) == pytest.approx(1.0)
    assert baselines.reward_correlation(-true, true) == pytest.approx(-1.0)
    noisy = true + rng.normal(0, 0.5, 40)
    assert baselines.reward_correlation(noisy, true) == pytest.approx(np.corrcoef(noisy, true)[0, 1])
    np.testing.assert_allclose(baselines.window_means(np.arange(10), 4), [1.5, 5.5])   # remainder dropped
    # windows of 4, pooled over two episodes of different lengths; no window crosses episodes
    eps_true, eps_pred = [true[:22], true[22:]], [noisy[:22], noisy[22:]]
    p = np.concatenate([baselines.window_means(x, 4) for x in eps_pred])
    t = np.concatenate([baselines.window_means(x, 4) for x in eps_true])
    assert len(p) == 5 + 4
    assert baselines.reward_correlation(eps_pred, eps_true, window=4) == pytest.approx(np.corrcoef(p, t)[0, 1])
    assert np.isnan(baselines.reward_correlation(np.ones(8), true[:8]))
    with pytest.raises(AssertionError, match="same episodes and lengths"):
        baselines.reward_correlation([true[:5]], [true[:6]])


def test_reward_scatter_draws_one_panel_per_reward_with_its_correlation():
    rng = np.random.default_rng(0)
    true = rng.random(30)
    fig = plotting.reward_scatter({"good": 2 * true, "anti": -true, "flat": np.ones(30)}, true,
                                  groups=["a"] * 10 + ["b"] * 20)
    assert len(fig.axes) == 3
    assert "r = +1.00" in fig.axes[0].get_title() and "r = -1.00" in fig.axes[1].get_title()
    assert "nan" in fig.axes[2].get_title()
    assert len(fig.axes[0].collections) == 2         # one point cloud per group
    plotting.close(fig)
    with pytest.raises(AssertionError, match="values for"):
        plotting.reward_scatter({"short": true[:5]}, true)


def test_prompt_preference_double_centres_the_matrix():
    values = np.array([[1.0, 0.2], [0.5, 0.9]]) + np.array([[0.0, 3.0]])   # prompt 2 pays 3 more everywhere
    fig = plotting.prompt_preference(values, ["stand eps", "walk eps"], ["stand", "walk"])
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown.sum(0), 0, atol=1e-12)
    np.testing.assert_allclose(shown.sum(1), 0, atol=1e-12)
    assert shown[0, 0] > 0 and shown[1, 1] > 0          # the diagonal survives the prompt's offset
    plotting.close(fig)
    with pytest.raises(AssertionError, match="for 3 rows"):
        plotting.prompt_preference(values, ["a", "b", "c"], ["x", "y"])
