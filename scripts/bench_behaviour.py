"""Benchmark of behaviours from prompts: tasks x seeds x {with data, data-free}, and imagination speed.

    .venv/bin/python scripts/bench_behaviour.py                 # the issue's table (laptop, 15 min each)
    .venv/bin/python scripts/bench_behaviour.py --tasks walker_stand --seeds 0 --modes data
    .venv/bin/python scripts/bench_behaviour.py --aggregate-only  # just re-read the results and print
    .venv/bin/python scripts/bench_behaviour.py --speed --threads 1   # imagination steps/s, random weights

Every policy is one run of ``scripts/train_behaviour.py`` (a subprocess, so each starts clean) into
``results/policies/<task>-<mode>-s<seed>/``; a policy whose ``result.json`` exists is skipped, and a
killed run resumes from its checkpoint (its minutes budget counts the time already spent). A policy
trained on a model that has been retrained since is stale (``genrl_lite.benchmark_results.stale_reason``):
left out of the aggregate, and moved under ``results/superseded/`` before it is trained again. Tasks
whose domain has no model are reported and skipped. The aggregate, mean ± standard error over seeds
of each seed's mean normalized score (10 episodes), goes to ``results/behaviour.json`` with the
command that produced it, and is printed as a table next to the issue's targets.

``GENRL_LITE_FAST=1``: walker_stand, one seed, tiny budgets, written under build/fast/ (a smoke run).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import genrl_lite  # noqa: F401
from genrl_lite.benchmark import paper_score  # GenRL's scores in the paper (v1 Table 1), one table for both
from genrl_lite.benchmark_results import read_result, retire, stale_reason
from genrl_lite.runtime import REPO_ROOT, atomic_path, data_dir, fast_mode, git_commit, repo_relative

TARGETS = {"walker_stand": 0.8, "walker_walk": 0.5, "walker_run": 0.3, "cheetah_run": 0.4, "quadruped_stand": 0.6}
"""Issue 5's bar: normalized score with data, laptop preset, <= 15 min per policy on 2 cores."""

MODES = ("data", "datafree")
DATA_FREE_RATIO = 0.8
"""Data-free should reach at least this fraction of the with-data score on the same task."""


