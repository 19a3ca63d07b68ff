"""Privileged experts for *task replay*: a small SAC on the proprioceptive state with the true reward.

GenRL's world model learns from frames of an agent *learning* each task (the paper keeps the whole
replay buffer of a DreamerV3 agent), so its data spans poor to expert behaviour. We get the same
spread much more cheaply: Soft Actor-Critic (Haarnoja et al., 2018) learns from the flattened
proprio state (no pixels, no rendering, so the simulator runs ~10x faster), and we save a few
*snapshots* of its actor along the way (early/poor ... final). Rolling those snapshots out in the
pixel environment with a little action noise (``scripts/collect_data.py``) gives the replay data.
Only frames and actions of those rollouts reach the world model; the state and reward here are
privileged and never leave this module's learner.

Shapes: B batch, P proprio state dim (24 walker, 17 cheetah, 78 quadruped), A action dim.

    learner = Learner("walker_walk", SACConfig.preset("laptop"), run_dir="data/expert_runs/walker_walk")
    learner.train(minutes=8, snapshot_dir="data/experts/walker_walk")   # resumes if run_dir has a checkpoint
    policy = load_snapshot("data/experts/walker_walk/snapshot_4.pt")
    action = policy(state, rng, noise=0.2)                               # (A,) float32 in [-1, 1]

A task that SAC does not learn from scratch in a CPU budget can start from an easier task's learner
of the same body (``Learner("quadruped_run", ..., init_from="data/expert_runs/quadruped_walk/learner.pt")``):
the critics first learn the new reward while the inherited actor keeps acting (``warm_critic_steps``).
The learner checkpoints are git-ignored, so a machine without them can still continue a shipped
expert from its last *snapshot*: ``init_from="data/experts/walker_run/snapshot_4.pt"`` inherits that
actor alone, and fresh critics learn its reward first, the same way.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from genrl_lite import tasks as _tasks
from genrl_lite.envs import flatten_observation, repeat_step
from genrl_lite.runtime import atomic_torch_save, progress


@dataclasses.dataclass
class SACConfig:
    """Hyper-parameters of the state-based SAC learner (defaults = ``laptop``)."""

    hidden: int = 128
    """Width of the two hidden layers of actor and critics (128: ~6 ms per update on one CPU core)."""
    batch_size: int = 128
    """Transitions per gradient step."""
    lr: float = 3e-4
    """Adam learning rate of actor, critics and temperature."""
    gamma: float = 0.99
    """Discount per agent step."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha (then tuned towards ``-A`` entropy)."""
    seed_steps: int = 2000
    """Agent steps of uniformly random actions before learning starts."""
    buffer_size: int = 500_000
    """Replay capacity in transitions."""
    action_repeat: int = 2
    """Simulator steps per agent step (the same as the pixel data)."""
    snapshot_fractions: tuple = (0.04, 0.2, 0.45, 0.7, 1.0)
    """Points of the budget (steps or minutes) where an actor snapshot is saved, poor to final."""
    warm_critic_steps: int = 20_000
    """After a warm start from another task's learner, updates that train only the critics while the
    inherited actor keeps acting: a critic that still values the old reward would otherwise steer the
    actor away from a good gait within a few thousand updates (seen on quadruped run from walk)."""
    checkpoint_every_s: float = 120.0
    """Seconds of training between learner checkpoints (resume after a crash or Ctrl-C)."""
    eval_episodes: int = 10
    """Episodes per snapshot when measuring its return. Ten, not three: the quadruped starts in a random
    orientation, and three lucky starts once scored a walk actor 828 that scores 238 over twenty."""
    symlog: bool = True
    """Feed ``sign(x) log(1 + |x|)`` of the state to the networks: quadruped's force/torque sensors
    reach hundreds while angles stay near 1, and this evens the scales without running statistics."""

    @staticmethod
    def preset(name: str) -> "SACConfig":
        """``tiny`` (tests, seconds), ``laptop`` (2-core CPU), ``paper`` (GPU, wider nets)."""
        presets = {
            "tiny": SACConfig(hidden=32, batch_size=32, seed_steps=50, buffer_size=5_000, warm_critic_steps=20,
                              checkpoint_every_s=1e9, eval_episodes=1),
            "laptop": SACConfig(),
            "paper": SACConfig(hidden=1024, batch_size=1024, seed_steps=5000, buffer_size=1_000_000),
        }
        if name not in presets:
            raise ValueError(f"unknown SAC preset {name!r}; valid: {', '.join(presets)}")
        return presets[name]


