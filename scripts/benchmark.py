"""The benchmark (issue 7): GenRL, its baselines and ablations, one table; resumable; one command.

    .venv/bin/python scripts/benchmark.py                     # everything (genrl_lite.benchmark.SUITES), laptop, 3 seeds
    .venv/bin/python scripts/benchmark.py --suites main ablations --tasks walker_stand walker_walk walker_run
    .venv/bin/python scripts/benchmark.py --methods genrl td3bc_video --tasks walker_stand --seeds 0
    .venv/bin/python scripts/benchmark.py --dry-run           # list the cells still to run and their CPU time
    .venv/bin/python scripts/benchmark.py --aggregate-only    # train nothing; re-read every result.json
    .venv/bin/python scripts/benchmark.py --aggregate-only --readme   # ... and rewrite README.md's tables
    .venv/bin/python scripts/benchmark.py --fast              # smoke run, ~1 min idle CPU -> results/benchmark_fast.json
    .venv/bin/python scripts/benchmark.py --speed             # run the speed benchmarks, keep their output
    .venv/bin/python scripts/benchmark.py --rerun --methods genrl --tasks walker_stand --seeds 0   # train it again

Every cell (method x task x seed) is one policy in its own folder with a ``result.json`` (command,
commit, preset, seed, wall time, returns, normalized score); a cell whose ``result.json`` exists is
skipped, and a killed cell resumes from its checkpoint. A cell trained on a model that has been
retrained since, or prompted by a clip whose episode has been re-collected, is stale
(``genrl_lite.benchmark_results.stale_reason``): left out of the aggregate, listed by ``--dry-run``,
and when run, its folder is first moved under ``results/superseded/``; ``--rerun`` does the same to
cells that are current (to check that a cell repeats, or to re-measure one made on a modified tree).
GenRL and GenRL data-free cells are the folders of ``scripts/bench_behaviour.py``
(``results/policies/``), so either command reuses the other's policies. Cells of domains without a
model in ``data/models`` are listed as skipped. The aggregate
(mean ± standard error over seeds, paper numbers, per domain, cost and amortization, speed figures)
goes to ``results/benchmark.json``; ``--fast`` (or ``GENRL_LITE_FAST=1``) writes only
``results/benchmark_fast.json`` and ``build/benchmark_fast/``, never the laptop results.
Figures: ``scripts/figures_benchmark.py``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the import-order guard, before dm_control)
from genrl_lite import benchmark as bm
from genrl_lite import benchmark_results as bres
from genrl_lite import benchmark_run as br
from genrl_lite.runtime import REPO_ROOT, atomic_path, data_dir, fast_mode, git_commit, repo_relative

FAST_METHODS = list(bm.METHODS) + ["data_expl", "wmdata_expl", "video_walker_walk_from_stickman"]
"""Fast mode: every method once on walker_stand, plus a cell of each data ablation and a video-prompt cell."""
EVAL_SECONDS = 35.0
"""Measured wall time of a 10-episode evaluation on one core (results/policies: eval_seconds 32-33)."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="smoke run (also GENRL_LITE_FAST=1): tiny, 1 seed, seconds")
    p.add_argument("--suites", nargs="*", default=None, help=f"blocks of the default grid: {', '.join(bm.SUITES)}")
    p.add_argument("--methods", nargs="*", default=None, help="methods (overrides --suites), see genrl_lite.benchmark")
    p.add_argument("--tasks", nargs="*", default=None, help="tasks (with --suites: keep only these)")
    p.add_argument("--seeds", nargs="*", type=int, default=None, help="seeds (default 0 1 2; fast: 0)")
    p.add_argument("--preset", default=None, choices=["tiny", "laptop", "paper"], help="default laptop (fast: tiny)")
    p.add_argument("--episodes", type=int, default=None, help="evaluation episodes (default 10)")
    p.add_argument("--minutes", type=float, default=None, help="per-policy budget (default: laptop 10)")
    p.add_argument("--steps", type=int, default=None, help="per-policy updates (default: the preset's)")
    p.add_argument("--data", default=None, help="dataset root (default data/; fast: data/sample)")
    p.add_argument("--model", nargs="*", default=[], metavar="DOMAIN=PATH", help="model per domain")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 leaves a core to other work)")
    p.add_argument("--results", default=None, help="root of the cells (default results/; fast: build/benchmark_fast)")
    p.add_argument("--out", default=None, help="aggregate JSON (default results/benchmark.json; fast: "
                                               "results/benchmark_fast.json)")
    p.add_argument("--aggregate-only", action="store_true", help="train nothing; aggregate existing results")
    p.add_argument("--readme", action="store_true", help="also rewrite README.md's benchmark tables from the "
                   "aggregate (the blocks between <!-- benchmark:NAME --> markers; not in fast mode)")
    p.add_argument("--dry-run", action="store_true", help="print the cells still to run and their CPU time")
    p.add_argument("--rerun", action="store_true", help="run the chosen cells again even if done: their folders "
                   "move under results/superseded/ first (nothing is deleted); needs --methods, --tasks and --seeds")
    p.add_argument("--speed", action="store_true", help="run the speed benchmarks into results/benchmark_speed.json")
    return p.parse_args(argv)


