"""The vision-language model (VLM): one interface for a clip of 8 frames, an image, and text.

GenRL's reward and its text-to-behaviour path both live in the embedding space of a pretrained
video-language model: a clip of the agent's frames and a sentence describing it map to nearby
unit vectors. The paper used InternVideo2 (1B parameters, gated); we cannot download any CLIP
weights here, so the default is a small model we pretrain ourselves, and the real thing is one
switch away:

    vlm = load_vlm()                                              # embedded default, offline, ~2 s
    vlm = load_vlm("open_clip:ViT-B-32", pretrained="/path/open_clip_model.safetensors")

Every VLM has ``name``, ``dim`` (E), ``n_frames`` (F = 8) and

    embed_video(frames)   (B, F, S, S, 3) or (F, S, S, 3) uint8  -> (B, E)
    embed_image(frames)   (B, S, S, 3) or (S, S, 3) uint8        -> (B, E)   (one frame, no motion)
    embed_text(prompts)   list of B non-empty strings            -> (B, E)
    embed_windows(obs)    (T, S, S, 3) uint8 of one episode      -> (T, E)   (every 8-frame window)

All outputs are unit-norm ``float32`` torch tensors on the CPU (``.numpy()`` for arrays).

**The embedded default ("genrl-lite-minilm")**, a small video tower we pretrain ourselves next to
the frozen MiniLM sentence encoder, is built in :mod:`genrl_lite.embedded_vlm`; the real thing
(any open_clip model with local weights) in :class:`OpenClipVLM` below.

Shapes: B batch, F frames per clip (8), S image size, T episode length, E embedding size.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genrl_lite.runtime import data_dir

N_FRAMES = 8
"""Frames per clip, as in GenRL (``n_frames = 8``)."""
DEFAULT_NAME = "genrl-lite-minilm"
"""The embedded default VLM."""
PRETRAIN_COMMAND = "python scripts/pretrain_vlm.py"
"""How to regenerate the embedded model's weights (quoted in error messages)."""


def weights_dir() -> Path:
    """Where the embedded model's trained weights live: ``data/models/vlm``."""
    return data_dir() / "models" / "vlm"


