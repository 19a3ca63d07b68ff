"""World model (issue 4): presets, RSSM shapes, KL balancing on known distributions, straight-through
gradients, training, checkpoints and resume. All at the tiny preset on CPU."""
import math

import numpy as np
import pytest
import torch

import genrl_lite  # noqa: F401
from genrl_lite.training import (CheckpointError, SyntheticSampler, evaluate_world_model, load_checkpoint,
                                 read_metrics, train_world_model)
from genrl_lite.world_model import (RSSM, WorldModel, WorldModelConfig, batch_to_torch, flatten_states,
                                    kl_balance_loss, kl_categorical, mixed_probs, open_loop, sample_onehot)

A = 3


def tiny(**kw):
    return WorldModelConfig.preset("tiny", **kw)


def logits_of(*probs):
    """Logits (1, G, C) whose softmax is the given per-group probabilities."""
    return torch.log(torch.tensor([probs], dtype=torch.float64))


# --- presets -------------------------------------------------------------------------------------

def test_presets_and_unknown_name():
    paper = WorldModelConfig.preset("paper")
    assert (paper.deter, paper.stoch_groups, paper.stoch_classes, paper.cnn_depth, paper.hidden) == (1024, 32, 32, 48, 1024)
    assert (paper.batch_size, paper.batch_length, paper.lr) == (48, 48, 1e-4)
    assert paper.embed_dim == 1536 and paper.feat_dim == 2048
    with pytest.raises(ValueError, match="tiny, laptop, paper"):
        WorldModelConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown WorldModelConfig field"):
        WorldModelConfig.preset("tiny", gru_units=3)
    assert WorldModelConfig.from_dict(tiny(deter=48).to_dict()) == tiny(deter=48)


def test_every_config_field_has_a_docstring():
    import ast
    import inspect

    from genrl_lite import world_model
    tree = ast.parse(inspect.getsource(world_model.WorldModelConfig))
    body = tree.body[0].body
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            nxt = body[i + 1]
            assert isinstance(nxt, ast.Expr) and isinstance(nxt.value.value, str), node.target.id


# --- RSSM shapes ---------------------------------------------------------------------------------

def test_rssm_shapes_of_every_method():
    cfg = tiny()
    G, C, D, F = cfg.stoch_groups, cfg.stoch_classes, cfg.deter, 20
    rssm = RSSM(cfg, A, F)
    B, T, H = 3, 5, 4
    s = rssm.initial(B)
    assert s["deter"].shape == (B, D) and s["stoch"].shape == (B, G, C) and s["logits"].shape == (B, G, C)
    prior = rssm.img_step(s, torch.randn(B, A))
    assert {k: tuple(v.shape) for k, v in prior.items()} == {"deter": (B, D), "stoch": (B, G, C), "logits": (B, G, C)}
    post, prior = rssm.obs_step(s, torch.randn(B, A), torch.randn(B, F), torch.zeros(B, dtype=torch.bool))
    assert post["stoch"].shape == (B, G, C) and torch.equal(post["deter"], prior["deter"])
    posts, priors = rssm.observe(torch.randn(B, T, F), torch.randn(B, T, A), torch.zeros(B, T, dtype=torch.bool))
    for states in (posts, priors):
        assert {k: tuple(v.shape) for k, v in states.items()} == {"deter": (B, T, D), "stoch": (B, T, G, C),
                                                                 "logits": (B, T, G, C)}
    assert rssm.feat(posts).shape == (B, T, G * C + D) and rssm.stoch_flat(posts).shape == (B, T, G * C)
    start = flatten_states(posts)
    imag = rssm.imagine(start, lambda f: torch.tanh(f[:, :A]), H)
    assert imag["deter"].shape == (H + 1, B * T, D) and imag["stoch"].shape == (H + 1, B * T, G, C)
    assert torch.equal(imag["deter"][0], start["deter"])
    # the posterior sees only the frame: same embedding, different history -> same logits
    e = torch.randn(1, F)
    a = rssm.obs_step(rssm.initial(1), torch.randn(1, A), e, torch.zeros(1, dtype=torch.bool))[0]
    b = rssm.obs_step({k: v[:1] for k, v in prior.items()}, torch.randn(1, A), e,
                      torch.zeros(1, dtype=torch.bool))[0]
    assert torch.allclose(a["logits"], b["logits"]) and not torch.allclose(a["deter"], b["deter"])