def command_line(argv) -> str:
    args = sys.argv[1:] if argv is None else list(argv)
    return "python " + " ".join(shlex.quote(a) for a in ["scripts/benchmark.py", *args])


def make_cells(args, fast: bool) -> list:
    seeds = args.seeds if args.seeds is not None else ([0] if fast else [0, 1, 2])
    if fast and args.methods is None and args.suites is None:
        return bm.plan(FAST_METHODS, args.tasks or ["walker_stand"], seeds)
    if args.methods is not None:
        return bm.plan(args.methods, args.tasks or list(bm.BEHAVIOUR_TASKS), seeds)
    cells = bm.suite_cells(seeds, args.suites)
    if args.tasks:
        bm.check_names(tasks=args.tasks)
        cells = [c for c in cells if c.task in args.tasks]
    return cells


def default_paths(args, fast: bool) -> tuple[Path, Path]:
    """(root of the cells, aggregate JSON): fast runs never touch the laptop results."""
    results = Path(args.results or (REPO_ROOT / ("build/benchmark_fast" if fast else "results")))
    out = Path(args.out or (REPO_ROOT / "results" / ("benchmark_fast.json" if fast else "benchmark.json")))
    return results, out


def has_model(settings, domain: str) -> bool:
    from genrl_lite.pretrained import MODEL_FILE, models_dir

    return domain in settings.models or (models_dir() / domain / MODEL_FILE).exists()


# --- cost, amortization and speed: measured numbers only, read from files ---------------------------


def _json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def cost_section(rows, settings) -> dict:
    """World-model wall time per domain (info.json), policy wall times (cells), preparation times,
    and the amortization curve GenRL vs model-free where both were measured."""
    import numpy as np

    from genrl_lite.pretrained import models_dir

    models = {}
    for info_path in sorted(models_dir().glob("*/info.json")):
        info = _json(info_path) or {}
        minutes = info.get("training_minutes_total")
        if minutes:
            models[info_path.parent.name] = {"world_model_minutes": minutes.get("world_model"),
                                             "connector_aligner_minutes": minutes.get("connector_aligner"),
                                             "threads": info.get("threads"), "preset": info.get("preset"),
                                             "source": str(info_path.relative_to(REPO_ROOT))}
    policy = {}
    for method in ("genrl", "genrl_datafree", "td3bc_video", "wmclip_video", "wmclip_image"):
        secs = [r["train_seconds_mean"] for r in rows if r["method"] == method and r["train_seconds_mean"]]
        policy[method] = {"train_seconds_mean": float(np.mean(secs)) if secs else None, "rows": len(secs)}
    prep = {f"{f.parent.name}/{f.stem}": _json(f)
            for f in sorted(Path(settings.results, "benchmark", "prep").glob("*/*.json"))}
    out = {"models": models, "policy": policy, "preparation": prep, "paper_hours": bm.PAPER["compute_hours"]}
    walker = models.get("walker")
    g, m = policy["genrl"]["train_seconds_mean"], policy["td3bc_video"]["train_seconds_mean"]
    if walker and g and m:
        wm_s = 60 * (walker["world_model_minutes"] + (walker["connector_aligner_minutes"] or 0))
        curve = bm.amortization(wm_s, g, m, np.arange(0, 201))
        out["amortization"] = {"domain": "walker", "world_model_seconds": wm_s, "genrl_policy_seconds": g,
                               "model_free_policy_seconds": m, "break_even": curve["break_even"],
                               "n": curve["n"].tolist(), "genrl": curve["genrl"].tolist(),
                               "model_free": curve["model_free"].tolist()}
    else:
        out["amortization"] = None
        out["amortization_missing"] = ("needs the walker model's info.json and measured GenRL and TD3+BC-V "
                                       "policy wall times (run the main suite on walker)")
    return out


