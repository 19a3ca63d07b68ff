"""Measure expert and random returns for normalizing scores -> data/references/references.json.

Normalized score = (return - random) / (expert - random). For our custom tasks the rewards are
ours, so the paper's numbers do not apply: we measure both ends on our reward, 3 seeds each.

* random: uniformly random actions in [-1, 1], one per agent step held for 2 environment steps
  (action repeat 2), 500 agent steps; physics only, no rendering (about a second per episode).
* expert: no training, just planning on the true simulator ("predictive sampling", as in MuJoCo
  MPC): every ``--replan`` agent steps, copy the physics state, roll out K action sequences
  (the current plan plus Gaussian perturbations of it) for a short horizon with the true reward,
  keep the best, execute its first actions. It is a strong, cheap, privileged-state expert for
  pose tasks; for fast locomotion it is weaker than a trained RL expert (reported as measured).

The JSON is rewritten atomically after every episode and the script skips what is already in it,
so it can be stopped and restarted at will. Tasks whose expert is not measured yet are listed with
``"status": "pending"``; ``genrl_lite.tasks.normalized_score`` refuses to score them.

    python scripts/measure_references.py                       # random for all, then experts
    python scripts/measure_references.py --random-only
    python scripts/measure_references.py --tasks walker_flipping --seeds 0 1 2
    python scripts/measure_references.py --expert-only --shard 0/2 &   # two processes share the table
    python scripts/measure_references.py --expert-only --shard 1/2 &
    python scripts/measure_references.py --show                        # Markdown table
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: one measuring process at a time
    fcntl = None

import genrl_lite  # noqa: F401  (before dm_control)
from genrl_lite import tasks
from genrl_lite.envs import repeat_step
from genrl_lite.runtime import REPO_ROOT, atomic_path

OUT = REPO_ROOT / "data" / "references" / "references.json"
ACTION_REPEAT = 2

# Experts in order of importance (custom tasks first: they have no reference at all without this).
EXPERT_ORDER = (
    [f"walker_{n}" for n in ("flipping", "one_foot", "high_kick", "lying_down", "sit_knees", "lunge_pose")]
    + [f"cheetah_{n}" for n in ("standing", "lying_down")]
    + [f"stickman_{n}" for n in ("hands_up", "boxing", "headstand", "legs_up", "flipping", "one_foot",
                                 "high_kick", "lying_down", "sit_knees", "lunge_pose")]
    + [f"quadruped_{n}" for n in ("jump", "two_legs", "lie_down")]
    + [f"stickman_{n}" for n in ("stand", "walk", "run")]  # standard: the paper's reference is used anyway
)


def _agent_steps(env) -> int:
    return int(math.ceil(env._step_limit / ACTION_REPEAT))


def _step(env, action) -> float:
    """One agent step (action repeat 2); returns the summed true reward."""
    return repeat_step(env, action, ACTION_REPEAT)[1]


def random_return(task: str, seed: int) -> float:
    """Return of one episode of uniformly random actions (physics only)."""
    env = tasks.get_task(task).make_env(seed)
    rng = np.random.default_rng(seed)
    spec = env.action_spec()
    env.reset()
    total = 0.0
    for _ in range(_agent_steps(env)):
        total += _step(env, rng.uniform(spec.minimum, spec.maximum))
    return total


class PredictiveSampling:
    """Sampling-based MPC on a copy of the true physics (privileged state, true reward).

    A plan is ``knots`` (P, A) actions spread evenly over the horizon and linearly interpolated to
    the H agent steps in between: smooth candidates explore better than per-step noise.
    """

    def __init__(self, env, samples: int, horizon_s: float, knots: int = 3, sigmas=(0.3, 1.0), seed: int = 0):
        self.env = env
        self.plan_physics = env.physics.copy(share_model=True)
        self.substeps = env._n_sub_steps * ACTION_REPEAT      # physics steps per agent step
        agent_dt = env.control_timestep() * ACTION_REPEAT
        self.horizon = max(2, int(round(horizon_s / agent_dt)))
        spec = env.action_spec()
        self.low, self.high = spec.minimum, spec.maximum
        self.samples, self.sigmas = samples, sigmas
        self.rng = np.random.default_rng(seed)
        self.knot_t = np.linspace(0, self.horizon - 1, knots)
        self.knots = np.zeros((knots,) + spec.shape)

    def actions(self, knots) -> np.ndarray:
        """(H, A) actions of a plan given by its knots (P, A)."""
        t = np.arange(self.horizon)
        return np.stack([np.interp(t, self.knot_t, k) for k in knots.T], axis=1)

    def _rollout(self, state, plan) -> float:
        p = self.plan_physics
        p.set_state(state)
        p.forward()
        total = 0.0
        for u in plan:
            p.set_control(u)
            p.step(self.substeps)
            # one reward per agent step, counted twice: the action-repeat return, approximately
            total += ACTION_REPEAT * float(self.env.task.get_reward(p))
        return total

    def plan(self) -> np.ndarray:
        """Improve the plan from the current state; returns its actions (H, A)."""
        state = self.env.physics.get_state().copy()
        K = self.samples
        sig = np.array([self.sigmas[k % len(self.sigmas)] for k in range(K - 1)])[:, None, None]
        cands = np.concatenate([self.knots[None],
                                self.knots[None] + sig * self.rng.standard_normal((K - 1,) + self.knots.shape)])
        cands = np.clip(cands, self.low, self.high)
        scores = [self._rollout(state, self.actions(c)) for c in cands]
        self.knots = cands[int(np.argmax(scores))]
        return self.actions(self.knots)

    def shift(self, n: int) -> None:
        """Move the plan ``n`` agent steps forward in time (holding the last knot at the end)."""
        t = np.minimum(self.knot_t + n, self.knot_t[-1])
        self.knots = np.stack([np.interp(t, self.knot_t, k) for k in self.knots.T], axis=1)


def expert_return(task: str, seed: int, samples: int, horizon_s: float, replan: int, knots: int = 3) -> float:
    """Return of one episode of the predictive-sampling expert."""
    env = tasks.get_task(task).make_env(seed)
    env.reset()
    mpc = PredictiveSampling(env, samples, horizon_s, knots=knots, seed=seed)
    total, steps, t = 0.0, _agent_steps(env), 0
    while t < steps:
        plan = mpc.plan()
        n = min(replan, steps - t)
        for u in plan[:n]:
            total += _step(env, u)
        mpc.shift(n)
        t += n
    return total


# --- the JSON table --------------------------------------------------------------------------------

def load(path: Path) -> dict:
    if path.exists():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise SystemExit(f"{path} is corrupted ({err}); delete it and run this script again")
    return {"version": 1, "about": __doc__.strip().splitlines()[0], "tasks": {}}


@contextlib.contextmanager
def locked_table(path: Path):
    """Read-modify-write the table under a lock, so several measuring processes can share it."""
    lock = Path(tempfile.gettempdir()) / f"genrl_lite_{path.stem}.lock"
    with open(lock, "w") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        table = load(path)
        yield table
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


def new_entry(key: str) -> dict:
    t = tasks.get_task(key)
    e = dict(kind=t.kind, prompt=t.prompt, description=t.description,
             random={"status": "pending"},
             expert={"status": "pending" if key in EXPERT_ORDER else "not measured: paper reference used"})
    if t.paper_reference is not None:
        e["paper"] = {"expert": t.paper_reference.expert, "random": t.paper_reference.random}
    return e


def measure(path, key, which, seeds, fn, method, command) -> None:
    """Run ``fn(seed)`` for the seeds not yet in the table, saving after each episode."""
    with locked_table(path) as table:
        e = dict(table["tasks"].setdefault(key, new_entry(key))[which])
    if e.get("status") == "measured" and e.get("seeds") == list(seeds) and e.get("method") == method:
        return
    if e.get("method") != method:  # pending, or measured another way: start over
        e = {}
    e.update(status="partial", method=method, command=command)
    returns = dict(zip(map(int, e.get("seeds_done", [])), e.get("returns", [])))
    for seed in seeds:
        if seed in returns:
            continue
        start = time.time()
        returns[seed] = float(fn(seed))
        e["wall_s"] = round(e.get("wall_s", 0.0) + time.time() - start, 1)
        e["seeds_done"], e["returns"] = list(returns), [round(r, 2) for r in returns.values()]
        if len(returns) == len(seeds):
            vals = np.array([returns[s] for s in seeds])
            e.update(status="measured", seeds=list(seeds), returns=[round(r, 2) for r in vals],
                     mean=round(float(vals.mean()), 1), std=round(float(vals.std()), 1))
            e.pop("seeds_done")
        with locked_table(path) as table:
            table["tasks"].setdefault(key, new_entry(key))[which] = e
        print(f"{key:24s} {which:6s} seed {seed}: {returns[seed]:7.1f}  ({time.time() - start:.0f} s)", flush=True)


def merge_better(candidates: Path, path: Path) -> None:
    """Take a candidate table's fully measured experts where their mean beats ours (or ours is pending).

    The expert reference should be the best expert we have; the replaced entry is kept as
    ``expert_superseded`` so the table shows both methods and both commands.
    """
    cand = load(candidates)["tasks"]
    with locked_table(path) as table:
        for key, c in cand.items():
            new, e = c.get("expert", {}), table["tasks"].setdefault(key, new_entry(key))
            old = e["expert"]
            if new.get("status") != "measured":
                continue
            if old.get("status") == "measured" and old["mean"] >= new["mean"]:
                print(f"{key}: kept {old['mean']} (candidate {new['mean']})")
                continue
            print(f"{key}: {old.get('mean', old.get('status'))} -> {new['mean']}")
            if old.get("status") == "measured":
                e["expert_superseded"] = old
            e["expert"] = new


def show(path: Path) -> str:
    """The table as Markdown: measured expert/random (mean ± std over seeds) next to the paper's."""
    def fmt(m):
        if m.get("status") == "measured":
            return f"{m['mean']:.1f} ± {m['std']:.1f}"
        return m.get("status", "pending").split(":")[0]

    lines = ["| task | kind | expert (ours) | random (ours) | paper expert / random | expert wall s |",
             "|---|---|---|---|---|---|"]
    for key, e in sorted(load(path)["tasks"].items(), key=lambda kv: (kv[1]["kind"], kv[0])):
        paper = e.get("paper", {})
        lines.append(f"| {key} | {e['kind']} | {fmt(e['expert'])} | {fmt(e['random'])} | "
                     f"{paper.get('expert', '-')} / {paper.get('random', '-')} | {e['expert'].get('wall_s', '-')} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="*", help="task keys (default: every task; experts: EXPERT_ORDER)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--random-only", action="store_true")
    ap.add_argument("--expert-only", action="store_true")
    ap.add_argument("--samples", type=int, default=16, help="K candidate plans per re-plan")
    ap.add_argument("--horizon", type=float, default=0.5, help="planning horizon, seconds of simulated time")
    ap.add_argument("--replan", type=int, default=2, help="agent steps executed between re-plans")
    ap.add_argument("--knots", type=int, default=3, help="control knots per plan (linear interpolation)")
    ap.add_argument("--merge-better", type=Path, metavar="CANDIDATES",
                    help="copy measured experts from another table where they beat ours, then exit")
    ap.add_argument("--shard", default="0/1", help="i/n: this process measures every n-th expert from the i-th")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--show", action="store_true", help="print the table as Markdown and exit")
    args = ap.parse_args(argv)
    if args.show:
        print(show(args.out))
        return
    if args.merge_better:
        merge_better(args.merge_better, args.out)
        return
    command = "python scripts/measure_references.py " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))
    keys = args.tasks or tasks.list_tasks()
    with locked_table(args.out) as table:
        for key in keys:
            table["tasks"].setdefault(key, new_entry(key))
    if not args.expert_only:
        for key in keys:
            measure(args.out, key, "random", args.seeds, lambda s: random_return(key, s),
                    "uniform random actions, action repeat 2, 500 agent steps", command)
    if not args.random_only:
        method = (f"predictive sampling MPC on the true simulator and reward: {args.samples} candidates "
                  f"(current plan + Gaussian noise on {args.knots} knots, sigma 0.3/1.0), horizon {args.horizon} s, "
                  f"re-plan every {args.replan} agent steps, action repeat 2, 500 agent steps")
        i, n = map(int, args.shard.split("/"))
        done = load(args.out)["tasks"]
        todo = [k for k in EXPERT_ORDER if k in keys
                and done.get(k, {}).get("expert", {}).get("status") != "measured"]
        for key in todo[i::n]:  # shards split what is left, so restarted processes stay balanced
            measure(args.out, key, "expert", args.seeds,
                    lambda s: expert_return(key, s, args.samples, args.horizon, args.replan, args.knots),
                    method, command)


if __name__ == "__main__":
    main()