def test_observe_equals_a_loop_of_obs_step_with_resets():
    cfg = tiny()
    rssm = RSSM(cfg, A, 12)
    B, T = 2, 7
    embeds, actions = torch.randn(B, T, 12), torch.randn(B, T, A)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[1, 4] = True                       # an episode boundary inside the sequence
    posts, priors = rssm.observe(embeds, actions, is_first, sample=False)
    state = rssm.initial(B)
    for t in range(T):
        post, prior = rssm.obs_step(state, actions[:, t], embeds[:, t], is_first[:, t], sample=False)
        for k in post:
            assert torch.allclose(posts[k][:, t], post[k], atol=1e-5), (k, t)
            assert torch.allclose(priors[k][:, t], prior[k], atol=1e-5), (k, t)
        state = post
    # the reset makes step 4 of sequence 1 independent of its past
    other = embeds.clone()
    other[1, :4] = torch.randn(4, 12)
    posts2, _ = rssm.observe(other, actions, is_first, sample=False)
    assert torch.allclose(posts2["deter"][1, 4:], posts["deter"][1, 4:], atol=1e-6)
    assert not torch.allclose(posts2["deter"][1, :4], posts["deter"][1, :4])


def test_wrong_shapes_are_reported():
    rssm = RSSM(tiny(), A, 12)
    with pytest.raises(AssertionError, match="actions"):
        rssm.observe(torch.randn(2, 4, 12), torch.randn(2, 4, A + 1), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(AssertionError, match="expected"):
        rssm.img_step(rssm.initial(2), torch.randn(2, A + 2))


# --- categorical latents and KL ------------------------------------------------------------------

def test_samples_are_onehot_with_unimix_and_follow_the_distribution():
    logits = logits_of([0.7, 0.2, 0.1, 0.0]).float().expand(20000, 1, 4)
    z = sample_onehot(logits, unimix=0.01)
    assert torch.allclose(z.detach().sum(-1), torch.ones(20000, 1))
    freq = z.detach().mean(0)[0]
    expected = 0.99 * torch.tensor([0.7, 0.2, 0.1, 0.0]) + 0.0025
    assert torch.allclose(freq, expected, atol=0.01), freq
    assert freq[3] > 0                          # the uniform mix gives the impossible class some mass
    mode = sample_onehot(logits[:1], 0.01, sample=False).detach()
    assert torch.equal(mode, torch.tensor([[[1.0, 0, 0, 0]]]))


def test_straight_through_gradient_flows_to_logits():
    logits = torch.randn(4, 3, 5, requires_grad=True)
    weights = torch.randn(3, 5)
    (sample_onehot(logits, 0.01) * weights).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # and through a whole world-model step into the encoder
    wm = WorldModel(tiny(), A)
    batch = batch_to_torch(SyntheticSampler(action_dim=A, embed_dim=None).sample(2, 4, np.random.default_rng(0)), "cpu")
    loss, _, _ = wm.loss(batch)
    loss.backward()
    assert wm.encoder.net[0].weight.grad.abs().sum() > 0 and wm.rssm.post_head[-1].weight.grad.abs().sum() > 0


def test_kl_of_known_categoricals():
    q = logits_of([0.9, 0.1])
    p = logits_of([0.5, 0.5])
    hand = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)            # 0.368064
    assert kl_categorical(q, p, unimix=0.0).item() == pytest.approx(hand, abs=1e-9)
    qm, pm = 0.99 * 0.9 + 0.005, 0.99 * 0.1 + 0.005                         # 1% uniform mix: 0.896, 0.104
    hand_mix = qm * math.log(qm / 0.5) + pm * math.log(pm / 0.5)
    assert kl_categorical(q, p, unimix=0.01).item() == pytest.approx(hand_mix, abs=1e-7)
    # summed over groups
    two = torch.log(torch.tensor([[[0.9, 0.1], [0.9, 0.1]]], dtype=torch.float64))
    flat = torch.log(torch.tensor([[[0.5, 0.5], [0.5, 0.5]]], dtype=torch.float64))
    assert kl_categorical(two, flat, 0.0).item() == pytest.approx(2 * hand, abs=1e-9)
    # identical distributions -> 0
    assert kl_categorical(q, q, 0.01).item() == pytest.approx(0.0, abs=1e-9)


