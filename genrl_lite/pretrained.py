"""The shipped models: one small world model + connector + aligner per domain, loadable by name.

Training (``python -m genrl_lite.training``) writes a full checkpoint (weights, optimizer state, RNG
state; ~30 MB at the laptop preset) so that it can resume. What ships in ``data/models/<domain>/``
is a slim copy made by :func:`export_model`: float16 weights only (~6 MB), the same format, so
``training.load_checkpoint`` reads both. It records which VLM the connector and aligner were trained
with (:func:`genrl_lite.data.vlm_tag`), because a connector only understands the embeddings of
that VLM; :func:`check_vlm` turns a mismatch into a clear error.

    bundle = load_model("walker")           # ModelBundle: world_model, connector, aligner (eval mode)
    check_vlm(bundle, load_vlm())           # raises if the VLM is not the one it was trained with
"""
from __future__ import annotations

import json
from pathlib import Path

from genrl_lite.runtime import REPO_ROOT, atomic_torch_save
from genrl_lite.training import CheckpointError, ModelBundle, _read, load_checkpoint

MODEL_FILE = "model.pt"
SHIPPED_DOMAINS = ("walker", "cheetah", "quadruped", "stickman")
"""Domains with a shipped laptop-preset model (see data/models/README.md)."""


def models_dir() -> Path:
    """Where shipped models live: ``<repo>/data/models`` (they ship with the code, not with datasets)."""
    return REPO_ROOT / "data" / "models"


def export_model(checkpoint, out_file, vlm=None, extra: dict | None = None) -> Path:
    """Write a slim, shippable copy of a training checkpoint (file or out_dir).

    Weights are stored in float16 (the models train in float32; the rounding changes reconstructions
    by well under 1e-3 per pixel); optimizer and RNG states are dropped. ``vlm``: the VLM whose
    embeddings the connector was trained on (its tag is recorded). ``extra``: JSON-able metadata
    (the command, wall time, metrics) stored under ``"meta"``.
    """
    from genrl_lite.data import vlm_tag

    ckpt = _read(Path(checkpoint))
    slim = {k: v for k, v in ckpt.items() if not k.startswith("opt_") and k != "rng"}
    for key in ("world_model", "connector", "aligner"):
        if slim.get(key) is not None:
            slim[key] = {k: v.half() if v.is_floating_point() else v for k, v in slim[key].items()}
    slim["vlm_tag"] = vlm_tag(vlm) if vlm is not None else ckpt.get("vlm_tag")
    slim["meta"] = json.loads(json.dumps(extra or {}))
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(slim, out_file)
    return out_file


def load_model(name_or_path="walker", device=None) -> ModelBundle:
    """A shipped model by domain name (``"walker"``), or any checkpoint file / training out_dir.

    Returns a ``ModelBundle`` in eval mode (``vlm_tag`` and ``meta`` set for exported models).
    """
    if str(name_or_path) in SHIPPED_DOMAINS:
        path = models_dir() / str(name_or_path) / MODEL_FILE
        if not path.exists():
            raise CheckpointError(f"the shipped {name_or_path} model is missing at {path}; restore it with "
                                  f"`git checkout -- data/models/{name_or_path}` or rebuild it with the "
                                  "commands in data/models/README.md")
    else:
        path = Path(name_or_path)
        if not path.exists() and path.suffix == "" and len(path.parts) == 1:
            raise CheckpointError(f"no shipped model named {name_or_path!r}; shipped: "
                                  f"{', '.join(SHIPPED_DOMAINS)} (or pass a checkpoint file or training out_dir)")
    return load_checkpoint(path, device=device)


def check_vlm(bundle: ModelBundle, vlm) -> None:
    """Raise if ``vlm`` is not the VLM that ``bundle``'s connector and aligner were trained with."""
    from genrl_lite.data import vlm_tag

    if bundle.connector is None:
        raise CheckpointError(f"{bundle.path} has no connector/aligner (trained without VLM embeddings); train "
                              "them with: python -m genrl_lite.training --world-model <this checkpoint> ...")
    if bundle.embed_dim != vlm.dim:
        raise CheckpointError(f"{bundle.path} expects {bundle.embed_dim}-d embeddings but {vlm.name} gives "
                              f"{vlm.dim}-d; use the VLM it was trained with ({bundle.vlm_tag})")
    want = getattr(bundle, "vlm_tag", None)
    if want and want != vlm_tag(vlm):
        raise CheckpointError(f"{bundle.path}'s connector was trained on embeddings of {want}, not "
                              f"{vlm_tag(vlm)}: retrain the connector and aligner for this VLM with "
                              "python -m genrl_lite.training --world-model <checkpoint> --out <dir> ...")
