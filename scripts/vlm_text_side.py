"""Three changes on the text side of the embedded VLM, measured on the benchmark's held-out clips.

Issue #3 asks that never-seen paraphrases keep 80% of the templated prompts' accuracy. Any change
to the video tower changes every clip embedding, and with it every connector, aligner and benchmark
cell trained on them. A change on the text side leaves the clip embeddings as they are, so it would
be the cheap way to ship one. This script measures three such changes. All keep the shipped video
tower and the frozen MiniLM:

1. **Prompt ensembles** (CLIP's zero-shot trick): embed each prompt inside a few generic templates
   ("a video of {}", ...) and average the unit vectors.
2. **A learned linear head** on MiniLM: ``t' = normalize(t W)``, with W (E, E) starting at the
   identity. It is trained with the pretraining loss (multi-positive InfoNCE) against the *fixed*
   clip embeddings of training clips and their captions. ``reg * ||W - I||^2`` says how far W may
   move.
3. **A caption memory** (:mod:`genrl_lite.caption_memory`): each prompt is mixed with the mean of its
   k nearest pretraining captions, with weight w. ``--save-memory`` writes the memory that
   ``load_vlm(caption_memory=...)`` loads.

Accuracy is the benchmark's: ``scripts/bench_vlm.py``'s balanced held-out clips, templated vs
paraphrased concept prompts. The memory's shipped setting (w 0.5, k 5) is also measured on a second
set of paraphrases, ``FRESH_PARAPHRASES``, written after that setting was chosen.
Shapes: N clips, C captions, E embedding (384).

    python scripts/vlm_text_side.py --threads 1 --out results/diagnostics/vlm_text_side.json
    python scripts/vlm_text_side.py --save-memory data/models/vlm/caption_memory.pt   # only the memory
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import genrl_lite  # noqa: F401  (MUJOCO_GL and the import order)
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vlm  # noqa: E402
from pretrain_vlm import caption_pools, embed_captions, load_corpus, multi_positive_infonce  # noqa: E402

from genrl_lite import captions  # noqa: E402
from genrl_lite.caption_memory import DEFAULT_K, DEFAULT_WEIGHT, CaptionMemory, build_caption_memory  # noqa: E402
from genrl_lite.runtime import atomic_path, data_dir, git_commit  # noqa: E402
from genrl_lite.vlm import load_vlm  # noqa: E402

TEMPLATE_SETS = {
    "video": ["{}", "a video of {}", "a clip of {}"],
    "video5": ["{}", "a video of {}", "a clip of {}", "footage of {}", "a short video showing {}"],
    "scene": ["{}", "{}.", "in this video, {}", "this clip shows {}"],
}
"""Generic wrappers for prompt ensembles: none names a body, a posture or a motion."""

FRESH_PARAPHRASES = {
    "posture": {
        "standing": ["tall and steady on its legs", "upright and not fallen"],
        "one_leg_up": ["balancing with a foot raised", "one limb lifted off the ground"],
        "kneeling": ["crouched low on folded knees", "sitting back on its heels"],
        "splits": ["legs spread wide along the floor", "doing a wide leg stretch"],
        "lying_back": ["flat on the floor looking up", "stretched out on its spine"],
        "lying_front": ["prone on the ground", "flat on its stomach"],
        "upside_down": ["with its legs above its body", "flipped so its feet are on top"],
        "rearing": ["lifting its front off the ground", "reared back with forepaws raised"],
        "headstand": ["balanced on its head", "hind end up and head down"],
        "on_side": ["fallen over sideways", "lying tipped onto one flank"],
        "hands_up": ["holding both arms over its head", "with its arms raised high"],
    },
    "motion": {
        "still": ["at rest, no movement", "staying put"],
        "in_place": ["moving its limbs without getting anywhere", "wriggling but not travelling"],
        "forward_slow": ["making its way forward at a slow pace", "drifting ahead slowly"],
        "forward_fast": ["dashing ahead", "travelling forward at high speed"],
        "backward": ["going in the reverse direction", "drifting backwards"],
        "flipping": ["turning head over tail", "spinning around in the air"],
    },
}
"""A second set of held-out phrasings, written on 2026-12-07 *after* the caption memory's weight and
k had been chosen on ``captions.PARAPHRASES``, to test that choice on words it was not chosen on. None
contains, or is contained in, a training phrasing or a first-set paraphrase (checked by the tests)."""


@contextlib.contextmanager
def paraphrase_set(table: dict):
    """Let the benchmark's paraphrases be ``table`` (same layout as ``captions.PARAPHRASES``) inside the block."""
    old = captions.PARAPHRASES
    captions.PARAPHRASES = table
    try:
        yield table
    finally:
        captions.PARAPHRASES = old