def test_kl_balance_free_nats_and_gradient_split():
    # identical distributions: KL 0, clipped up to the free nats, no gradient
    q = logits_of([0.3, 0.7]).requires_grad_(True)
    p = logits_of([0.3, 0.7]).requires_grad_(True)
    loss, kl = kl_balance_loss(q, p, balance=0.85, free=1.0, unimix=0.01)
    assert loss.item() == pytest.approx(1.0) and kl.item() == pytest.approx(0.0, abs=1e-9)
    loss.backward()
    assert q.grad.abs().max() == 0 and p.grad.abs().max() == 0

    # free nats act per element (batch, time) after summing over groups, before the mean
    post = torch.log(torch.tensor([[[0.9, 0.1]], [[0.5, 0.5]]], dtype=torch.float64))
    prior = torch.log(torch.tensor([[[0.5, 0.5]], [[0.5, 0.5]]], dtype=torch.float64))
    hand = 0.9 * math.log(1.8) + 0.1 * math.log(0.2)
    loss, kl = kl_balance_loss(post, prior, balance=0.85, free=0.2, unimix=0.0)
    assert kl.tolist() == pytest.approx([hand, 0.0], abs=1e-9)
    assert loss.item() == pytest.approx((hand + 0.2) / 2, abs=1e-9)   # not max(0.2, mean) = hand / 2

    # gradient split: 0.85 of dKL/dprior goes to the prior, 0.15 of dKL/dpost to the posterior
    post = torch.log(torch.tensor([[[0.9, 0.1]]], dtype=torch.float64)).requires_grad_(True)
    prior = torch.log(torch.tensor([[[0.4, 0.6]]], dtype=torch.float64)).requires_grad_(True)
    loss, _ = kl_balance_loss(post, prior, balance=0.85, free=0.0, unimix=0.0)
    loss.backward()
    post2, prior2 = post.detach().clone().requires_grad_(True), prior.detach().clone().requires_grad_(True)
    kl_categorical(post2, prior2, 0.0).sum().backward()
    assert torch.allclose(prior.grad, 0.85 * prior2.grad) and torch.allclose(post.grad, 0.15 * post2.grad)


def test_mixed_probs_floor():
    p = mixed_probs(torch.tensor([[[50.0, -50.0, -50.0, -50.0]]]), 0.01)
    assert torch.allclose(p.sum(-1), torch.ones(1, 1)) and p.min() >= 0.01 / 4 - 1e-7


# --- the world model -----------------------------------------------------------------------------

def test_world_model_loss_decode_and_reward_projection():
    cfg = tiny()
    wm = WorldModel(cfg, A)
    batch = batch_to_torch(SyntheticSampler(action_dim=A, embed_dim=None).sample(2, 6, np.random.default_rng(0)), "cpu")
    loss, metrics, posts = wm.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert posts["stoch"].shape == (2, 6, cfg.stoch_groups, cfg.stoch_classes)
    assert metrics["recon_loss"] > 0 and metrics["model_kl"] >= 0
    # pixel MSE is summed over pixels: recon_mse (per pixel) x 64*64*3 = recon_loss
    assert metrics["recon_loss"].item() == pytest.approx(metrics["recon_mse"].item() * 64 * 64 * 3, rel=1e-5)
    z = wm.rssm.stoch_flat(posts)
    frames = wm.decode(z)
    assert frames.shape == (2, 6, 64, 64, 3) and frames.min() >= 0 and frames.max() <= 1
    g = wm.reward_projection(z)
    assert g.shape == (2, 6, cfg.embed_dim)
    assert torch.allclose(g, z @ wm.decoder.linear.weight.T + wm.decoder.linear.bias)


