"""Does a prompt reward shape the true reward, or only spot the goal? (a diagnostic, not GenRL).

    python scripts/diagnose_reward_shape.py --task walker_stand --model data/runs_v3/conn_walker \
        --features projection spatial --sim max_cosine cosine

On episodes collected with the task's true reward (its replay subset: a learner from poor to expert,
so every level of the task appears), computes GenRL's reward for the task's prompt in each feature
space and similarity asked for (``genrl_lite.rewards.FEATURES``, ``SIMILARITIES``), and the VLM-RM
image and video rewards for reference, then ``genrl_lite.privileged.reward_shape`` of each against
the true reward: r over all 10-step windows, r over the windows short of the goal (the shaping a
policy that starts on the floor needs), and the mean reward per bin of true reward. Writes JSON
(default ``results/diagnostics/reward_shape/<task>.json``) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the import-order guard, before dm_control)
from genrl_lite.runtime import REPO_ROOT, atomic_path, data_dir, fast_mode, git_commit, repo_relative


def main(argv=None) -> dict:
    fast = fast_mode()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="walker_stand", help="task key: its prompt, and its replay subset's rewards")
    p.add_argument("--model", default=None, help="shipped model name or checkpoint (default: the task's domain)")
    p.add_argument("--features", nargs="+", default=["projection", "spatial"], help="reward feature spaces")
    p.add_argument("--sim", nargs="+", default=["max_cosine"], help="similarities")
    p.add_argument("--data", default=str(REPO_ROOT / "data" / "sample") if fast else str(data_dir()))
    p.add_argument("--episodes", type=int, default=2 if fast else 24, help="replay episodes (a random subset)")
    p.add_argument("--window", type=int, default=10, help="steps averaged per window")
    p.add_argument("--seed", type=int, default=1, help="which episodes are drawn")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON file (default: results/diagnostics/reward_shape/<task>.json)")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from genrl_lite.baseline_rewards import episode_rewards
    from genrl_lite.data import EVAL_SUFFIX, load_episode
    from genrl_lite.pretrained import check_vlm, load_model
    from genrl_lite.privileged import reward_shape
    from genrl_lite.rewards import get_features, get_similarity
    from genrl_lite.tasks import get_task
    from genrl_lite.vlm import load_vlm

    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    for f in args.features:
        get_features(f)
    for s in args.sim:
        get_similarity(s)
    subset = Path(args.data) / task.domain / task.name
    paths = sorted(x.with_name(x.name[:-len(EVAL_SUFFIX)] + ".npz") for x in subset.glob(f"*{EVAL_SUFFIX}"))
    if not paths:
        raise SystemExit(f"no {task.domain}/{task.name} replay episodes with rewards under {args.data}: "
                         f"collect them with python scripts/collect_data.py --domain {task.domain}")
    rng = np.random.default_rng(args.seed)
    paths = [paths[i] for i in sorted(rng.choice(len(paths), min(args.episodes, len(paths)), replace=False))]
    episodes = [load_episode(x, with_eval=True) for x in paths]
    true = [ep["reward"] for ep in episodes]
    bundle = load_model(args.model or task.domain)
    vlm = load_vlm()
    check_vlm(bundle, vlm)

    t0, rows = time.time(), []
    caches = [{} for _ in episodes]
    for feat in args.features:
        for sim in args.sim:
            pred = [episode_rewards(bundle, ep, task.prompt, "genrl", vlm=vlm, sim=sim, features=feat, cache=c)
                    for ep, c in zip(episodes, caches)]
            rows.append({"reward": "genrl", "features": feat, "sim": sim, **reward_shape(pred, true, args.window)})
    for kind in ("vlmrm_image", "vlmrm_video"):
        pred = [episode_rewards(bundle, ep, task.prompt, kind, vlm=vlm, cache=c) for ep, c in zip(episodes, caches)]
        rows.append({"reward": kind, "features": None, "sim": "cosine", **reward_shape(pred, true, args.window)})

    print(f"{args.task} ({task.prompt!r}), {len(episodes)} episodes of {repo_relative(subset)}, "
          f"model {args.model or task.domain}; {args.window}-step windows")
    print(f"{'reward':12s} {'features':10s} {'sim':10s} {'r_all':>6s} {'r_below':>7s}  "
          "mean reward per bin of true reward")
    for r in rows:
        print(f"{r['reward']:12s} {str(r['features']):10s} {r['sim']:10s} {r['r_all']:6.3f} {r['r_below']:7.3f}  "
              + " ".join(f"{m:6.3f}" for m in r["bin_means"]))
    out = {"command": "python " + " ".join([repo_relative(Path(sys.argv[0]).resolve())] + (argv or sys.argv[1:])),
           "commit": git_commit(), "task": args.task, "prompt": task.prompt, "model": args.model or task.domain,
           "model_step": bundle.step, "episodes": [repo_relative(x) for x in paths], "window": args.window,
           "seconds": round(time.time() - t0, 1), "rows": rows}
    path = Path(args.out) if args.out else (REPO_ROOT / ("build/fast" if fast else "results") / "diagnostics"
                                            / "reward_shape" / f"{args.task}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    print(f"wrote {repo_relative(path)}")
    return out


if __name__ == "__main__":
    main()
