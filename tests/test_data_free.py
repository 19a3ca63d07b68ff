"""Data-free start states (issue 5): shapes, the uniform/connector mixture, and the two warm-ups."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from fake_world_model import make_all

from genrl_lite.data_free import DataFreeConfig, data_free_starts, uniform_stoch
from genrl_lite.tasks import UnknownNameError


def _policy(value=0.5):
    return lambda feat: torch.full((feat.shape[0], 2), value)


def test_shapes_sources_and_h_zero_before_warmup():
    rssm, wm, connector, aligner = make_all(seed=0)
    cfg = DataFreeConfig(n=24, p_connector=0.5, warmup_steps=3, rollout_length=5)
    out = data_free_starts(rssm, connector, aligner, _policy(), action_dim=2, config=cfg,
                           generator=torch.Generator().manual_seed(0))
    assert out.states["deter"].shape == (48, rssm.deter)
    assert out.states["stoch"].shape == (48, rssm.groups, rssm.classes)
    assert out.states["logits"].shape == (48, rssm.groups, rssm.classes)
    assert out.from_connector.shape == (48,) and out.from_connector.dtype == torch.bool
    assert out.warmup.tolist() == [0] * 24 + [1] * 24
    assert torch.equal(out.from_connector[:24], out.from_connector[24:])     # same N states, twice
    assert out.initial["deter"].shape == (24, rssm.deter) and (out.initial["deter"] == 0).all()
    # z is one-hot per group, before and after warm-up.
    torch.testing.assert_close(out.initial["stoch"].sum(-1), torch.ones(24, rssm.groups))
    torch.testing.assert_close(out.states["stoch"].detach().round().sum(-1), torch.ones(48, rssm.groups))
    names = out.source_names()
    assert len(names) == 48 and names[-1].endswith("policy warm-up") and names[0].endswith("random warm-up")
    assert set(n.split(" z")[0] for n in names) <= {"uniform", "connector"}


def test_mixture_fraction_is_close_to_p():
    rssm, wm, connector, aligner = make_all(seed=0)
    for p in (0.3, 0.5, 0.8):
        cfg = DataFreeConfig(n=2000, p_connector=p, warmup_steps=0, rollout_length=16)
        out = data_free_starts(rssm, connector, aligner, _policy(), 2, cfg,
                               generator=torch.Generator().manual_seed(1))
        frac = out.from_connector[:2000].float().mean().item()
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / 2000), (p, frac)   # within 4 standard errors
    for p, expected in ((0.0, False), (1.0, True)):
        out = data_free_starts(rssm, connector, aligner, _policy(), 2,
                               DataFreeConfig(n=50, p_connector=p, warmup_steps=0))
        assert (out.from_connector == expected).all()


class RecordingConnector:
    """Wraps the fake connector and remembers what went in and came out."""

    def __init__(self, inner):
        self.inner, self.inputs, self.outputs = inner, [], []

    def rollout(self, embed, length, sample=False):
        assert sample, "data-free starts sample the connector (sample=True)"
        out = self.inner.rollout(embed, length, sample)
        self.inputs.append(embed.clone())
        self.outputs.append(out)
        return out


def test_connector_states_come_from_random_unit_embeddings_through_the_aligner():
    rssm, wm, connector, aligner = make_all(seed=0)
    rec = RecordingConnector(connector)
    seen = []

    def recording_aligner(e):
        seen.append(e.clone())
        return aligner(e)

    cfg = DataFreeConfig(n=30, p_connector=0.5, warmup_steps=0, rollout_length=8)
    out = data_free_starts(rssm, rec, recording_aligner, _policy(), 2, cfg, embed_dim=5,
                           generator=torch.Generator().manual_seed(2))
    assert seen[0].shape == (4, 5)                                 # ceil(30 / 8) random embeddings
    torch.testing.assert_close(seen[0].norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(rec.inputs[0].norm(dim=-1), torch.ones(4))   # re-normalized after the aligner
    rolled = rec.outputs[0]["stoch"].reshape(-1, rssm.groups, rssm.classes)[:30]
    mask = out.from_connector[:30]
    assert mask.any() and (~mask).any()
    torch.testing.assert_close(out.initial["stoch"][mask], rolled[mask])
    torch.testing.assert_close(out.initial["logits"][~mask], torch.zeros(int((~mask).sum()), rssm.groups, rssm.classes))


def test_uniform_z_covers_every_class_evenly():
    z = uniform_stoch(6000, groups=3, classes=4, generator=torch.Generator().manual_seed(3))
    assert z.shape == (6000, 3, 4)
    freq = z.mean(0)                                               # (G, C), each about 1/C
    assert (freq - 0.25).abs().max() < 0.03


def test_warmup_uses_random_actions_then_the_policy():
    rssm, wm, connector, aligner = make_all(seed=0)
    cfg = DataFreeConfig(n=200, p_connector=0.5, warmup_steps=2, rollout_length=4)
    out = data_free_starts(rssm, connector, aligner, _policy(0.5), 2, cfg,
                           generator=torch.Generator().manual_seed(4))
    # In the fake model the first entries of h are tanh(last action).
    random_half, policy_half = out.states["deter"][:200, :2], out.states["deter"][200:, :2]
    torch.testing.assert_close(policy_half, torch.full((200, 2), math.tanh(0.5)))
    assert random_half.abs().max() <= math.tanh(1.0) + 1e-6          # actions uniform in [-1, 1]
    assert random_half.std() > 0.3 and random_half.min() < -0.5 and random_half.max() > 0.5
    assert (out.states["deter"] != 0).any(dim=1).all()               # h is warm, no longer 0


def test_no_warmup_returns_the_mixed_states_twice():
    rssm, wm, connector, aligner = make_all(seed=0)
    out = data_free_starts(rssm, connector, aligner, _policy(), 2, DataFreeConfig(n=10, warmup_steps=0))
    torch.testing.assert_close(out.states["stoch"][:10], out.initial["stoch"])
    torch.testing.assert_close(out.states["stoch"][10:], out.initial["stoch"])


def test_same_generator_same_starts():
    rssm, wm, connector, aligner = make_all(seed=0)
    cfg = DataFreeConfig.tiny()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)  # the model's own sampling uses the global seed
        runs.append(data_free_starts(rssm, connector, aligner, _policy(), 2, cfg,
                                     generator=torch.Generator().manual_seed(5)))
    for k in runs[0].states:
        torch.testing.assert_close(runs[0].states[k], runs[1].states[k])
    assert torch.equal(runs[0].from_connector, runs[1].from_connector)


def test_presets_and_bad_config():
    assert DataFreeConfig.paper().n * 2 == 1024 and DataFreeConfig.paper().warmup_steps == 5
    assert DataFreeConfig.tiny().n < DataFreeConfig.laptop().n <= DataFreeConfig.paper().n
    assert DataFreeConfig.preset("laptop") == DataFreeConfig.laptop()
    with pytest.raises(UnknownNameError, match="tiny, laptop, paper"):
        DataFreeConfig.preset("gigantic")
    rssm, wm, connector, aligner = make_all(seed=0)
    for bad in (dict(n=0), dict(p_connector=1.5), dict(warmup_steps=-1), dict(rollout_length=0)):
        with pytest.raises(ValueError, match="bad data-free config"):
            data_free_starts(rssm, connector, aligner, _policy(), 2, dataclasses.replace(DataFreeConfig.tiny(), **bad))
    with pytest.raises(ValueError, match="embed_dim"):
        data_free_starts(rssm, connector, None, _policy(), 2, DataFreeConfig(n=8, p_connector=1.0))
    # Without an aligner (the "no aligner" ablation) the random embeddings go straight in.
    out = data_free_starts(rssm, connector, None, _policy(), 2, DataFreeConfig(n=8, p_connector=1.0), embed_dim=5)
    assert out.from_connector.all()


def test_starts_feed_the_actor_critic():
    from genrl_lite.actor_critic import ActorCritic, ActorCriticConfig

    rssm, wm, connector, aligner = make_all(seed=0)
    ac = ActorCritic(rssm.deter + rssm.groups * rssm.classes, 2, ActorCriticConfig.tiny(), seed=0)
    out = data_free_starts(rssm, connector, aligner, lambda f: ac.actor(f).sample(), 2, DataFreeConfig.tiny())
    metrics = ac.update(rssm, out.states, lambda s: F.relu(s["deter"][..., :1]))
    assert all(math.isfinite(v) for v in metrics.values())
