"""Actor-critic in imagination (issue 5): symlog/twohot, λ-returns, percentile normalization,
dynamics backprop through a frozen fake world model, and tiny end-to-end policy learning."""
import ast
import dataclasses
import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fake_world_model import make_all

from genrl_lite import actor_critic as ac_mod
from genrl_lite.actor_critic import (Actor, ActorCritic, ActorCriticConfig, Critic, ReturnNormalizer, TwoHot,
                                     lambda_returns, symexp, symlog)
from genrl_lite.rewards import GenRLReward
from genrl_lite.tasks import UnknownNameError

# --- symlog and twohot ----------------------------------------------------------------------------


def test_symlog_symexp_are_inverse_and_odd():
    x = torch.tensor([-1e6, -50.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 50.0, 1e6], dtype=torch.float64)
    torch.testing.assert_close(symexp(symlog(x)), x)
    torch.testing.assert_close(symlog(-x), -symlog(x))
    assert symlog(torch.tensor(0.0)) == 0 and symlog(torch.tensor(math.e - 1)) == pytest.approx(1.0)


def test_twohot_round_trip_including_symlog_extremes():
    th = TwoHot()
    assert th.bins.shape == (255,) and th.bins[0] == -20 and th.bins[-1] == 20
    x = torch.tensor([0.0, 1e-4, -1e-4, 0.5, -1.0, 3.14159, -42.0, 1234.5, -98765.0, 1e8, -4e8])
    enc = th.encode(x)
    assert enc.shape == (11, 255)
    torch.testing.assert_close(enc.sum(-1), torch.ones(11))
    assert ((enc > 0).sum(-1) <= 2).all()
    nz = [torch.nonzero(row).flatten().tolist() for row in enc]
    assert all(len(i) == 1 or i[1] == i[0] + 1 for i in nz)           # two *adjacent* bins
    decoded = th.decode(torch.log(enc))
    torch.testing.assert_close(decoded, x, rtol=1e-4, atol=1e-5)
    # Beyond the last bin values are clipped to symexp(20).
    big = th.decode(torch.log(th.encode(torch.tensor([1e12, -1e12]))))
    torch.testing.assert_close(big, torch.tensor([1.0, -1.0]) * symexp(torch.tensor(20.0)), rtol=1e-4, atol=0)


def test_twohot_nll_is_minimal_when_the_prediction_is_the_true_value():
    th = TwoHot()
    true = torch.tensor(7.3)
    candidates = torch.tensor([-5.0, 0.0, 3.0, 6.0, 7.0, 7.3, 7.6, 9.0, 100.0])
    probs = 0.999 * th.encode(candidates) + 0.001 / 255        # predictions centred on each candidate
    nll = th.nll(torch.log(probs), true.expand(len(candidates)))
    assert candidates[nll.argmin()] == pytest.approx(7.3)
    # Free logits trained on the NLL decode to the target value.
    logits = torch.zeros(255, requires_grad=True)
    opt = torch.optim.Adam([logits], 0.5)
    for _ in range(300):
        loss = th.nll(logits, true)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert th.decode(logits).item() == pytest.approx(7.3, rel=1e-3)


# --- λ-returns -------------------------------------------------------------------------------------


def _naive_lambda_returns(r, v, gamma, lam):
    """The definition, one (t, b) at a time: R_t = r_t + γ_t((1-λ)v_{t+1} + λR_{t+1}), R_T = v_T."""
    steps, batch = r.shape[:2]
    out = np.zeros((steps, batch))
    for b in range(batch):
        nxt = v[steps, b, 0]
        for t in reversed(range(steps)):
            nxt = r[t, b, 0] + gamma[t, b, 0] * ((1 - lam) * v[t + 1, b, 0] + lam * nxt)
            out[t, b] = nxt
    return out


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_lambda_returns_match_a_naive_loop(lam):
    g = torch.Generator().manual_seed(0)
    r = torch.randn(9, 4, 1, generator=g, dtype=torch.float64)
    v = torch.randn(10, 4, 1, generator=g, dtype=torch.float64)
    cont = (torch.rand(9, 4, 1, generator=g) > 0.2).double()
    ours = lambda_returns(r, v, 0.97, lam, continues=cont)
    naive = _naive_lambda_returns(r.numpy(), v.numpy(), 0.97 * cont.numpy(), lam)
    np.testing.assert_allclose(ours[..., 0].numpy(), naive)
    # A tensor discount is used as γ_t directly.
    torch.testing.assert_close(lambda_returns(r, v, 0.97 * cont, lam), ours)


