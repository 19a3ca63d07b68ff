"""The world model of GenRL: an encoder, a frame-wise discrete RSSM and a decoder, turning 64x64 frames into latent states.

Shapes: B batch, T time, A action dim, F encoder embedding (32 * cnn_depth), D deterministic state
(GRU units), G latent groups, C classes per group, S = 64 image side.

    frame x_t --encoder--> e_t --posterior--> z_t ~ q(z_t | x_t)        (a "visual tokenizer")
    h_t = GRU(h_{t-1}, [z_{t-1}, a_t])  --prior-->  z_t ~ p(z_t | h_t)   (the dynamics)
    z_t --decoder--> reconstructed frame                                (decoder sees only z)

The recurrence, the categorical latents and the balanced KL are ``genrl_lite/rssm.py`` (read it
next); this module adds the convolutional encoder and decoder, the loss, the configuration with its
presets, and open-loop prediction. The RSSM's names are re-exported here, so
``from genrl_lite.world_model import RSSM`` works too.

Faithful to the reference (GENRL_REFERENCE.md section 1): decoder from z only, pixel MSE summed over
pixels with images in [-0.5, 0.5], KL balancing 0.85 / 0.15 with 1 free nat, KL scale 0.6, Adam with
lr 1e-4, eps 1e-8, clip 1000, weight decay 1e-6 as multiplicative shrinkage.

Where and why we differ:
- No reward head: the reference trains one on stop-gradient features and never uses it.
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

from genrl_lite.rssm import (RSSM, LatentDynamics, LayerNormGRUCell, flatten_states,  # noqa: F401
                             kl_balance_loss, kl_categorical, mixed_probs, sample_onehot)


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

    def __post_init__(self):
        # The classmethod ``preset`` below replaces this field's class-level default, so a config
        # built field by field would otherwise carry the method; give it the documented default.
        if not isinstance(self.preset, str):
            self.preset = "custom"

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


# --- encoder and decoder ------------------------------------------------------------------------

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
def open_loop(wm: WorldModel, batch: dict, context: int = 5, horizon: int = 16, sample: bool = False,
              actions: str = "true"):
    """Open-loop prediction: filter ``context`` frames, then imagine ``horizon`` with the true actions.

    ``batch``: numpy or tensor dict with obs (B, T, S, S, 3), action, is_first, T >= context + horizon.
    ``actions`` picks the actions of the imagined steps, a control for whether the model uses them:
    ``"true"`` (the batch's), ``"shuffled"`` (window i gets window i-1's actions, the first the last's: real
    movements, wrong for this clip; needs B >= 2) or ``"zero"``. The context is always filtered
    with its true actions. A model whose predictions are no worse with shuffled actions than with
    the true ones has not learned what the actions do, and a policy cannot learn in it.
    Returns numpy arrays: ``pred`` and ``truth`` (B, context+horizon, S, S, 3) float in [0, 1]
    (the first ``context`` predictions are posterior reconstructions), ``mse`` (horizon,) mean per-pixel
    squared error of the predictions, ``baseline_mse`` (horizon,) of repeating the last context frame.
    """
    if actions not in ("true", "shuffled", "zero"):
        raise ValueError(f"actions must be 'true', 'shuffled' or 'zero', got {actions!r}")
    b = batch_to_torch(batch, wm.device)
    T = context + horizon
    assert b["obs"].shape[1] >= T, f"need T >= {T} frames, got obs {tuple(b['obs'].shape)}"
    obs, action, is_first = b["obs"][:, :T], b["action"][:, :T], b["is_first"][:, :T]
    if actions == "shuffled":
        if len(action) < 2:
            raise ValueError(f"actions='shuffled' swaps actions between windows: give B >= 2, got {len(action)}")
        action = torch.cat([action[:, :context], action[:, context:].roll(1, dims=0)], 1)
    elif actions == "zero":
        action = torch.cat([action[:, :context], torch.zeros_like(action[:, context:])], 1)
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
