"""Caption memory: pull a prompt towards the captions the video tower was trained on.

The embedded VLM's text tower is the frozen MiniLM. Its video tower learned to meet MiniLM's
embeddings of *our* captions (``genrl_lite/captions.py``), not of every sentence. A prompt worded the
way those captions are lands near the right clips. A prompt in other words ("topsy-turvy" for
"upside down") lands wherever MiniLM puts it, which may be nearer to another concept's clips.

The memory keeps the MiniLM embeddings of the pretraining captions (M of them). At query time, a
prompt embedding t (B, E) is mixed with the mean of its k nearest captions:

    t' = normalize((1 - w) t + w normalize(mean of the k captions nearest to t))

MiniLM chooses the neighbours, so a paraphrase borrows the wording the video tower knows. This is the
text-side cousin of GenRL's aligner, which moves a text embedding onto the *clip* side. Nothing is
trained: the memory is the captions and a weight. It changes only the text embeddings; clip
embeddings, and so every connector and aligner trained on them, stay as they are.

Measured on the benchmark's held-out clips (``scripts/vlm_text_side.py``, ``data/models/vlm/README.md``):
w = 0.5, k = 5 raises never-seen paraphrases from 0.62 to 0.66 and lowers templated prompts from
0.835 to 0.814 (paraphrase ratio 0.74 -> 0.81).

It is off by default: ``load_vlm(caption_memory=0.5)`` switches it on. Every shipped benchmark cell
was trained with the plain text side, and this changes every prompt's embedding.

Shapes: B prompts, M memory captions, E embedding size, k neighbours.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from genrl_lite.runtime import atomic_torch_save

FORMAT = "genrl_lite.caption_memory/1"
DEFAULT_WEIGHT = 0.5
"""w: how far a prompt moves towards its neighbours (0: not at all, 1: replaced by them)."""
DEFAULT_K = 5
"""k: how many nearest captions are averaged."""
BUILD_COMMAND = "python scripts/vlm_text_side.py --save-memory data/models/vlm/caption_memory.pt"


class CaptionMemory:
    """MiniLM embeddings (M, E) of M distinct captions, and how to mix them into a prompt."""

    def __init__(self, texts: list[str], embeddings: torch.Tensor, weight: float = DEFAULT_WEIGHT,
                 k: int = DEFAULT_K, source: str = ""):
        if embeddings.ndim != 2 or len(texts) != len(embeddings):
            raise ValueError(f"need one (E,) embedding per caption: {len(texts)} captions, embeddings "
                             f"{tuple(embeddings.shape)}")
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"the memory weight is a mix in [0, 1], got {weight}")
        if not 1 <= k <= len(texts):
            raise ValueError(f"k must be in 1..{len(texts)} (the memory's size), got {k}")
        self.texts, self.weight, self.k, self.source = list(texts), float(weight), int(k), source
        self.embeddings = F.normalize(embeddings.float(), dim=-1)

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    def neighbours(self, t: torch.Tensor) -> torch.Tensor:
        """(B, E) prompt embeddings -> (B, k) indices of their nearest captions (cosine)."""
        assert t.ndim == 2 and t.shape[1] == self.dim, \
            f"prompt embeddings must be (B, {self.dim}), got {tuple(t.shape)}"
        return (t @ self.embeddings.T).topk(self.k, dim=1).indices

    def apply(self, t: torch.Tensor) -> torch.Tensor:
        """(B, E) unit prompt embeddings -> (B, E) unit embeddings moved towards their k nearest captions."""
        near = F.normalize(self.embeddings[self.neighbours(t)].mean(1), dim=-1)
        return F.normalize((1 - self.weight) * t + self.weight * near, dim=-1)

    def with_weight(self, weight: float, k: int | None = None) -> "CaptionMemory":
        """The same captions with another weight (and k)."""
        return CaptionMemory(self.texts, self.embeddings, weight, self.k if k is None else k, self.source)

    def describe(self) -> str:
        return f"caption memory (weight {self.weight:g}, k {self.k}, {len(self.texts):,} captions)"

    # --- the shipped file ---
    def save(self, path: str | os.PathLike) -> Path:
        """Write texts and float16 embeddings atomically (about 3 MB for 4,000 captions)."""
        return atomic_torch_save(dict(format=FORMAT, texts=self.texts, embeddings=self.embeddings.half(),
                                      weight=self.weight, k=self.k, source=self.source), path)

    @classmethod
    def load(cls, path: str | os.PathLike, weight: float | None = None, k: int | None = None) -> "CaptionMemory":
        """Load a memory written by :meth:`save`; ``weight``/``k`` override the stored defaults.
        Clear errors, with the command that rebuilds it, if it is missing or unreadable."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no caption memory at {path}; build it with: {BUILD_COMMAND}")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("format") != FORMAT:
                raise ValueError(f"format {blob.get('format')!r}, expected {FORMAT!r}")
            texts, emb = list(blob["texts"]), blob["embeddings"]
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
            first = (str(e).strip().splitlines() or [""])[0][:160]
            raise RuntimeError(f"caption memory {path} is corrupted ({type(e).__name__}: {first}); "
                               f"rebuild it with: {BUILD_COMMAND}") from e
        return cls(texts, emb, blob["weight"] if weight is None else weight, blob["k"] if k is None else k,
                   blob.get("source", ""))


def build_caption_memory(embed_text, texts: list[str], weight: float = DEFAULT_WEIGHT, k: int = DEFAULT_K,
                         source: str = "", batch: int = 256) -> CaptionMemory:
    """Embed the distinct ``texts`` with ``embed_text`` (the *plain* text tower: list -> (B, E))."""
    unique = sorted(set(texts))
    if not unique:
        raise ValueError("a caption memory needs at least one caption")
    emb = torch.cat([embed_text(unique[i:i + batch]) for i in range(0, len(unique), batch)])
    return CaptionMemory(unique, emb, weight, min(k, len(unique)), source)