def test_lambda_returns_special_cases():
    g = torch.Generator().manual_seed(1)
    r = torch.randn(6, 3, 1, generator=g, dtype=torch.float64)
    v = torch.randn(7, 3, 1, generator=g, dtype=torch.float64)
    # λ = 0: one-step TD targets.
    torch.testing.assert_close(lambda_returns(r, v, 0.9, 0.0), r + 0.9 * v[1:])
    # λ = 1: discounted Monte-Carlo sum plus the discounted bootstrap value.
    mc = torch.stack([sum(0.9 ** (k - t) * r[k] for k in range(t, 6)) + 0.9 ** (6 - t) * v[6] for t in range(6)])
    torch.testing.assert_close(lambda_returns(r, v, 0.9, 1.0), mc)
    with pytest.raises(AssertionError, match="values must be"):
        lambda_returns(r, v[:-1], 0.9, 0.95)


# --- return normalization --------------------------------------------------------------------------


def test_return_normalizer_tracks_percentiles_with_an_ema():
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(16, 32, 1, generator=g) * 30 + 5, torch.randn(16, 32, 1, generator=g) * 10
    norm = ReturnNormalizer(alpha=0.01)
    q1 = np.percentile(x1.numpy(), [5, 95])
    q2 = np.percentile(x2.numpy(), [5, 95])
    norm.update(x1)
    np.testing.assert_allclose(norm.ema.numpy(), 0.01 * q1, rtol=1e-5)
    offset, scale = norm.update(x2)
    expected = 0.01 * q2 + 0.99 * 0.01 * q1
    np.testing.assert_allclose(norm.ema.numpy(), expected, rtol=1e-5)
    assert offset.item() == pytest.approx(expected[0], rel=1e-5)
    assert scale.item() == pytest.approx(max(1.0, expected[1] - expected[0]), rel=1e-5)
    # A percentile range below 1 is not scaled up: returns are only shifted.
    small = ReturnNormalizer(alpha=1.0)
    offset, scale = small.update(x1 / 1000)
    assert scale.item() == 1.0
    torch.testing.assert_close(small(x1 / 1000), x1 / 1000 - offset)
    # With alpha = 1 the EMA is the batch percentiles, and the range is divided out.
    fast = ReturnNormalizer(alpha=1.0)
    offset, scale = fast.update(x1)
    assert offset.item() == pytest.approx(q1[0], rel=1e-5) and scale.item() == pytest.approx(q1[1] - q1[0], rel=1e-5)
    torch.testing.assert_close(fast(x1), (x1 - q1[0]) / (q1[1] - q1[0]), rtol=1e-4, atol=1e-5)
    normed = fast(x1).flatten().numpy()
    assert np.percentile(normed, 5) == pytest.approx(0.0, abs=1e-4)
    assert np.percentile(normed, 95) == pytest.approx(1.0, abs=1e-4)


# --- networks ---------------------------------------------------------------------------------------


def test_actor_distribution_bounds_and_mode():
    torch.manual_seed(0)
    actor = Actor(6, 3, units=16, layers=2)
    feat = torch.randn(50, 6) * 10
    dist = actor(feat)
    assert dist.batch_shape == (50,) and dist.event_shape == (3,)
    assert (dist.mean.abs() <= 1).all() and (dist.stddev >= 0.1).all() and (dist.stddev <= 1.0).all()
    torch.testing.assert_close(actor.mode(feat), dist.mean)
    a = dist.rsample()
    a.sum().backward()
    assert all(p.grad is not None for p in actor.parameters())


def test_critic_starts_at_zero():
    critic = Critic(6, units=16, layers=1)
    feat = torch.randn(4, 7, 6)
    assert critic(feat).shape == (4, 7, 255)
    torch.testing.assert_close(critic.value(feat), torch.zeros(4, 7, 1))


# --- configuration -------------------------------------------------------------------------------


def test_presets_and_paper_values():
    p = ActorCriticConfig.paper()
    assert (p.units, p.layers, p.actor_lr, p.critic_lr, p.adam_eps, p.grad_clip) == (1024, 4, 3e-5, 3e-5, 1e-5, 100.0)
    assert (p.horizon, p.discount, p.lam, p.entropy, p.slow_target_every) == (16, 0.99, 0.95, 0.0, 100)
    assert p.start_batch * p.start_length == 1024
    assert ActorCriticConfig.preset("tiny") == ActorCriticConfig.tiny()
    with pytest.raises(UnknownNameError, match="tiny, laptop, paper"):
        ActorCriticConfig.preset("huge")


def test_every_config_field_has_a_docstring():
    tree = ast.parse(inspect.getsource(ActorCriticConfig))
    body = tree.body[0].body
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            nxt = body[i + 1]
            assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), node.target.id
    assert len([n for n in body if isinstance(n, ast.AnnAssign)]) == len(dataclasses.fields(ActorCriticConfig))


