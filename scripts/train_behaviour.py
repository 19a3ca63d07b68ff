"""Train one behaviour from a prompt in imagination, evaluate it in the real task, write result.json.

    .venv/bin/python scripts/train_behaviour.py --task walker_stand --model walker --preset laptop \\
        --minutes 15 --data data --seed 0                       # -> results/policies/walker_stand-data-s0/
    .venv/bin/python scripts/train_behaviour.py --task walker_stand --data-free --seed 0
    .venv/bin/python scripts/train_behaviour.py --task walker_walk --prompt "walking slowly"
    .venv/bin/python scripts/train_behaviour.py --task walker_stand --reward true   # diagnostic ceiling

``--reward true`` is a diagnostic, not GenRL: the same learner with a head trained on the task's
true reward (``genrl_lite.privileged``), to tell whether the prompt's reward or the rest (model,
learner, budget) limits a score; it writes under ``results/diagnostics/true_reward/``.

The prompt is the task's (``genrl_lite.tasks``) unless ``--prompt`` overrides it; the true task
reward is used only for the evaluation (10 episodes, normalized: 0 random, 1 expert). The output
folder holds ``policy.pt``, ``metrics.jsonl``, ``behaviour.json`` (from ``train_behaviour``, which
resumes from them: run the same command again to continue) and ``result.json``: the command, git
commit, preset, seed, wall time, returns and normalized score.

``GENRL_LITE_FAST=1``: tiny preset, 20 updates, data/sample, 2 evaluation episodes of 50 steps (a
smoke run of seconds; its scores mean nothing), written under build/fast/policies/.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the import-order guard, before dm_control)
from genrl_lite.runtime import REPO_ROOT, atomic_path, data_dir, fast_mode, git_commit, repo_relative


def default_out(task: str, data_free: bool, seed: int, reward: str = "genrl") -> Path:
    root = REPO_ROOT / ("build/fast" if fast_mode() else "results")
    root = root / ("policies" if reward == "genrl" else "diagnostics/true_reward")
    return root / f"{task}-{'datafree' if data_free else 'data'}-s{seed}"


def _value(text: str):
    """A --set/--ac value: JSON (numbers, true, null, lists), else the plain string (features=spatial)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_args(argv=None):
    fast = fast_mode()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", required=True, help="task key, e.g. walker_stand (its prompt and true reward)")
    p.add_argument("--prompt", default=None, help="override the task's prompt (text)")
    p.add_argument("--model", default=None, help="shipped model name or checkpoint (default: the task's domain)")
    p.add_argument("--preset", default="tiny" if fast else "laptop", choices=["tiny", "laptop", "paper"])
    p.add_argument("--minutes", type=float, default=None, help="training wall-time budget (default: the preset's)")
    p.add_argument("--steps", type=int, default=20 if fast else None, help="updates (default: the preset's)")
    p.add_argument("--data", default=str(REPO_ROOT / "data" / "sample") if fast else str(data_dir()),
                   help="dataset root with <domain>/<subset>/*.npz (ignored with --data-free)")
    p.add_argument("--subsets", nargs="*", default=None, help="dataset subsets (default: all)")
    p.add_argument("--split", default="all", help="dataset split for start states: all, train or heldout")
    p.add_argument("--data-free", action="store_true", help="start states from the model alone; no dataset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default: results/policies/<task>-<mode>-s<seed>)")
    p.add_argument("--episodes", type=int, default=2 if fast else 10, help="evaluation episodes")
    p.add_argument("--max-steps", type=int, default=50 if fast else None, help="cut evaluation episodes short")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="BehaviourConfig overrides (JSON values), e.g. --set start_batch=8 horizon=10")
    p.add_argument("--ac", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="actor-critic overrides, e.g. --ac actor_lr=3e-4 slow_target_every=25")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 leaves a core to other jobs)")
    p.add_argument("--gif", action="store_true", help="also save the first evaluation episode as policy.gif")
    p.add_argument("--caption-memory", type=float, default=None, metavar="W",
                   help="embed the text prompt with the VLM's caption memory at weight W (off by default; "
                        "genrl_lite/caption_memory.py)")
    p.add_argument("--reward", default="genrl", choices=["genrl", "true"],
                   help="genrl: the prompt's reward (GenRL). true: a DIAGNOSTIC, not GenRL: a head trained on "
                        "the task's true reward from the dataset (genrl_lite.privileged), the ceiling for this "
                        "model and budget; written under results/diagnostics/true_reward/")
    return p.parse_args(argv)


def privileged_reward(bundle, task: str, out: Path, data, seed: int):
    """The diagnostic true-reward head (``genrl_lite.privileged``): trained once, kept in ``out``."""
    from genrl_lite.privileged import TrueRewardHead, load_head, save_head, train_reward_head, true_reward_pairs

    path = out / "reward_head.pt"
    if path.exists():
        head, fit = load_head(path)
    else:
        steps = 100 if fast_mode() else 2000
        head, fit = train_reward_head(true_reward_pairs(bundle.world_model, data, task), steps=steps, seed=seed)
        out.mkdir(parents=True, exist_ok=True)
        save_head(head, fit, path)
    print(f"true-reward head of {task}: held-out r = {fit['r']:.3f}, MSE {fit['mse']:.4f} "
          f"(reward variance {fit['var']:.4f}) on {fit['heldout_pairs']} pairs", flush=True)
    return TrueRewardHead(head, bundle.world_model.rssm, task, bundle.embed_dim), fit