def speed_section(settings) -> dict:
    """Speed figures already measured by the repository's scripts (nothing is invented here)."""
    import numpy as np

    from genrl_lite.pretrained import models_dir

    out = {"world_model_training": {}, "policies": {}, "vlm": None, "speed_run": None}
    for path in sorted(models_dir().glob("*/metrics.jsonl")):
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        fps = [r["frames_per_sec"] for r in rows if "frames_per_sec" in r]
        sps = [r["sec_per_step"] for r in rows if "sec_per_step" in r]
        if fps:
            out["world_model_training"][path.parent.name] = {
                "frames_per_sec_median": float(np.median(fps)), "sec_per_step_median": float(np.median(sps)),
                "source": str(path.relative_to(REPO_ROOT))}
    for path in sorted(glob.glob(str(REPO_ROOT / "results" / "policies" / "*" / "result.json"))):
        r = _json(path) or {}
        if r.get("fast_mode") or not r.get("eval_seconds"):
            continue
        steps = r["eval_episodes"] * (r.get("eval_max_steps") or 500)
        out["policies"][Path(path).parent.name] = {"imagined_steps_per_s": r.get("final_imag_steps_per_s"),
                                                   "eval_env_steps_per_s": steps / r["eval_seconds"]}
    vlm = _json(REPO_ROOT / "data" / "models" / "vlm" / "bench.json")
    if vlm:
        out["vlm"] = {k: vlm[k] for k in ("vlm", "load_seconds", "threads") if k in vlm}
        out["vlm"]["source"] = "data/models/vlm/bench.json"
    out["speed_run"] = _json(Path(settings.results) / "benchmark_speed.json")
    return out


SPEED_COMMANDS = [
    ["scripts/bench_collection.py", "--domain", "walker", "--workers", "1", "--episodes", "1"],
    ["scripts/bench_world_model.py", "--threads", "1", "--repeats", "2"],
    ["scripts/bench_behaviour.py", "--speed", "--threads", "1", "--speed-seconds", "10"],
]
"""What ``--speed`` runs (their printed figures are kept verbatim in results/benchmark_speed.json)."""


def run_speed(results: Path) -> None:
    runs = []
    for cmd in SPEED_COMMANDS:
        print(">>>", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, *cmd], cwd=REPO_ROOT, capture_output=True, text=True,
                              env=dict(os.environ, GENRL_LITE_NO_PROGRESS="1", OMP_NUM_THREADS="1"))
        print(proc.stdout[-3000:])
        runs.append({"command": "python " + " ".join(cmd), "returncode": proc.returncode,
                     "seconds": round(time.perf_counter() - t0, 1), "stdout": proc.stdout[-6000:],
                     "load_average": list(os.getloadavg()), "niceness": os.nice(0)})
    with atomic_path(results / "benchmark_speed.json") as tmp:
        tmp.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
                                   "note": "wall-clock figures depend on the other jobs on the machine (load "
                                           "average and niceness are recorded); per-CPU-second figures less so",
                                   "runs": runs}, indent=1))
    print(f"-> {results / 'benchmark_speed.json'}")


# --- the table ---------------------------------------------------------------------------------------