def _offline() -> None:
    """Nothing in this module may reach the network: no hub lookups, no retry loops."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # huggingface_hub reads the variable once, at import: if something imported it already, tell it too
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


# --- input checks -----------------------------------------------------------------------------------

def _as_uint8(frames, what: str, expected: str) -> torch.Tensor:
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8:
            raise TypeError(f"{what} must be uint8 RGB in [0, 255] with shape {expected}; got dtype "
                            f"{frames.dtype} (convert floats in [0, 1] with (x * 255).astype(np.uint8))")
        return torch.from_numpy(np.ascontiguousarray(frames))
    if isinstance(frames, torch.Tensor):
        if frames.dtype != torch.uint8:
            raise TypeError(f"{what} must be uint8 RGB in [0, 255] with shape {expected}; got dtype "
                            f"{frames.dtype} (convert with (x * 255).to(torch.uint8))")
        return frames.cpu()
    raise TypeError(f"{what} must be a numpy array or torch tensor of shape {expected}, got {type(frames)}")


def check_video(frames, size: int | None, n_frames: int = N_FRAMES) -> torch.Tensor:
    """Validate clips and return them as (B, F, S, S, 3) uint8 (a single clip gets B = 1)."""
    s = "S" if size is None else str(size)
    expected = f"(B, {n_frames}, {s}, {s}, 3) or ({n_frames}, {s}, {s}, 3)"
    x = _as_uint8(frames, "video frames", expected)
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or x.shape[1] != n_frames or x.shape[-1] != 3 or x.shape[2] != x.shape[3] or (
            size is not None and x.shape[2] != size) or x.shape[0] == 0:
        raise ValueError(f"video frames must have shape {expected} (channels last), got {tuple(frames.shape)}")
    return x


def check_images(frames, size: int | None) -> torch.Tensor:
    """Validate images and return them as (B, S, S, 3) uint8 (a single image gets B = 1)."""
    s = "S" if size is None else str(size)
    expected = f"(B, {s}, {s}, 3) or ({s}, {s}, 3)"
    x = _as_uint8(frames, "images", expected)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2] or (
            size is not None and x.shape[1] != size) or x.shape[0] == 0:
        raise ValueError(f"images must have shape {expected} (channels last), got {tuple(frames.shape)}")
    return x


def check_prompts(prompts) -> list[str]:
    """Validate a list of prompts: a non-empty list of non-empty strings."""
    if isinstance(prompts, str):
        raise TypeError(f"embed_text takes a list of prompts; wrap one prompt in a list: [{prompts!r}]")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("embed_text got an empty prompt list; pass at least one prompt, e.g. ['a walker running']")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompt {i} is {type(p).__name__}, not a string: {p!r}")
        if not p.strip():
            raise ValueError(f"prompt {i} is empty; describe a behaviour, e.g. 'a walker standing upright'")
    return prompts


# --- the common interface ---------------------------------------------------------------------------

class VLM:
    """Base class: subclasses implement ``_video`` (B,F,S,S,3) uint8 -> (B,E), ``_text`` and
    may override ``embed_windows`` with a faster exact version."""

    name: str = "vlm"
    dim: int = 0
    n_frames: int = N_FRAMES
    image_size: int | None = None
    """Required frame size S (``None``: any size, resized inside)."""
    batch_size: int = 256
    text_memory = None
    """A :class:`genrl_lite.caption_memory.CaptionMemory` that ``embed_text`` applies, or None (default)."""

    def embed_video(self, frames) -> torch.Tensor:
        """Clips (B, F, S, S, 3) or (F, S, S, 3) uint8 -> (B, E) unit-norm float32 (CPU tensor)."""
        x = check_video(frames, self.image_size, self.n_frames)
        with torch.inference_mode():
            out = torch.cat([self._video(x[i:i + self.batch_size]) for i in range(0, len(x), self.batch_size)])
        return F.normalize(out.float(), dim=-1)

    def embed_image(self, frames) -> torch.Tensor:
        """Images (B, S, S, 3) or (S, S, 3) uint8 -> (B, E): the image repeated F times (no motion),
        as GenRL does for image prompts."""
        x = check_images(frames, self.image_size)
        return self.embed_video(x[:, None].expand(-1, self.n_frames, -1, -1, -1))

    def embed_text(self, prompts) -> torch.Tensor:
        """Prompts (list of B non-empty strings) -> (B, E) unit-norm float32 (moved towards the
        nearest pretraining captions when a caption memory is switched on)."""
        prompts = check_prompts(prompts)
        with torch.inference_mode():
            out = torch.cat([self._text(prompts[i:i + self.batch_size])
                             for i in range(0, len(prompts), self.batch_size)])
        out = F.normalize(out.float(), dim=-1)
        return out if self.text_memory is None else self.text_memory.apply(out)

    def embed_windows(self, obs, pad: str = "zeros") -> torch.Tensor:
        """Every sliding 8-frame window (stride 1) of one episode: obs (T, S, S, 3) uint8 -> (T, E).

        Row t embeds frames t-7..t (the window that *ends* at t), as GenRL's ``clip_video``. The
        first F-1 rows have no full window: ``pad="zeros"`` leaves them zero, as the reference
        does (its connector conditions chunk c on the window ending at the chunk's last index,
        7, 15, ..., so those rows are never used); ``pad="repeat"`` copies row F-1 into them
        instead, for plots and rewards that want unit vectors everywhere.
        """
        x = check_images(obs, self.image_size)
        T = len(x)
        if T < self.n_frames:
            raise ValueError(f"an episode needs at least {self.n_frames} frames for one window, got {T}")
        starts = torch.arange(T - self.n_frames + 1)
        out = []
        for i in range(0, len(starts), self.batch_size):
            idx = starts[i:i + self.batch_size, None] + torch.arange(self.n_frames)
            out.append(self.embed_video(x[idx]))
        return _pad_windows(torch.cat(out), self.n_frames, pad)

    def _video(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _text(self, prompts: list[str]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        memory = "" if self.text_memory is None else f", text={self.text_memory.describe()!r}"
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, n_frames={self.n_frames}{memory})"


def _pad_windows(emb: torch.Tensor, n_frames: int, pad: str) -> torch.Tensor:
    """(T-F+1, E) full-window embeddings -> (T, E) with F-1 padded rows in front."""
    if pad not in ("zeros", "repeat"):
        raise ValueError(f"pad must be 'zeros' (the reference) or 'repeat', got {pad!r}")
    head = torch.zeros(n_frames - 1, emb.shape[1]) if pad == "zeros" else emb[:1].expand(n_frames - 1, -1)
    return torch.cat([head, emb])


# --- any open_clip model with real weights -------------------------------------------------------------

class OpenClipVLM(VLM):
    """An image-language open_clip model (e.g. ViT-B-32 on LAION-2B) as a video-language model:
    the video embedding is the normalized mean of its F normalized frame embeddings; frames are
    resized to the model's input size (224) and normalized with its mean/std."""

    def __init__(self, model, tokenizer, name: str):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", getattr(model.visual, "image_size", 224))
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.register_norm(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)),
                           cfg.get("std", (0.26862954, 0.26130258, 0.27577711)))
        with torch.inference_mode():
            self.dim = int(self._text(["a"]).shape[-1])
        self.batch_size = 64

    def register_norm(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """(N, S, S, 3) uint8 -> (N, E) normalized frame embeddings."""
        x = x.permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return F.normalize(self.model.encode_image((x - self.mean) / self.std).float(), dim=-1)

    def _video(self, x: torch.Tensor) -> torch.Tensor:
        B, Fr = x.shape[:2]
        return self._frames(x.flatten(0, 1)).view(B, Fr, -1).mean(1)

    def _text(self, prompts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(prompts))

    def embed_windows(self, obs, pad: str = "zeros") -> torch.Tensor:
        """Exact and F times faster: each frame is embedded once, windows average them."""
        x = check_images(obs, None)
        T, Fr = len(x), self.n_frames
        if T < Fr:
            raise ValueError(f"an episode needs at least {Fr} frames for one window, got {T}")
        with torch.inference_mode():
            frames = torch.cat([self._frames(x[i:i + self.batch_size]) for i in range(0, T, self.batch_size)])
        windows = frames.unfold(0, Fr, 1).mean(-1)  # (T-F+1, E)
        return _pad_windows(F.normalize(windows, dim=-1), Fr, pad)


def _open_clip_error(arch: str, detail: str) -> RuntimeError:
    return RuntimeError(
        f"open_clip model {arch!r} needs real pretrained weights, and none can be downloaded at run time "
        f"here ({detail}). Provide them locally: download once on a machine with internet, e.g. "
        f"`python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='laion2b_s34b_b79k')\"` "
        "then copy ~/.cache/huggingface (set HF_HOME to it), or pass a file: "
        f"load_vlm('open_clip:{arch}', pretrained='/path/to/open_clip_model.safetensors'), or a folder with "
        "open_clip_config.json + open_clip_model.safetensors: pretrained='local-dir:/path/to/folder'. "
        f"Without weights use the embedded default: load_vlm('{DEFAULT_NAME}').")


def load_open_clip(arch: str, pretrained: str | None, allow_random: bool = False) -> OpenClipVLM:
    """``open_clip:<arch>`` with local weights. Fails at once (no hub retries) without them.

    ``pretrained``: a checkpoint file, ``local-dir:/folder``, or a tag (e.g. ``laion2b_s34b_b79k``)
    that is already in the local Hugging Face cache. ``allow_random=True`` with ``pretrained=None``
    builds a randomly initialized model (for tests of shapes and plumbing only).
    """
    _offline()  # before open_clip can touch the hub: a missing file fails in milliseconds
    import open_clip

    if arch.startswith("local-dir:"):
        folder = Path(arch.split(":", 1)[1])
        if not (folder / "open_clip_config.json").exists():
            raise _open_clip_error(arch, f"no open_clip_config.json in {folder}")
        model = open_clip.create_model(arch)
        return OpenClipVLM(model, open_clip.get_tokenizer(arch), f"open_clip:{arch}")
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown open_clip architecture {arch!r}; e.g. ViT-B-32, ViT-B-16, RN50 "
                         f"(open_clip.list_models() lists {len(open_clip.list_models())})")
    if pretrained is None:
        if not allow_random:
            raise _open_clip_error(arch, "pretrained=None")
        model = open_clip.create_model(arch, pretrained=None)
        return OpenClipVLM(model, open_clip.get_tokenizer(arch), f"open_clip:{arch}:random")
    if pretrained.startswith("local-dir:") or os.sep in pretrained or pretrained.endswith(
            (".pt", ".bin", ".safetensors", ".pth")):
        file = Path(pretrained.split(":", 1)[1] if pretrained.startswith("local-dir:") else pretrained)
        if not file.exists():
            raise _open_clip_error(arch, f"no file or folder at {file}")
    try:
        model = open_clip.create_model(arch, pretrained=pretrained)
    except Exception as e:
        raise _open_clip_error(arch, f"{type(e).__name__}: {str(e)[:200]}") from e
    return OpenClipVLM(model, open_clip.get_tokenizer(arch), f"open_clip:{arch}:{Path(pretrained).name}")