# --- updates in imagination ---------------------------------------------------------------------


def _starts(rssm, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    start = rssm.initial(n)
    start["deter"] = torch.randn(n, rssm.deter, generator=g) * 0.3
    start["stoch"] = F.one_hot(torch.randint(rssm.classes, (n, rssm.groups), generator=g), rssm.classes).float()
    return start


def _feat_dim(rssm):
    return rssm.deter + rssm.groups * rssm.classes


def test_update_trains_only_the_actor_and_critic_and_the_model_stays_frozen():
    rssm, wm, connector, aligner = make_all(seed=0)
    before = {k: v.clone() for k, v in rssm.state_dict().items()}
    ac = ActorCritic(_feat_dim(rssm), 2, ActorCriticConfig.tiny(), seed=0)
    actor_before = [p.clone() for p in ac.actor.parameters()]
    critic_before = [p.clone() for p in ac.critic.parameters()]
    reward = GenRLReward(wm, connector, aligner, torch.randn(5), window=3)
    metrics = ac.update(rssm, _starts(rssm), reward)
    assert all(math.isfinite(v) for v in metrics.values())
    for k, v in rssm.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert all(p.grad is None for p in rssm.parameters()) and all(p.requires_grad for p in rssm.parameters())
    assert all(p.grad is None for p in wm.reward_projection.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, ac.actor.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, ac.critic.parameters()))


def test_dynamics_backprop_gets_the_reward_gradient_through_the_model():
    rssm, *_ = make_all(seed=0)
    cfg = ActorCriticConfig.tiny()
    # Critic and slow critic start at exactly 0, so at the first update the only way the actor can
    # get a gradient is through reward(img_step(state, action)).
    ac = ActorCritic(_feat_dim(rssm), 2, cfg, seed=0)
    m = ac.update(rssm, _starts(rssm), lambda s: s["deter"][..., :1])
    assert m["actor_grad_norm"] > 0
    ac = ActorCritic(_feat_dim(rssm), 2, cfg, seed=0)
    m = ac.update(rssm, _starts(rssm), lambda s: s["deter"][..., :1].detach())
    assert m["actor_grad_norm"] == 0                          # no path: nothing to learn from


def test_slow_critic_is_a_hard_copy_every_n_updates():
    rssm, *_ = make_all(seed=0)
    cfg = dataclasses.replace(ActorCriticConfig.tiny(), slow_target_every=3)
    ac = ActorCritic(_feat_dim(rssm), 2, cfg, seed=0)
    reward = lambda s: s["deter"][..., :1]  # noqa: E731

    def same():
        return all(torch.equal(a, b) for a, b in zip(ac.critic.parameters(), ac.slow_critic.parameters()))

    pattern = []
    for _ in range(7):
        ac.update(rssm, _starts(rssm), reward)
        pattern.append(same())
    assert pattern == [True, False, False, True, False, False, True]    # copied at updates 0, 3, 6
    assert not any(p.requires_grad for p in ac.slow_critic.parameters())


def test_update_is_deterministic_under_a_seed():
    def run():
        torch.manual_seed(123)
        rssm, wm, connector, aligner = make_all(seed=0)
        ac = ActorCritic(_feat_dim(rssm), 2, ActorCriticConfig.tiny(), seed=7)
        reward = GenRLReward(wm, connector, aligner, torch.ones(5), window=3)
        torch.manual_seed(99)
        return [ac.update(rssm, _starts(rssm), reward) for _ in range(3)], ac.state_dict()
    (m1, s1), (m2, s2) = run(), run()
    assert m1 == m2
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=0, atol=0)


def test_start_states_with_a_time_axis_are_flattened():
    rssm, *_ = make_all(seed=0)
    ac = ActorCritic(_feat_dim(rssm), 2, ActorCriticConfig.tiny(), seed=0)
    start = {k: v.reshape(4, 8, *v.shape[1:]) for k, v in _starts(rssm, 32).items()}   # (B, L, ...)
    seen = []
    ac.update(rssm, start, lambda s: seen.append(s["deter"].shape) or s["deter"][..., :1])
    assert seen == [(6, 32, rssm.deter)]                        # H + 1 = 6 states x 32 starts
    with pytest.raises(AssertionError, match=r"\(H\+1, B, 1\)"):
        ac.update(rssm, start, lambda s: s["deter"][..., :1].sum(0))


