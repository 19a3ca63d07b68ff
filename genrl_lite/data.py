"""Episodes on disk and the dataset the world model samples from.

Layout (``root`` is ``data/`` for full datasets and ``data/sample/`` for the committed sample)::

    <root>/<domain>/<subset>/<episode_id>.npz        what the world model gets: frames and actions
    <root>/<domain>/<subset>/<episode_id>.eval.npz   evaluation only: true reward, proprio state, metadata

``subset`` is ``expl`` (task-agnostic exploration) or a task name (``stand``, ``walk``, ``run``: the
replay of an agent learning that task). The world-model loader never opens the ``.eval.npz``
sidecars, so rewards and states cannot leak into training.

Episode arrays (T = 501 for a full dm_control episode: the reset frame + 500 agent steps)::

    obs       (T, S, S, 3) uint8    rendered frames, S = 64
    action    (T, A) float32        action[t] is the action that LED TO obs[t]; action[0] = 0
    is_first  (T,) bool             True only at t = 0
    is_last   (T,) bool             True at the final frame of a finished episode
    reward    (T,) float32          sidecar: true reward received on arriving at obs[t]; reward[0] = 0
    state     (T, P) float32        sidecar: flattened proprioceptive state at obs[t]

This is Dreamer's "previous action" convention: the model sees (obs[t], action[t]) and predicts the
next latent from action[t+1]. :func:`rollout` produces it; :func:`validate_episode` checks it.

Batches from :meth:`EpisodeDataset.sample` are (B, L, ...) windows cut inside one episode.

VLM embeddings (for the connector and aligner; the world model never uses them) are computed once
per episode by :meth:`EpisodeDataset.attach_embeddings` and cached next to the episode as
``<subset>/.embed/<vlm tag>/<episode_id>.npy`` (float16, (T, E), row t = the window ending at t,
first 7 rows zero); a new VLM gets a new tag, so a stale cache is never used.
"""
from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from genrl_lite.runtime import atomic_path, progress

WM_KEYS = ("obs", "action", "is_first", "is_last")
"""Keys of the world-model file (the only ones a learner ever trains on)."""
EVAL_SUFFIX = ".eval.npz"


class CorruptEpisodeError(RuntimeError):
    """An episode file cannot be read (truncated download, interrupted copy, disk error)."""


class EmptyDatasetError(FileNotFoundError):
    """No episode files where a dataset was expected."""


# --- one episode ---------------------------------------------------------------------------------

def validate_episode(ep: dict) -> None:
    """Raise ``ValueError`` (naming the shapes) unless ``ep`` follows the episode convention above."""
    missing = [k for k in WM_KEYS if k not in ep]
    if missing:
        raise ValueError(f"episode is missing keys {missing}; it has {sorted(ep)}")
    obs, action, first, last = (np.asarray(ep[k]) for k in WM_KEYS)
    T = len(obs)
    if obs.ndim != 4 or obs.shape[-1] != 3 or obs.dtype != np.uint8:
        raise ValueError(f"obs must be (T, S, S, 3) uint8, got {obs.shape} {obs.dtype}")
    if action.ndim != 2 or len(action) != T or action.dtype != np.float32:
        raise ValueError(f"action must be (T={T}, A) float32, got {action.shape} {action.dtype}")
    for name, flag in (("is_first", first), ("is_last", last)):
        if flag.shape != (T,) or flag.dtype != bool:
            raise ValueError(f"{name} must be ({T},) bool, got {flag.shape} {flag.dtype}")
    if T < 2:
        raise ValueError(f"an episode needs at least 2 frames, got T={T}")
    if not first[0] or first[1:].any():
        raise ValueError("is_first must be True at t=0 only")
    if np.any(action[0] != 0):
        raise ValueError(f"action[0] must be zeros (no action led to the reset frame), got {action[0]}")
    for name in ("reward", "state"):
        if name in ep and len(ep[name]) != T:
            raise ValueError(f"{name} must have T={T} rows, got {np.shape(ep[name])}")


def episode_paths(root, domain: str, subset: str, episode_id: str) -> tuple[Path, Path]:
    """``(world-model file, eval sidecar)`` paths of one episode."""
    base = Path(root) / domain / subset
    return base / f"{episode_id}.npz", base / f"{episode_id}{EVAL_SUFFIX}"


