"""The connector p(s_t | s_{t-1}, e): turns one VLM embedding into a sequence of world-model latents.

Shapes: B batch, T time, E VLM embedding, K frames per VLM window (``cfg.n_frames``, 8),
D deterministic state, G x C categorical latents.

It is the world model's own recurrent cell (same sizes, its own weights; ``LatentDynamics``) with the
VLM embedding, scaled by sqrt(E), in place of the action, and a learned initial state:

    h_0 = MLP(sqrt(E) e),   z_0 = mode/sample of prior(h_0)
    h_t = GRU(h_{t-1}, [z_{t-1}, sqrt(E) e]),   z_t ~ prior(h_t)

Training (GENRL_REFERENCE.md section 3): the sequence is cut into K-frame chunks; chunk c is
conditioned on the clean embedding at its LAST index (the embedding of exactly that chunk's frames);
h runs through all chunks without reset; z_{t-1} is teacher-forced with the world model's posterior;
the loss is KL(p_connector || sg(q_world_model)) with balance 0.8 and no free nats. Since q is
detached only the 0.8 term carries gradient; we write ``0.8 KL + 0.2 sg(KL)`` so the value is the KL.

At inference, ``rollout(e, T)`` feeds the same e at every step (the reference's
``reset_every_n_frames=False``) and uses mode latents; ``imagine_prompt`` adds the aligner in front.

Where we differ: the 8-dim temporal one-hot the reference appends to e and multiplies by 0
(``temporal_embeds=False``) is left out; a T that is not a multiple of K is cut to the largest
multiple; chunks whose embedding is zero (the padding before the first full VLM window of an
episode) are left out of the loss instead of being trained toward "zero means this frame".
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from genrl_lite.world_model import LatentDynamics, WorldModelConfig, kl_categorical


class Connector(nn.Module):
    """Embedding-conditioned latent dynamics with a learned initial state."""

    def __init__(self, cfg: WorldModelConfig, embed_dim: int):
        super().__init__()
        self.cfg, self.embed_dim = cfg, embed_dim
        self.scale = math.sqrt(embed_dim)
        self.dynamics = LatentDynamics(cfg, embed_dim)
        self.init_mlp = nn.Sequential(
            nn.Linear(embed_dim, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.deter))

    def _check(self, e: torch.Tensor) -> None:
        if e.shape[-1] != self.embed_dim:
            raise ValueError(f"embedding has size {e.shape[-1]} (shape {tuple(e.shape)}), but this connector "
                             f"was built for size {self.embed_dim}: use the VLM the model was trained with")

    def initial(self, scaled_embed: torch.Tensor, sample: bool = False) -> dict:
        """Learned start state from a scaled embedding (B, E): h0 = MLP(e), z0 from prior(h0)."""
        deter = self.init_mlp(scaled_embed)
        logits = self.dynamics.logits(self.dynamics.prior_head, deter)
        return {"deter": deter, "stoch": self.dynamics.latent(logits, sample), "logits": logits}

    def loss(self, embeds: torch.Tensor, posts: dict):
        """KL to the world model's posteriors. embeds (B, T, E); posts values (B, T, ...) (detached here).

        Returns ``(loss, metrics)``; metrics are detached scalar tensors: ``connector_kl`` (per step,
        summed over groups) and ``connector_initial_kl`` (a chunk's first frame predicted from its
        embedding alone, only logged, as in the reference).
        """
        self._check(embeds)
        K = self.cfg.n_frames
        B, T = embeds.shape[:2]
        if T < K:
            raise ValueError(f"the connector needs sequences of at least n_frames={K} steps, got embeds "
                             f"{tuple(embeds.shape)}; raise batch_length")
        n = T // K
        T = n * K
        post_stoch = posts["stoch"][:, :T].detach()
        post_logits = posts["logits"][:, :T].detach()
        assert post_stoch.shape[:2] == (B, T), f"posts {tuple(posts['stoch'].shape)} vs embeds {tuple(embeds.shape)}"
        cond = embeds[:, K - 1:T:K]                                           # (B, n, E)
        valid = (cond.norm(dim=-1) > 1e-6).float()                            # (B, n)
        e = cond.repeat_interleave(K, dim=1) * self.scale                     # (B, T, E)
        mask = valid.repeat_interleave(K, dim=1)                              # (B, T)

        init = self.initial(e[:, 0], sample=True)
        prev_z = torch.cat([init["stoch"].flatten(-2)[:, None], post_stoch[:, :-1].flatten(-2)], 1)
        x_parts = self.dynamics.gru_inputs(prev_z, e)                         # teacher forcing, batched
        deter = self.dynamics.scan(x_parts, init["deter"])
        prior_logits = self.dynamics.logits(self.dynamics.prior_head, deter)
        kl = kl_categorical(prior_logits, post_logits, self.cfg.unimix)       # KL(p || q), (B, T)
        kl_mean = (kl * mask).sum() / mask.sum().clamp(min=1.0)
        b = self.cfg.connector_balance
        loss = b * kl_mean + (1 - b) * kl_mean.detach()

        metrics = {"connector_kl": kl_mean.detach()}
        if n > 1:
            with torch.no_grad():   # first frame of chunks 1.. from their embedding alone
                ec = e[:, K::K].reshape(-1, self.embed_dim)
                first = self.dynamics.img_step(self.initial(ec, sample=True), ec)
                kl0 = kl_categorical(first["logits"],
                                     post_logits[:, K::K].reshape(-1, *post_logits.shape[2:]), self.cfg.unimix)
                m0 = valid[:, 1:].reshape(-1)
                metrics["connector_initial_kl"] = (kl0 * m0).sum() / m0.sum().clamp(min=1.0)
        return loss, metrics

    def rollout(self, embed: torch.Tensor, length: int, sample: bool = False) -> dict:
        """Latent sequence for one embedding per row: embed (B, E) -> states with values (B, T, ...).

        Mode latents when ``sample=False`` (what GenRL's reward targets use). The learned initial
        state is not part of the output: step 0 is the first prior step after it.
        """
        self._check(embed)
        assert embed.dim() == 2, f"embed must be (B, E), got {tuple(embed.shape)}"
        e = embed * self.scale
        state = self.initial(e, sample)
        states = []
        for _ in range(length):
            state = self.dynamics.img_step(state, e, sample)
            states.append(state)
        return {k: torch.stack([s[k] for s in states], 1) for k in state}


def imagine_prompt(connector: Connector, embed: torch.Tensor, length: int, aligner=None,
                   sample: bool = False) -> dict:
    """Prompt embedding (B, E) -> [aligner] -> unit norm -> connector rollout (values (B, T, ...)).

    Pass ``aligner=None`` for the no-aligner ablation (the embedding is only normalized).
    """
    e = aligner(embed) if aligner is not None else nn.functional.normalize(embed, dim=-1)
    return connector.rollout(e, length, sample)


__all__ = ["Connector", "imagine_prompt"]
