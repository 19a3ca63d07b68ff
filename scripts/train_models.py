"""Train and ship one domain's model: world model, then connector + aligner, then a slim export.

    python scripts/train_models.py --domain walker --wm-minutes 60 --conn-minutes 20

Stage 1 trains the world model on the domain's vision-only data (``data/<domain>``, train split:
no rewards, no text). Stage 2 freezes it and trains the connector and aligner on the default VLM's
embeddings of the same frames. Both stages resume from ``data/runs/{wm,conn}_<domain>/`` (so a
budget in minutes can be spent in several calls), and stop at ``--*-steps`` or ``--*-minutes``.
``--subsets`` trains on part of the data only (the training-data ablation of the benchmark).
Then the model is measured on the HELD-OUT episodes (reconstruction and 16-step open-loop error vs
repeating the last frame) and exported to ``data/models/<domain>/``:

    model.pt              float16 weights (genrl_lite.pretrained.load_model("<domain>"))
    metrics.jsonl         stage-1 training curves; connector_metrics.jsonl: stage 2
    info.json             steps, wall time, data, held-out quality, VLM tag, and the command that
                          reproduces this file exactly by steps (minutes depend on the machine)
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import genrl_lite  # noqa: F401
import numpy as np
import torch

from genrl_lite.data import EmptyDatasetError, EpisodeDataset, vlm_tag
from genrl_lite.pretrained import export_model, models_dir
from genrl_lite.runtime import atomic_path, data_dir, git_commit, repo_relative
from genrl_lite.training import METRICS_NAME, evaluate_world_model, load_checkpoint, read_metrics, train_world_model
from genrl_lite.vlm import load_vlm
from genrl_lite.world_model import WorldModelConfig


def training_minutes(run_dir: Path) -> float:
    """Total training wall time of a (possibly resumed many times) run, from its metrics file."""
    m = read_metrics(run_dir)
    if "step" not in m or len(m["step"]) == 0:
        return 0.0
    steps = np.diff(np.concatenate([[0], m["step"]]))
    return float((steps * m["sec_per_step"]).sum() / 60)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domain", default="walker")
    p.add_argument("--preset", default="laptop")
    p.add_argument("--data", default=None, help="dataset root (default data/)")
    p.add_argument("--subsets", nargs="*", default=None, help="train on these subsets only, e.g. expl or stand "
                   "(default: all; the held-out measure always uses every subset's held-out episodes)")
    p.add_argument("--wm-steps", type=int, default=6000)
    p.add_argument("--wm-minutes", type=float, default=None)
    p.add_argument("--conn-steps", type=int, default=3000)
    p.add_argument("--conn-minutes", type=float, default=None)
    p.add_argument("--runs", default=None, help="where resumable training runs live (default data/runs)")
    p.add_argument("--out", default=None, help="export folder (default data/models/<domain>)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-windows", type=int, default=128)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    root = Path(args.data) if args.data else data_dir()
    runs = Path(args.runs) if args.runs else data_dir() / "runs"
    out = Path(args.out) if args.out else models_dir() / args.domain
    cfg = WorldModelConfig.preset(args.preset)

    train = EpisodeDataset(root, args.domain, subsets=args.subsets, split="train")
    print(f"{args.domain}: {train.num_episodes} training episodes, {train.num_frames} frames")
    t0 = time.time()
    wm = train_world_model(cfg, train, args.wm_steps, runs / f"wm_{args.domain}", max_minutes=args.wm_minutes)
    t_wm = time.time() - t0
    vlm = load_vlm()
    train.attach_embeddings(vlm)
    t1 = time.time()
    full = train_world_model(cfg, train, args.conn_steps, runs / f"conn_{args.domain}",
                             world_model_from=runs / f"wm_{args.domain}", max_minutes=args.conn_minutes)
    t_conn = time.time() - t1

    try:
        held, held_name = EpisodeDataset(root, args.domain, split="heldout"), "heldout"
    except EmptyDatasetError:   # a small dataset (e.g. data/sample): measured on training data, and said so
        held, held_name = train, "train (no held-out episodes)"
    bundle = load_checkpoint(runs / f"conn_{args.domain}")
    q = evaluate_world_model(bundle.world_model, held, windows=args.eval_windows)
    quality = {k: (v.astype(float).round(5).tolist() if hasattr(v, "tolist") else round(v, 5)) for k, v in q.items()}
    info = {
        "domain": args.domain, "preset": args.preset, "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),   # results made before it are stale
        "world_model_steps": wm.step, "connector_steps": full.step,
        "wall_seconds_this_call": {"world_model": round(t_wm), "connector_aligner": round(t_conn)},
        "training_minutes_total": {"world_model": round(training_minutes(runs / f"wm_{args.domain}"), 1),
                                   "connector_aligner": round(training_minutes(runs / f"conn_{args.domain}"), 1)},
        "threads": args.threads, "parameters": bundle.parameter_counts(), "vlm": vlm_tag(vlm),
        "train_data": {"root": repo_relative(root), "episodes": train.num_episodes, "frames": train.num_frames,
                       "subsets": train.subsets},
        "heldout_data": {"split": held_name, "episodes": held.num_episodes, "frames": held.num_frames},
        "heldout_quality": quality,
        "reproduce": (f"python scripts/train_models.py --domain {args.domain} --preset {args.preset} "
                      f"--wm-steps {wm.step} --conn-steps {full.step} --threads {args.threads}"
                      + (f" --subsets {' '.join(args.subsets)}" if args.subsets else "")),
        "command": "python scripts/train_models.py " + " ".join(sys.argv[1:] if argv is None else list(argv)),
    }
    export_model(runs / f"conn_{args.domain}", out / "model.pt", vlm=vlm, extra=info)
    for src, name in ((runs / f"wm_{args.domain}", METRICS_NAME), (runs / f"conn_{args.domain}",
                                                                   "connector_metrics.jsonl")):
        shutil.copyfile(src / METRICS_NAME, out / name)
    with atomic_path(out / "info.json") as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    print(json.dumps({k: info[k] for k in ("world_model_steps", "connector_steps")}), {k: v for k, v in quality.items() if not isinstance(v, list)})
    return info


if __name__ == "__main__":
    main()
