"""Render the VLM's pretraining corpus: 8-frame 64x64 clips with captions from privileged state.

This corpus is SEPARATE from the world model's dataset. It exists only to pretrain our small
video-language model (``genrl_lite/vlm.py``); the world model, connector and aligner never see a
caption. Language reaches GenRL only through the VLM, which is the point of the paper.

How the clips are made (see ``genrl_lite/captions.py`` for the labels):

* frames are exactly what the agent sees: ``PixelEnv`` (64x64, action repeat 2, camera of the
  domain), one frame per agent step;
* long episodes are rendered and cut into overlapping 8-frame windows (resetting per clip is slow);
* behaviour changes every segment of 20-60 agent steps: actions are zeros, uniform random, smooth
  noise, a sinusoidal gait or a constant pose, and a *puppeteer* (external forces on the root, from
  privileged state) optionally holds a posture (upright, crouched, upside down, rearing...),
  drives a speed (forward slow/fast, backward), or kicks a flip. Without it a random agent mostly
  lies on the floor and the corpus would have no 'standing' or 'running';
* with ``--experts P``, a segment is instead driven, with probability P and no puppeteer force, by
  one of the domain's last two task-replay expert snapshots (``data/experts``, privileged SAC):
  real gaits with real physics, where a puppeteered 'walk' drags a body whose legs need not step;
* every window is labelled from the state of its 8 frames (posture, motion), whatever the
  puppeteer intended.

Output: ``data/vlm_corpus/<domain>_<seed>.npz`` with
    frames  (N, 64, 64, 3) uint8   all rendered frames of the shard, episode after episode
    starts  (C,) int64             first frame index of each labelled window (window = starts + 0..7)
    posture (C,) str               posture concept or ''   motion (C,) str   motion concept or ''

    python scripts/make_vlm_corpus.py --frames 15000 --seed 0      # every domain, ~1.5-3 min each
    python scripts/make_vlm_corpus.py --frames 2500 --heldout      # the benchmark's clips (seeds 1000+)
    python scripts/make_vlm_corpus.py --domains stickman --poses stand hands_up --small-gaits --seed 1 --frames 4000
                                                                   # a top-up shard of rare postures
    python scripts/make_vlm_corpus.py --domains walker cheetah --experts 0.6 --seed 2 --frames 8000
                                                                   # a top-up shard of real gaits
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the triton guard before dm_control)
import numpy as np

from genrl_lite import captions
from genrl_lite.envs import PixelEnv
from genrl_lite.runtime import atomic_path, data_dir, progress

F = 8
"""Frames per clip (the VLM window)."""
TRAIN_SEEDS = range(0, 1000)
"""Pretraining shards use seeds below 1000."""
HELDOUT_SEED = 1000
"""Held-out (benchmark) shards use seeds from 1000 on: never seen in pretraining."""

BASE_TASK = {"walker": "walker_walk", "cheetah": "cheetah_run", "quadruped": "quadruped_walk",
             "stickman": "stickman_walk"}
SPEED = {"walker": ((0.6, 1.8), (2.5, 5.0)), "stickman": ((0.6, 1.8), (2.5, 5.0)),
         "cheetah": ((0.8, 2.5), (3.5, 8.0)), "quadruped": ((0.5, 1.3), (1.8, 3.5))}
"""(slow range, fast range) of driven forward speeds, m/s."""
POSES = {"walker": ["stand", "stand", "crouch", "inverted", "free", "free", "splits", "one_leg", "rest"],
         "stickman": ["stand", "stand", "crouch", "inverted", "free", "splits", "one_leg", "hands_up",
                      "hands_up", "rest"],
         "cheetah": ["stand", "rear", "headstand", "inverted", "free", "free", "rest"],
         "quadruped": ["stand", "stand", "inverted", "free", "free", "rest"]}
"""Postures the puppeteer may hold during a segment ('free' = no posture force)."""


class Puppeteer:
    """External forces on the root from privileged state: hold a height/pitch, drive a speed.

    Planar bodies (walker, stickman, cheetah) get generalized forces on their root slide/hinge
    joints (``qfrc_applied``); the 3-D quadruped gets a world-frame wrench on its torso
    (``xfrc_applied``). Forces are recomputed every agent step and persist between.
    """

    def __init__(self, domain: str, physics, poses: list[str] | None = None):
        self.domain, self.physics = domain, physics
        self.poses = list(poses or POSES[domain])
        unknown = set(self.poses) - set(POSES[domain])
        if unknown:
            raise ValueError(f"unknown poses {sorted(unknown)} for {domain}; choose from {sorted(set(POSES[domain]))}")
        self.mass = float(physics.model.body_subtreemass[1])
        self.planar = domain != "quadruped"
        if self.planar:
            m = physics.model
            self.dof = {n: int(m.jnt_dofadr[m.joint(n).id]) for n in ("rootx", "rootz", "rooty")}
            self.qpos = {n: int(m.jnt_qposadr[m.joint(n).id]) for n in ("rootx", "rootz", "rooty")}
        self.clear()

    def clear(self):
        self.pose, self.height, self.pitch, self.speed = "free", None, None, None
        self.physics.data.qfrc_applied[:] = 0
        self.physics.data.xfrc_applied[:] = 0

    def kick_flip(self, rng):
        d = self.physics.data
        sign = rng.choice([-1, 1])
        if self.planar:
            d.qvel[self.dof["rooty"]] = sign * rng.uniform(10, 18)
            d.qvel[self.dof["rootz"]] += rng.uniform(3, 6)
        else:
            d.qvel[2] += rng.uniform(3, 6)
            d.qvel[3:6] = rng.normal(0, 1, 3) + np.array([0, sign * rng.uniform(10, 16), 0])

    def apply(self):
        """Blend the root velocity towards a target (stable at any gain, unlike a force recomputed
        once per agent step) and compensate most of gravity while a height is held."""
        p, d, m, g = self.physics, self.physics.data, self.mass, 9.81
        blend = 0.5
        d.qfrc_applied[:] = 0
        d.xfrc_applied[:] = 0
        h = float(p.named.data.xpos["torso"][2])
        if self.planar:
            if self.speed is not None:
                i = self.dof["rootx"]
                d.qvel[i] += blend * (self.speed - d.qvel[i])
            if self.pitch is not None:
                i = self.dof["rooty"]
                err = (self.pitch - d.qpos[self.qpos["rooty"]] + np.pi) % (2 * np.pi) - np.pi
                d.qvel[i] += blend * (np.clip(5.0 * err, -6, 6) - d.qvel[i])
            if self.height is not None:
                i = self.dof["rootz"]
                d.qvel[i] += blend * (np.clip(5.0 * (self.height - h), -3, 3) - d.qvel[i])
                d.qfrc_applied[i] = 0.8 * m * g
        else:
            xmat = p.named.data.xmat["torso"].reshape(3, 3)
            if self.speed is not None:
                heading = xmat[:2, 0] / (np.linalg.norm(xmat[:2, 0]) + 1e-6)
                d.qvel[0:2] += blend * (self.speed * heading - d.qvel[0:2])
            if self.pitch is not None:  # 0: upright, pi: upside down
                target = np.array([0, 0, 1.0 if self.pitch == 0 else -1.0])
                axis = np.cross(xmat[:, 2], target)
                angle = np.arccos(np.clip(xmat[:, 2] @ target, -1, 1))
                w_world = np.clip(5.0 * angle, 0, 6) * axis / (np.linalg.norm(axis) + 1e-6)
                w_body = xmat.T @ w_world  # free-joint angular velocity is in the body frame
                d.qvel[3:6] += blend * (w_body - d.qvel[3:6])
            if self.height is not None:
                d.qvel[2] += blend * (np.clip(5.0 * (self.height - h), -3, 3) - d.qvel[2])
                d.xfrc_applied[1, 2] = 0.8 * m * g

    def new_segment(self, rng):
        """Pick the posture to hold and the speed to drive for the next segment."""
        self.clear()
        pose = str(rng.choice(self.poses))
        self.pose = pose
        biped = self.domain in ("walker", "stickman")
        if pose in ("stand", "one_leg", "hands_up"):
            self.pitch = 0.0
            self.height = rng.uniform(1.15, 1.35) if biped else rng.uniform(0.55, 0.75)
        elif pose == "splits":
            self.pitch, self.height = rng.uniform(-0.2, 0.2), rng.uniform(0.45, 0.75)
        elif pose == "crouch":
            self.pitch, self.height = rng.uniform(-0.3, 0.3), rng.uniform(0.45, 0.85)
        elif pose == "inverted":
            self.pitch = np.pi
            self.height = rng.uniform(0.7, 1.1) if biped else None
        elif pose == "rear":
            self.pitch, self.height = -rng.uniform(1.0, 1.4), rng.uniform(0.6, 0.9)
        elif pose == "headstand":
            self.pitch, self.height = rng.uniform(1.0, 1.4), rng.uniform(0.6, 0.9)
        (slow_lo, slow_hi), (fast_lo, fast_hi) = SPEED[self.domain]
        r = rng.random()
        if pose == "rest":  # no forces and (see Actions) no torques: the body settles and stays still
            self.speed = None
        elif r < 0.25:
            self.speed = None
        elif r < 0.4:
            self.speed = 0.0
        elif r < 0.6:
            self.speed = rng.uniform(slow_lo, slow_hi)
        elif r < 0.8:
            self.speed = rng.uniform(fast_lo, fast_hi)
        else:
            self.speed = -rng.uniform(slow_lo, slow_hi)
        return pose


class Actions:
    """A behaviour for the joints: zeros, uniform random, smooth noise, sinusoidal gait, constant pose."""

    KINDS = ["zeros", "random", "smooth", "gait", "gait", "pose"]

    def __init__(self, dim: int, rng: np.random.Generator, pose: str = "free", small: bool = False):
        self.dim, self.rng = dim, rng
        self.kind = str(rng.choice(self.KINDS))
        self.freq = rng.uniform(0.5, 3.0)  # cycles per second of the gait
        self.phase = rng.uniform(0, 2 * np.pi, dim)
        self.amp = rng.uniform(0.3, 1.0, dim)
        if small and pose in ("stand", "hands_up"):
            # upright with both feet low (a 'standing' label needs feet within 0.2 m of each other):
            # straight legs or a small shuffling gait, while the puppeteer drives the speed
            self.kind = str(rng.choice(["zeros", "gait", "gait"]))
            self.amp = rng.uniform(0.05, 0.3, dim)
        self.const = rng.choice([-1.0, 0.0, 1.0], dim) * rng.uniform(0.5, 1.0, dim)
        self.state = np.zeros(dim)
        # biped motor order: right hip, knee, ankle, left hip, knee, ankle (+ stickman's arms)
        if pose == "rest":
            self.kind = "zeros"
        elif pose == "splits":
            self.kind, sign = "pose", rng.choice([-1.0, 1.0])
            self.const = np.zeros(dim)
            self.const[[0, 3]] = sign, -sign
        elif pose == "one_leg":
            self.kind, leg = "pose", int(rng.integers(2))
            self.const = np.zeros(dim)
            self.const[3 * leg:3 * leg + 2] = -rng.uniform(0.6, 1.0), -rng.uniform(0.3, 1.0)
        elif pose == "hands_up" and dim >= 10:
            self.kind = str(rng.choice(["pose", "gait", "zeros"]))
            self.const = self.const if self.kind == "pose" else np.zeros(dim)
            self.amp[6:], self.phase[6:] = 0, 0
            # shoulders fully up; elbows driven straight (-1), else gravity folds the raised forearms
            # back down behind the head (with 0 the hands end ~0.15 m *below* the head)
            self.fixed = {6: 1.0, 8: 1.0, 7: rng.uniform(-1.0, -0.7), 9: rng.uniform(-1.0, -0.7)}

    fixed: dict = {}

    def __call__(self, t: float) -> np.ndarray:
        a = self._act(t)
        for i, v in self.fixed.items():
            a[i] = v
        return a

    def _act(self, t: float) -> np.ndarray:
        if self.kind == "zeros":
            return np.zeros(self.dim)
        if self.kind == "random":
            return self.rng.uniform(-1, 1, self.dim)
        if self.kind == "smooth":
            self.state = 0.8 * self.state + 0.6 * self.rng.normal(0, 1, self.dim)
            return np.clip(self.state, -1, 1)
        if self.kind == "gait":
            return np.clip(self.amp * np.sin(2 * np.pi * self.freq * t + self.phase), -1, 1)
        return self.const.copy()


def domain_experts(domain: str, experts_dir: Path, last: int = 2) -> list:
    """The ``last`` snapshots of each task-replay expert of ``domain`` (the skilled end of the replay,
    where the gaits are), loaded; a clear error if there are none."""
    from genrl_lite import tasks
    from genrl_lite.experts import load_snapshot, snapshot_paths

    keys = [k for k in tasks.list_tasks(kind="standard") if tasks.get_task(k).domain == domain]
    paths = [p for k in keys for p in snapshot_paths(k, experts_dir)[-last:]]
    if not paths:
        raise FileNotFoundError(f"--experts needs snapshots of {domain}'s tasks ({', '.join(keys)}) in "
                                f"{experts_dir}; train them with: python scripts/train_experts.py --task "
                                f"{' '.join(keys)} --minutes 20")
    return [load_snapshot(p) for p in paths]


def render_shard(domain: str, seed: int, n_frames: int, stride: int = 2, show: bool = True,
                 poses: list[str] | None = None, small_gaits: bool = False,
                 experts: list | None = None, expert_prob: float = 0.0) -> dict:
    """Render ``n_frames`` frames of varied behaviour of ``domain`` and label every window.
    ``poses`` replaces the puppeteer's posture list (``POSES[domain]``) for a focused top-up shard;
    ``small_gaits`` keeps the joint actions small while a 'stand'/'hands_up' pose is held;
    ``experts`` (snapshots from :func:`domain_experts`) drive a segment with probability
    ``expert_prob``, with the puppeteer's forces off.

    Returns dict(frames (N,64,64,3) uint8, starts (C,), posture (C,), motion (C,)).
    """
    rng = np.random.default_rng(seed)
    env = PixelEnv(BASE_TASK[domain], seed=seed)
    dt = env.action_repeat * env._env.control_timestep()
    pup = Puppeteer(domain, env.physics, poses)
    frames, feats, episode_start = [], [], []
    starts, postures, motions = [], [], []
    bar = progress(total=n_frames, desc=f"{domain} seed {seed}", **({} if show else {"disable": True}))
    while len(frames) < n_frames:
        step = env.reset()
        first = len(frames)
        ep_frames, ep_feats = [step.obs], [captions.frame_features(domain, env.physics)]
        t, seg_end = 0, 0
        actions = None
        while not step.is_last and len(frames) + len(ep_frames) < n_frames + F:
            if t >= seg_end:
                seg_end = t + int(rng.integers(20, 60))
                pose = pup.new_segment(rng)
                actions = Actions(env.action_dim, rng, pose, small_gaits)
                expert = None
                if experts and rng.random() < expert_prob:
                    pup.clear()  # the expert's own physics, no external force
                    expert = experts[int(rng.integers(len(experts)))]
                elif rng.random() < 0.15:
                    pup.clear()
                    pup.kick_flip(rng)
            if expert is None:
                pup.apply()
            try:
                step = env.step(expert(step.state, rng, 0.1) if expert is not None else actions(t * dt))
            except Exception as e:  # dm_control PhysicsError: an unstable state; start a new episode
                print(f"  {domain}: physics error after {t} steps ({type(e).__name__}); resetting")
                break
            t += 1
            f = captions.frame_features(domain, env.physics)
            if not np.isfinite(f["height"]) or f["height"] > 4.0:  # launched through the floor: stop
                break
            ep_frames.append(step.obs)
            ep_feats.append(f)
        bar.update(len(ep_frames))
        frames.extend(ep_frames)
        feats.extend(ep_feats)
        for s in range(0, len(ep_frames) - F + 1, stride):
            p, m = captions.clip_concepts(domain, ep_feats[s:s + F], dt)
            if p is None and m is None:
                continue
            starts.append(first + s)
            postures.append(p or "")
            motions.append(m or "")
        episode_start.append(first)
        if first == 0 and len(frames) > 40 and not np.any(np.diff(np.stack(frames[:40]).astype(np.int16), axis=0)):
            raise RuntimeError(f"{BASE_TASK[domain]} renders a constant image (camera {env.camera}): "
                               "fix the domain's camera before rendering a corpus")
    bar.close()
    env.close()
    return dict(frames=np.stack(frames).astype(np.uint8), starts=np.asarray(starts, np.int64),
                posture=np.asarray(postures), motion=np.asarray(motions), domain=np.asarray(domain),
                dt=np.asarray(dt), seed=np.asarray(seed))


def available_domains() -> list[str]:
    from genrl_lite import tasks

    tasks.list_tasks()  # registers stickman (and custom tasks) when their modules exist
    return [d for d in ("walker", "cheetah", "quadruped", "stickman") if d in tasks.DOMAINS and d in captions.FEATURES]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", nargs="+", default=None, help="default: every captioned domain")
    parser.add_argument("--frames", type=int, default=12000, help="frames per domain (and per shard)")
    parser.add_argument("--seed", type=int, default=0, help="shard seed (< 1000 for pretraining)")
    parser.add_argument("--heldout", action="store_true", help="render benchmark shards (seed 1000+)")
    parser.add_argument("--out", type=Path, default=None, help="default: data/vlm_corpus")
    parser.add_argument("--poses", nargs="+", default=None,
                        help="top-up shard: the puppeteer holds only these poses (default: POSES[domain], "
                             "e.g. --domains stickman --poses stand hands_up --seed 1)")
    parser.add_argument("--small-gaits", action="store_true",
                        help="while a stand/hands_up pose is held, joint actions are zeros or small sinusoids "
                             "(more clips labelled 'standing' and walking/running upright)")
    parser.add_argument("--experts", type=float, default=0.0, metavar="P",
                        help="probability that a segment is driven by one of the domain's task-replay expert "
                             "snapshots (real gaits, no puppeteer force); needs data/experts")
    parser.add_argument("--experts-dir", type=Path, default=None, help="default: data/experts")
    args = parser.parse_args(argv)
    if not 0.0 <= args.experts <= 1.0:
        parser.error(f"--experts is a probability in [0, 1], got {args.experts}")
    domains = args.domains or available_domains()
    out = args.out or data_dir() / "vlm_corpus"
    seed = HELDOUT_SEED + args.seed if args.heldout else args.seed
    if not args.heldout and seed >= HELDOUT_SEED:
        parser.error(f"pretraining seeds must be < {HELDOUT_SEED} (held-out seeds start there)")
    for domain in domains:
        t0 = time.time()
        experts = domain_experts(domain, args.experts_dir or data_dir() / "experts") if args.experts else None
        shard = render_shard(domain, seed, args.frames, poses=args.poses, small_gaits=args.small_gaits,
                             experts=experts, expert_prob=args.experts)
        name = f"{'heldout_' if args.heldout else ''}{domain}_{seed}.npz"
        with atomic_path(out / name) as tmp, open(tmp, "wb") as fh:  # a handle: savez adds no suffix
            np.savez(fh, **shard)
        p, m = shard["posture"], shard["motion"]
        print(f"{domain}: {len(shard['frames'])} frames, {len(p)} clips in {time.time() - t0:.0f}s -> {out / name}")
        print("  posture:", dict(zip(*np.unique(p, return_counts=True))))
        print("  motion: ", dict(zip(*np.unique(m, return_counts=True))))


if __name__ == "__main__":
    main()
