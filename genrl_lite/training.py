"""Training the world model, connector and aligner together, with checkpoints and resume.

Shapes: B batch, T time, A action dim, E VLM embedding dim.

One training step (as the reference's ``train.py``):
1. one world-model update on a batch (reconstruction + balanced KL);
2. if the batch has VLM embeddings, one connector + aligner update on the DETACHED posteriors of
   that same batch (the world model gets no gradient from the connector).

Data: any object with ``sample(batch, length, rng) -> dict`` of numpy arrays ``obs`` (B, T, 64, 64, 3)
uint8, ``action`` (B, T, A) float32, ``is_first`` (B, T) bool and optionally ``embed`` (B, T, E)
(the VLM embedding of the window ending at each frame); ``rng`` is a ``numpy.random.Generator``.
Without ``embed``, pass ``embed_fn(batch) -> (B, T, E)``; with neither, only the world model trains.

Files in ``out_dir``: ``checkpoint.pt`` (written atomically every ``cfg.save_every`` steps and at
the end; holds config, preset, step, weights, optimizers, RNG states), ``metrics.jsonl`` (one JSON
object per ``cfg.log_every`` steps, averaged over them; ``read_metrics`` loads it for plots) and
``config.json``.

Where we differ from the reference: two Adam optimizers (world model; connector + aligner) instead of
one shared object. Their parameter sets are disjoint and Adam's state is per parameter, so this is
the same update, except that the gradient-norm clip (1000, rarely active) is computed per optimizer.
Weight decay is AdamW's decoupled decay with ``wd / lr`` so that each step multiplies the weights by
``1 - wd``, the reference's multiplicative shrinkage.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genrl_lite.aligner import Aligner
from genrl_lite.connector import Connector
from genrl_lite.runtime import atomic_path, atomic_torch_save, default_device, progress
from genrl_lite.world_model import WorldModel, WorldModelConfig, batch_to_torch, count_parameters

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
FORMAT = "genrl_lite.world_model/1"
ARCH_FIELDS = ("cnn_depth", "deter", "hidden", "stoch_groups", "stoch_classes")
TRAIN_COMMAND = ("python -m genrl_lite.training --preset {preset} --data data --domain walker --out {out}  "
                 "(or scripts/train_models.py for the shipped models, or train_world_model(...) in a notebook)")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match what the caller expects."""


@dataclass
class ModelBundle:
    """What training produces and ``load_checkpoint`` returns."""

    cfg: WorldModelConfig
    world_model: WorldModel
    connector: Connector | None
    aligner: Aligner | None
    step: int
    action_dim: int
    embed_dim: int | None
    path: Path | None = None
    vlm_tag: str | None = None
    """Which VLM's embeddings the connector/aligner were trained on (set in exported models)."""
    meta: dict | None = None
    """Metadata stored by ``pretrained.export_model`` (command, wall time, metrics)."""
    model_id: str | None = None
    """First 12 hex digits of the sha1 of the checkpoint file loaded (set by ``load_checkpoint``): names
    the exact weights, so a result can say which model it was trained on even when two models share a step."""
    weights_id: str | None = None
    """The same for the weights alone (``weights_id``; set by ``load_checkpoint``): equal for a model
    retrained bit for bit, whose file differs only in its metadata."""

    @property
    def preset(self) -> str:
        return self.cfg.preset

    def parameter_counts(self) -> dict:
        out = {"world_model": count_parameters(self.world_model)}
        if self.connector is not None:
            out["connector"] = count_parameters(self.connector)
            out["aligner"] = count_parameters(self.aligner)
        return out


# --- a toy data source ----------------------------------------------------------------------------

