"""The world model of GenRL: a frame-wise discrete RSSM that turns 64x64 frames into latent states.

Shapes: B batch, T time, H imagination horizon, A action dim, F encoder embedding (32 * cnn_depth),
D deterministic state (GRU units), G latent groups, C classes per group, S = 64 image side.

    frame x_t --encoder--> e_t --posterior--> z_t ~ q(z_t | x_t)        (a "visual tokenizer")
    h_t = GRU(h_{t-1}, [z_{t-1}, a_t])  --prior-->  z_t ~ p(z_t | h_t)   (the dynamics)
    z_t --decoder--> reconstructed frame                                (decoder sees only z)

A state is a dict of tensors ``{"deter": (B, D), "stoch": (B, G, C) one-hot, "logits": (B, G, C)}``;
with leading (B, T) or (H+1, B) axes for sequences. The features for actor and critic are
``feat(state) = concat(flatten(stoch), deter)`` of size G*C + D.

Data convention: ``action[t]`` is the action that LED TO ``obs[t]`` (zero at episode starts), so one
step is ``h_t = GRU(h_{t-1}, [z_{t-1}, action[t]])``; at ``is_first[t]`` the previous state and the
action are reset to zero (as in the reference).

Faithful to the reference (GENRL_REFERENCE.md section 1): LayerNorm-GRU with update bias -1, 1%
uniform mix in every categorical, straight-through samples, posterior from the frame embedding only,
decoder from z only, pixel MSE summed over pixels with images in [-0.5, 0.5], KL balancing
0.85 / 0.15 with 1 free nat per (batch, time) after summing over groups, KL scale 0.6, Adam with
lr 1e-4, eps 1e-8, clip 1000, weight decay 1e-6 as multiplicative shrinkage.

Where and why we differ:
- No reward head: the reference trains one on stop-gradient features and never uses it.
- Because the posterior sees only the frame, all posteriors of a sequence are computed in one batched
  call before the recurrence, and so is the GRU's input projection; the Python loop over time only
  does ``h @ W_h`` plus the gates. Same maths as the reference's step-by-step scan (``observe`` equals a
  loop of ``obs_step``; a test checks it), 2x faster: laptop RSSM, 16 x 32 steps, forward + backward
  on one CPU thread, 0.19-0.20 s against 0.39 s for the step-by-step loop.
- Sampling uses the Gumbel-max trick (same distribution as ``torch.multinomial``, no host sync on a GPU).
- Mixed precision (``amp``) uses bfloat16 autocast, which needs no gradient scaler (the reference used
  float16 with a GradScaler); KLs are always computed in float32.
- Convolutions have no bias when a LayerNorm follows (the norm's shift makes it redundant).
- The decoder's first transposed conv acts on a 1x1 input, where it is exactly a Linear; we write it
  as one (same parameter count, same function, ~5x faster on a CPU).
- Presets ``tiny`` and ``laptop`` use lr 3e-4 (DreamerV2's value) to learn within minutes to an hour;
  ``paper`` keeps the reference's 1e-4, tuned for 500k steps. ``laptop`` keeps 32 latent groups but
  16 classes (G*C = 512), halving the reward projection and prior head used in imagination.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# --- configuration ------------------------------------------------------------------------------

@dataclass
class WorldModelConfig:
    """Sizes and training settings of the world model, connector and aligner (one object for all)."""

    preset: str = "custom"
    """Name of the preset this config came from (stored in checkpoints to catch mix-ups)."""
    cnn_depth: int = 16
    """Channels of the first conv layer; the encoder uses d, 2d, 4d, 8d, so F = 32 * d."""
    deter: int = 256
    """Units of the GRU (size D of the deterministic state h)."""
    hidden: int = 256
    """Width of the MLP layers around the GRU (input projection, prior and posterior heads)."""
    stoch_groups: int = 32
    """Number G of categorical latent variables in z."""
    stoch_classes: int = 32
    """Number C of classes of each categorical (z is a G*C one-hot vector when flattened)."""
    unimix: float = 0.01
    """Fraction of uniform probability mixed into every categorical (keeps KLs and logs finite)."""
    kl_balance: float = 0.85
    """Weight of the dynamics term KL(sg(q) || p); 1 - kl_balance goes to KL(q || sg(p))."""
    kl_free: float = 1.0
    """Free nats: each KL, summed over groups, is clipped from below at this value per (b, t)."""
    kl_scale: float = 0.6
    """Weight of the balanced KL in the world-model loss (reconstruction has weight 1)."""
    lr: float = 1e-4
    """Adam learning rate of world model, connector and aligner."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 1000.0
    """Global gradient-norm clip (per optimizer)."""
    weight_decay: float = 1e-6
    """Multiplicative shrinkage per step, p <- (1 - weight_decay) * p (AdamW with wd / lr)."""
    batch_size: int = 16
    """Sequences per training batch (B)."""
    batch_length: int = 32
    """Steps per training sequence (T); the connector needs a multiple of ``n_frames``."""
    n_frames: int = 8
    """Frames per VLM window: the connector is trained on chunks of this length."""
    connector_balance: float = 0.8
    """Gradient weight of KL(p_connector || sg(q_world_model)); no free nats for the connector."""
    aligner_alpha: float = 0.5
    """Noise level of the aligner's training input, normalize((1 - a) e + a n_hat)."""
    amp: bool = False
    """bfloat16 autocast on CUDA (ignored on a CPU)."""
    channels_last: bool = True
    """Run the convolutions in channels-last memory format (measured faster on CPU, see bench)."""
    save_every: int = 500
    """Steps between checkpoints (one more is always written at the end)."""
    log_every: int = 25
    """Steps between lines in the metrics file."""
    seed: int = 0
    """Seed of parameters, sampling and the batch sampler."""

    @staticmethod
    def preset_names() -> list[str]:
        """The valid preset names."""
        return list(_PRESETS)

    @classmethod
    def preset(cls, name: str, **overrides) -> "WorldModelConfig":
        """A named configuration: ``tiny`` (CI), ``laptop`` (2-core CPU), ``paper`` (GPU, the paper's)."""
        if name not in _PRESETS:
            raise ValueError(f"unknown world-model preset {name!r}; valid presets: {', '.join(_PRESETS)}")
        cfg = cls(preset=name, **_PRESETS[name])
        for key, value in overrides.items():
            if key not in {f.name for f in fields(cls)}:
                raise ValueError(f"unknown WorldModelConfig field {key!r}")
            setattr(cfg, key, value)
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "WorldModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def stoch_flat_dim(self) -> int:
        return self.stoch_groups * self.stoch_classes

    @property
    def feat_dim(self) -> int:
        return self.stoch_flat_dim + self.deter

    @property
    def embed_dim(self) -> int:
        return 32 * self.cnn_depth


