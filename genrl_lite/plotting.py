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

def subset_returns(returns: Mapping[str, Mapping[str, Sequence[float]]], title: str = "",
                   references: Mapping[str, Mapping[str, float]] | None = None):
    """True episode returns of each data subset, one panel per domain: a dot per episode (jittered),
    a bar at the mean. ``returns[domain][subset]`` lists returns; ``references[domain][subset]``
    (optional) draws the paper's expert return of that subset's task as a dashed tick."""
    domains = list(returns)
    fig, axes = new_figure(1, max(1, len(domains)), width=3.0, height=2.8)
    rng = np.random.default_rng(0)
    for ax, domain in zip(axes[0], domains):
        subsets = list(returns[domain])
        for i, subset in enumerate(subsets):
            r = np.asarray(returns[domain][subset], dtype=np.float64)
            colour = PALETTE[i % len(PALETTE)]
            if len(r):
                ax.scatter(i + rng.uniform(-0.15, 0.15, len(r)), r, s=14, color=colour, alpha=0.7)
                ax.hlines(r.mean(), i - 0.3, i + 0.3, color=colour, lw=2)
            ref = (references or {}).get(domain, {}).get(subset)
            if ref is not None:
                ax.hlines(ref, i - 0.35, i + 0.35, color="0.3", lw=1, linestyles="--")
        ax.set_xticks(range(len(subsets)), subsets)
        ax.set(title=domain, ylabel="true return (episode)" if ax is axes[0, 0] else "")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def episode_view(obs, reward, t: int, title: str = ""):
    """Frame ``t`` of an episode next to its true reward over time (T,), with ``t`` marked.

    ``obs`` is (T, S, S, 3) uint8; used by notebook 00's data browser widget.
    """
    obs = _as_frames(obs)
    reward = np.asarray(reward, dtype=np.float64)
    assert len(obs) == len(reward), f"obs {obs.shape} and reward {reward.shape} differ in length"
    assert 0 <= t < len(obs), f"t={t} outside the episode of {len(obs)} frames"
    fig, axes = new_figure(1, 2, width=3.2, height=2.6, gridspec_kw={"width_ratios": [1, 1.6]})
    axes[0, 0].imshow(obs[t])
    axes[0, 0].axis("off")
    axes[0, 0].set_title(f"{title} t={t}", fontsize=9)
    ax = axes[0, 1]
    ax.plot(reward, color=PALETTE[0], lw=1)
    ax.axvline(t, color=PALETTE[1], lw=1)
    ax.set(xlabel="agent step", ylabel="true reward", title=f"return {reward.sum():.0f}")
    fig.tight_layout()
    return fig


# --- vision-language model (issue 3) ----------------------------------------------------------

def _pca_2d(points: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """Project (N, E) points on the two principal axes of ``fit`` (default: the points)."""
    fit = points if fit is None else fit
    mean = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    return (points - mean) @ vt[:2].T


def similarity_matrix(sim, row_labels: Sequence[str], col_labels: Sequence[str], title: str = "",
                      xlabel: str = "", ylabel: str = "", annotate: bool = True):
    """A heatmap of cosine similarities (R, C) with labelled rows and columns."""
    sim = np.asarray(sim, dtype=np.float64)
    assert sim.shape == (len(row_labels), len(col_labels)), f"sim {sim.shape} vs labels {len(row_labels)}x{len(col_labels)}"
    fig, axes = new_figure(width=0.55 * len(col_labels) + 2.5, height=0.4 * len(row_labels) + 1.5)
    ax = axes[0, 0]
    im = ax.imshow(sim, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.grid(False)
    if annotate and sim.size <= 200:
        for (r, c), v in np.ndenumerate(sim):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if v < sim.mean() else "black")
    fig.colorbar(im, ax=ax, label="cosine")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return fig


def modality_projection(video, text, video_groups: Sequence[str] | None = None,
                        text_groups: Sequence[str] | None = None, noisy=None, title: str = "",
                        ax=None):
    """Video (N, E) and text (M, E) embeddings on a 2-D PCA (fitted on both): the two modality
    'cones' and the gap vector between their centroids; optional noisy video embeddings (K, E)."""
    video, text = np.asarray(video, np.float64), np.asarray(text, np.float64)
    fit = np.concatenate([video, text])
    pv, pt = _pca_2d(video, fit), _pca_2d(text, fit)
    if ax is None:
        fig, axes = new_figure(width=5.0, height=4.2)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    groups = sorted(set(video_groups or []) | set(text_groups or []))
    colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    if noisy is not None:
        pn = _pca_2d(np.asarray(noisy, np.float64), fit)
        ax.scatter(pn[:, 0], pn[:, 1], s=6, c="0.6", alpha=0.35, marker=".", label="noisy video")
    vc = [colour[g] for g in video_groups] if video_groups else PALETTE[0]
    tc = [colour[g] for g in text_groups] if text_groups else PALETTE[1]
    ax.scatter(pv[:, 0], pv[:, 1], s=10, c=vc, marker="o", alpha=0.6, label="video clips")
    ax.scatter(pt[:, 0], pt[:, 1], s=40, c=tc, marker="*", edgecolors="k", linewidths=0.3, label="text")
    cv, ct = pv.mean(0), pt.mean(0)
    ax.annotate("", xy=ct, xytext=cv, arrowprops=dict(arrowstyle="->", lw=2, color="k"))
    ax.text(*((cv + ct) / 2), " gap", fontsize=9)
    for g in groups:
        ax.scatter([], [], c=colour[g], s=15, label=g)
    ax.legend(fontsize=7, loc="best", markerscale=1.2)
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title)
    return fig


