"""Speed of the world model, connector and aligner at each preset on this machine.

Prints, per preset: parameter counts; training steps/s and frames/s (B*T frames per step; forward,
backward and optimizer step of the world model, then of connector + aligner, as in training); and
imagination steps/s (``--starts`` start states x ``--horizon`` steps through the prior with a small
MLP policy, forward + backward, as the actor's dynamics backprop does).

    .venv/bin/python scripts/bench_world_model.py                 # tiny and laptop
    .venv/bin/python scripts/bench_world_model.py --paper         # also the paper's sizes
    .venv/bin/python scripts/bench_world_model.py --compare-layout  # channels-last vs contiguous
    .venv/bin/python scripts/bench_world_model.py --quality       # quality of the shipped walker model
    .venv/bin/python scripts/bench_world_model.py --quality walker --json data/models/walker/quality.json
    .venv/bin/python scripts/bench_world_model.py --quality data/runs/wm_walker --domain walker  # any run

``--quality [MODEL]`` measures a trained world model (a shipped domain name, default ``walker``, or a
checkpoint file / training out_dir) on the HELD-OUT episodes of the full dataset ``data/<domain>``
(every 10th episode of each subset, never trained on; ``genrl_lite.data.is_heldout``). Without the
full dataset it falls back to the committed sample ``data/sample`` with a warning (those episodes
may have been trained on). It prints the posterior reconstruction MSE and the 16-step open-loop MSE
from 5 context frames against the "repeat the last context frame" baseline (per pixel, frames in
[0, 1]), per step too, and the *action effect*: the same open-loop MSE when each window is imagined
with another window's actions, over the MSE with its own (1.0: the model predicts as well with the
wrong actions, so it has not learned what they do and a policy cannot learn in it;
``genrl_lite.world_model.open_loop(..., actions=...)``); ``--json FILE`` also writes them (atomically).

For speed, inputs are random (speed does not depend on content). The load average of the machine is printed
next to the numbers: other jobs on the same cores slow every figure down.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import genrl_lite  # noqa: F401
from genrl_lite.aligner import Aligner
from genrl_lite.connector import Connector
from genrl_lite.runtime import default_device
from genrl_lite.training import make_optimizer
from genrl_lite.world_model import WorldModel, WorldModelConfig, batch_to_torch, count_parameters, flatten_states


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timeit(fn, device, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_preset(name: str, device, repeats: int, action_dim: int, embed_dim: int, starts: int,
                 horizon: int, **overrides) -> dict:
    cfg = WorldModelConfig.preset(name, **overrides)
    torch.manual_seed(0)
    wm = WorldModel(cfg, action_dim).to(device)
    conn = Connector(cfg, embed_dim).to(device)
    align = Aligner(embed_dim).to(device)
    opt_wm = make_optimizer(wm.parameters(), cfg)
    opt_c = make_optimizer(list(conn.parameters()) + list(align.parameters()), cfg)
    B, T = cfg.batch_size, cfg.batch_length
    rng = np.random.default_rng(0)
    e = rng.normal(size=(B, T, embed_dim))
    batch = batch_to_torch({"obs": rng.integers(0, 256, (B, T, 64, 64, 3), dtype=np.uint8),
                            "action": rng.uniform(-1, 1, (B, T, action_dim)).astype(np.float32),
                            "is_first": np.arange(T)[None].repeat(B, 0) == 0,
                            "embed": (e / np.linalg.norm(e, axis=-1, keepdims=True)).astype(np.float32)},
                           device)

    def wm_step():
        loss, _, posts = wm.loss(batch)
        opt_wm.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wm.parameters(), cfg.grad_clip)
        opt_wm.step()
        return posts

    posts = {k: v.detach() for k, v in wm_step().items()}

    def conn_step():
        c_loss, _ = conn.loss(batch["embed"], posts)
        a_loss, _ = align.loss(batch["embed"][:, cfg.n_frames - 1::cfg.n_frames])
        opt_c.zero_grad()
        (c_loss + a_loss).backward()
        opt_c.step()

    policy = torch.nn.Sequential(torch.nn.Linear(cfg.feat_dim, cfg.hidden), torch.nn.LayerNorm(cfg.hidden),
                                 torch.nn.SiLU(), torch.nn.Linear(cfg.hidden, action_dim), torch.nn.Tanh()).to(device)
    flat = flatten_states(posts)
    idx = torch.randint(0, flat["deter"].shape[0], (starts,), device=device)
    start = {k: v[idx] for k, v in flat.items()}
    def imagine():
        states = wm.rssm.imagine(start, lambda f: policy(f.detach()), horizon)
        wm.reward_projection(wm.rssm.stoch_flat(states)).square().mean().backward()

    n_wm = count_parameters(wm)
    t_wm = _timeit(wm_step, device, repeats)
    t_conn = _timeit(conn_step, device, repeats)
    for p in wm.parameters():   # the world model is frozen while the actor learns
        p.requires_grad_(False)
    t_img = _timeit(imagine, device, repeats)
    return {"preset": name, "B x T": f"{B}x{T}", "wm params": n_wm,
            "conn params": count_parameters(conn), "aligner params": count_parameters(align),
            "wm s/step": t_wm, "conn+al s/step": t_conn, "train steps/s": 1.0 / (t_wm + t_conn),
            "frames/s": B * T / (t_wm + t_conn), "imag s": t_img,
            "imag steps/s": starts * horizon / t_img}


def _rel(path) -> str:
    """A path relative to the repository when inside it (so JSON written here is the same on any machine)."""
    from genrl_lite.runtime import REPO_ROOT

    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def quality_data(domain: str, root=None, split: str = "heldout", subsets=None):
    """The evaluation episodes: ``split`` of ``root/<domain>`` (default root: the full dataset in
    ``data_dir()``), else the committed sample with a warning. Returns ``(dataset, note)``."""
    import warnings

    from genrl_lite.data import EmptyDatasetError, EpisodeDataset
    from genrl_lite.runtime import data_dir

    root = data_dir() if root is None else Path(root)
    try:
        return EpisodeDataset(root, domain, subsets, split=split, verbose=False), f"{split} split of {_rel(root / domain)}"
    except EmptyDatasetError as err:
        sample = data_dir() / "sample"
        if root == sample:
            raise
        warnings.warn(f"no {split} episodes of {domain!r} under {root} ({err.__class__.__name__}); "
                      f"measuring on the committed sample {sample / domain} instead: its episodes may have "
                      "been trained on, so the numbers flatter the model", RuntimeWarning, stacklevel=2)
        return EpisodeDataset(sample, domain, subsets, verbose=False), f"all of {_rel(sample / domain)} (fallback)"


def measure_quality(model="walker", domain: str | None = None, root=None, split: str = "heldout",
                    subsets=None, windows: int = 128, seed: int = 123) -> dict:
    """Reconstruction and open-loop quality of a world model on held-out episodes, as a JSON-able dict.

    ``model``: a shipped domain name (``"walker"``), a checkpoint file or a training out_dir, or a
    loaded ``ModelBundle``. ``domain`` defaults to the model's name when it is a shipped domain.
    Windows are ``5 + 16`` frames (``training.evaluate_world_model``), the same ones for every model
    given the same ``seed``.
    """
    from genrl_lite.pretrained import SHIPPED_DOMAINS, load_model
    from genrl_lite.training import ModelBundle, evaluate_world_model

    bundle = model if isinstance(model, ModelBundle) else load_model(model)
    if domain is None:
        if str(model) not in SHIPPED_DOMAINS:
            raise ValueError(f"say which domain {model} was trained on: domain='walker' (or --domain walker)")
        domain = str(model)
    data, note = quality_data(domain, root, split, subsets)
    if data.action_dim != bundle.action_dim:
        raise ValueError(f"{bundle.path} is a model with {bundle.action_dim}-d actions but {domain!r} has "
                         f"{data.action_dim}-d actions: evaluate the model of that domain")
    q = evaluate_world_model(bundle.world_model, data, windows=windows, seed=seed, action_controls=True)
    return {"model": _rel(bundle.path), "preset": bundle.preset, "step": int(bundle.step), "domain": domain,
            "data": note, "episodes": data.num_episodes, "subsets": data.subsets, "windows": windows,
            "context": 5, "horizon": 16, "seed": seed,
            **{k: ([round(float(x), 6) for x in v] if isinstance(v, np.ndarray) else round(float(v), 6))
               for k, v in q.items()}}


def quality(args) -> None:
    import json

    from genrl_lite.runtime import atomic_path
    from genrl_lite.training import CheckpointError

    try:
        q = measure_quality(args.quality, args.domain, args.data, args.split, args.subsets, args.windows)
    except CheckpointError as err:
        raise SystemExit(f"cannot measure quality: {err}") from None
    print(f"{q['model']}: preset {q['preset']}, step {q['step']}; {q['windows']} windows from {q['episodes']} "
          f"episodes ({', '.join(q['subsets'])}), {q['data']}")
    print(f"reconstruction MSE {q['recon_mse']:.5f}")
    print(f"open-loop MSE (16 steps after 5 context frames) {q['open_loop_mse']:.5f} vs repeat-last-frame "
          f"{q['baseline_mse']:.5f}: ratio {q['open_loop_vs_baseline']:.2f} (< 1 beats the baseline)")
    print(f"the same predictions with another window's actions {q['open_loop_mse_shuffled_actions']:.5f}, with "
          f"zero actions {q['open_loop_mse_zero_actions']:.5f}: action effect {q['action_effect']:.2f} "
          "(shuffled / true; 1 = the model ignores the actions)")
    print("per step, model:   ", " ".join(f"{v:.4f}" for v in q["open_loop_mse_per_step"]))
    print("per step, baseline:", " ".join(f"{v:.4f}" for v in q["baseline_mse_per_step"]))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(q, indent=1) + "\n")
        print("wrote", path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper", action="store_true", help="also the paper preset (slow on a CPU)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--action-dim", type=int, default=6, help="6 = walker and cheetah")
    p.add_argument("--embed-dim", type=int, default=384, help="384 = MiniLM-space embeddings")
    p.add_argument("--starts", type=int, default=512)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--compare-layout", action="store_true", help="laptop with and without channels-last")
    p.add_argument("--presets", nargs="*", default=None, help="override the list of presets")
    p.add_argument("--quality", nargs="?", const="walker", default=None,
                   help="measure quality instead of speed: a shipped domain name (default walker), a "
                        "checkpoint file or a training out_dir")
    p.add_argument("--data", default=None, help="dataset root for --quality (default: data/, the full datasets)")
    p.add_argument("--domain", default=None, help="domain of the --quality model (default: its shipped name)")
    p.add_argument("--split", default="heldout", choices=("heldout", "train", "all"))
    p.add_argument("--subsets", nargs="*", default=None)
    p.add_argument("--windows", type=int, default=128, help="5+16-frame windows sampled for --quality")
    p.add_argument("--json", default=None, help="also write the --quality results to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quality:
        quality(args)
        return
    device = default_device()
    presets = args.presets or (["tiny", "laptop"] + (["paper"] if args.paper else []))
    runs = [(name, {}) for name in presets]
    if args.compare_layout:
        runs.append(("laptop", {"channels_last": False}))
    print(f"device {device}, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
          f"load average before {os.getloadavg()[0]:.2f}")
    rows = []
    for name, over in runs:
        row = bench_preset(name, device, args.repeats, args.action_dim, args.embed_dim, args.starts,
                           args.horizon, **over)
        if over:
            row["preset"] += " " + ",".join(f"{k}={v}" for k, v in over.items())
        row["load"] = os.getloadavg()[0]
        rows.append(row)
        print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    cols = list(rows[0])
    print()
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
