"""The RSSM of GenRL's world model: categorical latents, the layer-norm GRU, and the recurrence.

Shapes: B batch, T time, H imagination horizon, A action dim, U input dim of the dynamics (A for the
world model, the embedding E for the connector), F frame embedding, D deterministic state (GRU
units), G latent groups, C classes per group.

    h_t = GRU(h_{t-1}, [z_{t-1}, u_t])  --prior-->      z_t ~ p(z_t | h_t)   (the dynamics)
    frame embedding e_t             --posterior-->  z_t ~ q(z_t | e_t)   (sees only the frame)

A state is a dict of tensors ``{"deter": (B, D), "stoch": (B, G, C) one-hot, "logits": (B, G, C)}``;
with leading (B, T) or (H+1, B) axes for sequences. The features for actor and critic are
``feat(state) = concat(flatten(stoch), deter)`` of size G*C + D.

Data convention: ``action[t]`` is the action that LED TO ``obs[t]`` (zero at episode starts), so one
step is ``h_t = GRU(h_{t-1}, [z_{t-1}, action[t]])``; at ``is_first[t]`` the previous state and the
action are reset to zero (as in the reference).

Faithful to the reference (GENRL_REFERENCE.md section 1): LayerNorm-GRU with update bias -1, 1%
uniform mix in every categorical, straight-through samples, posterior from the frame embedding only,
KL balancing 0.85 / 0.15 with 1 free nat per (batch, time) after summing over groups.

Where and why we differ:
- Because the posterior sees only the frame, all posteriors of a sequence are computed in one batched
  call before the recurrence, and so is the GRU's input projection; the Python loop over time only
  does ``h @ W_h`` plus the gates. Same maths as the reference's step-by-step scan (``observe`` equals a
  loop of ``obs_step``; a test checks it), 2x faster: laptop RSSM, 16 x 32 steps, forward + backward
  on one CPU thread, 0.19-0.20 s against 0.39 s for the step-by-step loop.
- Sampling uses the Gumbel-max trick (same distribution as ``torch.multinomial``, no host sync on a GPU).
- KLs are always computed in at least float32, also under mixed precision.

The world model around it (encoder, decoder, losses, configuration) is ``genrl_lite/world_model.py``;
the connector (``genrl_lite/connector.py``) reuses :class:`LatentDynamics` with embeddings as inputs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:   # only for annotations: world_model imports this module
    from genrl_lite.world_model import WorldModelConfig


# --- categorical latents ------------------------------------------------------------------------

def mixed_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Class probabilities (..., G, C) with ``unimix`` of a uniform distribution mixed in."""
    if logits.dtype in (torch.float16, torch.bfloat16):   # KLs and logs in at least float32
        logits = logits.float()
    probs = torch.softmax(logits, -1)
    if unimix > 0:
        probs = (1 - unimix) * probs + unimix / probs.shape[-1]
    return probs


def sample_onehot(logits: torch.Tensor, unimix: float, sample: bool = True) -> torch.Tensor:
    """One-hot latents (..., G, C) with straight-through gradients to the probabilities.

    ``sample=False`` gives the mode (the most likely class of each group).
    """
    probs = mixed_probs(logits, unimix)
    if sample:  # Gumbel-max: argmax(log p + Gumbel noise) is an exact sample of p.
        gumbel = -torch.log(-torch.log(torch.rand_like(probs).clamp_(1e-20, 1.0)))
        index = (probs.log() + gumbel).argmax(-1)
    else:
        index = probs.argmax(-1)
    onehot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
    return onehot + probs - probs.detach()


def kl_categorical(lhs_logits: torch.Tensor, rhs_logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """KL(lhs || rhs) of G independent categoricals (..., G, C), summed over groups -> (...)."""
    p = mixed_probs(lhs_logits, unimix)
    q = mixed_probs(rhs_logits, unimix)
    return (p * (p.log() - q.log())).sum((-2, -1))


def kl_balance_loss(post_logits, prior_logits, balance: float, free: float, unimix: float):
    """Balanced KL with free nats (DreamerV2/V3, GenRL's world model).

    loss = balance * mean(max(free, KL(sg(q) || p))) + (1 - balance) * mean(max(free, KL(q || sg(p))))
    Returns ``(loss, kl)`` where ``kl`` is the un-clipped KL(q || p) per element, shape (...).
    """
    dyn = kl_categorical(post_logits.detach(), prior_logits, unimix)
    rep = kl_categorical(post_logits, prior_logits.detach(), unimix)
    loss = balance * dyn.clamp(min=free).mean() + (1 - balance) * rep.clamp(min=free).mean()
    return loss, dyn.detach()


# --- building blocks ----------------------------------------------------------------------------

def _mlp_block(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, out, bias=False), nn.LayerNorm(out), nn.SiLU())


