"""Train and ship one domain's model: world model, then connector + aligner, then a slim export.

    python scripts/train_models.py --domain walker --wm-minutes 60 --conn-minutes 20

The work is done by :func:`genrl_lite.pretrained.train_domain_model`. Stage 1 trains the world model
on the domain's vision-only data (``data/<domain>``, train split: no rewards, no text). Stage 2
freezes it and trains the connector and aligner on the default VLM's embeddings of the same frames.
Both stages resume from ``data/runs/{wm,conn}_<domain>/`` (so a budget in minutes can be spent in
several calls), and stop at ``--*-steps`` or ``--*-minutes``. ``--subsets`` trains on part of the
data only (the benchmark's training-data ablation). Then the model is measured on the HELD-OUT
episodes (reconstruction and 16-step open-loop error vs repeating the last frame) and exported to
``data/models/<domain>/``:

    model.pt              float16 weights (genrl_lite.pretrained.load_model("<domain>"))
    metrics.jsonl         stage-1 training curves; connector_metrics.jsonl: stage 2
    info.json             steps, wall time, data, held-out quality, VLM tag, and the command that
                          reproduces this file exactly by steps (minutes depend on the machine)
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import genrl_lite  # noqa: F401
import torch

from genrl_lite.pretrained import models_dir, train_domain_model
from genrl_lite.runtime import data_dir


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
    info = train_domain_model(
        args.domain, root, runs, Path(args.out) if args.out else models_dir() / args.domain, preset=args.preset,
        wm_steps=args.wm_steps, conn_steps=args.conn_steps, subsets=args.subsets, wm_minutes=args.wm_minutes,
        conn_minutes=args.conn_minutes, eval_windows=args.eval_windows,
        command="python scripts/train_models.py " + " ".join(sys.argv[1:] if argv is None else list(argv)))
    quality = info["heldout_quality"]
    print(json.dumps({k: info[k] for k in ("world_model_steps", "connector_steps")}),
          {k: v for k, v in quality.items() if not isinstance(v, list)})
    return info


if __name__ == "__main__":
    main()