_PRESETS = {
    # CI: a training step in well under a second on one core.
    "tiny": dict(cnn_depth=4, deter=32, hidden=32, stoch_groups=4, stoch_classes=4, batch_size=2,
                 batch_length=16, lr=3e-4, save_every=50, log_every=5),
    # 2-core CPU: STACK.md's measured range (depth 16, GRU 256), batch 16 x 32 (512 frames a step);
    # speed with scripts/bench_world_model.py.
    "laptop": dict(cnn_depth=16, deter=256, hidden=256, stoch_groups=32, stoch_classes=16,
                   batch_size=16, batch_length=32, lr=3e-4, save_every=500, log_every=25),
    # The paper's sizes (GENRL_REFERENCE section 1, paper Table 2); for a GPU.
    "paper": dict(cnn_depth=48, deter=1024, hidden=1024, stoch_groups=32, stoch_classes=32,
                  batch_size=48, batch_length=48, lr=1e-4, amp=True, save_every=5000, log_every=100),
}


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


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an image (N, C, H, W), separately for every pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Encoder(nn.Module):
    """Frames (N, 3, 64, 64) in [-0.5, 0.5] -> embeddings (N, 32d): 4 convs k4 s2, 64->31->14->6->2."""

    def __init__(self, depth: int):
        super().__init__()
        layers, prev = [], 3
        for i in range(4):
            ch = depth * 2 ** i
            layers += [nn.Conv2d(prev, ch, 4, stride=2, bias=False), ChannelLayerNorm(ch), nn.SiLU()]
            prev = ch
        self.net = nn.Sequential(*layers)
        self.out_dim = 32 * depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class Decoder(nn.Module):
    """Latents (N, G*C) -> frames (N, 3, 64, 64) in [-0.5, 0.5] space (unclipped means).

    ``linear`` (G*C -> 32d, with bias) is the projection g that GenRL's reward reuses; then
    transposed convs with kernels 5, 5, 6, 6 grow 1 -> 5 -> 13 -> 30 -> 64 pixels. The first one
    acts on a 1x1 input, where a transposed conv is exactly a Linear(32d -> 4d*5*5) (same weights,
    same result), computed as one matrix product because that is ~5x faster on a CPU.
    """

    def __init__(self, stoch_flat_dim: int, depth: int):
        super().__init__()
        self.depth = depth
        self.linear = nn.Linear(stoch_flat_dim, 32 * depth)
        self.first = nn.Linear(32 * depth, 4 * depth * 25, bias=False)   # = ConvTranspose2d(32d, 4d, 5) on 1x1
        layers = [ChannelLayerNorm(4 * depth), nn.SiLU()]
        chans = [4 * depth, 2 * depth, depth]
        for i, k in enumerate((5, 6)):
            layers += [nn.ConvTranspose2d(chans[i], chans[i + 1], k, stride=2, bias=False),
                       ChannelLayerNorm(chans[i + 1]), nn.SiLU()]
        layers.append(nn.ConvTranspose2d(depth, 3, 6, stride=2))
        self.net = nn.Sequential(*layers)

    def forward(self, stoch_flat: torch.Tensor) -> torch.Tensor:
        x = self.first(self.linear(stoch_flat)).reshape(-1, 4 * self.depth, 5, 5)
        return self.net(x)


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