def _write_npz(path: Path, arrays: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a str path
            np.savez_compressed(f, **arrays)


def save_episode(root, domain: str, subset: str, episode_id: str, ep: dict, meta: dict | None = None) -> Path:
    """Write ``ep`` (keys as in the module docstring) atomically; returns the world-model file path.

    ``reward``/``state`` (if present) and ``meta`` (task key, seed, policy, ...) go to the sidecar,
    which is written first so that every visible episode already has its evaluation data.
    """
    ep = {k: np.asarray(v) for k, v in ep.items()}
    validate_episode(ep)
    path, eval_path = episode_paths(root, domain, subset, episode_id)
    extra = {k: ep[k] for k in ("reward", "state") if k in ep}
    if extra or meta:
        meta = dict(meta or {}, domain=domain, subset=subset, episode_id=episode_id)
        if "reward" in extra:
            extra["reward"] = extra["reward"].astype(np.float32)
        if "state" in extra:
            extra["state"] = extra["state"].astype(np.float32)
        _write_npz(eval_path, dict(extra, meta=np.array(json.dumps(meta))))
    try:
        _write_npz(path, {k: ep[k] for k in WM_KEYS})
    except BaseException:
        eval_path.unlink(missing_ok=True)  # no orphan sidecar for an episode that was never written
        raise
    return path


def _read_npz(path: Path, keys, optional=()) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise KeyError(f"missing arrays {missing}")
            # Reading each array decompresses it and checks its zip CRC.
            return {k: f[k] for k in (*keys, *optional) if k in f.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zipfile.LargeZipFile) as exc:
        raise CorruptEpisodeError(
            f"episode file {path} is truncated or corrupted ({type(exc).__name__}: {exc}); delete it "
            f"and re-collect it with scripts/collect_data.py (or restore it from data/sample)") from exc


def load_episode(path, with_eval: bool = False) -> dict:
    """Load one episode: the world-model arrays, plus ``reward``, ``state``, ``meta`` if ``with_eval``.

    Raises :class:`CorruptEpisodeError` (saying which file and what to do) if it cannot be read.
    """
    path = Path(path)
    ep = _read_npz(path, WM_KEYS)
    try:
        validate_episode(ep)
    except ValueError as exc:
        raise CorruptEpisodeError(f"episode file {path} breaks the episode format ({exc}); delete it "
                                  "and re-collect it with scripts/collect_data.py") from exc
    if with_eval:
        eval_path = path.with_name(path.name[: -len(".npz")] + EVAL_SUFFIX)
        if not eval_path.exists():
            raise FileNotFoundError(f"{path} has no evaluation sidecar {eval_path.name}; re-collect it "
                                    "with scripts/collect_data.py to get rewards and states")
        side = _read_npz(eval_path, ("meta",), optional=("reward", "state"))
        ep.update({k: v for k, v in side.items() if k != "meta"})
        ep["meta"] = json.loads(str(side["meta"]))
    return ep


def rollout(env, act: Callable, max_steps: int | None = None, first=None, stop: Callable | None = None) -> dict:
    """Run one episode of ``env`` (a :class:`~genrl_lite.envs.PixelEnv`) with ``act(step) -> action``.

    Returns the episode dict in the convention above (``obs``, ``action``, ``is_first``, ``is_last``,
    ``reward``, ``state``). ``first`` is an already-reset :class:`~genrl_lite.envs.Step` (e.g. after
    the caller changed the initial pose); ``max_steps`` cuts the episode short (then ``is_last`` stays
    False: the episode did not end); ``stop(step) -> True`` aborts and returns ``None``.
    """
    step = env.reset() if first is None else first
    zero = np.zeros(env.action_dim, np.float32)
    obs, actions, rewards, states, lasts = [step.obs], [zero], [0.0], [step.state], [False]
    limit = env.episode_steps if max_steps is None else min(max_steps, env.episode_steps)
    for _ in range(limit):
        action = np.clip(np.asarray(act(step), np.float32), -1, 1)
        step = env.step(action)
        if stop is not None and stop(step):
            return None
        obs.append(step.obs)
        actions.append(action)
        rewards.append(step.reward)
        states.append(step.state)
        lasts.append(step.is_last)
        if step.is_last:
            break
    T = len(obs)
    return dict(obs=np.stack(obs), action=np.stack(actions).astype(np.float32),
                is_first=np.arange(T) == 0, is_last=np.array(lasts, bool),
                reward=np.array(rewards, np.float32), state=np.stack(states).astype(np.float32))


# --- a dataset of episodes -----------------------------------------------------------------------

SPLITS = ("all", "train", "heldout")
"""Dataset splits: every episode, or the training / held-out part (see :func:`is_heldout`)."""
HELDOUT_EVERY = 10


def is_heldout(path) -> bool:
    """Whether an episode file is held out for evaluation: every 10th episode number of each subset.

    The rule uses only the file name (``<subset>-<worker>-<number>...``), so it is the same on every
    machine and does not change when more episodes are collected.
    """
    parts = Path(path).name.split("-")
    try:
        return int(parts[2].split(".")[0]) % HELDOUT_EVERY == HELDOUT_EVERY - 1
    except (IndexError, ValueError):
        return False


class EpisodeDataset:
    """All episodes of one domain under ``root`` (optionally some subsets), held in memory.

    Unreadable files are skipped with one warning and listed in ``skipped``; training never crashes
    on them. ``sample(B, L, rng)`` returns (B, L, ...) windows, each inside a single episode.
    """

    def __init__(self, root, domain: str, subsets=None, verbose: bool = True, split: str = "all"):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        self.root, self.domain, self.split = Path(root), domain, split
        base = self.root / domain
        files = sorted(p for p in base.glob("*/*.npz")
                       if not p.name.endswith(EVAL_SUFFIX) and not p.name.startswith("."))
        if subsets is not None:
            subsets = [subsets] if isinstance(subsets, str) else list(subsets)
            files = [p for p in files if p.parent.name in subsets]
        if split != "all":
            files = [p for p in files if is_heldout(p) == (split == "heldout")]
        if not files:
            found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
            raise EmptyDatasetError(
                f"no {'' if split == 'all' else split + ' '}episodes for domain {domain!r} under {base} "
                f"(subsets asked: {subsets or 'all'}; "
                f"subsets found: {', '.join(found) or 'none'}). "
                + ("The held-out split is every 10th episode of a subset, so it needs full datasets: "
                   if split == "heldout" else "")
                + f"Run `make data` (scripts/collect_data.py --domain {domain}) or use the committed sample: "
                  "root='data/sample'.")
        self.paths: list[Path] = []
        self.subset_of: list[str] = []
        self.episodes: list[dict] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in progress(files, desc=f"loading {domain}", disable=not verbose or len(files) < 20):
            try:
                ep = load_episode(path)
            except CorruptEpisodeError as exc:
                self.skipped.append((path, str(exc)))
                continue
            self.paths.append(path)
            self.subset_of.append(path.parent.name)
            self.episodes.append(ep)
        if self.skipped:
            warnings.warn(f"skipped {len(self.skipped)} unreadable episode file(s) of {len(files)} under "
                          f"{base}; first: {self.skipped[0][1]}", RuntimeWarning, stacklevel=2)
        if not self.episodes:
            raise EmptyDatasetError(f"all {len(files)} episode files under {base} are unreadable; "
                                    "delete them and re-collect with scripts/collect_data.py")
        self.lengths = np.array([len(ep["obs"]) for ep in self.episodes])
        self.action_dim = self.episodes[0]["action"].shape[1]
        self.embeds: list[np.ndarray] | None = None
        """Per-episode (T, E) float32 VLM window embeddings after :meth:`attach_embeddings`, else None."""

    def attach_embeddings(self, vlm, cache: bool = True, verbose: bool = True) -> "EpisodeDataset":
        """Embed every episode's sliding 8-frame windows with ``vlm`` so that batches carry ``embed``.

        Cached per episode under ``<subset>/.embed/<vlm_tag(vlm)>/`` (written atomically); a cache
        file of the wrong shape is recomputed. Returns ``self``.
        """
        tag = vlm_tag(vlm)
        self.embeds = []
        for path, ep in zip(progress(self.paths, desc=f"VLM embeddings ({tag})",
                                     disable=not verbose or len(self.paths) < 5), self.episodes):
            file = path.parent / ".embed" / tag / (path.name[:-len(".npz")] + ".npy")
            emb = None
            if cache and file.exists():
                try:
                    emb = np.load(file).astype(np.float32)
                    if emb.shape != (len(ep["obs"]), vlm.dim):
                        emb = None
                except (OSError, ValueError):
                    emb = None
            if emb is None:
                # Rounded to the cache's float16 whether or not it is cached, so that a model trained on
                # fresh embeddings and one trained on cached ones see the same numbers.
                half = vlm.embed_windows(ep["obs"]).cpu().numpy().astype(np.float16)
                if cache:
                    file.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(file) as tmp:
                        with open(tmp, "wb") as f:
                            np.save(f, half)
                emb = half.astype(np.float32)
            self.embeds.append(emb)
        self.embed_dim = vlm.dim
        return self

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    @property
    def subsets(self) -> list[str]:
        return sorted(set(self.subset_of))

    def __len__(self) -> int:
        return self.num_episodes

    def __getitem__(self, i: int) -> dict:
        return self.episodes[i]

    def __iter__(self) -> Iterator[dict]:
        return iter(self.episodes)

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict:
        """``batch`` windows of ``length`` frames: an episode uniformly, then a start uniformly in it.

        Returns ``obs`` (B, L, S, S, 3) uint8, ``action`` (B, L, A) float32, ``is_first``/``is_last``
        (B, L) bool, and ``embed`` (B, L, E) float32 after :meth:`attach_embeddings`. A window never crosses an episode boundary; ``is_first`` is True in a window only
        where the episode really starts (models start each window from their initial state anyway).
        """
        eligible = np.flatnonzero(self.lengths >= length)
        if len(eligible) == 0:
            raise ValueError(f"no episode has {length} frames (longest: {self.lengths.max()}); "
                             "ask for a shorter sequence length")
        keys = WM_KEYS + (("embed",) if self.embeds is not None else ())
        out = {k: [] for k in keys}
        for _ in range(batch):
            i = eligible[rng.integers(len(eligible))]
            start = rng.integers(0, self.lengths[i] - length + 1)
            for k in WM_KEYS:
                out[k].append(self.episodes[i][k][start:start + length])
            if self.embeds is not None:
                out["embed"].append(self.embeds[i][start:start + length])
        return {k: np.stack(v) for k, v in out.items()}

    def returns(self) -> dict[str, list[float]]:
        """True episode returns per subset, read from the sidecars (evaluation only; missing -> skipped)."""
        out: dict[str, list[float]] = {s: [] for s in self.subsets}
        for path, subset in zip(self.paths, self.subset_of):
            try:
                out[subset].append(float(load_episode(path, with_eval=True)["reward"].sum()))
            except (FileNotFoundError, CorruptEpisodeError, KeyError):
                continue
        return out

    def summary(self) -> list[dict]:
        """One row per subset: episodes, frames, and true-return mean/std/min/max (None if no sidecars)."""
        rets = self.returns()
        rows = []
        for subset in self.subsets:
            idx = [i for i, s in enumerate(self.subset_of) if s == subset]
            r = np.array(rets.get(subset, []))
            stats = (dict(return_mean=float(r.mean()), return_std=float(r.std()), return_min=float(r.min()),
                          return_max=float(r.max())) if len(r) else
                     dict(return_mean=None, return_std=None, return_min=None, return_max=None))
            rows.append(dict(domain=self.domain, subset=subset, episodes=len(idx),
                             frames=int(self.lengths[idx].sum()), **stats))
        return rows


def vlm_tag(vlm) -> str:
    """A file-name-safe tag for a VLM *and its weights* (``name`` + ``fingerprint`` if it has one)."""
    raw = f"{vlm.name}-{getattr(vlm, 'fingerprint', '')}".strip("-")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)


def domains_in(root) -> list[str]:
    """Domains that have at least one subset folder under ``root``."""
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*/*.npz"))) if root.is_dir() else []