def ensemble(embed_text, templates: list[str]):
    """``prompts -> (K, E)``: the mean of ``embed_text`` over the templates, renormalized."""
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"every template needs a '{{}}' for the prompt, got {templates!r}")

    def embed(prompts):
        return F.normalize(torch.stack([embed_text([t.format(p) for p in prompts]) for t in templates]).mean(0), dim=-1)
    return embed


def with_head(embed_text, W: torch.Tensor):
    """``prompts -> (K, E)``: ``normalize(embed_text(prompts) @ W)``."""
    return lambda prompts: F.normalize(embed_text(prompts) @ W, dim=-1)


@contextlib.contextmanager
def text_side(vlm, embed):
    """Let ``vlm.embed_text`` be ``embed`` inside the block (the benchmark's functions call it)."""
    raw = vlm.embed_text
    vlm.embed_text = embed
    try:
        yield vlm
    finally:
        vlm.embed_text = raw


def concept_ids(labels: list[tuple], domains: list[str], postures: list[str], motions: list[str]) -> torch.Tensor:
    """(K, 3) long: domain, posture, motion index of each (domain, posture|None, motion|None); -1 = None."""
    return torch.tensor([(domains.index(d), postures.index(p) if p else -1, motions.index(m) if m else -1)
                         for d, p, m in labels])


def positive_mask(clip_ids: torch.Tensor, cap_ids: torch.Tensor) -> torch.Tensor:
    """(B, K) bool: caption k describes clip b (same domain; its posture and motion, where it names them).
    The vectorized form of ``pretrain_vlm.positives``."""
    assert clip_ids.shape[1:] == (3,) and cap_ids.shape[1:] == (3,), \
        f"want (B, 3) and (K, 3) concept ids, got {tuple(clip_ids.shape)} and {tuple(cap_ids.shape)}"
    same = clip_ids[:, None, 0] == cap_ids[None, :, 0]
    post = (cap_ids[None, :, 1] == -1) | (cap_ids[None, :, 1] == clip_ids[:, None, 1])
    mot = (cap_ids[None, :, 2] == -1) | (cap_ids[None, :, 2] == clip_ids[:, None, 2])
    return same & post & mot


def train_head(V: torch.Tensor, clip_ids: torch.Tensor, T: torch.Tensor, cap_ids: torch.Tensor,
               clip_captions: list[list[int]], reg: float, steps: int = 400, batch: int = 256,
               scale: float = 61.4, lr: float = 1e-3, seed: int = 0) -> tuple[torch.Tensor, list[float]]:
    """Fit W (E, E) from the identity: clips V (N, E) stay fixed; each step draws ``batch`` clips and
    one of the captions ``clip_captions[n]`` (indices into T (C, E)) for each. Returns W and the losses."""
    assert V.shape[1] == T.shape[1], f"clips {tuple(V.shape)} and captions {tuple(T.shape)} differ in E"
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero([len(c) > 0 for c in clip_captions])
    if len(usable) < 2:
        raise ValueError("need at least two clips with a caption to train a text head")
    eye = torch.eye(T.shape[1])
    W = eye.clone().requires_grad_(True)
    opt = torch.optim.Adam([W], lr=lr)
    losses = []
    for _ in range(steps):
        b = rng.choice(usable, min(batch, len(usable)), replace=False)
        caps = torch.tensor([clip_captions[n][rng.integers(len(clip_captions[n]))] for n in b])
        pos = positive_mask(clip_ids[b], cap_ids[caps]) | (caps[:, None] == caps[None, :])
        loss = multi_positive_infonce(V[b], F.normalize(T[caps] @ W, dim=-1), torch.tensor(scale), pos)
        opt.zero_grad(set_to_none=True)
        (loss + reg * ((W - eye) ** 2).sum()).backward()
        opt.step()
        losses.append(loss.item())
    return W.detach(), losses


