"""Figures of the vision-language model (issue 3) for figures/: the modality gap in 2-D, a
similarity matrix, the noise that bridges the gap, and the benchmark's accuracies.

    python scripts/figures_vlm.py            # ~1-2 min on a 2-core CPU

Uses the held-out corpus (``python scripts/make_vlm_corpus.py --heldout``) when it exists, else
renders a few fresh clips (seeds 2000+, never used for pretraining).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import genrl_lite  # noqa: F401
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from genrl_lite import captions, plotting  # noqa: E402
from genrl_lite.runtime import data_dir, figures_dir  # noqa: E402
from genrl_lite.vlm import lafite_noise, load_vlm, modality_gap_stats, weights_dir  # noqa: E402


def heldout_clips(per_domain: int = 150, seed: int = 0):
    """(clips (N,8,64,64,3), domain, posture, motion) with both concepts labelled."""
    from pretrain_vlm import load_corpus

    rng = np.random.default_rng(seed)
    try:
        c = load_corpus(data_dir() / "vlm_corpus", heldout=True)
        frames, starts, dom, post, mot = c["frames"], c["starts"], c["domain"], c["posture"], c["motion"]
    except FileNotFoundError:
        from make_vlm_corpus import render_shard

        parts = [render_shard(d, 2000 + i, 600, stride=4, show=False)
                 for i, d in enumerate(["walker", "cheetah", "quadruped", "stickman"])]
        offsets = np.cumsum([0] + [len(p["frames"]) for p in parts[:-1]])
        frames = np.concatenate([p["frames"] for p in parts])
        starts = np.concatenate([p["starts"] + o for p, o in zip(parts, offsets)])
        dom = np.concatenate([[str(p["domain"])] * len(p["starts"]) for p in parts])
        post = np.concatenate([p["posture"] for p in parts])
        mot = np.concatenate([p["motion"] for p in parts])
    keep = []
    for d in np.unique(dom):
        idx = np.flatnonzero((dom == d) & (post != "") & (mot != ""))
        keep += list(rng.choice(idx, min(per_domain, len(idx)), replace=False))
    keep = np.asarray(sorted(keep))
    return frames[starts[keep, None] + np.arange(8)], dom[keep], post[keep], mot[keep]


def main(out: Path | None = None) -> list[str]:
    out = Path(out or figures_dir())
    torch.manual_seed(0)
    vlm = load_vlm()
    clips, dom, post, mot = heldout_clips()
    V = vlm.embed_video(clips)
    rng = np.random.default_rng(1)
    T = vlm.embed_text([captions.make_caption(d, p, m, rng) for d, p, m in zip(dom, post, mot)])
    written = []

    noisy = lafite_noise(V, 0.5, torch.Generator().manual_seed(0))
    fig = plotting.modality_projection(V.numpy(), T.numpy(), list(dom), list(dom), noisy=noisy.numpy(),
                                       title="clips (o), captions (*), noisy clips (alpha 0.5)")
    written.append(plotting.save(fig, out / "vlm_modality_gap.png"))
    plotting.close(fig)

    d = "walker"
    names = [p for p in captions.postures(d) if ((dom == d) & (post == p)).any()]
    groups = torch.stack([torch.nn.functional.normalize(V[(dom == d) & (post == p)].mean(0), dim=0) for p in names])
    sim = (groups @ vlm.embed_text([captions.concept_prompt(d, "posture", p) for p in names]).T).numpy()
    fig = plotting.similarity_matrix(sim, [f"{p} clips" for p in names],
                                     [captions.concept_prompt(d, "posture", p) for p in names],
                                     title="walker: held-out clip groups x posture prompts")
    written.append(plotting.save(fig, out / "vlm_similarity.png"))
    plotting.close(fig)

    gap = modality_gap_stats(V, T)
    fig = plotting.noise_coverage({f"noisy, alpha={a}": (lafite_noise(V, a) * V).sum(1).numpy() for a in (0.2, 0.5, 0.7)},
                                  (V * T).sum(1).numpy(),
                                  title=f"modality gap: centroid distance {gap['centroid_distance']:.2f}")
    written.append(plotting.save(fig, out / "vlm_noise_coverage.png"))
    plotting.close(fig)

    bench = weights_dir() / "bench.json"
    if bench.exists():
        acc = json.loads(bench.read_text())["accuracy"]
        values = {f"{f} {k}": acc[f][key] for f in ("posture", "motion")
                  for k, key in (("templated", "templated"), ("paraphrase", "paraphrase"), ("1 frame", "image_one_frame"))}
        fig = plotting.bars(values, ylabel="held-out top-1", title="embedded VLM (chance: posture "
                            f"{acc['posture']['chance']:.2f}, motion {acc['motion']['chance']:.2f})")
        written.append(plotting.save(fig, out / "vlm_accuracy.png"))
        plotting.close(fig)
    for w in written:
        print("wrote", w)
    return written


if __name__ == "__main__":
    main()