# --- the environment without pixels -----------------------------------------------------------

class StateEnv:
    """A task's dm_control environment seen as a flat state (P,), with action repeat; never renders."""

    def __init__(self, task: str, seed: int = 0, action_repeat: int = 2):
        self.task = _tasks.get_task(task)
        self._env = self.task.make_env(seed)
        self.action_repeat = action_repeat
        spec = self._env.action_spec()
        self.action_dim = int(np.prod(spec.shape))
        self.physics = self._env.physics

    def reset(self) -> np.ndarray:
        return flatten_observation(self._env.reset().observation).astype(np.float32)

    def step(self, action: np.ndarray):
        """Returns ``(state (P,), reward summed over the repeat, last)``."""
        ts, reward = repeat_step(self._env, action, self.action_repeat)
        return flatten_observation(ts.observation).astype(np.float32), reward, bool(ts.last())


# --- networks -----------------------------------------------------------------------------------

def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, out))


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy: state (B, P) -> action (B, A) in [-1, 1] and log-prob (B,)."""

    LOG_STD = (-5.0, 2.0)

    def __init__(self, state_dim: int, action_dim: int, hidden: int, symlog: bool = False):
        super().__init__()
        self.net = mlp(state_dim, hidden, 2 * action_dim)
        self.symlog = symlog

    def forward(self, state: torch.Tensor, deterministic: bool = False):
        mean, log_std = self.net(symlog(state) if self.symlog else state).chunk(2, dim=-1)
        lo, hi = self.LOG_STD
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(log_std) + 1)  # soft clamp keeps gradients
        if deterministic:
            return torch.tanh(mean), None
        std = log_std.exp()
        u = mean + std * torch.randn_like(mean)
        action = torch.tanh(u)
        # log N(u; mean, std) minus the log-determinant of tanh (numerically stable form).
        log_prob = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return action, log_prob


class Critic(nn.Module):
    """Twin Q-networks: (state (B, P), action (B, A)) -> two (B,) estimates (min reduces overestimation)."""

    def __init__(self, state_dim: int, action_dim: int, hidden: int, symlog: bool = False):
        super().__init__()
        self.q1 = mlp(state_dim + action_dim, hidden, 1)
        self.q2 = mlp(state_dim + action_dim, hidden, 1)
        self.symlog = symlog

    def forward(self, state, action):
        x = torch.cat([symlog(state) if self.symlog else state, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class ReplayBuffer:
    """Transitions ``(s, a, r, s', not_done)`` in preallocated numpy arrays (ring buffer)."""

    def __init__(self, state_dim: int, action_dim: int, capacity: int):
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.s = np.zeros((capacity, state_dim), np.float32)
        self.a = np.zeros((capacity, action_dim), np.float32)
        self.r = np.zeros((capacity,), np.float32)
        self.s2 = np.zeros((capacity, state_dim), np.float32)
        self.nd = np.zeros((capacity,), np.float32)

    def add(self, s, a, r, s2, not_done) -> None:
        i = self.pos
        self.s[i], self.a[i], self.r[i], self.s2[i], self.nd[i] = s, a, r, s2, not_done
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator):
        idx = rng.integers(0, self.size, batch)
        return [torch.as_tensor(x[idx]) for x in (self.s, self.a, self.r, self.s2, self.nd)]

    def state_dict(self) -> dict:
        n = self.size
        return dict(s=self.s[:n], a=self.a[:n], r=self.r[:n], s2=self.s2[:n], nd=self.nd[:n], pos=self.pos)

    def load_state_dict(self, d: dict) -> None:
        n = len(d["r"])
        for k in ("s", "a", "r", "s2", "nd"):
            getattr(self, k)[:n] = d[k]
        self.size, self.pos = n, int(d["pos"])


# --- SAC ------------------------------------------------------------------------------------------