def test_imagination_backpropagates_into_the_policy():
    cfg = tiny()
    wm = WorldModel(cfg, A)
    for p in wm.parameters():
        p.requires_grad_(False)
    policy = torch.nn.Linear(cfg.feat_dim, A)
    start = {k: v[:, 0] for k, v in wm.rssm.observe(torch.randn(8, 2, cfg.embed_dim), torch.zeros(8, 2, A),
                                                      torch.ones(8, 2, dtype=torch.bool))[0].items()}
    states = wm.rssm.imagine(start, lambda f: torch.tanh(policy(f.detach())), horizon=5)
    wm.reward_projection(wm.rssm.stoch_flat(states)).sum().backward()
    assert policy.weight.grad is not None and policy.weight.grad.abs().sum() > 0


def test_training_on_a_fixed_batch_lowers_the_loss():
    cfg = tiny()
    wm = WorldModel(cfg, A)
    opt = torch.optim.Adam(wm.parameters(), lr=1e-3)
    batch = batch_to_torch(SyntheticSampler(action_dim=A, embed_dim=None).sample(2, 8, np.random.default_rng(0)), "cpu")
    losses = []
    for _ in range(25):
        loss, metrics, _ = wm.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(metrics["recon_loss"].item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_open_loop_shapes_and_baseline():
    wm = WorldModel(tiny(), 2)
    batch = SyntheticSampler(action_dim=2, embed_dim=None).sample(2, 22, np.random.default_rng(0))
    out = open_loop(wm, batch, context=5, horizon=16)
    assert out["pred"].shape == out["truth"].shape == (2, 21, 64, 64, 3)
    assert out["mse"].shape == out["baseline_mse"].shape == (16,)
    assert np.allclose(out["truth"], batch["obs"][:, :21] / 255.0, atol=1e-6)
    with pytest.raises(AssertionError, match="need T >= 21"):
        open_loop(wm, SyntheticSampler(action_dim=2, embed_dim=None).sample(1, 10, np.random.default_rng(0)))


def test_open_loop_action_controls_tell_a_model_that_ignores_its_actions():
    wm = WorldModel(tiny(), 2)
    batch = SyntheticSampler(action_dim=2, embed_dim=None).sample(3, 12, np.random.default_rng(1))
    run = {mode: open_loop(wm, batch, context=4, horizon=8, actions=mode) for mode in ("true", "shuffled", "zero")}
    for mode in ("shuffled", "zero"):
        assert np.array_equal(run[mode]["pred"][:, :4], run["true"]["pred"][:, :4])   # context: true actions
        assert not np.allclose(run[mode]["pred"][:, 4:], run["true"]["pred"][:, 4:])  # a random model uses them
    rolled = dict(batch, action=np.concatenate([batch["action"][:, :4], np.roll(batch["action"][:, 4:], 1, 0)], 1))
    assert np.allclose(open_loop(wm, rolled, context=4, horizon=8)["pred"], run["shuffled"]["pred"], atol=1e-6)
    q = evaluate_world_model(wm, SyntheticSampler(action_dim=2, embed_dim=None), windows=4, context=4, horizon=8,
                             batch=2, action_controls=True)
    assert q["action_effect"] == pytest.approx(q["open_loop_mse_shuffled_actions"] / q["open_loop_mse"])
    assert q["action_effect"] != pytest.approx(1.0, abs=1e-6)
    with torch.no_grad():   # cut the actions out of the dynamics: every control predicts the same frames
        wm.rssm.dynamics.img_in[0].weight[:, wm.cfg.stoch_flat_dim:] = 0
    preds = [open_loop(wm, batch, context=4, horizon=8, actions=m)["pred"] for m in ("true", "shuffled", "zero")]
    assert np.allclose(preds[0], preds[1], atol=1e-6) and np.allclose(preds[0], preds[2], atol=1e-6)
    q = evaluate_world_model(wm, SyntheticSampler(action_dim=2, embed_dim=None), windows=4, context=4, horizon=8,
                             batch=2, action_controls=True)
    assert q["action_effect"] == pytest.approx(1.0, abs=1e-5)
    assert "action_effect" not in evaluate_world_model(wm, SyntheticSampler(action_dim=2, embed_dim=None), windows=2,
                                                       context=4, horizon=8, batch=2)
    with pytest.raises(ValueError, match="B >= 2"):
        open_loop(wm, {k: v[:1] for k, v in batch.items()}, context=4, horizon=8, actions="shuffled")
    with pytest.raises(ValueError, match="'true', 'shuffled' or 'zero'"):
        open_loop(wm, batch, context=4, horizon=8, actions="random")
    with pytest.raises(ValueError, match="a last batch of 1"):
        evaluate_world_model(wm, SyntheticSampler(action_dim=2, embed_dim=None), windows=5, batch=2,
                             action_controls=True)

# --- training, checkpoints, resume ---------------------------------------------------------------

def _params(bundle):
    return torch.cat([p.detach().flatten() for m in (bundle.world_model, bundle.connector, bundle.aligner)
                      for p in m.parameters()])


def test_train_save_resume_load_cycle(tmp_path):
    cfg = tiny(save_every=3, log_every=1)
    data = SyntheticSampler(action_dim=2, embed_dim=16)
    full = train_world_model(cfg, data, 6, tmp_path / "full", device="cpu", show_progress=False)
    assert full.step == 6
    part = train_world_model(cfg, data, 3, tmp_path / "part", device="cpu", show_progress=False)
    assert part.step == 3
    # pretend the run died after logging step 4 but before saving it
    with open(tmp_path / "part" / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "wm_loss": 123.0}\n')
    resumed = train_world_model(cfg, data, 6, tmp_path / "part", device="cpu", show_progress=False)
    assert resumed.step == 6
    assert torch.allclose(_params(resumed), _params(full), atol=1e-5), "resume differs from an uninterrupted run"
    m = read_metrics(tmp_path / "part")
    assert m["step"].tolist() == [1, 2, 3, 4, 5, 6] and np.isfinite(m["connector_kl"]).all()
    assert np.allclose(m["wm_loss"], read_metrics(tmp_path / "full")["wm_loss"], rtol=1e-4)

    loaded = load_checkpoint(tmp_path / "part", expected_preset="tiny", embed_dim=16, device="cpu")
    assert loaded.step == 6 and loaded.cfg == cfg and loaded.embed_dim == 16 and loaded.action_dim == 2
    assert torch.allclose(_params(loaded), _params(full), atol=1e-5)
    # a finished run asked for the same total does nothing more
    again = train_world_model(cfg, data, 6, tmp_path / "part", device="cpu", show_progress=False)
    assert again.step == 6 and torch.equal(_params(again), _params(resumed))


def test_training_without_embeddings_and_with_embed_fn(tmp_path):
    cfg = tiny(save_every=100, log_every=1)
    plain = SyntheticSampler(action_dim=2, embed_dim=None)
    b = train_world_model(cfg, plain, 2, tmp_path / "a", device="cpu", show_progress=False)
    assert b.connector is None and b.aligner is None
    assert load_checkpoint(tmp_path / "a").connector is None
    b = train_world_model(cfg, plain, 2, tmp_path / "b", device="cpu", show_progress=False,
                          embed_fn=lambda batch: np.ones(batch["action"].shape[:2] + (8,), np.float32) / np.sqrt(8))
    assert b.connector is not None and b.embed_dim == 8


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="python -m genrl_lite.training"):
        load_checkpoint(tmp_path / "nothing_here")
    bad = tmp_path / "bad" / "checkpoint.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(bad)
    cfg = tiny(log_every=1)
    data = SyntheticSampler(action_dim=2, embed_dim=16)
    train_world_model(cfg, data, 1, tmp_path / "run", device="cpu", show_progress=False)
    with pytest.raises(CheckpointError, match="'tiny'-preset"):
        load_checkpoint(tmp_path / "run", expected_preset="laptop")
    with pytest.raises(CheckpointError, match="16-d embeddings"):
        load_checkpoint(tmp_path / "run", embed_dim=512)
    with pytest.raises(CheckpointError, match="another config"):
        train_world_model(tiny(deter=48), data, 2, tmp_path / "run", device="cpu", show_progress=False)
    with pytest.raises(CheckpointError, match="16-d embeddings"):
        train_world_model(cfg, SyntheticSampler(action_dim=2, embed_dim=8), 2, tmp_path / "run", device="cpu",
                          show_progress=False)
    with pytest.raises(TypeError, match="sample"):
        train_world_model(cfg, [1, 2, 3], 2, tmp_path / "x", device="cpu")


