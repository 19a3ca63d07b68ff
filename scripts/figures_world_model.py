"""Figures of the shipped world model (issue 4): what notebook 02 shows, as files in ``figures/``.

    python scripts/figures_world_model.py                        # the shipped walker model
    python scripts/figures_world_model.py --model data/runs/wm_walker --domain walker   # any checkpoint

Writes, from ``data/models/<domain>/model.pt`` (skipped with a printed note when it is missing):
``figures/wm_loss_curves.png`` (training curves from ``metrics.jsonl`` next to the model, when shipped),
``wm_reconstructions.png`` (held-out frames above their posterior reconstructions),
``wm_open_loop.png`` and ``wm_open_loop.gif`` (5 observed frames, then 16 imagined from the true
actions, against the ground truth), ``wm_open_loop_error.png`` (error per imagined step against the
"repeat the last frame" baseline), ``wm_latent_maps.png`` (where swapping each latent group changes a
frame) and ``wm_latent_groups.png`` (every class of the groups that change it most). Frames come from the held-out split of ``data/<domain>`` when the
full dataset exists, else from the committed sample (the printed note says which).
Also ``prompts_<domain>.png`` for every shipped domain: each task prompt decoded into an imagined video
with and without the aligner, from the frames ``scripts/bench_prompts.py`` stored next to the model
(``prompts_frames.npz``), and ``wm_reconstructions_domains.png``: six frames of each shipped domain above
its model's posterior reconstructions (what each model's latent z keeps: the quadruped's small legs blur
and the checkered floor it moves over is gone, a likely reason, not tested, why that model has not
learned what its actions do; ``results/diagnostics/README.md``).
"""
from __future__ import annotations

import argparse
import sys
import warnings

import genrl_lite  # noqa: F401  (before anything that may import dm_control)
import numpy as np
import torch

from genrl_lite import plotting
from genrl_lite.data import EmptyDatasetError, EpisodeDataset
from genrl_lite.pretrained import load_model, models_dir
from genrl_lite.runtime import data_dir, figures_dir
from genrl_lite.training import CheckpointError, evaluate_world_model, read_metrics
from genrl_lite.world_model import open_loop


def eval_data(domain: str) -> tuple[EpisodeDataset, str]:
    """Held-out episodes of the full dataset, else the committed sample; and a note saying which."""
    try:
        return EpisodeDataset(data_dir(), domain, split="heldout", verbose=False), f"held-out episodes of data/{domain}"
    except EmptyDatasetError:
        return (EpisodeDataset(data_dir() / "sample", domain, verbose=False),
                f"the committed sample data/sample/{domain} (no full dataset here)")


@torch.no_grad()
def decode_every_class(wm, frame: np.ndarray):
    """Posterior mode z (G, C) of one frame (S, S, 3) uint8, and the frames decoded with each group set to
    each class: returns ``recon`` (S, S, 3), ``decoded`` (G, C, S, S, 3) in [0, 1], ``current`` (G,)."""
    embed = wm.encode(wm.preprocess(torch.as_tensor(frame, device=wm.device)))
    z, _ = wm.rssm.posterior(embed, sample=False)                     # (G, C) one-hot
    G, C = z.shape
    swapped = z.repeat(G, C, 1, 1)                                    # (G, C, G, C): one copy of z per (g, c)
    for g in range(G):
        swapped[g, :, g] = torch.eye(C, device=z.device)              # in copy [g, c], group g is set to class c
    return (wm.decode(z.flatten()).cpu().numpy(), wm.decode(swapped.flatten(-2)).cpu().numpy(),
            z.argmax(-1).cpu().numpy())


def _side_by_side(truth: np.ndarray, pred: np.ndarray, context: int) -> np.ndarray:
    """(T, S, S, 3) truth | prediction, imagined frames framed in orange -> (T, S, 2S + 2, 3) uint8."""
    t, p = (np.clip(x * 255, 0, 255).astype(np.uint8) for x in (truth, pred))
    p[context:, :2], p[context:, -2:], p[context:, :, :2], p[context:, :, -2:] = ((213, 94, 0),) * 4
    gap = np.full((len(t), t.shape[1], 2, 3), 255, np.uint8)
    return np.concatenate([t, gap, p], 2)


def prompt_figures(out) -> None:
    """``prompts_<domain>.png``: each shipped domain's task prompts as imagined videos, aligner vs none."""
    from genrl_lite.pretrained import SHIPPED_DOMAINS

    for domain in SHIPPED_DOMAINS:
        path = models_dir() / domain / "prompts_frames.npz"
        if not path.exists():
            print(f"no {path}: run python scripts/bench_prompts.py --domain {domain}; prompts_{domain}.png not written")
            continue
        z = np.load(path)
        rows = {}
        for prompt, with_aligner, without in zip(z["prompts"], z["aligner"], z["no_aligner"]):
            rows[f"\"{prompt}\""], rows[f"\"{prompt}\" without the aligner"] = with_aligner, without
        fig = plotting.video_strips(rows, title=f"{domain}: prompt -> aligner -> connector -> decoder "
                                                "(every 4th imagined frame)")
        print("wrote", plotting.save(fig, out / f"prompts_{domain}.png"))
        plotting.close(fig)


