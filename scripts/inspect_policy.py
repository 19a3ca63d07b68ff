"""What did a policy do? Frames and body heights of its real episodes, next to random and zero actions.

    python scripts/inspect_policy.py results/policies/stickman_lying_down-data-s0

A normalized score says how much of the task's true reward a policy earned, not what it did: a
score below random can mean a policy that flails, or one that holds a pose the reward does not
count. This runs the policy (its mean action from the world model's filter, as in the benchmark),
uniform random actions and zero actions (doing nothing) in the real task, and records after every
agent step the height of every body and how upright the torso is (``genrl_lite.evaluation.body_heights``)
and the true reward, and how hard each pushes its actuators (mean |action|, share of |action| > 0.9).
For a GenRL policy it also decodes the prompt's target (aligner -> connector -> decoder, what the
policy was rewarded for resembling), so the frames show the target next to what the policy did.

Writes into ``--out`` (default ``results/diagnostics/inspect/<policy folder name>/``):
``inspect.json`` (command, commit, returns, and per measurement its mean over the steps after
``--settle``, for the policy, random and zero actions) and ``inspect.png`` (the target's imagined
steps, then frames every ``--every`` steps: a row per episode, the policy's first, then random
actions', then zero actions'), and prints the table.
The policy folder needs its ``policy.pt`` (not committed: rerun the cell's command to rebuild it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the import-order guard, before dm_control)
from genrl_lite.runtime import REPO_ROOT, atomic_path, fast_mode, git_commit, repo_relative


def summarize(probes: list[dict], settle: int) -> dict:
    """Mean of every measurement over the steps after ``settle``, pooled over episodes: {key: float}.

    ``probes``: ``evaluate_behaviour(..., probe=...)["probes"]``, a dict of (T,) arrays per episode.
    Episodes shorter than ``settle`` steps count with all their steps.
    """
    import numpy as np

    if not probes or not probes[0]:
        raise ValueError("no measurements: run evaluate_behaviour with probe=body_heights")
    keys = list(probes[0])
    return {k: float(np.mean(np.concatenate([p[k][settle:] if len(p[k]) > settle else p[k] for p in probes])))
            for k in keys}


def target_frames(bundle, info: dict, length: int = 16):
    """The prompt's target as GenRL's reward sees it, decoded: (length, S, S, 3) floats in [0, 1].

    ``info`` is the policy's ``behaviour.json``: its text prompt and reward settings (window,
    similarity, features). Loads the embedded VLM and checks the model was trained with it.
    """
    import torch

    from genrl_lite.pretrained import check_vlm
    from genrl_lite.rewards import GenRLReward
    from genrl_lite.vlm import load_vlm

    vlm = load_vlm()
    check_vlm(bundle, vlm)
    cfg, wm = info["config"], bundle.world_model
    reward = GenRLReward(wm, bundle.connector, bundle.aligner, info["prompt"], vlm=vlm, window=cfg["window"],
                         sim=cfg["similarity"], embed_dim=bundle.embed_dim, features=cfg["features"])
    states, _ = reward.target(length)
    with torch.no_grad():
        return wm.decode(wm.rssm.stoch_flat(states))[:, 0].cpu().numpy()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy_dir", help="a policy folder (benchmark cell or scripts/train_behaviour.py output)")
    p.add_argument("--episodes", type=int, default=1 if fast_mode() else 3, help="episodes of each")
    p.add_argument("--max-steps", type=int, default=20 if fast_mode() else None, help="cut episodes short")
    p.add_argument("--settle", type=int, default=5 if fast_mode() else 100,
                   help="steps left out of the means (getting up or falling from the initial pose)")
    p.add_argument("--every", type=int, default=5 if fast_mode() else 50, help="a frame every so many steps")
    p.add_argument("--seed", type=int, default=0, help="environment seed (the benchmark evaluates with the cell's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="folder (default results/diagnostics/inspect/<policy folder name>)")
    args = p.parse_args(argv)
    import numpy as np
    import torch

    from genrl_lite import plotting
    from genrl_lite.behaviour import load_policy
    from genrl_lite.evaluation import body_heights, evaluate_behaviour
    from genrl_lite.pretrained import load_model

    torch.set_num_threads(args.threads)
    folder = Path(args.policy_dir)
    if not (folder / "behaviour.json").exists():
        raise SystemExit(f"{folder} has no behaviour.json: give a folder written by scripts/benchmark.py "
                         "or scripts/train_behaviour.py")
    if not (folder / "policy.pt").exists():
        rerun = json.loads((folder / "result.json").read_text())["command"] if (folder / "result.json").exists() else None
        raise SystemExit(f"{folder} has no policy.pt (policies are not committed)"
                         + (f": rebuild it with\n    {rerun}" if rerun else ""))
    info = json.loads((folder / "behaviour.json").read_text())
    result = json.loads((folder / "result.json").read_text()) if (folder / "result.json").exists() else {}
    bundle = load_model(REPO_ROOT / info["model"])
    ac = load_policy(folder)
    g = torch.Generator().manual_seed(args.seed)

    def random_actions(feat):
        return torch.rand(1, bundle.action_dim, generator=g) * 2 - 1

    def zero_actions(feat):
        return torch.zeros(1, bundle.action_dim)

    runs = {}
    for name, actor in (("policy", ac), ("random", random_actions), ("zero", zero_actions)):
        runs[name] = evaluate_behaviour(bundle, actor, info["task"], episodes=args.episodes, seed=args.seed,
                                        record=True, max_steps=args.max_steps, show_progress=False,
                                        probe=body_heights)
    means = {name: summarize(ev["probes"], args.settle) for name, ev in runs.items()}
    actions = {name: np.abs(np.concatenate(ev["actions"])) for name, ev in runs.items()}
    # the target only where the policy was trained on it: GenRL's reward of a text prompt, the full
    # aligner -> connector path (not the benchmark's ablations, which change that path)
    with_target = (info.get("reward") == "GenRLReward" and isinstance(info.get("prompt"), str)
                   and result.get("benchmark_method", "genrl") in ("genrl", "genrl_datafree"))
    out_dir = Path(args.out) if args.out else REPO_ROOT / "results" / "diagnostics" / "inspect" / folder.name
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"command": "python scripts/inspect_policy.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "commit": git_commit(), "policy": repo_relative(folder), "task": info["task"], "prompt": info["prompt"],
              "model": info["model"], "policy_updates": ac.updates, "episodes": args.episodes, "seed": args.seed,
              "settle": args.settle,
              "returns": {n: [round(float(r), 2) for r in ev["returns"]] for n, ev in runs.items()},
              "normalized_mean": {n: ev["normalized_mean"] for n, ev in runs.items()},
              "means_after_settle": {n: {k: round(v, 4) for k, v in m.items()} for n, m in means.items()},
              "action_abs_mean": {n: round(float(a.mean()), 4) for n, a in actions.items()},
              "action_saturated": {n: round(float((a > 0.9).mean()), 4) for n, a in actions.items()},
              "target_shown": with_target}
    with atomic_path(out_dir / "inspect.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    episodes = {f"{n} ep {i}: return {ev['returns'][i]:.0f}": ev["frames"][i][::args.every]
                for n, ev in runs.items() for i in range(args.episodes)}
    steps = max(len(v) for v in episodes.values())
    # (row labels stay short: the layout makes room for the longest one)
    videos = {"prompt's target": target_frames(bundle, info, min(16, steps))} if with_target else {}
    videos.update(episodes)
    fig = plotting.video_rows(videos, every=1, size=0.8, max_frames=steps,
                              title=f"{info['task']} (prompt: {info['prompt']!r}): "
                                    + ("the prompt's target, then " if with_target else "")
                                    + f"a frame every {args.every} steps of real episodes")
    plotting.save(fig, out_dir / "inspect.png")
    plotting.close(fig)
    print(f"{info['task']}, prompt {info['prompt']!r}, policy after {ac.updates} updates; "
          f"means after step {args.settle}:")
    rows = {**{k: [means[n][k] for n in runs] for k in means["policy"]},
            "mean |action|": [record["action_abs_mean"][n] for n in runs],
            "share |action| > 0.9": [record["action_saturated"][n] for n in runs]}
    w = max(len(k) for k in rows)
    print(f"  {'':{w}s} " + " ".join(f"{n:>8s}" for n in runs))
    for k, v in rows.items():
        print(f"  {k:{w}s} " + " ".join(f"{x:8.3f}" for x in v))
    for n, ev in runs.items():
        print(f"  {n} returns: {', '.join(f'{r:.1f}' for r in ev['returns'])}")
    print(f"wrote {repo_relative(out_dir / 'inspect.json')} and inspect.png")
    return record


if __name__ == "__main__":
    main()