class SAC(nn.Module):
    """Actor, twin critics with Polyak targets, and a learned temperature alpha."""

    def __init__(self, state_dim: int, action_dim: int, cfg: SACConfig):
        super().__init__()
        self.cfg = cfg
        self.actor = Actor(state_dim, action_dim, cfg.hidden, cfg.symlog)
        self.critic = Critic(state_dim, action_dim, cfg.hidden, cfg.symlog)
        self.critic_target = Critic(state_dim, action_dim, cfg.hidden, cfg.symlog)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_temperature)))
        self.target_entropy = -float(action_dim)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr)
        self.opt_alpha = torch.optim.Adam([self.log_alpha], lr=cfg.lr)

    def update(self, s, a, r, s2, nd, actor: bool = True) -> dict:
        """One gradient step on a batch of (B, ...) tensors; returns the losses as floats.
        ``actor=False`` updates the critics only (actor and temperature stay as they are)."""
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():  # soft Bellman target: r + gamma * (min Q'(s', a') - alpha log pi(a'|s'))
            a2, logp2 = self.actor(s2)
            q1t, q2t = self.critic_target(s2, a2)
            target = r + self.cfg.gamma * nd * (torch.min(q1t, q2t) - alpha * logp2)
        q1, q2 = self.critic(s, a)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.opt_critic.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.opt_critic.step()
        if not actor:
            self._polyak()
            return dict(critic_loss=critic_loss.item(), alpha=float(alpha))

        a_new, logp = self.actor(s)
        q1n, q2n = self.critic(s, a_new)
        actor_loss = (alpha * logp - torch.min(q1n, q2n)).mean()
        self.opt_actor.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.opt_actor.step()

        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.opt_alpha.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.opt_alpha.step()

        self._polyak()
        return dict(critic_loss=critic_loss.item(), actor_loss=actor_loss.item(),
                    alpha=float(alpha), entropy=-logp.mean().item())

    @torch.no_grad()
    def _polyak(self) -> None:
        for p, pt in zip(self.critic.parameters(), self.critic_target.parameters()):
            pt.lerp_(p, self.cfg.tau)


# --- snapshots: tiny actor files that collection loads ------------------------------------------

def save_snapshot(actor: Actor, path, **meta) -> Path:
    """Save the actor alone (float16 weights, ~100-200 kB) atomically with metadata ``meta``."""
    state = {k: v.detach().to(torch.float16) for k, v in actor.state_dict().items()}
    first, last = actor.net[0], actor.net[-1]
    return atomic_torch_save(dict(actor=state, state_dim=first.in_features, action_dim=last.out_features // 2,
                                  hidden=first.out_features, symlog=actor.symlog, meta=meta), path)


class ExpertPolicy:
    """A loaded snapshot: ``policy(state (P,), rng, noise) -> action (A,) float32`` in [-1, 1].

    The actor runs in float64 although it was trained in float32. In float32 the matrix products
    round differently with the instruction set MKL picks for this CPU (AVX-512, AVX2, ...): actions
    then differ in their last bits, the physics amplifies that, and ``make data`` gave other replay
    episodes on another kind of CPU. In float64 those differences stay far below float32's precision,
    and the actions, cast back to float32, came out the same under every instruction set we tried
    (``tests/test_experts.py`` runs two snapshots under several ``MKL_ENABLE_INSTRUCTIONS`` settings).
    """

    def __init__(self, actor: Actor, meta: dict):
        self.actor, self.meta = actor, meta
        self.state_dim = actor.net[0].in_features
        self.action_dim = actor.net[-1].out_features // 2

    @torch.no_grad()
    def __call__(self, state: np.ndarray, rng: np.random.Generator | None = None, noise: float = 0.0):
        state = np.asarray(state, np.float32)  # what the actor saw in training; exact in float64
        if state.shape != (self.state_dim,):
            raise ValueError(f"expert for {self.meta.get('task')} expects a state of shape "
                             f"({self.state_dim},), got {state.shape}")
        x = torch.as_tensor(state, dtype=torch.float64)[None]
        action = self.actor(x, deterministic=True)[0][0].numpy().astype(np.float32)
        if noise > 0:
            rng = rng or np.random.default_rng()
            action = action + noise * rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def load_snapshot(path) -> ExpertPolicy:
    """Load a snapshot written by :func:`save_snapshot`; clear error if it is missing or corrupted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no expert snapshot at {path}; train one with "
                                f"`python scripts/train_experts.py --task <task_key>`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        actor = Actor(blob["state_dim"], blob["action_dim"], blob["hidden"], blob.get("symlog", False))
        actor.load_state_dict({k: v.float() for k, v in blob["actor"].items()})
        actor.double()  # see ExpertPolicy: float64 makes the actions the same on every CPU
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise RuntimeError(f"expert snapshot {path} is corrupted ({exc}); delete it and retrain with "
                           f"scripts/train_experts.py") from exc
    return ExpertPolicy(actor.eval(), blob.get("meta", {}))


def snapshot_paths(task: str, root) -> list[Path]:
    """Sorted snapshot files of ``task`` under ``root`` (``<root>/<task>/snapshot_<k>.pt``)."""
    return sorted(Path(root, task).glob("snapshot_*.pt"), key=lambda p: int(p.stem.split("_")[1]))


def evaluate(policy, task: str, episodes: int = 3, seed: int = 10_000, action_repeat: int = 2,
             noise: float = 0.0) -> list[float]:
    """True episode returns of ``policy`` (an :class:`ExpertPolicy`) on state-only rollouts."""
    env = StateEnv(task, seed, action_repeat)
    rng = np.random.default_rng(seed)
    returns = []
    for _ in range(episodes):
        s, done, ret = env.reset(), False, 0.0
        while not done:
            s, r, done = env.step(policy(s, rng, noise))
            ret += r
        returns.append(ret)
    return returns


EXPERT_LEVEL = 0.8
"""Normalized return from which a final snapshot counts as expert level."""


def load_results(root) -> dict:
    """``<root>/results.json`` of ``scripts/train_experts.py``: per task, its command and every snapshot's return."""
    path = Path(root) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"no expert results at {path}; train experts with "
                                f"`python scripts/train_experts.py --task <task_key> --minutes 10`")
    try:
        results = json.loads(path.read_text())
        if not all(isinstance(entry.get("snapshots"), list) for entry in results.values()):
            raise ValueError("an entry has no list of snapshots")
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise RuntimeError(f"expert results {path} are corrupted ({exc!r}); restore the file with "
                           f"`git checkout -- {path}` or retrain with scripts/train_experts.py") from exc
    return results


