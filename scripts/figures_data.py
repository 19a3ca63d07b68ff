"""Figures and the frame table of the datasets (issue 2).

    python scripts/figures_data.py              # from the committed sample, data/sample/
    python scripts/figures_data.py --full       # from data/<domain>/ where collected (else the sample)

Writes ``figures/data_returns.png`` (true episode return of every subset, per domain),
``figures/data_gallery.png`` (exploration vs task-replay frames) and prints a markdown table of
frames per domain and subset, also written to ``data/sample/README.md`` (sample mode only).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import genrl_lite  # noqa: F401
import numpy as np

from genrl_lite import plotting, tasks
from genrl_lite.data import EpisodeDataset, domains_in, load_episode
from genrl_lite.runtime import atomic_path, data_dir, figures_dir

SUBSET_ORDER = ("expl", "stand", "walk", "run")


def _ordered(subsets):
    return sorted(subsets, key=lambda s: (SUBSET_ORDER.index(s) if s in SUBSET_ORDER else 99, s))


def load_datasets(full: bool) -> dict[str, EpisodeDataset]:
    """One dataset per domain: ``data/<domain>`` if ``full`` and collected, else ``data/sample/<domain>``."""
    sample, collected = data_dir() / "sample", set(domains_in(data_dir())) - {"sample"}
    domains = set(domains_in(sample)) | (collected if full else set())
    order = ["walker", "cheetah", "quadruped", "stickman"]
    out = {}
    for d in sorted(domains, key=lambda d: (order.index(d) if d in order else 99, d)):
        out[d] = EpisodeDataset(data_dir() if full and d in collected else sample, d, verbose=False)
    return out


def frames_table(datasets: dict[str, EpisodeDataset]) -> str:
    """Markdown: frames, episodes and true return (mean ± std, min-max) per domain and subset."""
    lines = ["| domain | subset | episodes | frames | true return mean ± std | min - max | reward task |",
             "|---|---|---|---|---|---|---|"]
    for domain, ds in datasets.items():
        rows = {r["subset"]: r for r in ds.summary()}
        for subset in _ordered(rows):
            r = rows[subset]
            task = f"{domain}_{subset}" if subset != "expl" else _expl_task(ds)
            ret = ("-" if r["return_mean"] is None else f"{r['return_mean']:.0f} ± {r['return_std']:.0f}")
            rng = ("-" if r["return_min"] is None else f"{r['return_min']:.0f} - {r['return_max']:.0f}")
            lines.append(f"| {domain} | {subset} | {r['episodes']} | {r['frames']} | {ret} | {rng} | {task} |")
        lines.append(f"| {domain} | **all** | {ds.num_episodes} | {ds.num_frames} | | | |")
    return "\n".join(lines)


def _expl_task(ds: EpisodeDataset) -> str:
    for path, subset in zip(ds.paths, ds.subset_of):
        if subset == "expl":
            return load_episode(path, with_eval=True)["meta"].get("task", "?")
    return "?"


def returns_figure(datasets):
    returns = {d: {s: ds.returns()[s] for s in _ordered(ds.subsets)} for d, ds in datasets.items()}
    refs = {}
    for d, ds in datasets.items():
        refs[d] = {}
        # The sample's episodes are cut short: scale the paper's 500-step expert return to their length.
        scale = (np.median(ds.lengths) - 1) / 500
        for s in ds.subsets:
            key = f"{d}_{s}"
            if key in tasks.TASKS and tasks.get_task(key).reference is not None:
                refs[d][s] = tasks.get_task(key).reference.expert * scale
    steps = int(np.median(np.concatenate([ds.lengths for ds in datasets.values()]))) - 1
    return plotting.subset_returns(returns, title=f"true return per data subset over {steps}-step episodes "
                                   "(dashed: the paper's expert return for that length)", references=refs)


def gallery_figure(datasets, frames_per_row: int = 10):
    """One row per (domain, subset): frames spread over the subset's first episode."""
    rows = {}
    for d, ds in datasets.items():
        for s in _ordered(ds.subsets):
            i = ds.subset_of.index(s)
            obs = ds[i]["obs"]
            idx = np.linspace(0, len(obs) - 1, frames_per_row).astype(int)
            rows[f"{d} / {s}"] = obs[idx]
    return plotting.video_rows(rows, size=0.8, max_frames=frames_per_row)


SAMPLE_README = """# Committed data sample

A few episodes per domain and subset, small enough to commit, for the tests, the notebooks' fast
mode and a first look. Full datasets are generated into `data/<domain>/` (git-ignored) by
`make data` (`python scripts/collect_data.py --all`).

Regenerate this sample (after `scripts/train_experts.py`, whose snapshots it rolls out) with

    python scripts/collect_data.py --sample --overwrite     # --domain walker: one domain only
    python scripts/figures_data.py

(without `--overwrite` existing episodes are kept; episodes are deterministic, so those of
unchanged experts come out the same).

Layout and format: `genrl_lite/data.py` (`<domain>/<subset>/<episode_id>.npz` for the world model,
`<episode_id>.eval.npz` with the true reward and state for evaluation only). Sample episodes are
cut to 250 agent steps (251 frames, `is_last` False) instead of the full 500 to keep the sample
small; returns below are therefore over 250 steps (max 500). `expl` = structured motor babbling
(`genrl_lite/exploration.py`), its reward column uses the task named in the table; the other
subsets are the task replay of SAC snapshots (`data/experts/`, poor to final) with action noise 0.2.

{table}

Size on disk: {size_mb:.1f} MB in {files} files.
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="use data/<domain>/ where it exists")
    args = parser.parse_args(argv)
    datasets = load_datasets(args.full)
    if not datasets:
        raise SystemExit("no data: run `python scripts/collect_data.py --sample` first")
    table = frames_table(datasets)
    print(table)
    fig = returns_figure(datasets)
    print("wrote", plotting.save(fig, figures_dir() / "data_returns.png"))
    plotting.close(fig)
    fig = gallery_figure(datasets)
    print("wrote", plotting.save(fig, figures_dir() / "data_gallery.png"))
    plotting.close(fig)
    if not args.full:
        sample = data_dir() / "sample"
        files = [p for p in sample.rglob("*.npz")]
        size = sum(p.stat().st_size for p in files) / 1e6
        with atomic_path(sample / "README.md") as tmp:
            tmp.write_text(SAMPLE_README.format(table=table, size_mb=size, files=len(files)))
        print(f"wrote {sample / 'README.md'} (sample: {size:.1f} MB in {len(files)} files)")


if __name__ == "__main__":
    main()