def load_vlm(name: str = DEFAULT_NAME, pretrained: str | None = None, weights: str | os.PathLike | None = None,
             allow_random: bool = False, caption_memory: float | bool | None = None) -> VLM:
    """The single entry point.

    ``load_vlm()``: the embedded default from ``data/models/vlm/vision_tower.pt`` (or ``weights``).
    ``load_vlm("open_clip:ViT-B-32", pretrained=...)``: any open_clip model with local weights.
    ``caption_memory=0.5`` (or ``True`` for the stored weight): the embedded model's text side also
    moves each prompt towards its nearest pretraining captions (``data/models/vlm/caption_memory.pt``,
    :mod:`genrl_lite.caption_memory`). Off by default: the shipped results were made without it.
    """
    t0 = time.time()
    if caption_memory is not None and caption_memory is not False and name != DEFAULT_NAME:
        raise ValueError(f"caption_memory holds MiniLM embeddings of the embedded model's captions; "
                         f"{name!r} has another text tower, so load it without caption_memory")
    if name == DEFAULT_NAME:
        from genrl_lite.embedded_vlm import EmbeddedVLM   # it builds on this module's VLM base

        vlm = EmbeddedVLM.from_file(weights or weights_dir() / "vision_tower.pt")
    elif name.startswith("open_clip:"):
        vlm = load_open_clip(name.split(":", 1)[1], pretrained, allow_random)
    else:
        raise ValueError(f"unknown VLM {name!r}; use {DEFAULT_NAME!r} (embedded, offline) or "
                         "'open_clip:<arch>' with pretrained=<local weights>, e.g. 'open_clip:ViT-B-32'")
    if caption_memory is not None and caption_memory is not False:
        from genrl_lite.caption_memory import CaptionMemory

        weight = None if caption_memory is True else float(caption_memory)
        vlm.text_memory = CaptionMemory.load(weights_dir() / "caption_memory.pt", weight=weight)
        if vlm.text_memory.dim != vlm.dim:
            raise RuntimeError(f"the caption memory holds {vlm.text_memory.dim}-d embeddings, {vlm.name} gives "
                               f"{vlm.dim}-d: rebuild it for this model")
    vlm.load_seconds = time.time() - t0
    return vlm