def replay_span(results: dict) -> list[dict]:
    """Per task, how far its task replay reaches: first and final snapshot, true and normalized return.

    The replay cycles over every snapshot, so it spans ``first`` (poor) to ``final``; ``expert_level``
    says whether the final one reaches :data:`EXPERT_LEVEL`. Rows are sorted by task key.
    """
    rows = []
    for key in sorted(results):
        snaps = results[key]["snapshots"]
        if not snaps:
            continue
        first, final = snaps[0]["return_mean"], snaps[-1]["return_mean"]
        first_norm, final_norm = _tasks.normalized_score(key, first), _tasks.normalized_score(key, final)
        rows.append(dict(task=key, first=first, final=final, first_norm=first_norm, final_norm=final_norm,
                         minutes=snaps[-1]["train_seconds"] / 60, expert_level=final_norm >= EXPERT_LEVEL))
    return rows


# --- the learner: training loop with snapshots and resumable checkpoints -------------------------

class Learner:
    """SAC on one task; ``train`` runs until a step or time budget and can resume from ``run_dir``."""

    def __init__(self, task: str, cfg: SACConfig | None = None, run_dir=None, seed: int = 0,
                 init_from=None):
        """``init_from``: a ``learner.pt`` of a task of the same domain to start from (its actor,
        critics and temperature; not its replay buffer or step count), or a snapshot file written by
        :func:`save_snapshot` (its actor only; the critics start fresh). Ignored when resuming."""
        self.cfg = cfg or SACConfig()
        self.task, self.seed = _tasks.get_task(task).key, seed
        self.env = StateEnv(self.task, seed, self.cfg.action_repeat)
        state = self.env.reset()
        self.state_dim, self.action_dim = state.shape[0], self.env.action_dim
        ckpt = None if run_dir is None else Path(run_dir) / "learner.pt"
        resuming = ckpt is not None and ckpt.exists()
        warm = None
        if resuming:  # a resumed run keeps the input transform it started with
            saved = torch.load(ckpt, map_location="cpu", weights_only=False)["cfg"]
            self.cfg = dataclasses.replace(self.cfg, symlog=saved.get("symlog", False))
        elif init_from is not None:
            warm = self._read_warm_start(Path(init_from))
            self.cfg = dataclasses.replace(self.cfg, symlog=warm["cfg"].get("symlog", False))
        torch.manual_seed(seed)
        self.sac = SAC(self.state_dim, self.action_dim, self.cfg)
        self.buffer = ReplayBuffer(self.state_dim, self.action_dim, self.cfg.buffer_size)
        self.rng = np.random.default_rng(seed)
        self.step, self.elapsed, self.episodes, self.next_snapshot = 0, 0.0, 0, 0
        self.episode_returns: list[float] = []
        self.last_losses: dict = {}
        self._state, self._return = state, 0.0
        self.init_from = None
        # Steps and seconds the inherited actor had trained before (snapshots count from there).
        self.offset_steps, self.offset_seconds = 0, 0.0
        if warm is not None and "sac" in warm:
            self.sac.load_state_dict(warm["sac"])
            self.init_from = warm["task"]
        elif warm is not None:  # a snapshot: its actor, float16 on disk
            self.sac.actor.load_state_dict({k: v.float() for k, v in warm["actor"].items()})
            self.init_from = f"{warm['task']} snapshot {warm['meta'].get('index')}"
            if warm["task"] == self.task:  # the same task: this run continues that learner's count
                self.offset_steps = int(warm["meta"].get("step", 0))
                self.offset_seconds = float(warm["meta"].get("train_seconds", 0.0))
        self.run_dir = None if run_dir is None else Path(run_dir)
        if resuming:
            self.load_checkpoint(ckpt)

    def _read_warm_start(self, path: Path) -> dict:
        """Load a learner checkpoint or an actor snapshot and check it fits this task's state and
        actions (same domain; a snapshot must also have this preset's width)."""
        if not path.exists():
            raise FileNotFoundError(f"no learner checkpoint or snapshot at {path}: train that task first "
                                    f"(python scripts/train_experts.py --task <task> --minutes ...)")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
            if "sac" not in blob:  # a snapshot keeps its task in its metadata
                blob = dict(blob, task=blob["meta"]["task"], cfg=dict(symlog=blob.get("symlog", False)))
            blob["task"]
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
            raise RuntimeError(f"{path} is neither a learner checkpoint nor an expert snapshot ({exc})") from exc
        if "sac" not in blob and blob["hidden"] != self.cfg.hidden:
            raise ValueError(f"snapshot {path} has hidden width {blob['hidden']}, the {self.cfg.hidden} of "
                             f"this preset does not fit: use the preset it was trained with")
        other = _tasks.get_task(blob["task"])
        if other.domain != _tasks.get_task(self.task).domain:
            raise ValueError(f"cannot start {self.task} from {other.key}: the domains differ "
                             f"(state and action sizes would not match)")
        return blob

    # checkpointing
    def save_checkpoint(self, path=None) -> Path:
        path = Path(path or self.run_dir / "learner.pt")
        return atomic_torch_save(dict(
            task=self.task, cfg=dataclasses.asdict(self.cfg), sac=self.sac.state_dict(),
            opt=[o.state_dict() for o in (self.sac.opt_actor, self.sac.opt_critic, self.sac.opt_alpha)],
            buffer=self.buffer.state_dict(), step=self.step, elapsed=self.elapsed, episodes=self.episodes,
            next_snapshot=self.next_snapshot, episode_returns=self.episode_returns,
            rng=self.rng.bit_generator.state, torch_rng=torch.get_rng_state(), init_from=self.init_from,
            offset=(self.offset_steps, self.offset_seconds)), path)

    def load_checkpoint(self, path) -> None:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if blob["task"] != self.task:
            raise ValueError(f"checkpoint {path} is for {blob['task']}, not {self.task}")
        self.sac.load_state_dict(blob["sac"])
        for o, d in zip((self.sac.opt_actor, self.sac.opt_critic, self.sac.opt_alpha), blob["opt"]):
            o.load_state_dict(d)
        self.buffer.load_state_dict(blob["buffer"])
        self.step, self.elapsed, self.episodes = blob["step"], blob["elapsed"], blob["episodes"]
        self.next_snapshot, self.episode_returns = blob["next_snapshot"], blob["episode_returns"]
        self.init_from = blob.get("init_from")
        self.offset_steps, self.offset_seconds = blob.get("offset", (0, 0.0))
        self.rng.bit_generator.state = blob["rng"]
        torch.set_rng_state(blob["torch_rng"])
        # The episode in progress is not saved: start a fresh one (its transitions are kept).
        self._state, self._return = self.env.reset(), 0.0

    def _fraction(self, steps, minutes) -> float:
        fracs = []
        if steps:
            fracs.append(self.step / steps)
        if minutes:
            fracs.append(self.elapsed / (60.0 * minutes))
        return max(fracs)

    def env_step(self) -> None:
        """Act (random during seeding, else the stochastic policy), store the transition."""
        # A warm-started learner already has a policy worth acting with: its first steps only fill
        # the buffer (no updates until seed_steps) so the critics meet the new reward on its states.
        if self.step < self.cfg.seed_steps and self.init_from is None:
            action = self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)
        else:
            with torch.no_grad():
                action = self.sac.actor(torch.as_tensor(self._state)[None])[0][0].numpy()
        s2, r, done = self.env.step(action)
        # dm_control episodes end only by the time limit, so bootstrap through it (not_done = 1).
        self.buffer.add(self._state, action, r, s2, 1.0)
        self._return += r
        self.step += 1
        if done:
            self.episode_returns.append(self._return)
            self.episodes += 1
            s2, self._return = self.env.reset(), 0.0
        self._state = s2

    def train(self, steps: int | None = None, minutes: float | None = None, snapshot_dir=None,
              log=print, first_snapshot: int = 0) -> list[dict]:
        """Train until ``steps`` agent steps or ``minutes`` of training (whichever comes first).

        Saves ``snapshot_<k>.pt`` in ``snapshot_dir`` at ``cfg.snapshot_fractions`` of the budget, and a
        resumable checkpoint in ``run_dir`` every ``cfg.checkpoint_every_s`` and at the end. Returns
        one record per snapshot saved in this call. ``first_snapshot=k`` takes only snapshots k, k+1...
        (at their usual fractions of this budget): a run that continues another run's snapshot k-1
        keeps that run's earlier, poorer snapshots as the start of the replay.
        """
        if not 0 <= first_snapshot < len(self.cfg.snapshot_fractions):
            raise ValueError(f"first_snapshot must be in 0..{len(self.cfg.snapshot_fractions) - 1}, got {first_snapshot}")
        if not steps and not minutes:
            raise ValueError("give a budget: steps=... and/or minutes=...")
        records, fracs = [], self.cfg.snapshot_fractions
        # Snapshots still due under *this* budget: a resumed run with a larger budget than before
        # keeps training and re-takes the later snapshots at their new points.
        self.next_snapshot = max(first_snapshot, int(sum(f <= self._fraction(steps, minutes) for f in fracs)))
        bar = progress(total=100, desc=f"SAC {self.task}", unit="%")
        bar.update(int(100 * min(1.0, self._fraction(steps, minutes))))
        t_last, t_ckpt = time.time(), time.time()
        while self.next_snapshot < len(fracs):
            self.env_step()
            if self.step >= self.cfg.seed_steps and self.buffer.size >= self.cfg.batch_size:
                warming = self.init_from is not None and self.step < self.cfg.seed_steps + self.cfg.warm_critic_steps
                self.last_losses = self.sac.update(*self.buffer.sample(self.cfg.batch_size, self.rng),
                                                   actor=not warming)
            now = time.time()
            self.elapsed += now - t_last
            t_last = now
            frac = self._fraction(steps, minutes)
            shown = int(100 * min(1.0, frac))
            if shown > bar.n:
                bar.update(shown - bar.n)
                recent = self.episode_returns[-5:]
                bar.set_postfix(step=self.step, ret=f"{np.mean(recent):.0f}" if recent else "-")
            if frac >= fracs[self.next_snapshot]:
                k = self.next_snapshot
                self.next_snapshot += 1
                if snapshot_dir is not None:
                    path = Path(snapshot_dir) / f"snapshot_{k}.pt"
                    step, seconds = self.step + self.offset_steps, round(self.elapsed + self.offset_seconds, 1)
                    save_snapshot(self.sac.actor, path, task=self.task, step=step, index=k, train_seconds=seconds)
                    records.append(dict(index=k, step=step, train_seconds=seconds, path=str(path)))
                    log(f"[{self.task}] snapshot {k} at step {step} ({seconds:.0f} s); "
                        f"recent train return {np.mean(self.episode_returns[-3:] or [0]):.0f}")
            if self.run_dir is not None and now - t_ckpt > self.cfg.checkpoint_every_s:
                self.save_checkpoint()
                t_ckpt = time.time()
                t_last = t_ckpt  # do not bill the checkpoint write to the budget
        bar.close()
        if self.run_dir is not None:
            self.save_checkpoint()
        return records
