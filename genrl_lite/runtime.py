"""Run-time switches shared by every module: fast mode, device, paths, progress bars, atomic writes.

Nothing here knows about reinforcement learning; it is the plumbing that lets the same code run
in seconds on CI (``fast_mode()``), in minutes on a learner's 2-core CPU, and at paper scale on
a GPU (``default_device()``), without ever leaving a half-written file behind.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this package lives in (for an editable install)."""

_FALSY = {"", "0", "false", "no", "off"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in _FALSY


def fast_mode() -> bool:
    """True when budgets should shrink to seconds: on CI (``CI`` set) or when ``GENRL_LITE_FAST`` is set.

    ``GENRL_LITE_FAST=0`` forces full mode even on CI, so a maintainer can regenerate outputs there.
    """
    explicit = os.environ.get("GENRL_LITE_FAST")
    if explicit is not None:
        return _flag("GENRL_LITE_FAST")
    return _flag("CI")


def pick(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise: ``steps = pick(2000, 20)``."""
    return fast if fast_mode() else full


def repo_relative(path) -> str:
    """``path`` as a string relative to the checkout when it lies inside it, else absolute; recorded
    paths (results, model info) then read the same on every clone."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def git_commit(root=None) -> str:
    """The checkout's HEAD hash (recorded in every result file), with ``-dirty`` when tracked files
    outside ``results/`` have uncommitted changes ("unknown" outside git).

    ``results/`` is left out because it holds the runs' own outputs: a benchmark run that retires a
    stale cell (moves its tracked folder to ``results/superseded/``) changes nothing a later cell's
    result depends on, so it must not mark every later cell of the run as made from changed code."""
    root = Path(root or REPO_ROOT)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=root, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def data_dir() -> Path:
    """Where datasets and checkpoints live: ``$GENRL_LITE_DATA`` or ``<repo>/data``."""
    return Path(os.environ.get("GENRL_LITE_DATA", REPO_ROOT / "data"))


def figures_dir() -> Path:
    """Where ``scripts/make_figures.py`` writes figures: ``<repo>/figures``."""
    return REPO_ROOT / "figures"


def default_device(prefer: str | None = None):
    """The torch device to use: ``prefer`` if given, else CUDA, then Apple MPS, then CPU."""
    import torch

    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def progress(iterable: Iterable[T] | None = None, **kwargs) -> Iterator[T]:
    """A notebook-aware tqdm progress bar (a text bar in a terminal, a widget in Jupyter).

    Silenced with ``GENRL_LITE_NO_PROGRESS=1`` (handy in logs of background jobs).
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", _flag("GENRL_LITE_NO_PROGRESS"))
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or Ctrl-C in the middle leaves the old file (or none), never a truncated one, because
    ``os.replace`` within one directory is atomic on POSIX and Windows.

    >>> with atomic_path("episode.npz") as tmp:       # doctest: +SKIP
    ...     np.savez_compressed(tmp, obs=obs)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same suffix as the target: numpy's savez appends ".npz" to any other name.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` that never leaves a half-written checkpoint (see :func:`atomic_path`)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