class LayerNormGRUCell(nn.Module):
    """Dreamer's GRU: one Linear([x, h] -> 3D, no bias) + LayerNorm; update gate sigmoid(u - 1).

    ``input_part(x)`` and ``step(x_part, h)`` split the Linear so that the x-part of a whole
    sequence can be computed in one batched call outside the time loop.
    """

    def __init__(self, inp: int, size: int):
        super().__init__()
        self.inp, self.size = inp, size
        self.linear = nn.Linear(inp + size, 3 * size, bias=False)
        self.norm = nn.LayerNorm(3 * size)

    def input_part(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.linear.weight[:, : self.inp])

    def step(self, x_part: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        parts = self.norm(x_part + F.linear(h, self.linear.weight[:, self.inp:]))
        reset, cand, update = parts.chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1 - update) * h

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.step(self.input_part(x), h)


class LatentDynamics(nn.Module):
    """The recurrent part shared by the world model's RSSM and the connector.

    img_in: Linear([z_{t-1}, u_t] -> hidden) + LN + SiLU; GRU; prior head: deter -> hidden -> G*C logits.
    ``u_t`` is the action for the world model and the scaled VLM embedding for the connector.
    """

    def __init__(self, cfg: WorldModelConfig, input_dim: int):
        super().__init__()
        self.cfg = cfg
        self.input_dim = input_dim
        self.img_in = _mlp_block(cfg.stoch_flat_dim + input_dim, cfg.hidden)
        self.gru = LayerNormGRUCell(cfg.hidden, cfg.deter)
        self.prior_head = nn.Sequential(_mlp_block(cfg.deter, cfg.hidden),
                                        nn.Linear(cfg.hidden, cfg.stoch_flat_dim))

    def logits(self, head: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = head(x)
        return out.reshape(*out.shape[:-1], self.cfg.stoch_groups, self.cfg.stoch_classes)

    def latent(self, logits: torch.Tensor, sample: bool = True) -> torch.Tensor:
        return sample_onehot(logits, self.cfg.unimix, sample).to(logits.dtype)

    def gru_inputs(self, prev_stoch_flat: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The GRU's x-part for any leading shape: (..., G*C), (..., U) -> (..., 3D)."""
        return self.gru.input_part(self.img_in(torch.cat([prev_stoch_flat, inputs], -1)))

    def img_step(self, state: dict, inputs: torch.Tensor, sample: bool = True) -> dict:
        """One prior step: state (B, ...), inputs (B, U) -> next prior state (B, ...)."""
        stoch = state["stoch"]
        x_part = self.gru_inputs(stoch.reshape(*stoch.shape[:-2], -1), inputs)
        deter = self.gru.step(x_part, state["deter"])
        logits = self.logits(self.prior_head, deter)
        return {"deter": deter, "stoch": self.latent(logits, sample), "logits": logits}

    def scan(self, x_parts: torch.Tensor, h0: torch.Tensor, reset: torch.Tensor | None = None):
        """Run the GRU over precomputed x-parts (B, T, 3D) from h0 (B, D) -> deters (B, T, D).

        ``reset`` (B, T) float: 1 where h_{t-1} must be zeroed first (episode starts).
        """
        h, deters = h0, []
        keep = None if reset is None else (1.0 - reset).unsqueeze(-1)
        for t in range(x_parts.shape[1]):
            if keep is not None:
                h = h * keep[:, t]
            h = self.gru.step(x_parts[:, t], h)
            deters.append(h)
        return torch.stack(deters, 1)


# --- the RSSM -----------------------------------------------------------------------------------

class RSSM(nn.Module):
    """Recurrent state-space model whose posterior sees only the current frame's embedding."""

    def __init__(self, cfg: WorldModelConfig, action_dim: int, embed_dim: int):
        super().__init__()
        self.cfg, self.action_dim, self.embed_dim = cfg, action_dim, embed_dim
        self.dynamics = LatentDynamics(cfg, action_dim)
        self.post_head = nn.Sequential(_mlp_block(embed_dim, cfg.hidden),
                                       nn.Linear(cfg.hidden, cfg.stoch_flat_dim))

    # state helpers
    def initial(self, batch_size: int) -> dict:
        """The all-zero state (as the reference), shapes (B, D), (B, G, C), (B, G, C)."""
        p = next(self.parameters())
        g, c = self.cfg.stoch_groups, self.cfg.stoch_classes
        return {"deter": p.new_zeros(batch_size, self.cfg.deter),
                "stoch": p.new_zeros(batch_size, g, c), "logits": p.new_zeros(batch_size, g, c)}

    @staticmethod
    def stoch_flat(state: dict) -> torch.Tensor:
        """Flattened one-hot latents (..., G*C)."""
        return state["stoch"].flatten(-2)

    def feat(self, state: dict) -> torch.Tensor:
        """Actor/critic features (..., G*C + D) = concat(flattened stoch, deter)."""
        return torch.cat([self.stoch_flat(state), state["deter"]], -1)

    def posterior(self, embed: torch.Tensor, sample: bool = True):
        """q(z | x) from frame embeddings (..., F) -> (stoch, logits), each (..., G, C)."""
        logits = self.dynamics.logits(self.post_head, embed)
        return self.dynamics.latent(logits, sample), logits

    # one step at a time
    def img_step(self, state: dict, action: torch.Tensor, sample: bool = True) -> dict:
        """Prior step: state (B, ...), action (B, A) -> next prior state."""
        assert action.shape[-1] == self.action_dim, f"action {tuple(action.shape)}, expected (B, {self.action_dim})"
        return self.dynamics.img_step(state, action, sample)

    def obs_step(self, prev_state: dict, action: torch.Tensor, embed: torch.Tensor,
                 is_first: torch.Tensor, sample: bool = True):
        """Filter step: prev_state (B, ...), action (B, A), embed (B, F), is_first (B,) -> (post, prior)."""
        keep = 1.0 - is_first.float()
        prev_state = {k: v * keep.reshape(-1, *[1] * (v.dim() - 1)) for k, v in prev_state.items()}
        prior = self.img_step(prev_state, action * keep[:, None], sample)
        stoch, logits = self.posterior(embed, sample)
        return {"deter": prior["deter"], "stoch": stoch, "logits": logits}, prior

    # whole sequences
    def observe(self, embeds: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                state: dict | None = None, sample: bool = True):
        """Posteriors and priors of sequences: embeds (B, T, F), actions (B, T, A), is_first (B, T).

        Returns ``(posts, priors)`` with every value (B, T, ...). ``state`` (B, ...) is the state
        before the first step (zeros by default). Same result as a loop of :meth:`obs_step`.
        """
        B, T = embeds.shape[:2]
        assert embeds.shape[-1] == self.embed_dim and actions.shape[:2] == (B, T) \
            and actions.shape[-1] == self.action_dim and tuple(is_first.shape) == (B, T), \
            f"embeds {tuple(embeds.shape)}, actions {tuple(actions.shape)}, is_first {tuple(is_first.shape)}"
        state = self.initial(B) if state is None else state
        post_stoch, post_logits = self.posterior(embeds, sample)          # all frames at once
        first = is_first.to(embeds.dtype)
        keep = (1.0 - first).unsqueeze(-1)
        prev_z = torch.cat([self.stoch_flat(state)[:, None], post_stoch[:, :-1].flatten(-2)], 1)
        x_parts = self.dynamics.gru_inputs(prev_z * keep, actions * keep)   # all steps at once
        deter = self.dynamics.scan(x_parts, state["deter"], reset=first)    # only the GRU loops
        prior_logits = self.dynamics.logits(self.dynamics.prior_head, deter)
        priors = {"deter": deter, "stoch": self.dynamics.latent(prior_logits, sample),
                  "logits": prior_logits}
        posts = {"deter": deter, "stoch": post_stoch, "logits": post_logits}
        return posts, priors

    def imagine(self, start_state: dict, policy, horizon: int, sample: bool = True) -> dict:
        """Roll the prior forward with actions from ``policy(feat (B, G*C+D)) -> (B, A)``.

        Returns time-major states with values (H+1, B, ...), index 0 being ``start_state``.
        Gradients flow through the dynamics into the actions (Dreamer's dynamics backprop); a
        policy that wants stop-gradient inputs detaches them itself.
        """
        states = [start_state]
        state = start_state
        for _ in range(horizon):
            state = self.img_step(state, policy(self.feat(state)), sample)
            states.append(state)
        return {k: torch.stack([s[k] for s in states], 0) for k in start_state}


def flatten_states(states: dict) -> dict:
    """Merge the two leading axes of every value: (B, T, ...) -> (B*T, ...); e.g. imagination starts."""
    return {k: v.reshape(-1, *v.shape[2:]) for k, v in states.items()}


__all__ = ["RSSM", "LatentDynamics", "LayerNormGRUCell", "kl_categorical", "kl_balance_loss",
           "sample_onehot", "mixed_probs", "flatten_states"]
