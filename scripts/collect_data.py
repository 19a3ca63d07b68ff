"""Collect the world model's vision-only datasets: exploration + task replay, on both CPU cores.

    python scripts/collect_data.py --domain walker --expl-episodes 60 --replay-episodes-per-task 30
    python scripts/collect_data.py --all                 # every domain, the default sizes below
    python scripts/collect_data.py --sample              # the small committed sample in data/sample/

Subsets (``data/<domain>/<subset>/<episode_id>.npz``, format in ``genrl_lite/data.py``):

- ``expl``: structured motor babbling from diverse initial poses (``genrl_lite/exploration.py``).
  Its sidecar reward is that of the domain's ``EXPL_REWARD_TASK`` (evaluation only).
- ``<task>`` (``stand``, ``walk``, ``run``): *task replay*, the expert snapshots of
  ``data/experts/<task_key>/`` (poor -> final, cycled over episodes) rolled out with Gaussian action
  noise, so the subset spans the replay of an agent learning the task.

Each worker process renders with its own EGL context (``spawn`` start method, ``genrl_lite``
imported first). Episodes are written atomically, so an interrupted run leaves only whole files;
re-running skips episodes that already exist (``--overwrite`` collects them again, e.g. after new
expert snapshots; episodes are deterministic, so unchanged experts give the same episodes).
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import time
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the triton-before-dm_control import order)
import numpy as np

from genrl_lite import tasks
from genrl_lite.runtime import data_dir, progress

DOMAINS = ("walker", "cheetah", "quadruped", "stickman")
"""Domains collected by ``--all``/``--sample`` (those not registered are skipped)."""
EXPL_REWARD_TASK = {"walker": "walker_stand", "cheetah": "cheetah_run", "quadruped": "quadruped_stand",
                    "stickman": "stickman_stand"}
"""Which true reward the exploration sidecars record (any task of the domain would do)."""
FULL = dict(expl=60, replay=30)
"""``--all`` sizes per domain: 60 exploration episodes, 30 replay episodes per task (75,150 frames
for walker, about 3% of the paper's 2.5M): the sizes the shipped world models were trained on
(``data/models/README.md``; the walker, cheetah and quadruped models saw replay of older expert
snapshots) and the data the benchmark's start states and video-prompt clips come from. Episode
``i`` is the same whatever the sizes, so larger ones (``--expl-episodes 200
--replay-episodes-per-task 100``) extend them."""
SAMPLE = dict(expl=2, replay={"walker": 2, "cheetah": 2, "quadruped": 1, "stickman": 1}, steps=250)
"""The committed sample: 2 exploration episodes per domain and 1-2 replay episodes per task (the
final snapshot, then the first), each cut to 250 agent steps (251 frames) to keep it ~10 MB
(measured: ~0.37 MB per 251-frame episode for the planar bodies, ~0.73 MB for quadruped)."""


def replay_tasks(domain: str) -> list[str]:
    """Standard tasks of ``domain`` (their names are the replay subsets)."""
    return tasks.list_tasks(domain, kind="standard")


def plan_jobs(domain: str, expl: int, replay: int, experts_dir: Path, out: Path, seed: int,
              steps: int | None, noise: float, overwrite: bool = False) -> list[dict]:
    """One job dict per episode still missing under ``out`` (so a re-run resumes), or per episode
    with ``overwrite`` (after new expert snapshots: the same seeds, rolled out again)."""
    from genrl_lite.data import episode_paths
    from genrl_lite.experts import snapshot_paths

    jobs = []
    expl_task = EXPL_REWARD_TASK.get(domain) or replay_tasks(domain)[0]
    for i in range(expl):
        jobs.append(dict(domain=domain, subset="expl", task=expl_task, policy="babbling", snapshot=None,
                         seed=seed * 100_000 + i, episode_id=f"expl-{seed}-{i:04d}", steps=steps, noise=0.0))
    for key in replay_tasks(domain):
        snaps = snapshot_paths(key, experts_dir)
        if replay and not snaps:
            print(f"WARNING: no expert snapshots for {key} in {experts_dir}; skipping its replay subset. "
                  f"Train them with: python scripts/train_experts.py --task {key} --minutes 10")
            continue
        name = tasks.get_task(key).name
        for i in range(replay):
            # Final, first, then the ones in between: 1-2 episodes already show good and poor play,
            # and many episodes cover every snapshot equally.
            order = [len(snaps) - 1, 0, *range(1, len(snaps) - 1)][:len(snaps)]
            snap = snaps[order[i % len(snaps)]]
            k = snap.stem.split("_")[1]
            jobs.append(dict(domain=domain, subset=name, task=key, policy=f"sac_snapshot_{k}",
                             snapshot=str(snap), seed=seed * 100_000 + 50_000 + i,
                             episode_id=f"{name}-{seed}-{i:04d}-s{k}", steps=steps, noise=noise))
    for job in jobs:
        job["out"] = str(out)
    if overwrite:
        return jobs
    return [j for j in jobs if not episode_paths(out, j["domain"], j["subset"], j["episode_id"])[0].exists()]


_ENVS: dict = {}
"""Environments of this worker process, by task key."""


def run_job(job: dict) -> dict:
    """Collect and save one episode (runs in a worker process); returns a small record."""
    import torch

    torch.set_num_threads(1)
    from genrl_lite.data import rollout, save_episode
    from genrl_lite.envs import PixelEnv
    from genrl_lite.experts import load_snapshot
    from genrl_lite.exploration import explore_episode

    t0 = time.time()
    # One env per task and worker (building one costs ~1 s). Re-seeding the task's random state
    # per episode keeps every episode reproducible whatever the number of workers.
    if job["task"] not in _ENVS:
        _ENVS[job["task"]] = PixelEnv(job["task"], seed=job["seed"])
    env_seconds = time.time() - t0
    env = _ENVS[job["task"]]
    env._env.task._random = np.random.RandomState(job["seed"])
    rng = np.random.default_rng(job["seed"])
    if job["snapshot"] is None:
        ep = explore_episode(env, rng, max_steps=job["steps"])
        if ep is None:
            return dict(job, frames=0, seconds=time.time() - t0, env_seconds=env_seconds, dropped=True)
        meta = ep.pop("meta")
    else:
        policy = load_snapshot(job["snapshot"])
        ep = rollout(env, lambda step: policy(step.state, rng, job["noise"]), max_steps=job["steps"])
        meta = dict(policy=job["policy"], noise=job["noise"], snapshot_step=policy.meta.get("step"))
    meta.update(task=job["task"], seed=job["seed"], action_repeat=2)
    save_episode(job["out"], job["domain"], job["subset"], job["episode_id"], ep, meta)
    return dict(job, frames=len(ep["obs"]), seconds=time.time() - t0, env_seconds=env_seconds,
                ret=float(ep["reward"].sum()), dropped=False)


def collect(jobs: list[dict], workers: int = 2, desc: str = "collecting") -> list[dict]:
    """Run ``jobs`` on ``workers`` processes (spawned, one env each); a progress bar counts frames."""
    if not jobs:
        return []
    records = []
    bar = progress(total=len(jobs), desc=desc, unit="ep")
    if workers <= 1:
        results = map(run_job, jobs)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap_unordered(run_job, jobs)
    try:
        for rec in results:
            records.append(rec)
            bar.update(1)
            bar.set_postfix(frames=sum(r["frames"] for r in records))
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return records


def report(records: list[dict], wall: float) -> None:
    frames = sum(r["frames"] for r in records)
    print(f"collected {len(records)} episodes, {frames} frames in {wall:.0f} s "
          f"({frames / max(wall, 1e-9):.0f} frames/s overall)")
    groups: dict = {}
    for r in records:
        groups.setdefault((r["domain"], r["subset"]), []).append(r)
    for (d, s), rs in sorted(groups.items()):
        rets = [r["ret"] for r in rs if not r["dropped"]]
        dropped = sum(r["dropped"] for r in rs)
        print(f"  {d:10s} {s:6s} episodes {len(rs):4d}  frames {sum(r['frames'] for r in rs):7d}  "
              f"true return {np.mean(rets):6.1f} ± {np.std(rets):5.1f}  dropped {dropped}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", nargs="+", default=None, help="domains to collect")
    parser.add_argument("--all", action="store_true", help=f"every domain with {FULL}")
    parser.add_argument("--sample", action="store_true", help="write the committed sample to data/sample/")
    parser.add_argument("--expl-episodes", type=int, default=None)
    parser.add_argument("--replay-episodes-per-task", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="cut episodes to this many agent steps")
    parser.add_argument("--noise", type=float, default=0.2, help="std of the Gaussian action noise on experts")
    parser.add_argument("--out", type=Path, default=None, help="dataset root (default data/, or data/sample/)")
    parser.add_argument("--experts", type=Path, default=data_dir() / "experts")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="collect episodes that already exist again (after new expert snapshots)")
    args = parser.parse_args(argv)
    if not (args.domain or args.all or args.sample):
        parser.error("say what to collect: --domain walker ..., --all, or --sample")
    tasks.list_tasks()  # loads the optional extensions (stickman) into the registry
    domains = args.domain or [d for d in DOMAINS if d in tasks.DOMAINS]
    for d in domains:
        tasks.get_domain(d)
    if args.sample:
        out = args.out or data_dir() / "sample"
    else:
        out = args.out or data_dir()
    jobs = []
    for d in domains:
        if args.sample:
            expl = SAMPLE["expl"] if args.expl_episodes is None else args.expl_episodes
            replay = SAMPLE["replay"].get(d, 1)
            replay = replay if args.replay_episodes_per_task is None else args.replay_episodes_per_task
            steps = args.steps or SAMPLE["steps"]
        else:
            expl = FULL["expl"] if args.expl_episodes is None else args.expl_episodes
            replay = FULL["replay"] if args.replay_episodes_per_task is None else args.replay_episodes_per_task
            steps = args.steps
        jobs += plan_jobs(d, expl, replay, args.experts, out, args.seed, steps, args.noise, args.overwrite)
    # Interleave subsets so that a partial (interrupted) run already holds some of every subset.
    groups: dict = {}
    for job in jobs:
        groups.setdefault((job["domain"], job["subset"]), []).append(job)
    jobs = [j for batch in itertools.zip_longest(*groups.values()) for j in batch if j is not None]
    print(f"{len(jobs)} episodes to collect into {out} with {args.workers} worker(s)")
    t0 = time.time()
    records = collect(jobs, args.workers)
    if records:
        report(records, time.time() - t0)


if __name__ == "__main__":
    main()