# --- the modality gap and the noise that bridges it -----------------------------------------------------

def lafite_noise(e: torch.Tensor, alpha: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """GenRL's aligner input noise (after LAFITE): normalize((1 - alpha) * e + alpha * n), with n a
    random UNIT vector per row. e (B, E) unit-norm -> (B, E) unit-norm; alpha = 0.5 in the paper.

    Why: a network trained on noisy *visual* embeddings learns to map a whole cone around each
    one back to it; if text embeddings fall inside those cones (they sit a roughly constant
    'modality gap' away), the network accepts text it never saw (``GENRL_REFERENCE.md`` §4).
    """
    from genrl_lite.aligner import add_lafite_noise  # the one implementation, used by the aligner

    return add_lafite_noise(e, alpha, generator)


def modality_gap_stats(video: torch.Tensor, text: torch.Tensor) -> dict:
    """Cosine statistics of N matched pairs: video (N, E) and text (N, E) unit-norm (row i of
    each describes the same clip). Returns mean/std of clip-clip, text-text, all clip-text and
    matched clip-text cosines, the centroid distance and the gap vector (text - video centroid)."""
    assert video.shape == text.shape, f"need matched (N, E) pairs, got {tuple(video.shape)} and {tuple(text.shape)}"
    off = ~torch.eye(len(video), dtype=torch.bool)

    def ms(x):
        return {"mean": float(x.mean()), "std": float(x.std())}

    cv, ct = video.mean(0), text.mean(0)
    return {"clip_clip": ms((video @ video.T)[off]), "text_text": ms((text @ text.T)[off]),
            "clip_text": ms(video @ text.T), "matched": ms((video * text).sum(1)),
            "centroid_distance": float((ct - cv).norm()), "clip_centroid_norm": float(cv.norm()),
            "text_centroid_norm": float(ct.norm()), "gap": (ct - cv)}