def domain_reconstructions(out, n: int = 6) -> None:
    """``wm_reconstructions_domains.png``: ``n`` frames of every shipped domain above its model's reconstructions."""
    from genrl_lite.pretrained import SHIPPED_DOMAINS

    rows = {}
    for domain in SHIPPED_DOMAINS:
        try:
            wm = load_model(domain).world_model.eval()
        except CheckpointError as err:
            print(f"skipping {domain} in wm_reconstructions_domains.png: {err}")
            continue
        data, note = eval_data(domain)
        ep = data[int(np.random.default_rng(0).integers(data.num_episodes))]["obs"]
        frames = ep[np.linspace(len(ep) // 5, len(ep) - 1, n).astype(int)]         # (n, S, S, 3), past the reset
        with torch.no_grad():
            z, _ = wm.rssm.posterior(wm.encode(wm.preprocess(torch.as_tensor(frames, device=wm.device))), sample=False)
            recon = wm.decode(z.flatten(-2)).clamp(0, 1).cpu().numpy()
        rows[f"{domain} ({note.split(' (')[0]})"] = frames
        rows[f"{domain}: its model's reconstruction"] = (recon * 255).round().astype(np.uint8)
    if rows:
        fig = plotting.video_strips(rows, title="frames and what each shipped world model's latent z keeps of them")
        print("wrote", plotting.save(fig, out / "wm_reconstructions_domains.png"))
        plotting.close(fig)


def main(argv=()) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="walker", help="shipped domain name or checkpoint / out_dir")
    parser.add_argument("--domain", default=None, help="domain of --model (default: its shipped name)")
    parser.add_argument("--windows", type=int, default=128, help="windows for the error curve")
    args = parser.parse_args(list(argv))
    domain = args.domain or args.model
    if args.model == domain:   # the default run over the shipped models (not for one checkpoint)
        prompt_figures(figures_dir())
        domain_reconstructions(figures_dir())
    try:
        bundle = load_model(args.model)
    except CheckpointError as err:
        print(f"skipping world-model figures: {err}")
        return
    wm = bundle.world_model
    data, note = eval_data(domain)
    out = figures_dir()
    print(f"model {bundle.path} ({bundle.preset}, step {bundle.step}); frames from {note}")

    metrics_dir = models_dir() / domain if args.model == domain else bundle.path
    metrics = read_metrics(metrics_dir if metrics_dir.is_dir() else metrics_dir.parent)
    if metrics.get("step") is not None and len(metrics["step"]):
        fig = plotting.wm_loss_curves(metrics, smooth=max(1, len(metrics["step"]) // 50))
        print("wrote", plotting.save(fig, out / "wm_loss_curves.png"))
        plotting.close(fig)
    else:
        print(f"no metrics.jsonl next to the model ({metrics_dir}): wm_loss_curves.png not written")

    rng = np.random.default_rng(0)
    idx = rng.choice(data.num_episodes, 8, replace=data.num_episodes < 8)
    frames = np.stack([data[i]["obs"][rng.integers(len(data[i]["obs"]))] for i in idx])
    with torch.no_grad():
        z, _ = wm.rssm.posterior(wm.encode(wm.preprocess(torch.as_tensor(frames, device=wm.device))), sample=False)
        recon = wm.decode(z.flatten(-2)).cpu().numpy()
    fig = plotting.reconstruction_grid(frames, recon, n=8)
    print("wrote", plotting.save(fig, out / "wm_reconstructions.png"))
    plotting.close(fig)

    ol = open_loop(wm, data.sample(1, 21, np.random.default_rng(1)), context=5, horizon=16)
    fig = plotting.open_loop_strip(ol["truth"][0], ol["pred"][0], ol["context"])
    print("wrote", plotting.save(fig, out / "wm_open_loop.png"))
    plotting.close(fig)
    print("wrote", plotting.save_gif(_side_by_side(ol["truth"][0], ol["pred"][0], ol["context"]),
                                     out / "wm_open_loop.gif", fps=5))

    q = evaluate_world_model(wm, data, windows=args.windows)
    fig = plotting.open_loop_errors(q["open_loop_mse_per_step"], q["baseline_mse_per_step"],
                                    title=f"open-loop error on {args.windows} windows ({note.split(' of ')[0]})")
    print("wrote", plotting.save(fig, out / "wm_open_loop_error.png"))
    plotting.close(fig)
    print(f"recon MSE {q['recon_mse']:.5f}; open-loop MSE {q['open_loop_mse']:.5f} vs repeat-last-frame "
          f"{q['baseline_mse']:.5f} (ratio {q['open_loop_vs_baseline']:.2f})")

    ep = data[0]["obs"]
    rec, decoded, current = decode_every_class(wm, ep[len(ep) // 3])
    maps = np.abs(decoded - rec).mean((1, -1))                        # (G, S, S) mean |change| per group
    fig = plotting.latent_effect_maps(maps, title="where each latent group acts on one frame (mean |pixel change|)")
    print("wrote", plotting.save(fig, out / "wm_latent_maps.png"))
    plotting.close(fig)
    top = np.argsort(-maps.mean((1, 2)))[:4]
    fig = plotting.latent_classes(decoded[top], [int(g) for g in top], current[top],
                                  title="the 4 latent groups that change the frame most, every class")
    print("wrote", plotting.save(fig, out / "wm_latent_groups.png"))
    plotting.close(fig)


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        main(sys.argv[1:])
