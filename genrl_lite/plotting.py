"""Every figure in genrl_lite goes through this module, so that notebooks, scripts and ``figures/``
share one style. Functions are *pure*: they take arrays and return a matplotlib ``Figure`` (or an
HTML string for videos) without side effects, so tests call them directly and widgets are thin
wrappers around them.

Shapes: frames are (T, S, S, 3) uint8 or (N, S, S, 3) uint8; curves are 1-D arrays.

Sections below are grouped by topic (issue); add new plots in the matching section.
"""
from __future__ import annotations

import base64
import io
from typing import Mapping, Sequence

import numpy as np

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
"""Okabe-Ito colours: distinguishable with colour-vision deficiencies."""

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def use_style() -> None:
    """Apply the project style to matplotlib (called by every plotting function)."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(_STYLE)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=PALETTE)


def new_figure(nrows: int = 1, ncols: int = 1, width: float = 4.0, height: float = 3.0, **kwargs):
    """``plt.subplots`` in the project style; ``width``/``height`` are per panel, in inches."""
    import matplotlib.pyplot as plt

    use_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             **kwargs)
    return fig, axes


def close(fig) -> None:
    """Release a figure's memory (scripts that make many figures should call this)."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def save(fig, path) -> str:
    """Save ``fig`` to ``path`` (PNG unless the suffix says otherwise) and return the path."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return str(path)


# --- frames and videos ------------------------------------------------------------------------

def _as_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    assert frames.ndim == 4 and frames.shape[-1] == 3, f"frames must be (N, S, S, 3), got {frames.shape}"
    if frames.dtype != np.uint8:
        frames = np.clip(np.asarray(frames, dtype=np.float64) * (255 if frames.max() <= 1.0 else 1),
                         0, 255).astype(np.uint8)
    return frames


def frame_grid(frames, titles: Sequence[str] | None = None, ncols: int = 8, size: float = 1.2,
               suptitle: str | None = None):
    """A grid of frames (N, S, S, 3), with optional per-frame titles. Returns a ``Figure``."""
    frames = _as_frames(frames)
    n = len(frames)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = new_figure(nrows, ncols, width=size, height=size + (0.25 if titles else 0))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(frames[i])
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def video_rows(videos: Mapping[str, np.ndarray], every: int = 1, size: float = 1.0, max_frames: int = 16):
    """Several videos (T, S, S, 3) as rows of a filmstrip, one row per label: compare side by side."""
    labels = list(videos)
    clips = [_as_frames(videos[k])[::every][:max_frames] for k in labels]
    t = max(len(c) for c in clips)
    fig, axes = new_figure(len(clips), t, width=size, height=size)
    for r, (label, clip) in enumerate(zip(labels, clips)):
        for c in range(t):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(clip):
                ax.imshow(clip[c])
            if c == 0:
                ax.set_title(label, fontsize=8, loc="left")
    fig.tight_layout(pad=0.2)
    return fig


def video_html(frames, fps: int = 10, scale: int = 2, loop: bool = True) -> str:
    """An animated GIF of (T, S, S, 3) frames as an ``<img>`` HTML string (small; no ffmpeg needed).

    Display it in a notebook with ``IPython.display.HTML(video_html(frames))``.
    """
    from PIL import Image

    frames = _as_frames(frames)
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
              for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0 if loop else 1)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/gif;base64,{data}" style="image-rendering: pixelated"/>'


def save_gif(frames, path, fps: int = 10, scale: int = 2) -> str:
    """Write (T, S, S, 3) frames to an animated GIF file (for ``figures/``); returns the path."""
    from pathlib import Path

    from PIL import Image

    frames = _as_frames(frames)
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
              for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    return str(path)


# --- curves and distributions -----------------------------------------------------------------

def curves(series: Mapping[str, Sequence[float]], x: Sequence[float] | None = None, xlabel: str = "step",
           ylabel: str = "", title: str = "", logy: bool = False, smooth: int = 1, ax=None):
    """Line plot of several named 1-D series (optionally smoothed with a moving average)."""
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    else:
        fig = ax.figure
    for name, ys in series.items():
        ys = np.asarray(ys, dtype=np.float64)
        if smooth > 1 and len(ys) >= smooth:
            ys = np.convolve(ys, np.ones(smooth) / smooth, mode="valid")
        xs = np.arange(len(ys)) if x is None else np.asarray(x)[-len(ys):]
        ax.plot(xs, ys, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    return fig


def histograms(groups: Mapping[str, Sequence[float]], bins: int = 30, xlabel: str = "", title: str = "",
               density: bool = True, ax=None):
    """Overlaid histograms of several named samples (e.g. returns per data subset)."""
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    else:
        fig = ax.figure
    values = [np.asarray(v, dtype=np.float64) for v in groups.values() if len(v)]
    lo = min(v.min() for v in values) if values else 0.0
    hi = max(v.max() for v in values) if values else 1.0
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    for name, v in groups.items():
        if len(v):
            ax.hist(np.asarray(v, dtype=np.float64), bins=edges, alpha=0.55, density=density, label=name)
    ax.set(xlabel=xlabel, ylabel="density" if density else "count", title=title)
    ax.legend()
    return fig


def bars(values: Mapping[str, float], errors: Mapping[str, float] | None = None, ylabel: str = "",
         title: str = "", reference: Mapping[str, float] | None = None, ax=None):
    """Bar chart with optional error bars and optional reference markers (e.g. the paper's numbers)."""
    if ax is None:
        fig, axes = new_figure(width=max(4.0, 0.6 * len(values)))
        ax = axes[0, 0]
    else:
        fig = ax.figure
    names = list(values)
    xs = np.arange(len(names))
    err = None if errors is None else [errors.get(n, 0.0) for n in names]
    ax.bar(xs, [values[n] for n in names], yerr=err, capsize=3, color=PALETTE[0], label="genrl_lite")
    if reference:
        ref = [reference.get(n, np.nan) for n in names]
        ax.scatter(xs, ref, marker="_", s=400, color=PALETTE[1], zorder=3, label="paper")
        ax.legend()
    ax.set_xticks(xs, names, rotation=45, ha="right")
    ax.set(ylabel=ylabel, title=title)
    return fig


# --- environments and data (issue 2) ----------------------------------------------------------

# --- vision-language model (issue 3) ----------------------------------------------------------

# --- world model, connector, aligner (issue 4) ------------------------------------------------

# --- rewards and behaviour (issue 5) ----------------------------------------------------------

# --- benchmark (issue 7) ----------------------------------------------------------------------
