"""Connector and aligner (issue 4): shapes, chunk conditioning, toy problems that they must learn,
LAFITE noise properties and bad input. Tiny preset, CPU."""
import pytest
import torch
import torch.nn.functional as F

import genrl_lite  # noqa: F401
from genrl_lite.aligner import Aligner, add_lafite_noise
from genrl_lite.connector import Connector, imagine_prompt
from genrl_lite.world_model import WorldModelConfig

E = 16


def tiny(**kw):
    return WorldModelConfig.preset("tiny", **kw)


def toy_posts(cfg, concepts, T):
    """Posterior sequences fully determined by a concept: group g at time t has class (c + g + t) % C."""
    G, C = cfg.stoch_groups, cfg.stoch_classes
    t = torch.arange(T)[None, :, None]
    g = torch.arange(G)[None, None, :]
    idx = (concepts[:, None, None] + g + t) % C                     # (B, T, G)
    onehot = F.one_hot(idx, C).float()
    logits = torch.log(onehot * 0.97 + 0.01)                        # a confident posterior
    return {"stoch": onehot, "logits": logits, "deter": torch.zeros(*idx.shape[:2], cfg.deter)}, idx


def test_connector_shapes_and_rollout():
    cfg = tiny()
    conn = Connector(cfg, E)
    states = conn.rollout(F.normalize(torch.randn(3, E), dim=-1), 12)
    assert states["deter"].shape == (3, 12, cfg.deter)
    assert states["stoch"].shape == states["logits"].shape == (3, 12, cfg.stoch_groups, cfg.stoch_classes)
    # mode latents are one-hots (up to the straight-through term) and deterministic
    assert torch.allclose(states["stoch"].detach().sum(-1), torch.ones(3, 12, cfg.stoch_groups))
    assert set(states["stoch"].detach().round().unique().tolist()) == {0.0, 1.0}
    e = F.normalize(torch.randn(2, E), dim=-1)
    assert torch.equal(conn.rollout(e, 5)["stoch"], conn.rollout(e, 5)["stoch"])
    sampled = [conn.rollout(e, 5, sample=True)["stoch"] for _ in range(2)]
    assert not torch.equal(*sampled)
    posts, _ = toy_posts(cfg, torch.tensor([0, 1]), 16)
    loss, metrics = conn.loss(F.normalize(torch.randn(2, 16, E), dim=-1), posts)
    assert loss.dim() == 0 and loss.item() == pytest.approx(metrics["connector_kl"].item(), rel=1e-6)
    assert "connector_initial_kl" in metrics


def test_connector_bad_input():
    cfg = tiny()
    conn = Connector(cfg, E)
    posts, _ = toy_posts(cfg, torch.tensor([0]), 16)
    with pytest.raises(ValueError, match="built for size 16"):
        conn.loss(torch.randn(1, 16, E + 1), posts)
    with pytest.raises(ValueError, match="built for size 16"):
        conn.rollout(torch.randn(1, 512), 4)
    with pytest.raises(ValueError, match="at least n_frames=8"):
        conn.loss(torch.randn(1, 4, E), {k: v[:, :4] for k, v in posts.items()})


def test_each_chunk_is_conditioned_on_its_last_embedding_only():
    cfg = tiny()
    conn = Connector(cfg, E)
    posts, _ = toy_posts(cfg, torch.tensor([0, 2]), 16)
    embeds = F.normalize(torch.randn(2, 16, E), dim=-1)
    torch.manual_seed(1)
    base, _ = conn.loss(embeds, posts)
    changed = embeds.clone()
    changed[:, [0, 3, 6, 8, 12, 14]] = F.normalize(torch.randn(2, 6, E), dim=-1)   # not indices 7, 15
    torch.manual_seed(1)
    same, _ = conn.loss(changed, posts)
    assert same.item() == pytest.approx(base.item(), abs=1e-6)
    changed[:, 15] = F.normalize(torch.randn(2, E), dim=-1)
    torch.manual_seed(1)
    other, _ = conn.loss(changed, posts)
    assert other.item() != pytest.approx(base.item(), abs=1e-6)
    # a chunk with a zero (padding) embedding is left out of the loss
    padded = embeds.clone()
    padded[:, 7] = 0.0
    posts2 = {k: v.clone() for k, v in posts.items()}
    posts2["logits"][:, :7] = torch.randn_like(posts2["logits"][:, :7])  # targets of the padded chunk
    torch.manual_seed(1)
    a, _ = conn.loss(padded, posts)
    torch.manual_seed(1)
    b, _ = conn.loss(padded, posts2)
    assert a.item() == pytest.approx(b.item(), abs=1e-6)


