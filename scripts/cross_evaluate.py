"""Did a policy do what its prompt asked, or something every task of its body pays for?

    python scripts/cross_evaluate.py results/benchmark/td3bc_video/quadruped_{stand,walk,run}-s0

A benchmark cell scores a policy only on the task it was prompted for. Tasks of one body share
reward terms: dm_control's quadruped walk and run pay about half of their reward to a quadruped that
stands upright and does not move, and GenRL's quadruped stand is that upright term alone. A policy
that only stands up then scores on all three, and the table cannot tell it from one that walks.
This evaluates every given policy on every task of its domain (default: the domain's behaviour
tasks, ``--tasks`` for others) and shows the matrix: a row per policy, a column per task. A policy
that learned its prompt scores highest on its own task (the diagonal); one whose row is flat learned
the same thing whatever it was asked.

Each policy is run as the benchmark runs it (GenRL-style policies through the world model's filter,
the model-free baseline from stacked pixels; mean actions; the cell's seed). With the cell's
``--episodes`` the diagonal repeats the cell's own score, which the JSON records next to it.

Writes into ``--out`` (default ``results/diagnostics/cross_eval/<name>/``, ``<name>`` from
``--name`` or the first policy's folder): ``cross_eval.json`` (command, commit, per policy its
trained task, its scores on every task and the cell's recorded score; per method and task, what
the prompt added: ``genrl_lite.benchmark_results.prompt_effect``) and ``cross_eval.png``.
The policy folders need their ``policy.pt`` or ``model_free.pt`` (not committed: rerun the cell's
command to rebuild it). ``--replot results/diagnostics/cross_eval/<name>/cross_eval.json`` redraws a
figure from its JSON without evaluating anything.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the import-order guard, before dm_control)
from genrl_lite.runtime import REPO_ROOT, atomic_path, fast_mode, git_commit, repo_relative

POLICY_FILES = {"policy.pt": "world model", "model_free.pt": "model-free"}


def describe(folder: Path) -> dict:
    """What a policy folder holds: {folder, kind, task, seed, method, prompt, model, recorded}.

    ``kind`` is "world model" (``policy.pt`` + ``behaviour.json``) or "model-free" (``model_free.pt``
    + ``result.json``); ``recorded`` is the cell's ``result.json`` or {}. Raises SystemExit, saying
    how to rebuild it, when the folder holds no policy.
    """
    result = json.loads((folder / "result.json").read_text()) if (folder / "result.json").exists() else {}
    info = json.loads((folder / "behaviour.json").read_text()) if (folder / "behaviour.json").exists() else {}
    kind = next((k for f, k in POLICY_FILES.items() if (folder / f).exists()), None)
    if kind is None or (kind == "world model" and not info) or (kind == "model-free" and not result):
        if not result and not info:
            raise SystemExit(f"{folder} is not a policy folder (no result.json or behaviour.json): give folders "
                             "written by scripts/benchmark.py or scripts/train_behaviour.py")
        rerun = result.get("command")
        raise SystemExit(f"{folder} has no {' or '.join(POLICY_FILES)} (policies are not committed)"
                         + (f": rebuild it with\n    {rerun}" if rerun else ""))
    task = info.get("task") or result.get("task")
    return {"folder": folder, "kind": kind, "task": task, "seed": result.get("seed", info.get("config", {}).get("seed", 0)),
            "method": result.get("benchmark_method", "genrl"), "prompt": result.get("prompt", info.get("prompt")),
            "model": info.get("model"), "recorded": result}


def recorded_score(recorded: dict, episodes: int) -> float | None:
    """The cell's own mean normalized score over its first ``episodes`` episodes (the same seed runs
    the same episodes in the same order), or None when it has fewer or none."""
    scores = recorded.get("normalized")
    if not scores or len(scores) < episodes:
        return None
    return float(sum(scores[:episodes]) / episodes)


def evaluate(policy: dict, task: str, episodes: int, max_steps: int | None) -> dict:
    """``evaluate_behaviour`` or ``evaluate_model_free`` of one policy on ``task`` (the cell's seed)."""
    if policy["kind"] == "model-free":
        from genrl_lite.model_free import TD3BC, evaluate_model_free

        agent = policy.get("_agent") or TD3BC.load(policy["folder"] / "model_free.pt")
        policy["_agent"] = agent
        return evaluate_model_free(agent, task, episodes=episodes, seed=policy["seed"], max_steps=max_steps,
                                   show_progress=False)
    from genrl_lite.behaviour import load_policy
    from genrl_lite.evaluation import evaluate_behaviour
    from genrl_lite.pretrained import load_model

    if "_bundle" not in policy:
        policy["_bundle"] = load_model(REPO_ROOT / policy["model"])
        policy["_actor"] = load_policy(policy["folder"])
    return evaluate_behaviour(policy["_bundle"], policy["_actor"], task, episodes=episodes, seed=policy["seed"],
                              max_steps=max_steps, show_progress=False)


def main(argv=None) -> dict | None:
    """Evaluate the policies on every task of their body and return the record (None with --replot)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy_dirs", nargs="*", help="policy folders (benchmark cells or train_behaviour.py outputs)")
    p.add_argument("--replot", nargs="+", default=None, metavar="JSON",
                   help="only redraw the figure of these cross_eval.json files")
    p.add_argument("--tasks", nargs="*", default=None,
                   help="tasks to evaluate on (default: the behaviour tasks of the policies' domain)")
    p.add_argument("--episodes", type=int, default=1 if fast_mode() else 5, help="episodes per policy and task")
    p.add_argument("--max-steps", type=int, default=20 if fast_mode() else None, help="cut episodes short")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default=None, help="name of the output folder (default: the first policy's folder)")
    p.add_argument("--out", default=None, help="folder (default results/diagnostics/cross_eval/<name>)")
    args = p.parse_args(argv)
    if args.replot:
        return replot(args.replot)
    if not args.policy_dirs:
        raise SystemExit("give policy folders to evaluate (or --replot cross_eval.json files to redraw their figures)")
    import torch

    from genrl_lite.benchmark import BEHAVIOUR_TASKS
    from genrl_lite.benchmark_results import prompt_effect
    from genrl_lite.tasks import get_task

    torch.set_num_threads(args.threads)
    if args.episodes < 1:
        raise SystemExit(f"--episodes must be >= 1, got {args.episodes}")
    policies = [describe(Path(d)) for d in args.policy_dirs]
    domains = {get_task(pol["task"]).domain for pol in policies}
    if len(domains) != 1:
        raise SystemExit(f"the policies act in several domains ({', '.join(sorted(domains))}): one body's "
                         "policies at a time, they are evaluated on each other's tasks")
    domain = domains.pop()
    tasks = args.tasks or [t for t in BEHAVIOUR_TASKS if get_task(t).domain == domain]
    for t in tasks:
        if get_task(t).domain != domain:          # (get_task raises a clear error for unknown names)
            raise SystemExit(f"task {t!r} is not a {domain} task: its actions differ from the policies'")
    rows = []
    for pol in policies:
        scores = {}
        for task in tasks:
            ev = evaluate(pol, task, args.episodes, args.max_steps)
            scores[task] = {"normalized_mean": ev["normalized_mean"], "return_mean": round(float(ev["return_mean"]), 2),
                            "normalized": None if ev["normalized"] is None else [round(float(x), 4) for x in ev["normalized"]]}
        rows.append({"policy": repo_relative(pol["folder"]), "method": pol["method"], "kind": pol["kind"],
                     "trained_task": pol["task"], "prompt": pol["prompt"], "seed": pol["seed"], "scores": scores,
                     "recorded_first_episodes": recorded_score(pol["recorded"], args.episodes)
                     if args.max_steps is None else None})
        print(f"{pol['method']} {pol['task']} s{pol['seed']}: "
              + ", ".join(f"{t} {s['normalized_mean']:.2f}" if s["normalized_mean"] is not None else f"{t} -"
                          for t, s in scores.items()))
    name = args.name or Path(args.policy_dirs[0]).resolve().name
    out_dir = Path(args.out) if args.out else REPO_ROOT / "results" / "diagnostics" / "cross_eval" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"command": "python scripts/cross_evaluate.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "commit": git_commit(), "domain": domain, "tasks": tasks, "episodes": args.episodes,
              "max_steps": args.max_steps, "policies": rows}
    record["prompt_effect"] = prompt_effect(record)
    for r in record["prompt_effect"]:
        if r["effect"] is not None:
            se = f" ± {r['effect_stderr']:.2f}" if r["effect_stderr"] is not None else ""
            print(f"{r['method']} on {r['task']}: asked {r['asked']:.2f}, best other prompt "
                  f"({r['best_other_task']}) {r['best_other']:.2f}, effect {r['effect']:+.2f}{se}")
    with atomic_path(out_dir / "cross_eval.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    plot_record(record, out_dir / "cross_eval.png")
    print(f"wrote {repo_relative(out_dir / 'cross_eval.json')} and cross_eval.png")
    return record


def plot_record(record: dict, path: Path) -> None:
    """Draw a ``cross_eval.json`` record as a matrix (rows: policies, by the method's table label,
    trained task and seed; columns: the tasks they were evaluated on) into ``path``."""
    import numpy as np

    from genrl_lite import plotting
    from genrl_lite.benchmark_results import method_label

    tasks, rows = record["tasks"], record["policies"]
    matrix = np.array([[np.nan if r["scores"][t]["normalized_mean"] is None else r["scores"][t]["normalized_mean"]
                        for t in tasks] for r in rows])
    labels = [f"{method_label(r['method'])}: {r['trained_task'].split('_', 1)[1]} s{r['seed']}" for r in rows]
    fig = plotting.similarity_matrix(matrix, labels, [t.split("_", 1)[1] for t in tasks], label="normalized score",
                                     title=f"{record['domain']}: each policy (row) on each task (column)",
                                     xlabel="evaluated on", ylabel="policy: trained for")
    plotting.save(fig, path)
    plotting.close(fig)


def replot(json_paths: list[str]) -> None:
    """Redraw ``cross_eval.png`` next to each given ``cross_eval.json`` (no evaluation)."""
    for j in map(Path, json_paths):
        if not j.is_file():
            raise SystemExit(f"{j} not found: give cross_eval.json files written by this script")
        try:
            record = json.loads(j.read_text())
            plot_record(record, j.parent / "cross_eval.png")
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SystemExit(f"{j} is not a cross_eval.json record ({type(e).__name__}: {e}): "
                             "re-run scripts/cross_evaluate.py to rewrite it") from None
        print(f"redrew {repo_relative(j.parent / 'cross_eval.png')}")


if __name__ == "__main__":
    main()