def prompt_retrieval(frames, sims, prompt: str, all_sims=None, labels: Sequence[str] | None = None,
                     groups: Mapping[str, Sequence[float]] | None = None):
    """The K clips nearest a prompt (frames (K, S, S, 3), one per clip, with their cosines (K,))
    beside the histogram of the prompt's cosine to every clip (``all_sims``), optionally split
    into named ``groups`` (e.g. clips whose concept matches the prompt vs the rest)."""
    frames = _as_frames(frames)
    k = len(frames)
    fig, axes = new_figure(1, k + 2, width=1.3, height=1.9, gridspec_kw={"width_ratios": [1] * k + [1.2, 1.2]})
    for i in range(k):
        ax = axes[0, i]
        ax.imshow(frames[i])
        ax.axis("off")
        ax.set_title(f"{sims[i]:.2f}" + (f"\n{labels[i]}" if labels is not None else ""), fontsize=7)
    gs = axes[0, k].get_gridspec()
    axes[0, k].remove()
    axes[0, k + 1].remove()
    hax = fig.add_subplot(gs[0, k:])
    data = groups if groups is not None else ({"all clips": all_sims} if all_sims is not None else {})
    if data:
        histograms(data, bins=25, xlabel="cosine(prompt, clip)", ax=hax)
    fig.suptitle(f"nearest clips to: {prompt!r}", fontsize=10)
    fig.tight_layout()
    return fig


def noise_coverage(clean_to_noisy: Mapping[str, Sequence[float]], matched_text: Sequence[float],
                   title: str = ""):
    """Histograms of cos(noisy, clean video) for several noise levels against the cosine between
    a clip and its own caption: where they overlap, text sits inside the noise cloud."""
    groups = {"clip vs its caption (text)": matched_text, **clean_to_noisy}
    return histograms(groups, bins=40, xlabel="cosine to the clean video embedding", title=title)


# --- world model, connector, aligner (issue 4) ------------------------------------------------

def wm_loss_curves(metrics: Mapping[str, Sequence[float]], smooth: int = 1):
    """Training curves from ``training.read_metrics``: reconstruction, KLs, connector and aligner.

    One panel per available group; x is ``metrics["step"]``.
    """
    step = np.asarray(metrics["step"])
    groups = [("reconstruction (sum of squared pixel errors)", ["recon_loss"], True),
              ("KL (nats, summed over groups)", ["model_kl", "connector_kl", "connector_initial_kl"], False),
              ("aligner cosine distance", ["aligner_cosine_distance", "aligner_noisy_distance"], False)]
    groups = [(t, [k for k in keys if k in metrics], logy) for t, keys, logy in groups]
    groups = [g for g in groups if g[1]]
    fig, axes = new_figure(1, len(groups), width=4.0, height=3.0)
    for ax, (title, keys, logy) in zip(axes[0], groups):
        labels = {"aligner_noisy_distance": "noisy input (baseline)", "aligner_cosine_distance": "aligner output"}
        curves({labels.get(k, k): metrics[k] for k in keys}, x=step, title=title, logy=logy, smooth=smooth, ax=ax)
    fig.tight_layout()
    return fig