def main(argv=None) -> dict:
    args = parse_args(argv)
    import numpy as np
    import torch

    from genrl_lite.behaviour import BehaviourConfig, train_behaviour
    from genrl_lite.evaluation import evaluate_behaviour
    from genrl_lite.pretrained import load_model
    from genrl_lite.tasks import get_task

    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    overrides = {"seed": args.seed, "data_free": args.data_free}
    overrides.update({k: _value(v) for k, v in (x.split("=", 1) for x in args.set)})
    if args.ac:
        overrides["actor_critic_overrides"] = {k: _value(v) for k, v in (x.split("=", 1) for x in args.ac)}
    if args.minutes is not None:
        overrides["minutes"] = args.minutes
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.caption_memory is not None and args.reward == "true":
        raise SystemExit("--caption-memory changes how a text prompt is embedded; --reward true uses no prompt")
    cfg = BehaviourConfig.preset(args.preset, **overrides)
    out = Path(args.out) if args.out else default_out(task.key, args.data_free, args.seed, args.reward)
    bundle = load_model(args.model or task.domain)
    data = None
    from genrl_lite.data import EpisodeDataset

    if not args.data_free:
        data = EpisodeDataset(args.data, task.domain, args.subsets, split=args.split)
    reward_fn, head_fit = None, None
    if args.reward == "true":
        reward_fn, head_fit = privileged_reward(bundle, task.key, out, data or EpisodeDataset(args.data, task.domain),
                                                args.seed)
    prompt = args.prompt if args.prompt is not None else task.prompt
    print(f"{task.key}: prompt {prompt!r}, model {bundle.path} (step {bundle.step}), preset {cfg.preset}, "
          f"{'data-free' if cfg.data_free else 'with data ' + args.data}, seed {cfg.seed} -> {out}", flush=True)

    vlm = None
    if args.caption_memory is not None:
        from genrl_lite.vlm import load_vlm

        vlm = load_vlm(caption_memory=args.caption_memory)
    result = train_behaviour(bundle, prompt, cfg, data=data, out_dir=out, task=task.key, reward_fn=reward_fn, vlm=vlm)
    train_s = float(result.metrics["elapsed_s"][-1]) if len(result.metrics.get("elapsed_s", [])) else 0.0
    ev = evaluate_behaviour(bundle, result, task.key, episodes=args.episodes, seed=args.seed,
                            record=1 if args.gif else False, max_steps=args.max_steps)
    if args.gif:
        from genrl_lite.plotting import save_gif

        save_gif(ev["frames"][0][::2], out / "policy.gif", fps=15, scale=1)

    tail = max(1, len(result.metrics["step"]) // 10)
    record = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO_ROOT)]
                                         + (sys.argv[1:] if argv is None else list(argv))),
        "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}",
        "fast_mode": fast_mode(), "task": task.key, "prompt": prompt, "reward": args.reward,
        **({"reward_head_fit": head_fit} if head_fit else {}), "mode": "data-free" if cfg.data_free else "data",
        "seed": cfg.seed, "preset": cfg.preset, "config": dataclasses.asdict(result.config),
        "model": repo_relative(bundle.path), "model_step": bundle.step, "model_id": bundle.model_id,
        "model_preset": bundle.preset,
        "data": None if cfg.data_free else {"root": args.data, "subsets": args.subsets, "split": args.split},
        "train_updates": result.steps, "train_seconds": round(train_s, 1),
        "stopped_by": "steps" if result.steps >= cfg.steps else "minutes",
        "final_reward_mean": float(np.mean(result.metrics["reward_mean"][-tail:])),
        "final_imag_steps_per_s": float(np.mean(result.metrics["imag_steps_per_s"][-tail:])),
        "eval_episodes": args.episodes, "eval_max_steps": args.max_steps, "eval_seconds": round(ev["seconds"], 1),
        "returns": [round(float(r), 2) for r in ev["returns"]], "return_mean": ev["return_mean"],
        "return_stderr": ev["return_stderr"],
        "normalized": None if ev["normalized"] is None else [round(float(s), 4) for s in ev["normalized"]],
        "normalized_mean": ev["normalized_mean"], "normalized_stderr": ev["normalized_stderr"],
    }
    with atomic_path(out / "result.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    norm = "n/a" if ev["normalized_mean"] is None else f"{ev['normalized_mean']:.3f} ± {ev['normalized_stderr'] or 0:.3f}"
    print(f"{task.key} ({record['mode']}, seed {cfg.seed}): {result.steps} updates in {train_s / 60:.1f} min; "
          f"return {ev['return_mean']:.1f}, normalized {norm} over {args.episodes} episodes -> {out / 'result.json'}")
    return record


if __name__ == "__main__":
    main()