class SyntheticSampler:
    """Toy episodes for tests and benchmarks: a coloured square that moves on a dark background.

    Each sequence is a new episode of one "concept" c (K concepts): c fixes the square's colour and
    a drift direction of the actions, and the embedding of every frame is a fixed random unit vector
    of c plus a little noise. So the embedding determines the latent sequence (colour and motion),
    which is what the connector must learn. ``action[t]`` moves the square to its position in
    ``obs[t]`` (``action[0] = 0``, ``is_first[0] = True``).
    """

    def __init__(self, action_dim: int = 2, embed_dim: int | None = 32, n_concepts: int = 4,
                 size: int = 64, square: int = 12, seed: int = 0):
        if action_dim < 2:
            raise ValueError(f"SyntheticSampler moves a square in 2-D and needs action_dim >= 2, got {action_dim}")
        g = np.random.default_rng(seed)
        self.action_dim, self.embed_dim, self.size, self.square = action_dim, embed_dim, size, square
        self.colours = g.uniform(0.3, 1.0, (n_concepts, 3)) * 255
        angles = np.arange(n_concepts) * 2 * np.pi / n_concepts
        self.drift = np.zeros((n_concepts, action_dim))
        self.drift[:, 0], self.drift[:, min(1, action_dim - 1)] = np.cos(angles) * 0.6, np.sin(angles) * 0.6
        if embed_dim:
            p = g.normal(size=(n_concepts, embed_dim))
            self.protos = p / np.linalg.norm(p, axis=1, keepdims=True)
        self.n_concepts = n_concepts

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict:
        S, q = self.size, self.square
        c = rng.integers(self.n_concepts, size=batch)
        action = np.clip(self.drift[c][:, None] + 0.4 * rng.normal(size=(batch, length, self.action_dim)), -1, 1)
        action[:, 0] = 0.0
        start = rng.uniform(q, S - 2 * q, (batch, 1, 2))
        pos = np.clip(start + np.cumsum(3.0 * action[..., :2], 1), 0, S - q).astype(int)   # (B, T, 2)
        obs = np.full((batch, length, S, S, 3), 20, np.uint8)
        for b in range(batch):
            for t in range(length):
                y, x = pos[b, t]
                obs[b, t, y:y + q, x:x + q] = self.colours[c[b]]
        out = {"obs": obs, "action": action.astype(np.float32),
               "is_first": np.arange(length)[None].repeat(batch, 0) == 0}
        if self.embed_dim:
            e = self.protos[c][:, None] + 0.05 * rng.normal(size=(batch, length, self.embed_dim))
            out["embed"] = (e / np.linalg.norm(e, axis=-1, keepdims=True)).astype(np.float32)
        return out


# --- checkpoints ------------------------------------------------------------------------------------