def mean_stderr(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


def model_for(domain: str, overrides: dict) -> str | None:
    """The model argument for a domain, or None if there is none to load."""
    if domain in overrides:
        return overrides[domain]
    from genrl_lite.pretrained import MODEL_FILE, models_dir

    return domain if (models_dir() / domain / MODEL_FILE).exists() else None


def run_policy(task: str, mode: str, seed: int, model: str, out: Path, args) -> int:
    cmd = [sys.executable, "scripts/train_behaviour.py", "--task", task, "--model", model,
           "--preset", args.preset, "--seed", str(seed), "--out", repo_relative(out), "--threads", str(args.threads),
           "--episodes", str(args.episodes)]
    cmd += ["--data-free"] if mode == "datafree" else ["--data", repo_relative(args.data)]
    if args.minutes is not None:
        cmd += ["--minutes", str(args.minutes)]
    if args.steps is not None:
        cmd += ["--steps", str(args.steps)]
    if args.ac:
        cmd += ["--ac", *args.ac]
    if args.set:
        cmd += ["--set", *args.set]
    if seed == min(args.seeds):   # one video of the behaviour per task and mode is enough to see it
        cmd += ["--gif"]
    print(">>>", " ".join(shlex.quote(c) for c in cmd), flush=True)
    env = dict(os.environ, GENRL_LITE_NO_PROGRESS="1", OMP_NUM_THREADS=str(args.threads))
    return subprocess.run(cmd, env=env, cwd=REPO_ROOT).returncode


def aggregate(grid, policies: Path) -> list[dict]:
    """One row per (task, mode): seeds found, normalized mean ± stderr over seeds, wall time."""
    rows = []
    for task, mode in grid:
        results = []
        for seed in grid[(task, mode)]:
            r = read_result(policies / f"{task}-{mode}-s{seed}" / "result.json")
            if r is not None and not stale_reason(r):
                results.append(r)
        norm, se = mean_stderr([r["normalized_mean"] for r in results])
        ret, ret_se = mean_stderr([r["return_mean"] for r in results])
        wall, _ = mean_stderr([r["train_seconds"] for r in results])
        rows.append({"task": task, "mode": mode, "seeds": [r["seed"] for r in results],
                     "normalized_mean": norm, "normalized_stderr": se, "return_mean": ret, "return_stderr": ret_se,
                     "train_minutes_mean": None if wall is None else wall / 60,
                     "train_minutes_max": max((r["train_seconds"] / 60 for r in results), default=None),
                     "updates_mean": mean_stderr([r["train_updates"] for r in results])[0],
                     "target": TARGETS.get(task) if mode == "data" else None, "paper": paper_score("genrl", task),
                     "policies": [repo_relative(policies / f"{task}-{mode}-s{r['seed']}") for r in results]})
    by_task = {(r["task"], r["mode"]): r for r in rows}
    for r in rows:
        if r["mode"] == "datafree" and (r["task"], "data") in by_task:
            base = by_task[(r["task"], "data")]["normalized_mean"]
            # A ratio means something only when with-data beats a random policy.
            r["ratio_to_data"] = (r["normalized_mean"] / base if r["normalized_mean"] is not None
                                  and base is not None and base > 0.05 else None)
    return rows


def print_table(rows) -> None:
    def fmt(m, s):
        return "-" if m is None else f"{m:.2f} ± {s:.2f}" if s is not None else f"{m:.2f}"

    print(f"\n{'task':16} {'mode':9} {'seeds':>5} {'normalized':>14} {'target':>6} {'paper':>5} "
          f"{'return':>14} {'minutes':>7} {'updates':>7} {'bar':>4}  data-free/data")
    for r in rows:
        target = "" if r["target"] is None else f"{r['target']:.2f}"
        paper = "" if r["paper"] is None else f"{r['paper']:.2f}"
        ratio = r.get("ratio_to_data")
        ratio = "" if ratio is None else f"{ratio:.2f} (bar {DATA_FREE_RATIO})"
        minutes = "-" if r["train_minutes_mean"] is None else f"{r['train_minutes_mean']:.1f}"
        updates = "-" if r["updates_mean"] is None else f"{r['updates_mean']:.0f}"
        bar = ("" if r["target"] is None or r["normalized_mean"] is None
               else "met" if r["normalized_mean"] >= r["target"] else "no")
        print(f"{r['task']:16} {r['mode']:9} {len(r['seeds']):>5} {fmt(r['normalized_mean'], r['normalized_stderr']):>14} "
              f"{target:>6} {paper:>5} {fmt(r['return_mean'], r['return_stderr']):>14} {minutes:>7} {updates:>7} {bar:>4}  {ratio}")


# --- speed of imagination ------------------------------------------------------------------------


def speed(args) -> None:
    """Updates/s and imagination steps/s of train_behaviour's inner loop on random-weight models."""
    import numpy as np
    import torch

    from genrl_lite.actor_critic import ActorCritic
    from genrl_lite.behaviour import BehaviourConfig, dataset_starts
    from genrl_lite.data import EpisodeDataset
    from genrl_lite.data_free import data_free_starts
    from genrl_lite.rewards import GenRLReward
    from genrl_lite.training import _build
    from genrl_lite.world_model import WorldModelConfig

    torch.set_num_threads(args.threads)
    wm_cfg = WorldModelConfig.preset(args.model_preset)
    bundle = _build(wm_cfg, 6, 384, "cpu")
    cfg = BehaviourConfig.preset(args.preset)
    sample_root = REPO_ROOT / "data" / "sample"
    data = EpisodeDataset(sample_root, "walker", verbose=False)
    reward = GenRLReward(bundle.world_model, bundle.connector, bundle.aligner, torch.randn(384), window=cfg.window)
    load = os.getloadavg()[0]
    print(f"imagination speed: world model {args.model_preset} (random weights), behaviour preset {cfg.preset} "
          f"({cfg.num_starts} starts x H={cfg.horizon}, actor-critic {cfg.actor_critic}), {args.threads} thread(s), "
          f"load average {load:.2f}")
    for mode in ("data", "datafree"):
        ac = ActorCritic(wm_cfg.feat_dim, 6, cfg.actor_critic_config(), seed=0)
        rng = np.random.default_rng(0)
        times, start_times, cpu_times = [], [], []
        t_end = time.perf_counter() + args.speed_seconds
        while time.perf_counter() < t_end or len(times) < 3:
            t0, c0 = time.perf_counter(), time.process_time()
            if mode == "datafree":
                starts = data_free_starts(bundle.world_model.rssm, bundle.connector, bundle.aligner,
                                          lambda f: ac.actor(f).sample(), 6, cfg.data_free_config()).states
            else:
                starts = dataset_starts(bundle.world_model, data, cfg.start_batch, cfg.start_length, rng)
            t1 = time.perf_counter()
            ac.update(bundle.world_model.rssm, starts, reward)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            start_times.append(t1 - t0)
        per, cpu = float(np.median(times[1:])), float(np.median(cpu_times[1:]))
        print(f"  {mode:9}: {len(times)} updates, median {per:.3f} s/update wall, {cpu:.3f} s CPU (start states "
              f"{np.median(start_times[1:]):.3f} s wall) = {cfg.num_starts * cfg.horizon / per:,.0f} imagined steps/s "
              f"wall, {cfg.num_starts * cfg.horizon / cpu:,.0f} per CPU-second; 15 minutes = {900 / per:,.0f} updates "
              f"at this wall speed, {900 / cpu:,.0f} with a core to itself")
    from genrl_lite.evaluation import evaluate_behaviour

    evaluate_behaviour(bundle, ac, "walker_stand", episodes=1, max_steps=5, show_progress=False)  # warm-up
    c0 = time.process_time()
    ev = evaluate_behaviour(bundle, ac, "walker_stand", episodes=1, max_steps=100, show_progress=False)
    rate, cpu_rate = 100 / ev["seconds"], 100 / (time.process_time() - c0)
    print(f"  evaluation: {rate:.0f} env steps/s wall, {cpu_rate:.0f} per CPU-second (render + filter + actor) "
          f"= {5000 / rate:.0f} s wall for 10 episodes of 500 steps")


def main(argv=None) -> None:
    fast = fast_mode()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="*", default=["walker_stand"] if fast else list(TARGETS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0] if fast else [0, 1, 2])
    p.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    p.add_argument("--preset", default="tiny" if fast else "laptop", choices=["tiny", "laptop", "paper"])
    p.add_argument("--minutes", type=float, default=None, help="per-policy budget (default: the preset's, 15)")
    p.add_argument("--steps", type=int, default=20 if fast else None, help="per-policy updates (default: preset's)")
    p.add_argument("--episodes", type=int, default=2 if fast else 10)
    p.add_argument("--data", default=str(REPO_ROOT / "data" / "sample") if fast else str(data_dir()))
    p.add_argument("--model", nargs="*", default=[], metavar="DOMAIN=PATH",
                   help="model per domain (default: the shipped data/models/<domain>)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="BehaviourConfig overrides per policy")
    p.add_argument("--ac", nargs="*", default=[], metavar="FIELD=VALUE", help="actor-critic overrides per policy")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--policies", default=str(REPO_ROOT / ("build/fast/policies" if fast else "results/policies")))
    p.add_argument("--out", default=str(REPO_ROOT / ("build/fast/behaviour.json" if fast else "results/behaviour.json")))
    p.add_argument("--aggregate-only", action="store_true", help="train nothing; aggregate existing results")
    p.add_argument("--speed", action="store_true", help="only measure imagination speed on random weights")
    p.add_argument("--speed-seconds", type=float, default=30.0, help="seconds per mode for --speed")
    p.add_argument("--model-preset", default="laptop", help="world-model preset for --speed")
    args = p.parse_args(argv)
    if args.speed:
        return speed(args)

    from genrl_lite.tasks import get_task

    overrides = dict(item.split("=", 1) for item in args.model)
    policies = Path(args.policies)
    grid = {(t, m): args.seeds for t in args.tasks for m in args.modes}
    skipped = []
    for task in args.tasks:
        model = model_for(get_task(task).domain, overrides)
        for mode in args.modes:
            for seed in args.seeds:
                out = policies / f"{task}-{mode}-s{seed}"
                old = read_result(out / "result.json")
                why = None if old is None else stale_reason(old)
                if args.aggregate_only or (old is not None and not why):
                    continue
                if why and model is not None:
                    print(f"{task} ({mode}, seed {seed}) is stale ({why}): moved to "
                          f"{repo_relative(retire(out, policies.parent, why))}", flush=True)
                if model is None:
                    skipped.append(f"{task} ({mode}, seed {seed}): no {get_task(task).domain} model in data/models")
                    continue
                code = run_policy(task, mode, seed, model, out, args)
                if code != 0:
                    skipped.append(f"{task} ({mode}, seed {seed}): train_behaviour.py exited with {code}")
    rows = aggregate(grid, policies)
    record = {"command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO_ROOT)]
                                              + (sys.argv[1:] if argv is None else list(argv))),
              "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "preset": args.preset, "fast_mode": fast,
              "targets": TARGETS, "data_free_ratio_bar": DATA_FREE_RATIO, "rows": rows, "skipped": sorted(set(skipped))}
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    print_table(rows)
    for s in sorted(set(skipped)):
        print("skipped:", s)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