def paraphrase_ratio(vlm, held: dict, per_concept: int, video_cache: dict) -> dict:
    """The benchmark's templated and paraphrase accuracy (both factors) with ``vlm.embed_text`` as it is
    now; clip embeddings are computed once into ``video_cache``."""
    rng = np.random.default_rng(0)  # the same balanced clips for every variant
    out = {}
    for factor in ("posture", "motion"):
        idx = bench_vlm.balanced_indices(held, factor, per_concept, rng)
        if factor not in video_cache:
            video_cache[factor] = {d: vlm.embed_video(bench_vlm.clips_of(held, i)) for d, i in idx.items()}
        video = video_cache[factor]
        templ = bench_vlm.accuracy(vlm, held, factor, idx, video)[0]
        para = float(np.mean([bench_vlm.accuracy(vlm, held, factor, idx, video, k)[0] for k in range(2)]))
        out[factor] = dict(templated=round(templ, 4), paraphrase=round(para, 4))
    t = float(np.mean([r["templated"] for r in out.values()]))
    p = float(np.mean([r["paraphrase"] for r in out.values()]))
    return dict(out, templated=round(t, 4), paraphrase=round(p, 4), ratio=round(p / max(t, 1e-9), 4))


def corpus_memory(vlm, train: dict, folder: Path, weight: float = DEFAULT_WEIGHT, k: int = DEFAULT_K) -> CaptionMemory:
    """The distinct captions that pretraining draws for ``train`` (``pretrain_vlm.caption_pools``, seed 0),
    with their MiniLM embeddings (cached next to the corpus, as pretraining does)."""
    texts, _, _ = caption_pools(train)
    T = embed_captions(vlm, texts, folder / "caption_embeddings.pt")
    row = {t: i for i, t in enumerate(texts)}
    return build_caption_memory(lambda batch: T[[row[t] for t in batch]], texts, weight, k,
                                source=f"caption_pools(seed 0) of {', '.join(train['files'])}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=None, help="default: data/vlm_corpus")
    parser.add_argument("--train-clips", type=int, default=12000, help="training clips the head sees")
    parser.add_argument("--regs", type=float, nargs="+", default=[1.0, 0.1, 0.01, 0.001],
                        help="penalties on ||W - I||^2, one head each")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--per-concept", type=int, default=60, help="held-out clips per concept (benchmark's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-weights", type=float, nargs="+", default=[0.3, 0.5, 0.8])
    parser.add_argument("--memory-k", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--out", type=Path, default=None, help="JSON of every number printed")
    parser.add_argument("--save-memory", type=Path, default=None, metavar="PATH",
                        help=f"only build the caption memory (weight {DEFAULT_WEIGHT}, k {DEFAULT_K}) and save it")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    vlm = load_vlm()
    folder = args.corpus or data_dir() / "vlm_corpus"
    train = load_corpus(folder)
    if args.save_memory:
        memory = corpus_memory(vlm, train, folder)
        memory.save(args.save_memory)
        print(f"saved {memory.describe()} to {args.save_memory} ({args.save_memory.stat().st_size / 1e6:.1f} MB)")
        return dict(memory=str(args.save_memory), captions=len(memory.texts))
    held = load_corpus(folder, heldout=True)
    cache: dict = {}
    command = "python scripts/vlm_text_side.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = dict(command=command, commit=git_commit(), vlm=vlm.name, heldout_files=held["files"],
                  train_files=train["files"], args={
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})
    result["shipped"] = paraphrase_ratio(vlm, held, args.per_concept, cache)
    print(f"shipped text side: {result['shipped']}", flush=True)

    result["ensembles"] = {}
    for name, templates in TEMPLATE_SETS.items():
        with text_side(vlm, ensemble(vlm.embed_text, templates)):
            r = paraphrase_ratio(vlm, held, args.per_concept, cache)
        result["ensembles"][name] = dict(templates=templates, **r)
        print(f"prompt ensemble {name!r} {templates}: {r}", flush=True)

    memory = corpus_memory(vlm, train, folder)
    result["memory"] = dict(captions=len(memory.texts), source=memory.source, grid=[])
    for w in args.memory_weights:
        for k in args.memory_k:
            m = memory.with_weight(w, min(k, len(memory.texts)))
            with text_side(vlm, lambda prompts, m=m, raw=vlm.embed_text: m.apply(raw(prompts))):
                r = paraphrase_ratio(vlm, held, args.per_concept, cache)
            result["memory"]["grid"].append(dict(weight=w, k=m.k, **r))
            print(f"caption memory weight {w:g}, k {m.k} ({len(memory.texts)} captions): {r}", flush=True)
    with paraphrase_set(FRESH_PARAPHRASES):  # the shipped setting, on a second set of paraphrases
        plain = paraphrase_ratio(vlm, held, args.per_concept, cache)
        with text_side(vlm, lambda prompts, raw=vlm.embed_text: memory.apply(raw(prompts))):
            mixed = paraphrase_ratio(vlm, held, args.per_concept, cache)
    result["fresh_paraphrases"] = dict(plain=plain, memory=dict(weight=memory.weight, k=memory.k, **mixed))
    print(f"second paraphrase set: plain {plain}; caption memory (weight {memory.weight:g}, k {memory.k}) {mixed}",
          flush=True)

    # The head: fixed clip embeddings of a random subset of training clips, and their captions.
    rng = np.random.default_rng(0)
    sel = np.sort(rng.choice(len(train["starts"]), min(args.train_clips, len(train["starts"])), replace=False))
    V = torch.cat([vlm.embed_video(bench_vlm.clips_of(train, sel[i:i + 256])) for i in range(0, len(sel), 256)])
    texts, labels, pools = caption_pools(train)
    T = embed_captions(vlm, texts, folder / "caption_embeddings.pt")
    domains = sorted(set(train["domain"]))
    postures = sorted({p for _, p, _ in labels if p})
    motions = sorted({m for _, _, m in labels if m})
    clip_labels = [(train["domain"][n], train["posture"][n] or None, train["motion"][n] or None) for n in sel]
    clip_captions = [sum((pools.get(c, []) for c in dict.fromkeys([(d, p, m), (d, p, None), (d, None, m)]) if c[1] or c[2]), [])
                     for d, p, m in clip_labels]
    clip_ids = concept_ids(clip_labels, domains, postures, motions)
    cap_ids = concept_ids(labels, domains, postures, motions)
    print(f"head: {len(sel)} training clips, {len(texts)} captions ({time.time() - t0:.0f} s so far)", flush=True)
    result["heads"] = []
    for reg in args.regs:
        W, losses = train_head(V, clip_ids, T, cap_ids, clip_captions, reg, steps=args.steps)
        with text_side(vlm, with_head(vlm.embed_text, W)):
            r = paraphrase_ratio(vlm, held, args.per_concept, cache)
        moved = float((W - torch.eye(W.shape[0])).norm())
        result["heads"].append(dict(reg=reg, w_minus_identity=round(moved, 3), loss_first=round(losses[0], 4),
                                    loss_last=round(float(np.mean(losses[-20:])), 4), **r))
        print(f"head reg {reg:g} (||W - I|| {moved:.2f}, loss {losses[0]:.3f} -> {np.mean(losses[-20:]):.3f}): {r}",
              flush=True)
    result["seconds"] = round(time.time() - t0, 1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