def print_table(rows) -> None:
    print(f"\n{'method':32} {'task':22} {'normalized (seeds)':>19} {'paper':>6} {'min/policy':>10}")
    for r in rows:
        paper = "" if r["paper"] is None else f"{r['paper']:.2f}"
        wall = "-" if r["train_seconds_mean"] is None else f"{r['train_seconds_mean'] / 60:.1f}"
        print(f"{r['method']:32} {r['task']:22} {bres.format_score(r):>19} {paper:>6} {wall:>10}")


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    fast = args.fast or fast_mode()
    results, out = default_paths(args, fast)
    if args.speed:
        return run_speed(REPO_ROOT / "results")
    settings = br.fast_settings(results) if fast else br.Settings(results=results, data=Path(data_dir()))
    settings.command = command_line(argv)
    settings.models = dict(item.split("=", 1) for item in args.model)
    for field in ("preset", "episodes", "minutes", "steps"):
        if getattr(args, field) is not None:
            setattr(settings, field, getattr(args, field))
    if args.data:
        settings.data = Path(args.data)
    from genrl_lite.tasks import UnknownNameError

    if args.rerun and (args.methods is None or args.tasks is None or args.seeds is None or args.aggregate_only):
        raise SystemExit("error: --rerun retrains the cells it names, so give them all: --methods M... --tasks T... "
                         "--seeds S... (and no --aggregate-only); --dry-run shows what it would move")
    try:
        cells = make_cells(args, fast)
    except UnknownNameError as err:                      # a typo: say what is valid, no traceback
        raise SystemExit(f"error: {err}") from None

    import torch

    torch.set_num_threads(args.threads)
    stale = {}
    for c in cells:
        r = bres.read_result(c.path(results) / "result.json")
        why = None if r is None else bres.stale_reason(r)
        if why:
            stale[c.key] = why
        elif r is not None and args.rerun:      # current, but asked for again: the same path as a stale cell
            stale[c.key] = f"run again on request: {settings.command}"
        elif r is None and (c.path(results) / "result.json").exists():
            stale[c.key] = "its result.json is unreadable (cut off or corrupted)"
    todo = [c for c in cells if c.key in stale or not (c.path(results) / "result.json").exists()]
    skipped = {c.key: f"no {c.task.split('_')[0]} model in data/models" for c in todo
               if not has_model(settings, c.task.split("_")[0])}
    todo = [c for c in todo if c.key not in skipped]
    minutes = settings.minutes or (bm.LAPTOP_OVERRIDES["minutes"] if settings.preset == "laptop" else None)
    if args.dry_run or args.aggregate_only:
        est = (f"about {len(todo) * ((minutes or 0) + EVAL_SECONDS * settings.episodes / 600) / 60:.1f} CPU-hours "
               f"({minutes} min + {EVAL_SECONDS * settings.episodes / 10:.0f} s evaluation per policy, one core each; "
               "plus the per-domain preparations)" if minutes else "(no minutes budget: depends on --steps)")
        print(f"{len(cells)} cells, {len(cells) - len(todo) - len(skipped)} done, {len(todo)} to run {est}; "
              f"{len(skipped)} skipped (no model)"
              + (f"; {len(stale)} of those to run are set aside first (stale, unreadable or --rerun)" if stale else ""))
        if args.dry_run:
            for c in todo:
                print("  ", c.method, c.task, c.seed, "->", c.path(results),
                      f"(stale: {stale[c.key]})" if c.key in stale else "")
            return None
    t_start = time.perf_counter()
    errors = {}
    if not args.aggregate_only:
        ctx = br.Context(settings)
        for i, cell in enumerate(todo):
            t0 = time.perf_counter()
            print(f"[{i + 1}/{len(todo)}] {cell.method} {cell.task} seed {cell.seed} -> {cell.path(results)}", flush=True)
            try:
                if cell.key in stale:
                    where = bres.retire(cell.path(results), results, stale[cell.key])
                    print(f"    moved to {repo_relative(where)} ({stale[cell.key]})", flush=True)
                r = br.run_cell(ctx, cell)
                norm = r.get("normalized_mean")
                print(f"    normalized {norm if norm is None else round(norm, 3)}, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            except Exception as err:     # one broken cell must not stop the others; it is reported
                traceback.print_exc()
                errors[cell.key] = f"{type(err).__name__}: {err}"
    rows = bres.aggregate(cells, results)
    record = {"command": settings.command, "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "fast_mode": fast, "preset": settings.preset, "seeds": sorted({c.seed for c in cells}),
              "episodes": settings.episodes, "eval_max_steps": settings.max_steps,
              "minutes_per_policy": minutes, "steps_per_policy": settings.steps,
              "full_grid": args.methods is None and args.suites is None and not args.tasks and args.seeds is None,
              "cpu_hours_per_cell": round((minutes + EVAL_SECONDS * settings.episodes / 600) / 60, 3) if minutes else None,
              "data": repo_relative(settings.data), "results": repo_relative(results), "wall_seconds_this_call": round(time.perf_counter() - t_start, 1),
              "note": ("FAST MODE: a smoke run with tiny networks, a handful of updates and one short episode; the "
                       "scores mean nothing" if fast else "laptop preset on a 2-core CPU, one core per policy"),
              "methods": {k: {"label": m.label, "what": m.what, "group": m.group, "config": m.config, "reward": m.reward,
                              "embedding": m.embedding, "learner": m.learner} for k, m in bm.METHODS.items()},
              "paper": bm.PAPER, "paper_sources": bm.PAPER_SOURCES, "rows": rows, "domains": bres.domain_rows(rows),
              "cost": cost_section(rows, settings), "speed": speed_section(settings),
              "skipped": skipped, "errors": errors}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=float))
    print_table(rows)
    if args.readme and not fast:
        readme = REPO_ROOT / "README.md"
        changed = bres.update_readme(readme, bres.readme_tables(record))
        print(f"{'rewrote' if changed else 'unchanged:'} the benchmark tables of {readme}")
    reasons = {}
    for k, why in skipped.items():
        reasons.setdefault(why, []).append(k)
    for why, keys in reasons.items():
        print(f"skipped {len(keys)} cells: {why}")
    for k, v in errors.items():
        print("ERROR:", k, v)
    print(f"-> {out}")
    return record


if __name__ == "__main__":
    main()