def test_world_model_plots(tmp_path):
    from genrl_lite import plotting
    cfg = tiny(log_every=1)
    train_world_model(cfg, SyntheticSampler(action_dim=2, embed_dim=16), 3, tmp_path, device="cpu",
                      show_progress=False)
    metrics = read_metrics(tmp_path)
    fig = plotting.wm_loss_curves(metrics)
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 1
    plotting.close(fig)
    bundle = load_checkpoint(tmp_path)
    out = open_loop(bundle.world_model, SyntheticSampler(action_dim=2, embed_dim=None).sample(1, 21, np.random.default_rng(0)))
    for fig in (plotting.open_loop_strip(out["truth"][0], out["pred"][0], out["context"]),
                plotting.open_loop_errors(out["mse"], out["baseline_mse"]),
                plotting.reconstruction_grid(out["truth"][0], out["pred"][0], n=4)):
        assert fig.axes
        plotting.close(fig)


# --- notebook 02 / figures / quality benchmark helpers ---------------------------------------------

@pytest.fixture(scope="module")
def tiny_walker(tmp_path_factory):
    """A tiny world model trained 3 steps on the committed walker sample (its checkpoint dir)."""
    from genrl_lite.data import EpisodeDataset
    from genrl_lite.runtime import data_dir

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_walker")
    train_world_model(tiny(log_every=1), EpisodeDataset(data_dir() / "sample", "walker", verbose=False), 3, out,
                      device="cpu", show_progress=False)
    return out