def test_the_actor_learns_the_action_a_reward_favours():
    # Fake dynamics: the first entries of h are tanh(action). Reward the state for being close to
    # tanh(a*): the actor's mean action must move to a*.
    rssm, *_ = make_all(seed=0)
    target = torch.tensor([0.6, -0.4])
    ac = ActorCritic(_feat_dim(rssm), 2, ActorCriticConfig.tiny(), seed=0)
    start = _starts(rssm, 32)
    feat = rssm.feat(start)
    first = (ac.act(feat) - target).abs().mean().item()
    reward = lambda s: -(s["deter"][..., :2] - torch.tanh(target)).square().sum(-1, keepdim=True)  # noqa: E731
    for _ in range(50):
        ac.update(rssm, start, reward)
    mean_action = ac.act(feat).mean(0)
    last = (ac.act(feat) - target).abs().mean().item()
    assert first > 0.3 and last < 0.5 * first, (first, last)
    assert mean_action[0] > 0.4 and mean_action[1] < -0.2, mean_action


def test_a_policy_learns_the_prompted_behaviour_from_genrl_reward():
    # The fake connector plays a fixed action a* for any prompt; z tokenizes h into 4 bins per
    # group, so only actions whose tanh falls in a*'s bins ([0.5, 1] and [-0.5, 0]) match the target.
    a_star = [math.atanh(0.75), math.atanh(-0.25)]
    rssm, wm, connector, aligner = make_all(target_action=a_star, seed=0)
    reward = GenRLReward(wm, connector, aligner, torch.randn(5), window=3)
    ac = ActorCritic(_feat_dim(rssm), 2, ActorCriticConfig.tiny(), seed=0)
    start = _starts(rssm, 48)
    feat = rssm.feat(start)
    first_action = torch.tanh(ac.act(feat)).mean(0)
    rewards = [ac.update(rssm, start, reward)["reward_mean"] for _ in range(120)]
    action = torch.tanh(ac.act(feat)).mean(0)
    assert not (0.5 < first_action[0] < 1.0 and -0.5 < first_action[1] < 0.0)
    assert 0.5 < action[0] < 1.0 and -0.5 < action[1] < 0.0, action
    assert np.mean(rewards[-10:]) > np.mean(rewards[:10]) + 0.15


# --- checkpoints --------------------------------------------------------------------------------


def test_save_and_load_resume_exactly(tmp_path):
    rssm, *_ = make_all(seed=0)
    ac = ActorCritic(_feat_dim(rssm), 2, ActorCriticConfig.tiny(), seed=0)
    reward = lambda s: s["deter"][..., :1]  # noqa: E731
    for _ in range(3):
        ac.update(rssm, _starts(rssm), reward)
    path = tmp_path / "policy.pt"
    ac.save(path)
    loaded = ActorCritic.load(path)
    assert loaded.updates == 3 and loaded.config == ac.config
    torch.manual_seed(5)
    m1 = ac.update(rssm, _starts(rssm), reward)
    torch.manual_seed(5)
    m2 = loaded.update(rssm, _starts(rssm), reward)
    assert m1 == m2
    with pytest.raises(FileNotFoundError, match="no actor-critic checkpoint"):
        ActorCritic.load(tmp_path / "missing.pt")
    (tmp_path / "broken.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupted"):
        ActorCritic.load(tmp_path / "broken.pt")


def test_module_docstring_names_the_shapes():
    doc = ac_mod.__doc__
    for letter in ("H ", "B ", "F ", "A ", "K "):
        assert f"    {letter}" in doc


def test_works_with_the_real_world_model_connector_and_aligner():
    # The fakes above mirror this interface; this checks the real (untrained, tiny) modules fit it.
    from genrl_lite.aligner import Aligner
    from genrl_lite.connector import Connector
    from genrl_lite.data_free import DataFreeConfig, data_free_starts
    from genrl_lite.world_model import WorldModel, WorldModelConfig

    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny")
    wm, embed_dim = WorldModel(cfg, action_dim=3), 16
    connector, aligner = Connector(cfg, embed_dim), Aligner(embed_dim)
    reward = GenRLReward(wm, connector, aligner, torch.randn(embed_dim), window=4)
    ac = ActorCritic(cfg.feat_dim, 3, ActorCriticConfig.tiny(), seed=0)
    starts = data_free_starts(wm.rssm, connector, aligner, lambda f: ac.actor(f).sample(), 3,
                              DataFreeConfig.tiny())
    assert starts.states["stoch"].shape == (32, cfg.stoch_groups, cfg.stoch_classes)
    before = [p.clone() for p in wm.parameters()]
    metrics = ac.update(wm.rssm, starts.states, reward)
    assert all(math.isfinite(v) for v in metrics.values()) and metrics["actor_grad_norm"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before, wm.parameters()))
    with pytest.raises(ValueError, match="E = 16"):
        GenRLReward(wm, connector, aligner, torch.randn(384))
