"""Benchmark data collection: rendered 64x64 frames per second, per core and in total, 1 vs 2 workers.

    python scripts/bench_collection.py                      # walker, cheetah, quadruped (+ stickman)
    python scripts/bench_collection.py --domain walker --steps 500 --episodes 4

Each job is what ``scripts/collect_data.py`` does for an exploration episode: babbling from a random
initial pose, physics at action repeat 2, rendering every agent step, and writing the compressed
``.npz`` (to a temporary folder). *Per core* = frames / seconds spent inside the jobs (excluding the
one-off environment build); *total* = all frames / wall-clock time of the run with the worker pool
already started. The issue's target is >= 200 frames/s per core for walker.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import genrl_lite  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))
import collect_data  # noqa: E402  (the same job function the collection uses)

from genrl_lite import tasks  # noqa: E402


def _warm(_):
    """Import everything in a worker before timing (spawned workers start from scratch)."""
    import genrl_lite.envs  # noqa: F401
    import genrl_lite.exploration  # noqa: F401

    time.sleep(0.5)  # so each worker gets one of these
    return 0


def bench(domain: str, workers: int, episodes: int, steps: int) -> dict:
    task = collect_data.EXPL_REWARD_TASK.get(domain) or tasks.list_tasks(domain)[0]
    with tempfile.TemporaryDirectory() as out:
        jobs = [dict(domain=domain, subset="expl", task=task, policy="babbling", snapshot=None, seed=i,
                     episode_id=f"bench-{i}", steps=steps, noise=0.0, out=out)
                for i in range(episodes * workers)]
        if workers > 1:
            pool = mp.get_context("spawn").Pool(workers)
            pool.map(_warm, range(workers), chunksize=1)
            # Warm-up episodes build each worker's environment (and its GL context).
            pool.map(collect_data.run_job, [dict(j, steps=5, episode_id=f"warm-{i}") for i, j in
                                            enumerate(jobs[:workers])], chunksize=1)
            t0 = time.time()
            records = pool.map(collect_data.run_job, jobs, chunksize=1)
            wall = time.time() - t0
            pool.close()
            pool.join()
        else:
            collect_data._ENVS.clear()
            collect_data.run_job(dict(jobs[0], steps=5, episode_id="warm"))
            t0 = time.time()
            records = [collect_data.run_job(j) for j in jobs]
            wall = time.time() - t0
    frames = sum(r["frames"] for r in records)
    busy = sum(r["seconds"] - r["env_seconds"] for r in records)
    return dict(domain=domain, workers=workers, frames=frames, per_core=frames / busy, total=frames / wall)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", nargs="+", default=None)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--episodes", type=int, default=2, help="episodes per worker")
    parser.add_argument("--steps", type=int, default=250, help="agent steps per episode")
    args = parser.parse_args(argv)
    tasks.list_tasks()
    domains = args.domain or [d for d in collect_data.DOMAINS if d in tasks.DOMAINS]
    print(f"collection benchmark: {args.episodes} episode(s) x {args.steps} steps per worker, 64x64, "
          "action repeat 2, babbling + rendering + compressed npz write")
    print(f"{'domain':10s} {'workers':>7s} {'frames':>7s} {'frames/s per core':>18s} {'frames/s total':>15s}")
    for d in domains:
        for w in args.workers:
            r = bench(d, w, args.episodes, args.steps)
            print(f"{d:10s} {w:7d} {r['frames']:7d} {r['per_core']:18.0f} {r['total']:15.0f}", flush=True)


if __name__ == "__main__":
    main()