def _rng_state(rng: np.random.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": pickle.dumps(rng.bit_generator.state),
             "python": pickle.dumps(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = pickle.loads(state["numpy"])
    random.setstate(pickle.loads(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _resolve(path: Path) -> Path:
    if path.is_dir() or (not path.exists() and path.suffix != ".pt"):
        return path / CHECKPOINT_NAME
    return path


def checkpoint_id(path) -> str | None:
    """First 12 hex digits of the sha1 of the checkpoint at ``path`` (file or out_dir); None if absent."""
    path = _resolve(Path(path))
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path.is_file() else None


def weights_id(ckpt: dict) -> str:
    """First 12 hex digits of a sha1 of what a checkpoint computes with, read from its dict ``ckpt``.

    It covers the weights of the world model, connector and aligner (names, dtypes, shapes, bytes),
    the config, the action and embedding sizes and the VLM tag, but not the metadata an export adds
    (dates, wall times, the command). Training is deterministic on one thread, so a model retrained
    by the same command on the same data and the same kind of CPU gets the same ``weights_id``
    although its file, and so its ``checkpoint_id``, differ: a result that records it still measures
    the retrained model. (Another CPU's float32 kernels round differently, and training drifts.)
    """
    h = hashlib.sha1(json.dumps([ckpt.get("config"), ckpt.get("action_dim"), ckpt.get("embed_dim"),
                                 ckpt.get("vlm_tag")], sort_keys=True).encode())
    for part in ("world_model", "connector", "aligner"):
        for name, tensor in sorted((ckpt.get(part) or {}).items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{part}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:12]


def _read(path: Path) -> dict:
    path = _resolve(path)
    if not path.exists():
        raise CheckpointError(f"no world-model checkpoint at {path}. Train one first: "
                              + TRAIN_COMMAND.format(preset="laptop", out=path.parent))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, unpickling error, ...
        raise CheckpointError(f"checkpoint {path} is corrupted or not a genrl_lite checkpoint "
                              f"({type(err).__name__}: {err}); delete it and train again") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a genrl_lite world-model checkpoint (format "
                              f"{ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt).__name__!r}, "
                              f"expected {FORMAT!r})")
    return ckpt


def _check_compatible(ckpt: dict, path, expected_preset=None, embed_dim=None, cfg=None) -> None:
    saved = WorldModelConfig.from_dict(ckpt["config"])
    if expected_preset is not None and saved.preset != expected_preset:
        raise CheckpointError(f"{path} holds a {saved.preset!r}-preset model, but preset {expected_preset!r} "
                              f"was asked for; load it with expected_preset={saved.preset!r} or train a "
                              f"{expected_preset!r} model into another directory")
    if cfg is not None:
        diff = {k: (getattr(saved, k), getattr(cfg, k)) for k in ("preset",) + ARCH_FIELDS
                if getattr(saved, k) != getattr(cfg, k)}
        if diff:
            raise CheckpointError(f"{path} was trained with another config (saved vs asked: {diff}); use "
                                  f"another out_dir, or resume=False to overwrite it")
    if embed_dim is not None and ckpt["embed_dim"] is not None and embed_dim != ckpt["embed_dim"]:
        raise CheckpointError(f"{path} has a connector for {ckpt['embed_dim']}-d embeddings, but the "
                              f"embeddings given are {embed_dim}-d: use the VLM it was trained with")


def _build(cfg: WorldModelConfig, action_dim: int, embed_dim: int | None, device) -> ModelBundle:
    torch.manual_seed(cfg.seed)
    wm = WorldModel(cfg, action_dim).to(device)
    conn = Connector(cfg, embed_dim).to(device) if embed_dim else None
    align = Aligner(embed_dim, alpha=cfg.aligner_alpha).to(device) if embed_dim else None
    return ModelBundle(cfg, wm, conn, align, 0, action_dim, embed_dim)


def make_optimizer(params, cfg: WorldModelConfig) -> torch.optim.Optimizer:
    """AdamW with the config's lr/eps and multiplicative decay ``1 - weight_decay`` per step.

    The fused kernel is 3-4x faster than the default on a CPU (measured: 3.7 vs 14 ms per step for
    1.2M parameters on one core) and exists on CUDA too.
    """
    kwargs = dict(lr=cfg.lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay / cfg.lr)
    params = list(params)
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):   # a device without a fused kernel (e.g. MPS on old torch)
        return torch.optim.AdamW(params, **kwargs)


def load_checkpoint(path, expected_preset: str | None = None, embed_dim: int | None = None,
                    device=None) -> ModelBundle:
    """Load models from ``path`` (a checkpoint file or a training ``out_dir``), in eval mode.

    Raises ``CheckpointError`` with what to do when the file is missing or corrupted, holds another
    preset than ``expected_preset``, or a connector for another embedding size than ``embed_dim``.
    """
    path = Path(path)
    ckpt = _read(path)
    _check_compatible(ckpt, path, expected_preset, embed_dim)
    cfg = WorldModelConfig.from_dict(ckpt["config"])
    bundle = _build(cfg, ckpt["action_dim"], ckpt["embed_dim"], device or default_device())
    bundle.world_model.load_state_dict(ckpt["world_model"])
    if bundle.connector is not None:
        bundle.connector.load_state_dict(ckpt["connector"])
        bundle.aligner.load_state_dict(ckpt["aligner"])
    for m in (bundle.world_model, bundle.connector, bundle.aligner):
        if m is not None:
            m.eval()
    bundle.step, bundle.path, bundle.model_id = ckpt["step"], path, checkpoint_id(path)
    bundle.weights_id = weights_id(ckpt)
    bundle.vlm_tag, bundle.meta = ckpt.get("vlm_tag"), ckpt.get("meta", {})
    return bundle


def read_metrics(out_dir) -> dict:
    """The training curves of ``out_dir/metrics.jsonl`` as {name: np.array}, all aligned on ``step``."""
    path = Path(out_dir) / METRICS_NAME
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    keys = sorted({k for r in rows for k in r})
    return {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after the checkpoint we resume from (the run died before saving them)."""
    if path.exists():
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(ln + "\n" for ln in lines))


# --- training ----------------------------------------------------------------------------------------

def train_world_model(cfg: WorldModelConfig, data, steps: int, out_dir, embed_fn=None, resume: bool = True,
                      device=None, show_progress: bool = True, max_minutes: float | None = None,
                      world_model_from=None) -> ModelBundle:
    """Train until the step counter reaches ``steps`` (so a resumed run continues to the same total).

    ``max_minutes``: also stop (and save) after this much wall time in this call; run again to resume.
    ``world_model_from``: a trained checkpoint (file or out_dir) whose world model is loaded and FROZEN;
    only the connector and aligner train (the data must carry embeddings). This is the same update as
    joint training (the connector's targets are detached posteriors either way), run as a second
    stage: it lets one world model serve several VLMs, and a new VLM costs minutes, not an hour.
    ``data``: a sampler (see module docstring). ``embed_fn(batch) -> (B, T, E)`` computes embeddings
    when batches have no ``embed``. ``resume``: continue from ``out_dir/checkpoint.pt`` if present.
    Returns the trained ``ModelBundle`` (models left in train mode).
    """
    if not callable(getattr(data, "sample", None)):
        raise TypeError(f"data must have sample(batch, length, rng) -> dict of numpy arrays; got "
                        f"{type(data).__name__}")
    device = torch.device(device) if device is not None else default_device()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, metrics_path = out_dir / CHECKPOINT_NAME, out_dir / METRICS_NAME
    B, T = cfg.batch_size, cfg.batch_length
    rng = np.random.default_rng(cfg.seed)

    def get_batch() -> dict:
        batch = data.sample(B, T, rng)
        if "embed" not in batch and embed_fn is not None:
            batch = dict(batch, embed=embed_fn(batch))
        return batch_to_torch(batch, device)

    first = get_batch()                     # to learn the action and embedding sizes
    action_dim = first["action"].shape[-1]
    embed_dim = first["embed"].shape[-1] if "embed" in first else None
    ckpt = _read(ckpt_path) if resume and ckpt_path.exists() else None
    if ckpt is not None:
        _check_compatible(ckpt, ckpt_path, embed_dim=embed_dim, cfg=cfg)
        if ckpt["action_dim"] != action_dim:
            raise CheckpointError(f"{ckpt_path} was trained with {ckpt['action_dim']}-d actions, the data has "
                                  f"{action_dim}-d actions: use another out_dir")
        if (ckpt["embed_dim"] is None) != (embed_dim is None):
            raise CheckpointError(f"{ckpt_path} was trained {'without' if ckpt['embed_dim'] is None else 'with'} "
                                  f"embeddings, but this data has{' no' if embed_dim is None else ''} embeddings")
    frozen = world_model_from is not None
    if frozen and embed_dim is None:
        raise ValueError("world_model_from trains only the connector and aligner, which need VLM embeddings: "
                         "call data.attach_embeddings(load_vlm()) or pass embed_fn")
    bundle = _build(cfg, action_dim, embed_dim, device)
    bundle.path = ckpt_path
    wm, conn, align = bundle.world_model, bundle.connector, bundle.aligner
    if frozen and ckpt is None:
        base = _read(Path(world_model_from))
        _check_compatible(base, world_model_from, cfg=cfg)
        if base["action_dim"] != action_dim:
            raise CheckpointError(f"{world_model_from} has {base['action_dim']}-d actions, the data "
                                  f"{action_dim}-d: use the world model of this domain")
        wm.load_state_dict(base["world_model"])
    wm.requires_grad_(not frozen)
    opt_wm = make_optimizer(wm.parameters(), cfg)
    opt_conn = make_optimizer(list(conn.parameters()) + list(align.parameters()), cfg) if conn else None
    torch.manual_seed(cfg.seed + 1)
    if ckpt is not None:
        wm.load_state_dict(ckpt["world_model"])
        if not frozen:
            opt_wm.load_state_dict(ckpt["opt_world_model"])
        if conn is not None:
            conn.load_state_dict(ckpt["connector"])
            align.load_state_dict(ckpt["aligner"])
            opt_conn.load_state_dict(ckpt["opt_connector"])
        _set_rng_state(ckpt["rng"], rng)
        bundle.step = ckpt["step"]
        _truncate_metrics(metrics_path, bundle.step)
    else:
        metrics_path.unlink(missing_ok=True)
    del first                               # consumed for sizes only (the same in fresh and resumed runs)
    with atomic_path(out_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(cfg.to_dict(), indent=1))

    def save() -> None:
        atomic_torch_save({
            "format": FORMAT, "config": cfg.to_dict(), "preset": cfg.preset, "step": bundle.step,
            "action_dim": action_dim, "embed_dim": embed_dim, "world_model": wm.state_dict(),
            "opt_world_model": None if frozen else opt_wm.state_dict(), "frozen_world_model": frozen,
            "connector": conn.state_dict() if conn else None, "aligner": align.state_dict() if conn else None,
            "opt_connector": opt_conn.state_dict() if conn else None, "rng": _rng_state(rng),
            "parameters": bundle.parameter_counts()}, ckpt_path)

    wm.train()
    start_step = bundle.step
    sums: dict = {}
    count, t_log = 0, time.perf_counter()
    bar = progress(range(bundle.step, steps), initial=bundle.step, total=steps,
                   desc=f"world model ({cfg.preset})", **({} if show_progress else {"disable": True}))
    t_start = time.perf_counter()
    for _ in bar:
        if max_minutes is not None and time.perf_counter() - t_start > 60 * max_minutes:
            break
        batch = get_batch()
        if frozen:
            with torch.no_grad():
                posts, _ = wm.rssm.observe(wm.encode(wm.preprocess(batch["obs"])), batch["action"],
                                           batch["is_first"])
            metrics = {}
        else:
            loss, metrics, posts = wm.loss(batch)
            opt_wm.zero_grad(set_to_none=True)
            loss.backward()
            metrics["wm_grad_norm"] = torch.nn.utils.clip_grad_norm_(wm.parameters(), cfg.grad_clip)
            opt_wm.step()
        if conn is not None:
            posts = {k: v.detach() for k, v in posts.items()}
            c_loss, c_metrics = conn.loss(batch["embed"], posts)
            a_loss, a_metrics = align.loss(batch["embed"][:, cfg.n_frames - 1::cfg.n_frames])
            opt_conn.zero_grad(set_to_none=True)
            (c_loss + a_loss).backward()
            torch.nn.utils.clip_grad_norm_(list(conn.parameters()) + list(align.parameters()), cfg.grad_clip)
            opt_conn.step()
            metrics.update(c_metrics, **a_metrics)
        bundle.step += 1
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()
        count += 1
        if bundle.step % cfg.log_every == 0 or bundle.step == steps:
            dt = time.perf_counter() - t_log
            row = {"step": bundle.step, **{k: round(float(v) / count, 5) for k, v in sums.items()},
                   "sec_per_step": round(dt / count, 4), "frames_per_sec": round(count * B * T / dt, 1)}
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(**({} if frozen else {"loss": f"{row['wm_loss']:.1f}", "kl": f"{row['model_kl']:.2f}"}),
                                **({"conn_kl": f"{row['connector_kl']:.2f}"} if conn else {}))
            sums, count, t_log = {}, 0, time.perf_counter()
        if bundle.step % cfg.save_every == 0 and bundle.step < steps:
            save()
    if bundle.step > start_step or ckpt is None:
        save()
    return bundle


@torch.no_grad()
def evaluate_world_model(wm: WorldModel, data, windows: int = 64, context: int = 5, horizon: int = 16,
                         seed: int = 123, batch: int = 16, action_controls: bool = False) -> dict:
    """Quality on (held-out) data: reconstruction and open-loop prediction MSE per pixel (in [0, 1]).

    Samples ``windows`` sequences of ``context + horizon`` frames. ``recon_mse``: posterior
    reconstructions of all frames; ``open_loop_mse`` (mean over the horizon) and ``open_loop_mse_per_step``:
    predictions from ``context`` observed frames and the true actions; ``baseline_mse``: repeating
    the last context frame. ``open_loop_vs_baseline`` < 1 means the model beats the baseline.

    ``action_controls`` adds the same predictions with other windows' actions and with zero actions
    (``open_loop(..., actions="shuffled" / "zero")``): ``open_loop_mse_shuffled_actions``,
    ``open_loop_mse_zero_actions`` and ``action_effect`` = shuffled / true MSE. An ``action_effect``
    of 1 means the model predicts as well without the right actions: it has not learned what they do.
    """
    from genrl_lite.world_model import open_loop

    was_training = wm.training
    wm.eval()
    rng = np.random.default_rng(seed)
    per_step, base, recon = [], [], []
    controls = {"shuffled": [], "zero": []} if action_controls else {}
    if action_controls and (batch < 2 or windows % batch == 1):
        raise ValueError(f"action_controls swaps actions between the windows of a batch, so every batch needs "
                         f"2 or more: got windows={windows}, batch={batch} (a last batch of 1)")
    for start in range(0, windows, batch):
        b = data.sample(min(batch, windows - start), context + horizon, rng)
        out = open_loop(wm, b, context, horizon)
        per_step.append(out["mse"] * len(out["pred"]))
        base.append(out["baseline_mse"] * len(out["pred"]))
        for mode, errs in controls.items():
            errs.append(open_loop(wm, b, context, horizon, actions=mode)["mse"] * len(out["pred"]))
        tb = batch_to_torch(b, wm.device)
        images = wm.preprocess(tb["obs"])
        posts, _ = wm.rssm.observe(wm.encode(images), tb["action"], tb["is_first"], sample=False)
        recon.append(((wm.decode(wm.rssm.stoch_flat(posts)) - (images + 0.5)) ** 2).mean().item() * len(out["pred"]))
    wm.train(was_training)
    per_step, base = np.sum(per_step, 0) / windows, np.sum(base, 0) / windows
    out = {"recon_mse": float(np.sum(recon) / windows), "open_loop_mse": float(per_step.mean()),
           "baseline_mse": float(base.mean()), "open_loop_vs_baseline": float(per_step.mean() / base.mean()),
           "open_loop_mse_per_step": per_step, "baseline_mse_per_step": base}
    for mode, errs in controls.items():
        out[f"open_loop_mse_{mode}_actions"] = float((np.sum(errs, 0) / windows).mean())
    if controls:
        out["action_effect"] = out["open_loop_mse_shuffled_actions"] / out["open_loop_mse"]
    return out


def main(argv=None) -> None:
    """Command line: train on the toy sampler, or on episodes of a dataset directory."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="laptop", choices=WorldModelConfig.preset_names())
    p.add_argument("--steps", type=int, default=None, help="total steps (default: 5000 laptop, 200 tiny)")
    p.add_argument("--out", required=True, help="output directory (resumes if it has a checkpoint)")
    p.add_argument("--synthetic", action="store_true", help="train on SyntheticSampler toy data")
    p.add_argument("--data", default=None, help="dataset root (e.g. data or data/sample), see genrl_lite.data")
    p.add_argument("--domain", default="walker", help="domain to train on (one world model per domain)")
    p.add_argument("--subsets", nargs="*", default=None, help="dataset subsets (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--minutes", type=float, default=None, help="wall-time budget of this call (resume later)")
    p.add_argument("--split", default="train", help="dataset split to train on: train (default) or all")
    p.add_argument("--embed", action="store_true",
                   help="attach the default VLM's embeddings so the connector and aligner train too")
    p.add_argument("--world-model", default=None,
                   help="a trained checkpoint/out_dir: freeze its world model, train only connector + aligner "
                        "(implies --embed)")
    p.add_argument("--no-resume", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = WorldModelConfig.preset(args.preset)
    if args.synthetic:
        data = SyntheticSampler(action_dim=2, embed_dim=32, seed=cfg.seed)
    elif args.data:
        from genrl_lite.data import EpisodeDataset
        data = EpisodeDataset(args.data, args.domain, args.subsets, split=args.split)
        if args.embed or args.world_model:
            from genrl_lite.vlm import load_vlm
            data.attach_embeddings(load_vlm())
    else:
        raise SystemExit("give --synthetic or --data DIR")
    steps = args.steps or {"tiny": 200, "laptop": 5000}.get(args.preset, 500_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bundle = train_world_model(cfg, data, steps, args.out, resume=not args.no_resume,
                                   max_minutes=args.minutes, world_model_from=args.world_model)
    print(f"trained {bundle.step} steps -> {bundle.path}; parameters {bundle.parameter_counts()}")


if __name__ == "__main__":
    main()