# --- the world model ----------------------------------------------------------------------------

def batch_to_torch(batch: dict, device) -> dict:
    """numpy batch (obs uint8 (B,T,S,S,3), action (B,T,A), is_first (B,T), [embed (B,T,E)]) -> tensors."""
    out = {}
    for key, value in batch.items():
        t = torch.as_tensor(np.asarray(value)) if not torch.is_tensor(value) else value
        if key in ("action", "embed"):
            t = t.float()
        elif key == "is_first":
            t = t.bool()
        out[key] = t.to(device, non_blocking=True)
    return out


class WorldModel(nn.Module):
    """Encoder + RSSM + decoder, trained by pixel reconstruction and balanced KL."""

    def __init__(self, cfg: WorldModelConfig, action_dim: int):
        super().__init__()
        self.cfg, self.action_dim = cfg, action_dim
        self.encoder = Encoder(cfg.cnn_depth)
        self.rssm = RSSM(cfg, action_dim, self.encoder.out_dim)
        self.decoder = Decoder(cfg.stoch_flat_dim, cfg.cnn_depth)
        if cfg.channels_last:
            self.to(memory_format=torch.channels_last)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 frames (..., S, S, 3) -> float (..., S, S, 3) in [-0.5, 0.5]."""
        return obs.float() / 255.0 - 0.5

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (..., S, S, 3) in [-0.5, 0.5] -> embeddings (..., F)."""
        lead = images.shape[:-3]
        x = images.reshape(-1, *images.shape[-3:]).permute(0, 3, 1, 2)   # NHWC storage = channels_last
        if not self.cfg.channels_last:
            x = x.contiguous()
        return self.encoder(x).reshape(*lead, -1)

    def decode_raw(self, stoch_flat: torch.Tensor) -> torch.Tensor:
        """Latents (..., G*C) -> frame means (..., S, S, 3) in [-0.5, 0.5] space (unclipped)."""
        lead = stoch_flat.shape[:-1]
        x = self.decoder(stoch_flat.reshape(-1, stoch_flat.shape[-1]))
        return x.permute(0, 2, 3, 1).reshape(*lead, *x.shape[-2:], 3)

    def decode(self, stoch_flat: torch.Tensor) -> torch.Tensor:
        """Latents (..., G*C) -> frames (..., 64, 64, 3) as float in [0, 1] (clipped)."""
        return (self.decode_raw(stoch_flat) + 0.5).clamp(0.0, 1.0)

    def reward_projection(self, stoch_flat: torch.Tensor) -> torch.Tensor:
        """GenRL's g: the decoder's first Linear (with bias), (..., G*C) -> (..., F)."""
        return self.decoder.linear(stoch_flat)

    def loss(self, batch: dict):
        """World-model loss of a batch of tensors (see module docstring).

        Returns ``(loss, metrics, posts)``: metrics are detached scalar tensors (call ``.item()``
        when logging, not every step, to avoid GPU syncs); posts are the posteriors (B, T, ...).
        """
        obs, action, is_first = batch["obs"], batch["action"], batch["is_first"]
        assert obs.dim() == 5 and obs.shape[-1] == 3 and action.shape[:2] == obs.shape[:2] \
            and action.shape[-1] == self.action_dim, \
            f"obs {tuple(obs.shape)} must be (B,T,S,S,3), action {tuple(action.shape)} (B,T,{self.action_dim})"
        cfg = self.cfg
        autocast = torch.autocast(obs.device.type, dtype=torch.bfloat16,
                                  enabled=cfg.amp and obs.device.type == "cuda")
        images = self.preprocess(obs)
        with autocast:
            embeds = self.encode(images)
            posts, priors = self.rssm.observe(embeds, action, is_first)
            recon = self.decode_raw(self.rssm.stoch_flat(posts))
        recon_loss = (recon.float() - images).square().sum((-3, -2, -1)).mean()
        kl_loss, kl = kl_balance_loss(posts["logits"], priors["logits"], cfg.kl_balance, cfg.kl_free,
                                      cfg.unimix)
        loss = recon_loss + cfg.kl_scale * kl_loss
        with torch.no_grad():
            probs = mixed_probs(posts["logits"], cfg.unimix)
            entropy = -(probs * probs.log()).sum((-2, -1)).mean()
        metrics = {"wm_loss": loss.detach(), "recon_loss": recon_loss.detach(),
                   "model_kl": kl.mean(), "kl_loss": kl_loss.detach(), "post_entropy": entropy,
                   "recon_mse": recon_loss.detach() / float(np.prod(obs.shape[-3:]))}
        return loss, metrics, posts


