"""The shipped models: one small world model + connector + aligner per domain, loadable by name.

Training (``python -m genrl_lite.training``) writes a full checkpoint (weights, optimizer state, RNG
state; ~30 MB at the laptop preset) so that it can resume. What ships in ``data/models/<domain>/``
is a slim copy made by :func:`export_model`: float16 weights only (~6 MB), the same format, so
``training.load_checkpoint`` reads both. It records which VLM the connector and aligner were trained
with (:func:`genrl_lite.data.vlm_tag`), because a connector only understands the embeddings of
that VLM; :func:`check_vlm` turns a mismatch into a clear error.

    bundle = load_model("walker")           # ModelBundle: world_model, connector, aligner (eval mode)
    check_vlm(bundle, load_vlm())           # raises if the VLM is not the one it was trained with

:func:`train_domain_model` makes one such model from a domain's data in two stages (what
``scripts/train_models.py`` runs, and the benchmark's training-data ablation with ``subsets``).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from genrl_lite.runtime import REPO_ROOT, atomic_path, atomic_torch_save, data_dir, git_commit, repo_relative
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


def _training_minutes(run_dir: Path) -> float:
    """Total training wall time of a (possibly resumed many times) run, from its metrics file."""
    import numpy as np

    from genrl_lite.training import read_metrics

    m = read_metrics(run_dir)
    if "step" not in m or len(m["step"]) == 0:
        return 0.0
    steps = np.diff(np.concatenate([[0], m["step"]]))
    return float((steps * m["sec_per_step"]).sum() / 60)


def train_domain_model(domain: str, root, runs, out, preset: str = "laptop", wm_steps: int = 6000,
                       conn_steps: int = 3000, subsets=None, wm_minutes: float | None = None,
                       conn_minutes: float | None = None, eval_windows: int = 128, command: str = "",
                       show_progress: bool = True, vlm=None) -> dict:
    """Train one domain's model and export it: ``out/model.pt``, ``info.json`` and the curves.

    Stage 1 trains the world model on the vision-only training split of ``root/<domain>`` (only
    ``subsets``, e.g. ``["expl"]``, when given); stage 2 freezes it and trains the connector and
    aligner on the default VLM's embeddings of the same frames. Both resume from
    ``runs/{wm,conn}_<domain>/`` and stop at ``*_steps`` or ``*_minutes`` (in this call). The model is
    then measured on the domain's held-out episodes (every subset's, so that models trained on
    different subsets are measured on the same clips). ``vlm``: whose embeddings the connector and
    aligner learn (default: the embedded VLM, ``load_vlm()``). Returns the ``info.json`` dict.
    """
    import torch

    from genrl_lite.data import EmptyDatasetError, EpisodeDataset, vlm_tag
    from genrl_lite.training import METRICS_NAME, evaluate_world_model, train_world_model
    from genrl_lite.vlm import load_vlm
    from genrl_lite.world_model import WorldModelConfig

    root, runs, out = Path(root), Path(runs), Path(out)
    cfg = WorldModelConfig.preset(preset)
    train = EpisodeDataset(root, domain, subsets=subsets, split="train", verbose=show_progress)
    print(f"{domain}: {train.num_episodes} training episodes, {train.num_frames} frames"
          + (f" (subsets {', '.join(subsets)})" if subsets else ""), flush=True)
    t0 = time.time()
    wm = train_world_model(cfg, train, wm_steps, runs / f"wm_{domain}", max_minutes=wm_minutes,
                           show_progress=show_progress)
    t_wm = time.time() - t0
    vlm = vlm if vlm is not None else load_vlm()
    train.attach_embeddings(vlm, verbose=show_progress)
    t1 = time.time()
    full = train_world_model(cfg, train, conn_steps, runs / f"conn_{domain}", world_model_from=runs / f"wm_{domain}",
                             max_minutes=conn_minutes, show_progress=show_progress)
    t_conn = time.time() - t1
    try:
        held, held_name = EpisodeDataset(root, domain, split="heldout", verbose=show_progress), "heldout"
    except EmptyDatasetError:   # a small dataset (e.g. data/sample): measured on training data, and said so
        held, held_name = train, "train (no held-out episodes)"
    bundle = load_checkpoint(runs / f"conn_{domain}")
    q = evaluate_world_model(bundle.world_model, held, windows=eval_windows)
    quality = {k: (v.astype(float).round(5).tolist() if hasattr(v, "tolist") else round(v, 5)) for k, v in q.items()}
    threads = torch.get_num_threads()
    info = {
        "domain": domain, "preset": preset, "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),   # results made before it are stale
        "world_model_steps": wm.step, "connector_steps": full.step,
        "wall_seconds_this_call": {"world_model": round(t_wm), "connector_aligner": round(t_conn)},
        "training_minutes_total": {"world_model": round(_training_minutes(runs / f"wm_{domain}"), 1),
                                   "connector_aligner": round(_training_minutes(runs / f"conn_{domain}"), 1)},
        "threads": threads, "parameters": bundle.parameter_counts(), "vlm": vlm_tag(vlm),
        "train_data": {"root": repo_relative(root), "episodes": train.num_episodes, "frames": train.num_frames,
                       "subsets": train.subsets},
        "heldout_data": {"split": held_name, "episodes": held.num_episodes, "frames": held.num_frames},
        "heldout_quality": quality,
        "reproduce": (f"python scripts/train_models.py --domain {domain} --preset {preset} --wm-steps {wm.step} "
                      f"--conn-steps {full.step} --threads {threads}"
                      + ("" if root.resolve() == data_dir().resolve() else f" --data {repo_relative(root)}")
                      + (f" --subsets {' '.join(subsets)}" if subsets else "")
                      + ("" if out == models_dir() / domain
                         else f" --runs {repo_relative(runs)} --out {repo_relative(out)}")),
        "command": command,
    }
    export_model(runs / f"conn_{domain}", out / MODEL_FILE, vlm=vlm, extra=info)
    for src, name in ((runs / f"wm_{domain}", METRICS_NAME), (runs / f"conn_{domain}", "connector_metrics.jsonl")):
        shutil.copyfile(src / METRICS_NAME, out / name)
    with atomic_path(out / "info.json") as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    return info
