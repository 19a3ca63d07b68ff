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
import textwrap
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


def _title_lines(title: str | None, width_in: float) -> list[str]:
    """``title`` wrapped to a figure ``width_in`` inches wide (about 12 characters per inch at size 10)."""
    return textwrap.wrap(title, max(20, int(width_in * 12))) if title else []


def _title_above(fig, lines: list[str], reserve: float) -> None:
    """Put the title lines in the top ``reserve`` inches, which the caller added to the figure's
    height before ``tight_layout``: the title never covers the first row's label."""
    if lines:
        h = fig.get_figheight()
        fig.suptitle("\n".join(lines), fontsize=10, y=1 - 0.05 / h, va="top")
        fig.subplots_adjust(top=1 - reserve / h)


def video_rows(videos: Mapping[str, np.ndarray], every: int = 1, size: float = 1.0, max_frames: int = 16,
               title: str | None = None):
    """Several videos (T, S, S, 3) as rows of a filmstrip, one row per label: compare side by side."""
    labels = list(videos)
    clips = [_as_frames(videos[k])[::every][:max_frames] for k in labels]
    t = max(len(c) for c in clips)
    lines = _title_lines(title, size * t)
    reserve = 0.2 + 0.18 * len(lines) if lines else 0.0
    fig, axes = new_figure(len(clips), t, width=size, height=size + reserve / len(clips))
    for r, (label, clip) in enumerate(zip(labels, clips)):
        for c in range(t):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(clip):
                ax.imshow(clip[c])
            if c == 0:
                ax.set_title(label, fontsize=8, loc="left")
    fig.tight_layout(pad=0.2)
    _title_above(fig, lines, reserve)
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
                      xlabel: str = "", ylabel: str = "", annotate: bool = True, label: str = "cosine"):
    """A heatmap of cosine similarities (R, C), or any other scores (``label`` names them), with labelled
    rows and columns; NaN cells are left blank."""
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
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < np.nanmean(sim) else "black")
    fig.colorbar(im, ax=ax, label=label)
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