@torch.no_grad()
def open_loop(wm: WorldModel, batch: dict, context: int = 5, horizon: int = 16, sample: bool = False):
    """Open-loop prediction: filter ``context`` frames, then imagine ``horizon`` with the true actions.

    ``batch``: numpy or tensor dict with obs (B, T, S, S, 3), action, is_first, T >= context + horizon.
    Returns numpy arrays: ``pred`` and ``truth`` (B, context+horizon, S, S, 3) float in [0, 1]
    (the first ``context`` predictions are posterior reconstructions), ``mse`` (horizon,) mean per-pixel
    squared error of the predictions, ``baseline_mse`` (horizon,) of repeating the last context frame.
    """
    b = batch_to_torch(batch, wm.device)
    T = context + horizon
    assert b["obs"].shape[1] >= T, f"need T >= {T} frames, got obs {tuple(b['obs'].shape)}"
    obs, action, is_first = b["obs"][:, :T], b["action"][:, :T], b["is_first"][:, :T]
    images = wm.preprocess(obs)
    posts, _ = wm.rssm.observe(wm.encode(images[:, :context]), action[:, :context],
                               is_first[:, :context], sample=sample)
    state = {k: v[:, -1] for k, v in posts.items()}
    stochs = [wm.rssm.stoch_flat(posts)]
    for t in range(context, T):
        state = wm.rssm.img_step(state, action[:, t], sample=sample)
        stochs.append(wm.rssm.stoch_flat(state)[:, None])
    pred = wm.decode(torch.cat(stochs, 1))
    truth = images + 0.5
    err = (pred[:, context:] - truth[:, context:]).square().mean((0, 2, 3, 4))
    base = (truth[:, context - 1:context] - truth[:, context:]).square().mean((0, 2, 3, 4))
    return {"pred": pred.cpu().numpy(), "truth": truth.cpu().numpy(), "mse": err.cpu().numpy(),
            "baseline_mse": base.cpu().numpy(), "context": context}


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (frozen ones included)."""
    return sum(p.numel() for p in module.parameters())



__all__ = ["WorldModelConfig", "RSSM", "WorldModel", "LatentDynamics", "LayerNormGRUCell", "Encoder",
           "Decoder", "kl_categorical", "kl_balance_loss", "sample_onehot", "mixed_probs", "open_loop",
           "flatten_states", "batch_to_torch", "count_parameters"]