def reconstruction_grid(truth, recon, n: int = 8, size: float = 1.0):
    """Frames (N, S, S, 3) above their reconstructions (N, S, S, 3); first ``n`` of each."""
    truth, recon = _as_frames(truth)[:n], _as_frames(recon)[:n]
    return video_rows({"data": truth, "reconstruction": recon}, size=size, max_frames=n)


def open_loop_strip(truth, pred, context: int, every: int = 1, size: float = 1.0):
    """Ground truth (T, S, S, 3) above the model's open-loop prediction (T, S, S, 3).

    The first ``context`` predicted frames are reconstructions of observed frames; after them the
    model imagines with the true actions only. Predicted frames get a red border after the context.
    """
    truth, pred = _as_frames(truth), _as_frames(pred).copy()
    pred[context:, :2], pred[context:, -2:], pred[context:, :, :2], pred[context:, :, -2:] = (
        (213, 94, 0),) * 4
    fig = video_rows({"truth": truth, f"model ({context} context frames, then imagined)": pred},
                     every=every, size=size, max_frames=len(truth))
    return fig


def open_loop_errors(mse, baseline_mse, title: str = "open-loop prediction error"):
    """Per-step mean squared pixel error of the model vs the "repeat the last context frame" baseline."""
    fig = curves({"world model": mse, "repeat last frame": baseline_mse},
                 x=np.arange(1, len(mse) + 1), xlabel="steps after the context", ylabel="MSE per pixel",
                 title=title)
    return fig


# --- rewards and behaviour (issue 5) ----------------------------------------------------------

def alignment_scores(scores, window: int | None = None, labels: Sequence[str] | None = None,
                     title: str = "temporal alignment: score of each offset", ax=None):
    """Score of each candidate offset t (``rewards.offset_scores``): (O,) or (O, B), one line per
    trajectory, with the chosen (best) offset of each marked. Returns a ``Figure``."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[:, None] if scores.ndim == 1 else scores
    if ax is None:
        fig, axes = new_figure(width=4.5)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    offsets = np.arange(scores.shape[0])
    for b in range(scores.shape[1]):
        color = PALETTE[b % len(PALETTE)]
        label = labels[b] if labels is not None else (None if scores.shape[1] == 1 else f"trajectory {b}")
        ax.plot(offsets, scores[:, b], marker="o", color=color, label=label)
        best = int(np.argmax(scores[:, b]))
        ax.scatter([best], [scores[best, b]], s=120, facecolors="none", edgecolors=color, linewidths=2, zorder=3)
    window_txt = "" if window is None else f" (mean over a window of {window} steps)"
    ax.set(xlabel="offset t: target starts at agent step t", ylabel="alignment score" + window_txt, title=title)
    ax.set_xticks(offsets)
    if scores.shape[1] > 1 or labels is not None:
        ax.legend()
    return fig


def rewards_over_time(series: Mapping[str, Sequence[float]], offset: int | None = None, title: str = "",
                      xlabel: str = "step", ylabel: str = "reward", standardize: bool = False, ax=None):
    """Several rewards of one trajectory over time (e.g. GenRL, VLM-RM, WM-CLIP, true reward), with
    the alignment offset marked. ``standardize`` z-scores each series so different scales compare."""
    if ax is None:
        fig, axes = new_figure(width=5.5)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    for name, ys in series.items():
        ys = np.asarray(ys, dtype=np.float64).reshape(-1)
        if standardize:
            ys = (ys - ys.mean()) / (ys.std() + 1e-8)
        ax.plot(np.arange(len(ys)), ys, label=name)
    if offset is not None:
        ax.axvline(offset, color="0.4", linestyle="--", linewidth=1)
        ax.annotate("offset", (offset, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                    ha="left", va="top", color="0.3")
    ax.set(xlabel=xlabel, ylabel=("standardized " if standardize else "") + ylabel, title=title)
    if len(series) > 1:
        ax.legend()
    return fig


# --- benchmark (issue 7) ----------------------------------------------------------------------