def test_every_class_decodes_and_latent_plots(tiny_walker, load_script):
    from genrl_lite import plotting
    from genrl_lite.data import EpisodeDataset
    from genrl_lite.runtime import data_dir

    figs = load_script("figures_world_model")
    wm = load_checkpoint(tiny_walker, device="cpu").world_model
    frame = EpisodeDataset(data_dir() / "sample", "walker", verbose=False)[0]["obs"][10]
    recon, decoded, current = figs.decode_every_class(wm, frame)
    G, C = wm.cfg.stoch_groups, wm.cfg.stoch_classes
    assert recon.shape == (64, 64, 3) and decoded.shape == (G, C, 64, 64, 3) and current.shape == (G,)
    for g in range(G):   # setting a group to the class it already has changes nothing; another class does
        assert np.allclose(decoded[g, current[g]], recon, atol=1e-6)
    other = (current + 1) % C
    assert max(np.abs(decoded[g, other[g]] - recon).max() for g in range(G)) > 1e-4

    fig = plotting.latent_swap(recon, decoded[0, other[0]], 0, int(other[0]), int(current[0]))
    assert len(fig.axes) == 4 and "group 0 -> class" in fig.axes[1].get_title()   # 3 panels + colour bar
    plotting.close(fig)
    fig = plotting.latent_classes(decoded[:2], [0, 1], current[:2], gap=2)
    mosaic = np.asarray(fig.axes[0].images[0].get_array())
    assert mosaic.shape == (2 * 66 - 2, C * 66 - 2, 3)
    orange = [(k, c) for k in range(2) for c in range(C) if tuple(mosaic[k * 66, c * 66]) == (213, 94, 0)]
    assert orange == [(0, int(current[0])), (1, int(current[1]))]   # exactly the posterior's class per row
    plotting.close(fig)
    with pytest.raises(AssertionError, match=r"\(K, C, S, S, 3\)"):
        plotting.latent_classes(decoded[:2], [0, 1, 2])
    maps = np.abs(decoded - recon).mean((1, -1))                      # (G, S, S)
    fig = plotting.latent_effect_maps(maps, ncols=3, gap=3)
    image = np.asarray(fig.axes[0].images[0].get_array())
    assert image.shape == (2 * (64 + 16), 3 * 67 - 3)                  # 2 rows (label strip + map), 3 columns
    assert np.allclose(image[16:80, :64], maps[0]) and np.allclose(image[96:160, :64], maps[3])   # tiny: G = 4
    assert [t.get_text() for t in fig.axes[0].texts][0] == f"g0: {maps[0].mean():.4f}"
    plotting.close(fig)
    with pytest.raises(AssertionError, match=r"\(K, S, S\)"):
        plotting.latent_effect_maps(decoded)


