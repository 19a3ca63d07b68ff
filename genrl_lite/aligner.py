"""The aligner: a small MLP "U-Net" that moves embeddings toward the VLM's *vision* embeddings.

Shapes: B batch, E embedding dim (e.g. 384 or 512), M bottleneck (E // 2).

GenRL trains the connector on vision embeddings only (no text, no captions). A text prompt's
embedding lies elsewhere in the VLM space (the "modality gap"), so it is first passed through the
aligner f, trained to undo a noise that models that gap: from ``e_noisy = normalize((1-a) e + a n)``,
with ``n`` a random *unit* direction, recover ``e`` (GENRL_REFERENCE.md section 4; LAFITE's noise).

    down:  E -> E -> M          (Linear + LayerNorm + SiLU, residual)
    mid:   M -> M -> M
    up:    [M, M] -> E (no norm, identity activation), [E, E] -> E     (skip connections concatenated)

Loss: ``1 - cos(normalize(f(e_noisy)), e)``. At inference: ``f(e_text)`` normalized, then the connector.

Where we differ: ``add_lafite_noise`` takes ``alpha`` (the reference hard-codes 0.5 for both weights,
``0.5 e + 0.5 n``, which is our default), and ``forward`` returns unit vectors (the reference
normalizes right after the call, everywhere it is used). Zero embeddings (padding at episode starts)
are left out of the loss.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualLinear(nn.Module):
    """Linear -> LayerNorm -> SiLU, plus a residual (projected when the width changes)."""

    def __init__(self, inp: int, out: int, norm: bool = True, act: bool = True):
        super().__init__()
        self.layer = nn.Linear(inp, out)
        self.norm = nn.LayerNorm(out) if norm else nn.Identity()
        self.act = nn.SiLU() if act else nn.Identity()
        self.skip = nn.Identity() if inp == out else nn.Linear(inp, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.layer(x))) + self.skip(x)


def add_lafite_noise(e: torch.Tensor, alpha: float = 0.5, generator: torch.Generator | None = None):
    """normalize((1 - alpha) * e + alpha * n_hat), n_hat a random unit vector per row. e: (..., E)."""
    noise = torch.randn(e.shape, generator=generator, device=e.device, dtype=e.dtype)
    return F.normalize((1 - alpha) * e + alpha * F.normalize(noise, dim=-1), dim=-1)


class Aligner(nn.Module):
    """f: (B, E) -> (B, E) unit vectors; trained to denoise LAFITE-noised vision embeddings."""

    def __init__(self, embed_dim: int, bottleneck: int | None = None, n_layers: int = 2,
                 alpha: float = 0.5):
        super().__init__()
        mid = bottleneck or embed_dim // 2
        self.embed_dim, self.alpha = embed_dim, alpha
        self.down = nn.ModuleList([ResidualLinear(embed_dim, embed_dim) for _ in range(n_layers - 1)]
                                  + [ResidualLinear(embed_dim, mid)])
        self.mid = nn.ModuleList([ResidualLinear(mid, mid) for _ in range(n_layers)])
        self.up = nn.ModuleList([ResidualLinear(2 * mid, embed_dim, norm=False, act=False)]
                                + [ResidualLinear(2 * embed_dim, embed_dim) for _ in range(n_layers - 1)])

    def _check(self, e: torch.Tensor) -> None:
        if e.shape[-1] != self.embed_dim:
            raise ValueError(f"embedding has size {e.shape[-1]} (shape {tuple(e.shape)}), but this aligner "
                             f"was built for size {self.embed_dim}: use the VLM the model was trained with")

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        self._check(e)
        x, skips = e, []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for layer in self.mid:
            x = layer(x)
        for layer, skip in zip(self.up, reversed(skips)):
            x = layer(torch.cat([x, skip], -1))
        return F.normalize(x, dim=-1)

    def loss(self, e_clean: torch.Tensor, generator: torch.Generator | None = None):
        """Cosine distance between f(noisy e) and e for clean embeddings (..., E) -> (loss, metrics)."""
        self._check(e_clean)
        e = e_clean.reshape(-1, self.embed_dim)
        e = F.normalize(e[e.norm(dim=-1) > 1e-6], dim=-1)   # drop zero padding
        if len(e) == 0:
            zero = e_clean.new_zeros(())
            return zero, {"aligner_cosine_distance": zero}
        noisy = add_lafite_noise(e, self.alpha, generator)
        loss = 1 - F.cosine_similarity(self(noisy), e, dim=-1).mean()
        with torch.no_grad():
            noisy_dist = 1 - F.cosine_similarity(noisy, e, dim=-1).mean()
        return loss, {"aligner_cosine_distance": loss.detach(), "aligner_noisy_distance": noisy_dist}


__all__ = ["Aligner", "ResidualLinear", "add_lafite_noise"]