def latent_swap(recon, swapped, group: int, cls: int, current: int | None = None, title: str = ""):
    """What one categorical latent does: a frame's reconstruction (S, S, 3), the frame decoded after
    setting latent group ``group`` to class ``cls`` (S, S, 3), and where the two differ (mean absolute
    pixel change, a heat map). ``current``: the class the posterior had picked for that group."""
    recon, swapped = _as_frames(recon)[0], _as_frames(swapped)[0]
    diff = np.abs(recon.astype(np.float64) - swapped.astype(np.float64)).mean(-1) / 255.0
    fig, axes = new_figure(1, 3, width=2.2, height=2.4)
    was = "" if current is None else f" (was {current})"
    for ax, img, name in zip(axes[0], (recon, swapped), ("reconstruction", f"group {group} -> class {cls}{was}")):
        ax.imshow(img)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    im = axes[0, 2].imshow(diff, cmap="magma", vmin=0.0, vmax=max(0.01, float(diff.max())))
    axes[0, 2].set_title(f"|change|, mean {diff.mean():.3f}", fontsize=9)
    axes[0, 2].axis("off")
    fig.colorbar(im, ax=axes[0, 2], fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def latent_effect_maps(maps, groups: Sequence[int] | None = None, ncols: int = 8, size: float = 0.9,
                       title: str = "", gap: int = 3):
    """Where each latent group acts: ``maps`` (K, S, S), e.g. the mean absolute pixel change when that
    group is set to each of its classes. One shared colour scale; each map is labelled with its group
    and its mean. Drawn as one image (``fig.axes[0].images[0]``, NaN around the maps)."""
    import matplotlib as mpl

    maps = np.asarray(maps, dtype=np.float64)
    assert maps.ndim == 3, f"maps must be (K, S, S), got {maps.shape}"
    K, S = maps.shape[:2]
    groups = list(range(K)) if groups is None else list(groups)
    ncols = max(1, min(ncols, K))
    nrows = int(np.ceil(K / ncols))
    label = S // 4                                   # room for a label above each map, in pixels
    col_step, row_step = S + gap, S + label
    mosaic = np.full((nrows * row_step, ncols * col_step - gap), np.nan)
    for i in range(K):
        r, c = divmod(i, ncols)
        mosaic[r * row_step + label:(r + 1) * row_step, c * col_step:c * col_step + S] = maps[i]
    fig, axes = new_figure(1, 1, width=size * ncols + 0.8, height=size * 1.25 * nrows + 0.3)
    ax = axes[0, 0]
    cmap = mpl.colormaps["magma"].with_extremes(bad="white")
    im = ax.imshow(mosaic, cmap=cmap, vmin=0.0, vmax=max(1e-6, float(np.nanmax(mosaic))), interpolation="nearest")
    for i in range(K):
        r, c = divmod(i, ncols)
        ax.text(c * col_step + S / 2, r * row_step + label - 1, f"g{groups[i]}: {maps[i].mean():.4f}",
                ha="center", va="bottom", fontsize=6.5)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def latent_classes(decoded, groups: Sequence[int], current: Sequence[int] | None = None, size: float = 0.64,
                   title: str = "", gap: int = 2):
    """Every class of some latent groups: ``decoded`` (K, C, S, S, 3), row k = the frame decoded with
    group ``groups[k]`` set to each of its C classes (all other groups unchanged). ``current`` (K,):
    the class the posterior picked in each group, framed in orange. Drawn as one image (fast even for
    32 x 32 frames); ``fig.axes[0].images[0]`` holds it."""
    decoded = np.asarray(decoded)
    assert decoded.ndim == 5 and len(decoded) == len(groups), \
        f"decoded must be (K, C, S, S, 3) with K = len(groups) = {len(groups)}, got {decoded.shape}"
    K, C, S = decoded.shape[:3]
    step = S + gap
    mosaic = np.full((K * step - gap, C * step - gap, 3), 255, np.uint8)
    for k in range(K):
        frames = _as_frames(decoded[k])
        for c in range(C):
            cell = mosaic[k * step:k * step + S, c * step:c * step + S]
            cell[:] = frames[c]
            if current is not None and int(current[k]) == c:
                cell[:2], cell[-2:], cell[:, :2], cell[:, -2:] = ((213, 94, 0),) * 4
    fig, axes = new_figure(1, 1, width=size * C + 0.6, height=size * K + 0.4)
    ax = axes[0, 0]
    ax.imshow(mosaic, interpolation="nearest")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.xaxis.tick_top()
    ax.set_xticks([c * step + S / 2 for c in range(C)], [str(c) for c in range(C)], fontsize=7)
    ax.set_yticks([k * step + S / 2 for k in range(K)], [f"group {g}" for g in groups], fontsize=8)
    ax.tick_params(length=0)
    ax.set_xlabel("class", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10, pad=18)
    fig.tight_layout(pad=0.2)
    return fig


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


def open_loop_strip(truth, pred, context: int, every: int = 1, size: float = 0.8):
    """Ground truth (T, S, S, 3) above the model's open-loop prediction (T, S, S, 3).

    The first ``context`` predicted frames are reconstructions of observed frames; after them the
    model imagines with the true actions only. Predicted frames get an orange border after the context.
    """
    truth, pred = _as_frames(truth), _as_frames(pred).copy()
    pred[context:, :2], pred[context:, -2:], pred[context:, :, :2], pred[context:, :, -2:] = (
        (213, 94, 0),) * 4
    steps = np.arange(len(truth))[::every]
    fig, axes = new_figure(2, len(steps), width=size, height=size * 1.08)
    for c, t in enumerate(steps):
        for r, frames in enumerate((truth, pred)):
            ax = axes[r, c]
            ax.imshow(frames[t])
            ax.axis("off")
        label = f"obs {t + 1}" if t < context else f"+{t - context + 1}"
        axes[0, c].set_title(label, fontsize=7)
    axes[0, 0].text(-0.1, 0.5, "truth", transform=axes[0, 0].transAxes, ha="right", va="center", fontsize=8)
    axes[1, 0].text(-0.1, 0.5, "model", transform=axes[1, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.suptitle(f"{context} observed frames (reconstructed), then imagined from the actions alone (orange)",
                 fontsize=9)
    fig.subplots_adjust(wspace=0.04, hspace=0.05, top=0.76)
    return fig


def open_loop_errors(mse, baseline_mse, title: str = "open-loop prediction error"):
    """Per-step mean squared pixel error of the model vs the "repeat the last context frame" baseline."""
    fig = curves({"world model": mse, "repeat last frame": baseline_mse},
                 x=np.arange(1, len(mse) + 1), xlabel="steps after the context", ylabel="MSE per pixel",
                 title=title)
    from matplotlib.ticker import MaxNLocator

    fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


# --- connector and aligner (issue 4) ----------------------------------------------------------

def video_strips(rows: Mapping[str, np.ndarray], every: int = 1, max_frames: int = 16, size: float = 0.6,
                 title: str | None = None, gap: int = 2):
    """Labelled videos (T, S, S, 3), one compact row each: the frames side by side in one image, drawn
    pixel for pixel (``size`` inches per frame; 0.64 at 100 dpi = no resampling of 64x64 frames)."""
    labels = list(rows)
    clips = [_as_frames(rows[k])[::every][:max_frames] for k in labels]
    n = max(len(c) for c in clips)
    lines = _title_lines(title, size * n)
    reserve = 0.25 + 0.18 * len(lines) if lines else 0.0
    fig, axes = new_figure(len(clips), 1, width=size * n, height=size + 0.22 + reserve / len(clips))
    for ax, label, clip in zip(axes[:, 0], labels, clips):
        s = clip.shape[1]
        strip = np.full((s, n * (s + gap) - gap, 3), 255, np.uint8)
        for i, f in enumerate(clip):
            strip[:, i * (s + gap):i * (s + gap) + s] = f
        ax.imshow(strip, interpolation="nearest")
        ax.axis("off")
        ax.set_title(label, fontsize=8, loc="left")
    fig.tight_layout(pad=0.2, h_pad=1.0)
    _title_above(fig, lines, reserve)
    return fig


def imagined_prompt(videos: Mapping[str, np.ndarray], prompt: str, every: int = 2, max_frames: int = 16,
                    size: float = 0.6):
    """What a prompt decodes into: one filmstrip row per variant (e.g. ``{"aligner": (T, S, S, 3),
    "no aligner": (T, S, S, 3)}``, the labels can name the nearest task prompt), under the prompt."""
    return video_strips(videos, every, max_frames, size, title=f"prompt: {prompt!r}")


def prompt_video_grid(videos: Mapping[str, Mapping[str, np.ndarray]], every: int = 2, max_frames: int = 8,
                      size: float = 0.6):
    """Several prompts, each with its variants: ``{prompt: {variant: (T, S, S, 3)}}`` -> a filmstrip with
    one row per (prompt, variant), the rows of one prompt next to each other."""
    rows = {f"{prompt}  [{variant}]": v for prompt, vs in videos.items() for variant, v in vs.items()}
    return video_strips(rows, every, max_frames, size)


def prompt_accuracy(accuracy: Mapping[str, Mapping[str, float]], chance: float | None = None,
                    groups: Sequence[str] = ("all", "task_prompts", "paraphrases", "standard", "custom"),
                    title: str = "imagined video -> nearest task prompt (top-1)"):
    """Grouped bars of the prompt benchmark: ``accuracy[variant][group]`` (None = no prompts in the
    group), one colour per variant (``aligner``, ``no_aligner``, ``text_only``), chance as a line."""
    variants = list(accuracy)
    groups = [g for g in groups if any(accuracy[v].get(g) is not None for v in variants)]
    fig, axes = new_figure(width=max(4.5, 1.1 * len(groups)), height=3.0)
    ax = axes[0, 0]
    w = 0.8 / len(variants)
    xs = np.arange(len(groups))
    for i, v in enumerate(variants):
        ys = [np.nan if accuracy[v].get(g) is None else accuracy[v][g] for g in groups]
        ax.bar(xs + (i - (len(variants) - 1) / 2) * w, ys, width=w, label=v.replace("_", " "),
               color=PALETTE[i % len(PALETTE)])
    if chance is not None:
        ax.axhline(chance, color="0.3", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(xs, [g.replace("_", " ") for g in groups])
    ax.set(ylim=(0, 1.3), ylabel="top-1 accuracy", title=title)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(fontsize=8, ncols=len(variants) + 1, loc="upper center")
    return fig


def aligner_projection(video, text, aligned, text_labels: Sequence[str] | None = None, title: str = "",
                       ax=None):
    """Where the aligner moves text: clips (N, E) as dots, prompts (M, E) as stars and their aligner
    outputs (M, E) as diamonds, with an arrow from each prompt to its output, on the 2-D PCA of the
    clips (the plane the connector knows)."""
    video, text, aligned = (np.asarray(x, np.float64) for x in (video, text, aligned))
    assert text.shape == aligned.shape, f"text {text.shape} and aligned {aligned.shape} must match"
    pv, pt, pa = (_pca_2d(x, video) for x in (video, text, aligned))
    if ax is None:
        fig, axes = new_figure(width=5.0, height=4.2)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    ax.scatter(pv[:, 0], pv[:, 1], s=6, c=PALETTE[0], alpha=0.3, label="clips (visual embeddings)")
    ax.scatter(pt[:, 0], pt[:, 1], s=60, c=PALETTE[1], marker="*", edgecolors="k", linewidths=0.3,
               label="prompts (text)")
    ax.scatter(pa[:, 0], pa[:, 1], s=30, c=PALETTE[2], marker="D", edgecolors="k", linewidths=0.3,
               label="aligner(prompt)")
    for i in range(len(pt)):
        ax.annotate("", xy=pa[i], xytext=pt[i], arrowprops=dict(arrowstyle="->", lw=0.8, color="0.4"))
        if text_labels is not None:
            ax.text(*pa[i], " " + str(text_labels[i]), fontsize=7)
    ax.legend(fontsize=7, loc="best")
    ax.set(xlabel="PC 1 of the clips", ylabel="PC 2 of the clips", title=title)
    return fig


# --- rewards and behaviour (issue 5) ----------------------------------------------------------

def prompt_preference(values, row_labels: Sequence[str], col_labels: Sequence[str], title: str = "",
                      label: str = "mean reward", center: bool = True):
    """Heatmap of a mean reward per episode group (rows) and prompt (columns), (R, C).

    ``center`` removes the row and column means first (double centering), leaving what is specific
    to each (group, prompt) pair: a reward that understands the prompts is largest where they match,
    even if one prompt pays more everywhere or one group scores high under every prompt."""
    values = np.asarray(values, dtype=np.float64)
    assert values.shape == (len(row_labels), len(col_labels)), (
        f"values {values.shape} for {len(row_labels)} rows and {len(col_labels)} columns")
    if center:
        values = values - values.mean(0, keepdims=True) - values.mean(1, keepdims=True) + values.mean()
    fig, axes = new_figure(width=1.1 * len(col_labels) + 2.5, height=0.55 * len(row_labels) + 1.5)
    ax = axes[0, 0]
    lim = np.abs(values).max() or 1.0
    im = ax.imshow(values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:+.3f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.grid(False)
    fig.colorbar(im, ax=ax, label=label + (" (centred)" if center else ""))
    ax.set_title(title)
    return fig


def reward_scatter(rewards: Mapping[str, Sequence[float]], true: Sequence[float], groups: Sequence[str] | None = None,
                   xlabel: str = "true task reward", title: str = "", size: float = 3.0):
    """One panel per reward: its values (y) against the true reward (x), e.g. window means of dataset
    episodes, coloured by ``groups`` (e.g. the data subset), Pearson r in each panel's title.
    ``rewards``: name -> (N,); ``true``: (N,). Returns a ``Figure``."""
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    groups = np.asarray(["all"] * len(true) if groups is None else list(groups))
    names = list(rewards)
    fig, axes = new_figure(1, len(names), width=size, height=size, sharex=True)
    for ax, name in zip(axes[0], names):
        ys = np.asarray(rewards[name], dtype=np.float64).reshape(-1)
        assert ys.shape == true.shape, f"{name}: {ys.shape} values for {true.shape} true rewards"
        for i, g in enumerate(dict.fromkeys(groups)):
            sel = groups == g
            ax.scatter(true[sel], ys[sel], s=10, alpha=0.6, color=PALETTE[i % len(PALETTE)], label=g)
        r = np.corrcoef(true, ys)[0, 1] if ys.std() > 0 and true.std() > 0 else np.nan
        ax.set(xlabel=xlabel, title=f"{name}\nr = {r:+.2f}")
    axes[0, 0].set_ylabel("reward from the prompt")
    if len(set(groups)) > 1:
        axes[0, -1].legend(fontsize=8, markerscale=1.5)
    if title:
        fig.suptitle(title)
    return fig


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


# --- behaviour (issue 5) ---------------------------------------------------------------------

def dream_vs_target(dream, target, rewards, step: int, offset: int = 0, title: str = "", size: float = 2.2):
    """One imagined step next to the target it is rewarded against, and the reward over the dream.

    ``dream`` (H, S, S, 3) decoded imagined frames (uint8, or float in [0, 1]); ``target`` (T, S, S, 3)
    decoded target frames, T >= 1; ``rewards`` (H,) the reward of each imagined step; ``step`` j in
    [0, H); ``offset``: the alignment offset of the reward, so step j is compared with target frame
    max(0, j - offset) (clipped to T - 1). Returns a ``Figure``: dream frame, target frame, reward
    curve with step j marked.
    """
    dream, target = _as_frames(dream), _as_frames(target)
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    assert len(rewards) == len(dream), f"{len(rewards)} rewards for {len(dream)} dream frames"
    assert 0 <= step < len(dream), f"step {step} outside the dream's {len(dream)} frames"
    k = min(max(0, step - offset), len(target) - 1)
    fig, axes = new_figure(1, 3, width=size, height=size, gridspec_kw={"width_ratios": [1, 1, 2]})
    for ax, frame, label in ((axes[0, 0], dream[step], f"dream, step {step}"),
                             (axes[0, 1], target[k], f"target, step {k}")):
        ax.imshow(frame)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    ax = axes[0, 2]
    ax.plot(np.arange(len(rewards)), rewards, marker="o", markersize=3, color=PALETTE[0])
    ax.scatter([step], [rewards[step]], s=90, facecolors="none", edgecolors=PALETTE[1], linewidths=2, zorder=3)
    if offset:
        ax.axvline(offset, color="0.4", linestyle="--", linewidth=1)
    ax.set(xlabel="imagined step", ylabel="reward", title=f"reward at step {step}: {rewards[step]:.3f}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- benchmark (issue 7) ----------------------------------------------------------------------

def benchmark_bars(groups: Sequence[str], series: Mapping[str, tuple], paper: Mapping[str, Sequence] | None = None,
                   ylabel: str = "normalized score", title: str = "", ax=None):
    """Grouped bars: one group per task/domain, one bar per method, standard errors as error bars.

    ``series[label] = (means (G,), stderrs (G,))`` with NaN for a cell not run (drawn as the text
    "not run", never as a bar) and NaN stderr for a single seed; ``paper[label]`` (G,) the paper's
    numbers (NaN where it has none), drawn as black ticks on the matching bars.
    """
    if ax is None:
        fig, axes = new_figure(width=min(14.0, max(5.0, 0.3 * len(groups) * max(1, len(series)))), height=3.2)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    xs, n = np.arange(len(groups)), max(1, len(series))
    width, paper_drawn = 0.8 / n, False
    for k, (label, (means, errs)) in enumerate(series.items()):
        means, errs = np.asarray(means, dtype=float), np.asarray(errs, dtype=float)
        pos = xs - 0.4 + width * (k + 0.5)
        ax.bar(pos, np.nan_to_num(means), width, color=PALETTE[k % len(PALETTE)], label=label)
        ok = np.isfinite(means) & np.isfinite(errs)                    # one seed: no error bar at all
        if ok.any():
            ax.errorbar(pos[ok], means[ok], errs[ok], fmt="none", capsize=2, color="black", linewidth=1)
        for x, m in zip(pos, means):
            if np.isnan(m):
                ax.text(x, 0.02, "not run", rotation=90, ha="center", va="bottom", fontsize=6, color="0.4")
        ref = np.asarray((paper or {}).get(label, [np.nan] * len(groups)), dtype=float)
        if np.isfinite(ref).any():
            ax.scatter(pos, ref, marker="_", s=120, color="black", zorder=3,
                       label=None if paper_drawn else "paper")
            paper_drawn = True
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_xticks(xs, list(groups), rotation=30, ha="right")
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def amortization_curve(n, genrl_seconds, model_free_seconds, break_even: int | None = None,
                       title: str = "", unit: str = "hours"):
    """Total wall time against the number of policies: GenRL (world model once + each policy) vs
    model-free (every policy from scratch). ``n``, ``genrl_seconds``, ``model_free_seconds`` are (N,)."""
    scale = {"hours": 3600.0, "minutes": 60.0, "seconds": 1.0}[unit]
    fig, axes = new_figure(width=4.5, height=3.0)
    ax = axes[0, 0]
    ax.plot(n, np.asarray(genrl_seconds) / scale, color=PALETTE[0], label="GenRL (world model + policies)")
    ax.plot(n, np.asarray(model_free_seconds) / scale, color=PALETTE[1], label="model-free (per policy)")
    if break_even is not None:
        ax.axvline(break_even, color="0.4", linestyle="--", linewidth=1)
        ax.text(break_even, ax.get_ylim()[1] * 0.95, f" break-even: {break_even}", va="top", fontsize=8)
    ax.set(xlabel="number of policies (prompts)", ylabel=f"total wall time ({unit})", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