def test_figures_script_writes_or_skips(tiny_walker, tmp_path, tmp_path_factory, capsys, load_script):
    figs = load_script("figures_world_model")
    figs.figures_dir = lambda: tmp_path
    figs.main(["--model", str(tmp_path / "no_such_model"), "--domain", "walker"])
    assert "skipping world-model figures" in capsys.readouterr().out and not list(tmp_path.iterdir())
    # the shipped models' prompt videos (from their prompts_frames.npz), aligner vs none, one PNG per domain
    from genrl_lite.pretrained import SHIPPED_DOMAINS

    prompts_dir = tmp_path_factory.mktemp("prompts")
    figs.prompt_figures(prompts_dir)
    assert sorted(p.name for p in prompts_dir.iterdir()) == sorted(f"prompts_{d}.png" for d in SHIPPED_DOMAINS)
    recon_dir = tmp_path_factory.mktemp("recon")
    figs.domain_reconstructions(recon_dir, n=3)       # every shipped domain's frames above its reconstructions
    assert [p.name for p in recon_dir.iterdir()] == ["wm_reconstructions_domains.png"]
    out = capsys.readouterr().out
    assert "skipping" not in out and "wm_reconstructions_domains.png" in out
    figs.main(["--model", str(tiny_walker), "--domain", "walker", "--windows", "4"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["wm_latent_groups.png", "wm_latent_maps.png", "wm_loss_curves.png", "wm_open_loop.gif",
                     "wm_open_loop.png", "wm_open_loop_error.png", "wm_reconstructions.png"]


def test_quality_benchmark_on_a_tiny_model(tiny_walker, tmp_path, load_script):
    import json

    from genrl_lite.runtime import data_dir

    bench = load_script("bench_world_model")
    bundle = load_checkpoint(tiny_walker, device="cpu")
    with pytest.warns(RuntimeWarning, match="committed sample"):
        q = bench.measure_quality(bundle, domain="walker", root=tmp_path / "no_data", windows=4)
    assert "fallback" in q["data"] and q["preset"] == "tiny" and q["step"] == 3
    assert len(q["open_loop_mse_per_step"]) == len(q["baseline_mse_per_step"]) == 16
    assert q["open_loop_mse"] == pytest.approx(np.mean(q["open_loop_mse_per_step"]), rel=1e-4)
    assert q["open_loop_vs_baseline"] == pytest.approx(q["open_loop_mse"] / q["baseline_mse"], rel=1e-3)
    assert 0 < q["recon_mse"] < 1 and 0 < q["baseline_mse"] < 1
    with pytest.raises(ValueError, match="which domain"):
        bench.measure_quality(bundle, windows=4)
    with pytest.raises(ValueError, match="12-d actions"):
        bench.measure_quality(bundle, domain="quadruped", root=data_dir() / "sample", split="all", windows=4)

    out = tmp_path / "quality.json"
    bench.main(["--threads", "1", "--quality", str(tiny_walker), "--domain", "walker", "--data",
                str(data_dir() / "sample"), "--split", "all", "--windows", "4", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["domain"] == "walker" and saved["windows"] == 4 and "all split" in saved["data"]
    with pytest.raises(SystemExit, match="cannot measure quality"):
        bench.main(["--quality", str(tmp_path / "missing.pt"), "--domain", "walker"])
