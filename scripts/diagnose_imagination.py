"""Imagination vs reality for a policy trained on the true-reward head (a diagnostic, not GenRL).

    python scripts/train_behaviour.py --task walker_stand --reward true ...   # the policy and its head
    python scripts/diagnose_imagination.py results/diagnostics/true_reward/walker_stand-data-s0

Three numbers per step, all in the task's reward units (walker: 0-2 per agent step):

- **imagined**: from held-out dataset start states, H steps imagined by the world model (mode
  latents) with the policy's mean action, with zero actions and with uniform random actions, scored
  by the reward head (``genrl_lite.privileged.imagined_rewards``);
- **real, true**: the task's true return / T of the policy in the real environment;
- **real, head**: the head's reward on the filter's posteriors of those same real frames
  (``real_rewards``);
- **from real states**: from every 10th real state of those episodes, the model imagines H steps
  with the policy; their reward against the head's reward on the real next H steps. Two controls
  imagine from the same states with the actions the policy really took next (open loop) and with
  zero actions: if the replay is as far from reality as the dream and close to zero actions, the
  model does not see what the policy's actions do.

If the head agrees with the true reward on the policy's real frames while the imagined reward is
higher, the policy has learned to exploit errors of the model's *dynamics*: the bottleneck is the
world model, not the reward. Writes ``imagination.json`` next to the policy (or ``--out``).

``--compare <policy folders>`` (e.g. GenRL policies on the same world model) adds ``by_start_level``:
every policy, this one included, imagines from the same dataset start states, split into *low*
starts (head reward below ``--below``: a fallen walker) and the others, scored by this head
(``genrl_lite.privileged.imagined_by_start_level``), for each of ``--horizons``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import genrl_lite  # noqa: F401
from genrl_lite.runtime import REPO_ROOT, atomic_path, fast_mode, git_commit, repo_relative


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy_dir", help="a train_behaviour.py --reward true output folder (or any policy, with --head)")
    p.add_argument("--head", default=None, help="reward_head.pt to score with (default: the policy folder's own); "
                   "another folder's head scores a GenRL policy on the same world model")
    p.add_argument("--data", default=str(REPO_ROOT / "data" / ("sample" if fast_mode() else "")),
                   help="dataset root for the start states (held-out episodes when there are any)")
    p.add_argument("--episodes", type=int, default=2 if fast_mode() else 5, help="real episodes")
    p.add_argument("--max-steps", type=int, default=30 if fast_mode() else None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON file (default: imagination.json in the policy folder)")
    p.add_argument("--compare", nargs="*", default=[], help="other policy folders on the same world model")
    p.add_argument("--below", type=float, default=0.6, help="head reward per step under which a start is low")
    p.add_argument("--horizons", type=int, nargs="+", default=[15, 45], help="imagined steps for --compare")
    p.add_argument("--starts", type=int, default=8 if fast_mode() else 64, help="start windows for --compare")
    p.add_argument("--real-horizon", type=int, default=None,
                   help="imagined steps from the real states (default: the policy's imagination horizon)")
    p.add_argument("--real-every", type=int, default=10,
                   help="a start every so many real steps, from step 1 (e.g. 1000: only the first state of "
                        "each episode, to see whether the model foresees what the policy does from the reset)")
    args = p.parse_args(argv)
    import numpy as np
    import torch

    from genrl_lite.behaviour import load_policy
    from genrl_lite.evaluation import evaluate_behaviour
    from genrl_lite.data import EmptyDatasetError, EpisodeDataset
    from genrl_lite.pretrained import load_model
    from genrl_lite.privileged import (TrueRewardHead, imagined_by_start_level, imagined_rewards, load_head,
                                       real_rewards)

    torch.set_num_threads(args.threads)
    folder = Path(args.policy_dir)
    head_path = Path(args.head) if args.head else folder / "reward_head.pt"
    if not head_path.exists():
        raise SystemExit(f"no reward_head.pt at {head_path}: give a folder written by "
                         "scripts/train_behaviour.py --reward true, or --head <its reward_head.pt>")
    info = json.loads((folder / "behaviour.json").read_text())
    bundle = load_model(REPO_ROOT / info["model"])
    head, fit = load_head(head_path)
    reward = TrueRewardHead(head, bundle.world_model.rssm, info["task"], bundle.embed_dim)
    ac = load_policy(folder)
    domain = info["task"].split("_")[0]
    try:
        data, split = EpisodeDataset(args.data, domain, split="heldout", verbose=False), "heldout"
    except EmptyDatasetError:
        data, split = EpisodeDataset(args.data, domain, verbose=False), "all"
    horizon = info["config"]["horizon"]
    others = {}
    for other in args.compare:
        if not (Path(other) / "behaviour.json").exists():
            raise SystemExit(f"{other} has no behaviour.json: give folders written by scripts/train_behaviour.py")
        other_info = json.loads((Path(other) / "behaviour.json").read_text())
        other_wm = load_model(REPO_ROOT / other_info["model"]).world_model.state_dict()
        if any(not torch.equal(v, other_wm[k]) for k, v in bundle.world_model.state_dict().items()):
            raise SystemExit(f"{other} was trained on {other_info['model']}, whose world model differs from "
                             f"{info['model']}'s: compare policies of one world model")
        others[repo_relative(Path(other))] = load_policy(other).actor.mode
    imagined = imagined_rewards(bundle, ac.actor.mode, reward, data, horizon=horizon)
    ev = evaluate_behaviour(bundle, ac, info["task"], episodes=args.episodes, record=True,
                            max_steps=args.max_steps, show_progress=False)
    eps = [{"frames": f, "actions": a} for f, a in zip(ev["frames"], ev["actions"])]
    real_horizon = args.real_horizon or horizon
    along = real_rewards(bundle, eps, reward, policy=ac.actor.mode, horizon=real_horizon, every=args.real_every)
    head_real = along["real"]
    true_real = [float(r) / n for r, n in zip(ev["returns"], ev["steps"])]
    out = {"command": "python scripts/diagnose_imagination.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "commit": git_commit(), "task": info["task"], "model": info["model"], "policy_updates": ac.updates,
           "reward_head": repo_relative(head_path),
           "reward_head_fit": fit, "start_split": split, "horizon": horizon, "imagined_per_step": imagined,
           "real_true_per_step": true_real, "real_head_per_step": head_real,
           "real_true_mean": float(np.mean(true_real)), "real_head_mean": float(np.mean(head_real)),
           "from_real_states": {"horizon": real_horizon, "every": args.real_every,
                                "imagined_per_step": along["imagined"], "real_per_step": along["matched_real"],
                                "replayed_per_step": along["replayed"], "zero_actions_per_step": along["zero_actions"],
                                **{f"{k}_mean": float(np.mean(along[v])) if along[v] else None for k, v in (
                                    ("imagined", "imagined"), ("real", "matched_real"), ("replayed", "replayed"),
                                    ("zero_actions", "zero_actions"))}},
           "normalized_mean": ev["normalized_mean"]}
    if others:
        policies = {repo_relative(folder): ac.actor.mode, **others}
        out["by_start_level"] = {"below": args.below, "starts": args.starts, **imagined_by_start_level(
            bundle, policies, reward, data, args.below, starts=args.starts, horizons=args.horizons)}
    path = Path(args.out) if args.out else folder / "imagination.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    print(f"{info['task']} policy after {ac.updates} updates, reward per step:")
    for name, v in imagined.items():
        print(f"  imagined ({name:7s}, {horizon} steps from {split} dataset states): start {v['start']:.3f}, "
              f"mean {v['mean']:.3f}, last {v['last']:.3f}")
    print(f"  real episodes: true {out['real_true_mean']:.3f}, head on the filter's states {out['real_head_mean']:.3f} "
          f"(normalized score {ev['normalized_mean']:.3f})")
    fr = out["from_real_states"]
    if fr["imagined_mean"] is not None:
        print(f"  from the policy's real states, the next {real_horizon} steps: imagined {fr['imagined_mean']:.3f}, "
              f"real {fr['real_mean']:.3f}; imagined with the actions it really took {fr['replayed_mean']:.3f}, "
              f"with zero actions {fr['zero_actions_mean']:.3f}")
    levels = out.get("by_start_level", {})
    for h in args.horizons if levels else ():
        print(f"  {h} imagined steps, head reward of the last step from {levels['low_starts']} low starts "
              f"(< {args.below}) / {levels['high_starts']} others:")
        for name in policies:
            lo, hi = levels[str(h)][name]["low"], levels[str(h)][name]["high"]
            print(f"    {name}: {lo['last'] if lo else float('nan'):.3f} / {hi['last'] if hi else float('nan'):.3f}")
    return out


if __name__ == "__main__":
    main()