def test_connector_gradient_does_not_reach_the_world_model():
    cfg = tiny()
    conn = Connector(cfg, E)
    posts, _ = toy_posts(cfg, torch.tensor([1]), 8)
    posts = {k: v.clone().requires_grad_(True) for k, v in posts.items()}
    loss, _ = conn.loss(F.normalize(torch.randn(1, 8, E), dim=-1), posts)
    loss.backward()
    assert all(v.grad is None for v in posts.values())
    assert conn.init_mlp[0].weight.grad.abs().sum() > 0


def test_connector_learns_latent_sequences_from_embeddings():
    """Embeddings of 3 concepts determine the latent sequence; the connector must learn to roll it out."""
    cfg = tiny(deter=64, hidden=64)
    conn = Connector(cfg, E)
    protos = F.normalize(torch.randn(3, E), dim=-1)
    opt = torch.optim.Adam(conn.parameters(), lr=3e-3)
    losses = []
    for step in range(150):
        c = torch.randint(0, 3, (8,))
        posts, _ = toy_posts(cfg, c, 16)
        embeds = protos[c][:, None].expand(8, 16, E)
        loss, metrics = conn.loss(embeds, posts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(metrics["connector_kl"].item())
    assert sum(losses[-10:]) / 10 < 0.2 * sum(losses[:10]) / 10, (losses[:3], losses[-3:])
    # the prompt alone (no teacher forcing) now produces the concept's sequence
    with torch.no_grad():
        states = conn.rollout(protos, 16)
    _, target = toy_posts(cfg, torch.arange(3), 16)
    accuracy = (states["stoch"].argmax(-1) == target).float().mean().item()
    assert accuracy > 0.9, accuracy


# --- aligner -----------------------------------------------------------------------------------

def test_lafite_noise_properties():
    e = F.normalize(torch.randn(4000, 64), dim=-1)
    g = torch.Generator().manual_seed(0)
    noisy = add_lafite_noise(e, 0.5, generator=g)
    assert torch.allclose(noisy.norm(dim=-1), torch.ones(4000), atol=1e-5)
    assert torch.allclose(add_lafite_noise(e, 0.0), e, atol=1e-6)
    cos = [F.cosine_similarity(add_lafite_noise(e, a, torch.Generator().manual_seed(1)), e).mean().item()
           for a in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert all(x > y for x, y in zip(cos, cos[1:])), cos
    # alpha 0.5 with a unit-norm noise in high dimension: cos ~ 1/sqrt(2)
    assert cos[2] == pytest.approx(2 ** -0.5, abs=0.02)
    again = add_lafite_noise(e, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)


def test_aligner_architecture_and_output():
    al = Aligner(512)
    n = sum(p.numel() for p in al.parameters())
    assert 1.9e6 < n < 2.1e6, n                 # "about 2.0M" in the reference
    assert al.mid[0].layer.in_features == 256 and al.up[0].layer.in_features == 512
    out = al(torch.randn(5, 512))
    assert out.shape == (5, 512) and torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-5)
    with pytest.raises(ValueError, match="built for size 512"):
        al(torch.randn(5, 384))
    loss, metrics = al.loss(torch.zeros(3, 512))   # only padding: nothing to learn, no crash
    assert loss.item() == 0.0


def test_aligner_learns_to_denoise():
    """Vision embeddings live near a few cluster centres; the aligner must beat the noisy input."""
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(6, E), dim=-1)
    al = Aligner(E)
    opt = torch.optim.Adam(al.parameters(), lr=3e-3)

    def batch(n=64):
        return F.normalize(centres[torch.randint(0, 6, (n,))] + 0.05 * torch.randn(n, E), dim=-1)

    losses = []
    for _ in range(200):
        loss, metrics = al.loss(batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    with torch.no_grad():
        loss, metrics = al.loss(batch(512))
    assert loss < 0.5 * metrics["aligner_noisy_distance"], (loss, metrics)


def test_imagine_prompt_with_and_without_aligner():
    cfg = tiny()
    conn, al = Connector(cfg, E), Aligner(E)
    e = torch.randn(2, E) * 3                   # not unit norm: both paths normalize
    with torch.no_grad():
        a = imagine_prompt(conn, e, 9, aligner=al)
        b = imagine_prompt(conn, e, 9, aligner=None)
        c = conn.rollout(F.normalize(e, dim=-1), 9)
    assert a["stoch"].shape == b["stoch"].shape == (2, 9, cfg.stoch_groups, cfg.stoch_classes)
    assert torch.equal(b["deter"], c["deter"]) and not torch.equal(a["deter"], b["deter"])
