"""Benchmark a VLM: held-out concept accuracy (templated vs paraphrased prompts), the modality gap,
the aligner's noise model, video vs image, and throughput. Prints everything and saves bench.json.

Held-out clips come from ``python scripts/make_vlm_corpus.py --heldout`` (seeds 1000+, never used
for pretraining). Accuracy = for each clip, is the nearest of its domain's concept prompts the
right concept? (``a walker lying on its back`` vs ``a walker standing up straight``...), evaluated
on up to ``--per-concept`` clips of every (domain, concept) so rare concepts count as much.

    python scripts/bench_vlm.py                         # the shipped embedded model
    python scripts/bench_vlm.py --vlm open_clip:ViT-B-32 --pretrained /path/weights.safetensors
    python scripts/bench_vlm.py --caption-memory 0.5    # text side with the caption memory (off by default)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import genrl_lite  # noqa: F401
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_vlm import load_corpus  # noqa: E402

from genrl_lite import captions  # noqa: E402
from genrl_lite.runtime import atomic_path, data_dir  # noqa: E402
from genrl_lite.vlm import lafite_noise, load_vlm, modality_gap_stats, weights_dir  # noqa: E402

ALPHAS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def balanced_indices(corpus, factor, per_concept, rng):
    """{domain: clip indices} with up to ``per_concept`` clips of each labelled concept."""
    out = {}
    for d in np.unique(corpus["domain"]):
        idx = []
        for c in np.unique(corpus[factor][corpus["domain"] == d]):
            if not c:
                continue
            pool = np.flatnonzero((corpus["domain"] == d) & (corpus[factor] == c))
            idx += list(rng.choice(pool, min(per_concept, len(pool)), replace=False))
        out[d] = np.asarray(sorted(idx))
    return out


def clips_of(corpus, idx):
    return corpus["frames"][corpus["starts"][idx, None] + np.arange(8)]


def concept_text(vlm, d, factor, names, phrase_set):
    """(K, E) prompt embeddings: phrase_set None = the canonical template, k = paraphrase set k,
    'paraphrases' / 'templates' = the mean embedding of all paraphrases / all templated phrasings."""
    if phrase_set is None or isinstance(phrase_set, int):
        phrases = [None if phrase_set is None else captions.PARAPHRASES[factor][n][phrase_set] for n in names]
        return vlm.embed_text([captions.concept_prompt(d, factor, n, p) for n, p in zip(names, phrases)])
    table = captions.PARAPHRASES[factor] if phrase_set == "paraphrases" else (
        captions.POSTURE_PHRASES[d] if factor == "posture" else captions.MOTION_PHRASES)
    return torch.nn.functional.normalize(torch.stack([
        vlm.embed_text([captions.concept_prompt(d, factor, n, p) for p in table[n]]).mean(0) for n in names]), dim=-1)


def accuracy(vlm, corpus, factor, idx_by_domain, emb_by_domain, phrase_set=None):
    """Top-1 accuracy of concept prompts (see ``concept_text``), its chance level, per-domain
    accuracy and per-concept recall."""
    hits = total = 0
    chance = []
    per_domain, per_concept = {}, {}
    for d, idx in idx_by_domain.items():
        names = captions.postures(d) if factor == "posture" else list(captions.MOTIONS)
        text = concept_text(vlm, d, factor, names, phrase_set)
        keep = np.isin(corpus[factor][idx], names)
        truth = corpus[factor][idx][keep]
        pred = np.asarray(names)[(emb_by_domain[d][keep] @ text.T).argmax(1).numpy()]
        h = int((pred == truth).sum())
        per_domain[d] = h / max(keep.sum(), 1)
        for n in np.unique(truth):
            per_concept[f"{d}/{n}"] = float((pred[truth == n] == n).mean())
        hits, total = hits + h, total + int(keep.sum())
        chance.append(1 / len(names))
    return hits / max(total, 1), float(np.mean(chance)), per_domain, per_concept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vlm", default="genrl-lite-minilm")
    parser.add_argument("--pretrained", default=None, help="open_clip weights (file or local-dir:)")
    parser.add_argument("--weights", default=None, help="embedded model weights (default: shipped)")
    parser.add_argument("--caption-memory", type=float, default=None, metavar="W",
                        help="move prompts towards their nearest pretraining captions with weight W "
                             "(genrl_lite.caption_memory; default off); saves bench_caption_memory.json")
    parser.add_argument("--corpus", type=Path, default=None, help="default: data/vlm_corpus")
    parser.add_argument("--per-concept", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (throughput is for 2 cores)")
    parser.add_argument("--out", type=Path, default=None, help="default: data/models/vlm/bench.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    t0 = time.time()
    vlm = load_vlm(args.vlm, pretrained=args.pretrained, weights=args.weights, caption_memory=args.caption_memory)
    print(f"{vlm} loaded in {time.time() - t0:.1f} s (offline)")
    corpus = load_corpus(args.corpus or data_dir() / "vlm_corpus", heldout=True)
    print(f"held-out clips: {len(corpus['starts'])} from {corpus['files']}")
    result = {"vlm": vlm.name, "text_side": "plain" if vlm.text_memory is None else vlm.text_memory.describe(),
              "dim": vlm.dim, "load_seconds": round(time.time() - t0, 2),
              "heldout_files": corpus["files"], "threads": args.threads, "load_average": os.getloadavg()}

    # (a) templated vs paraphrased concept prompts, and video vs image
    print("\n(a) held-out top-1 accuracy among each domain's concept prompts (balanced clips)")
    acc = {}
    for factor in ("posture", "motion"):
        idx = balanced_indices(corpus, factor, args.per_concept, rng)
        video = {d: vlm.embed_video(clips_of(corpus, i)) for d, i in idx.items()}
        image = {d: vlm.embed_image(corpus["frames"][corpus["starts"][i] + 7]) for d, i in idx.items()}
        templ, chance, per_dom, templ_concept = accuracy(vlm, corpus, factor, idx, video)
        para = [accuracy(vlm, corpus, factor, idx, video, k) for k in range(2)]
        para_acc = float(np.mean([p[0] for p in para]))
        para_ens = accuracy(vlm, corpus, factor, idx, video, "paraphrases")[0]
        templ_ens = accuracy(vlm, corpus, factor, idx, video, "templates")[0]
        img, _, img_dom, _ = accuracy(vlm, corpus, factor, idx, image)
        n = int(sum(len(i) for i in idx.values()))
        acc[factor] = dict(clips=n, templated=templ, paraphrase=para_acc, paraphrase_sets=[p[0] for p in para],
                           chance=chance, ratio=para_acc / max(templ, 1e-9), per_domain=per_dom,
                           paraphrase_per_domain={d: float(np.mean([p[2][d] for p in para])) for d in per_dom},
                           paraphrase_ensemble=para_ens, templated_ensemble=templ_ens,
                           templated_per_concept=templ_concept,
                           paraphrase_per_concept={c: float(np.mean([p[3][c] for p in para])) for c in templ_concept},
                           image_one_frame=img, image_per_domain=img_dom)
        print(f"  {factor:8s} ({n} clips): templated {templ:.3f}  paraphrases {para_acc:.3f} "
              f"(sets {para[0][0]:.3f}/{para[1][0]:.3f})  chance {chance:.3f}  ratio {para_acc / max(templ, 1e-9):.2f}")
        print("    per domain templated:  " + "  ".join(f"{d} {a:.2f}" for d, a in per_dom.items()))
        print("    per domain paraphrase: " + "  ".join(f"{d} {a:.2f}" for d, a in acc[factor]["paraphrase_per_domain"].items()))
        print(f"    prompt ensembles (mean embedding of all phrasings): templates {templ_ens:.3f}, "
              f"the 2 paraphrases {para_ens:.3f}")
        worst = sorted(acc[factor]["paraphrase_per_concept"].items(), key=lambda kv: kv[1])[:6]
        print("    weakest concepts with paraphrases (paraphrase / templated recall): " +
              ", ".join(f"{c} {r:.2f}/{templ_concept[c]:.2f}" for c, r in worst))
        print(f"    one frame repeated (image mode): {img:.3f}  (" + "  ".join(f"{d} {a:.2f}" for d, a in img_dom.items()) + ")")
    result["accuracy"] = acc
    all_t = np.mean([acc[f]["templated"] for f in acc])
    all_p = np.mean([acc[f]["paraphrase"] for f in acc])
    all_e = np.mean([acc[f]["paraphrase_ensemble"] for f in acc])
    result["paraphrase_ratio"] = float(all_p / max(all_t, 1e-9))
    result["paraphrase_ensemble_ratio"] = float(all_e / max(all_t, 1e-9))
    print(f"  overall: templated {all_t:.3f}, paraphrases {all_p:.3f}, ratio {all_p / max(all_t, 1e-9):.2f} "
          f"(target >= 0.8); averaging the 2 paraphrases: {all_e:.3f}, ratio {all_e / max(all_t, 1e-9):.2f}")

    # per-motion video-vs-image
    idx = balanced_indices(corpus, "motion", args.per_concept, rng)
    vi = {}
    for m in captions.MOTIONS:
        hv = hi = tot = 0
        for d, i in idx.items():
            i = i[corpus["motion"][i] == m]
            if len(i) == 0:
                continue
            text = vlm.embed_text([captions.concept_prompt(d, "motion", n) for n in captions.MOTIONS])
            v = (vlm.embed_video(clips_of(corpus, i)) @ text.T).argmax(1).numpy()
            im = (vlm.embed_image(corpus["frames"][corpus["starts"][i] + 7]) @ text.T).argmax(1).numpy()
            target = captions.MOTIONS.index(m)
            hv, hi, tot = hv + int((v == target).sum()), hi + int((im == target).sum()), tot + len(i)
        vi[m] = dict(video=hv / max(tot, 1), image=hi / max(tot, 1), clips=tot)
    result["video_vs_image_motion"] = vi
    print("  motion recall, video clip vs one frame repeated: " +
          "  ".join(f"{m} {r['video']:.2f}/{r['image']:.2f}" for m, r in vi.items()))

    # task prompts: are the registry's prompts recognized? precision@10 of retrieved clips
    from genrl_lite import tasks

    tasks.list_tasks()  # loads the stickman and custom-task registrations
    tp, pool = {}, {}
    for d in np.unique(corpus["domain"]):  # one random sample of clips per domain, embedded once
        sel = np.flatnonzero(corpus["domain"] == d)
        sel = rng.choice(sel, min(600, len(sel)), replace=False)
        pool[d] = (sel, vlm.embed_video(clips_of(corpus, sel)))
    wanted = captions.task_concepts()
    for key in sorted(tasks.TASKS, key=lambda k: (tasks.TASKS[k].kind != "standard", k)):
        task = tasks.get_task(key)
        if task.domain not in pool:
            continue
        sel, emb = pool[task.domain]
        sims = (emb @ vlm.embed_text([task.prompt]).T)[:, 0]
        top = sel[torch.topk(sims, 10).indices.numpy()]

        def frac(factor, concept, rows):
            want = captions.concept_set(concept)
            return None if want is None else float(np.isin(corpus[factor][rows], want).mean())

        def common(factor):  # what the prompt retrieves: most frequent labels among the top 10
            vals, counts = np.unique([c or "?" for c in corpus[factor][top]], return_counts=True)
            return [f"{v} {c}" for v, c in sorted(zip(vals, counts), key=lambda vc: -vc[1])[:2]]

        p, m = wanted.get(key, (None, None))
        tp[key] = dict(prompt=task.prompt, kind=task.kind, covered=key in wanted,
                       concepts=[list(captions.concept_set(p) or []) or None, list(captions.concept_set(m) or []) or None],
                       posture_at10=frac("posture", p, top), motion_at10=frac("motion", m, top),
                       posture_base=frac("posture", p, sel), motion_base=frac("motion", m, sel),
                       retrieved=dict(posture=common("posture"), motion=common("motion")))
    result["task_prompts"] = tp
    print("  task prompts (every registered task), precision@10 of retrieved held-out clips of its domain "
          "(posture / motion; base rate), and what the top 10 are:")
    def f(x, fmt):
        return "  - " if x is None else format(x, fmt)

    for k, r in tp.items():
        want = "/".join("|".join(c) if c else "any" for c in r["concepts"]) if r["covered"] else "NOT COVERED"
        print(f"    {r['kind'][:3]} {k:20s} {r['prompt']!r:36s} {f(r['posture_at10'], '.1f')} / {f(r['motion_at10'], '.1f')}   "
              f"(base {f(r['posture_base'], '.2f')} / {f(r['motion_base'], '.2f')})  wants {want}; "
              f"top10: {', '.join(r['retrieved']['posture'])}; {', '.join(r['retrieved']['motion'])}")
    summary = {}
    for kind in ("standard", "custom"):
        rows = [r for r in tp.values() if r["kind"] == kind and r["covered"]]
        vals = [x for r in rows for x in (r["posture_at10"], r["motion_at10"]) if x is not None]
        summary[kind] = dict(tasks=len(rows), mean_precision_at10=float(np.mean(vals)) if vals else None,
                             both_at_least_half=sum(all(x is None or x >= 0.5 for x in (r["posture_at10"], r["motion_at10"]))
                                                     for r in rows))
        print(f"  {kind} tasks: mean precision@10 {f(summary[kind]['mean_precision_at10'], '.2f')} over "
              f"{len(rows)} covered tasks; {summary[kind]['both_at_least_half']} of them >= 0.5 on every asked concept")
    result["task_prompt_summary"] = summary
    print(f"  custom tasks without a matching concept: {', '.join(captions.NOT_COVERED)}")

    # (b) modality gap on matched clip/caption pairs
    sel = np.concatenate(list(balanced_indices(corpus, "posture", 20, rng).values()))
    crng = np.random.default_rng(1)
    texts = [captions.make_caption(corpus["domain"][i], corpus["posture"][i] or None, corpus["motion"][i] or None, crng)
             for i in sel]
    v, t = vlm.embed_video(clips_of(corpus, sel)), vlm.embed_text(texts)
    gap = modality_gap_stats(v, t)
    result["modality_gap"] = {k: val for k, val in gap.items() if k != "gap"}
    print(f"\n(b) modality gap on {len(sel)} matched held-out clip/caption pairs (cosines, mean ± std)")
    for k in ("clip_clip", "text_text", "clip_text", "matched"):
        print(f"  {k:10s} {gap[k]['mean']:+.3f} ± {gap[k]['std']:.3f}")
    print(f"  centroid distance {gap['centroid_distance']:.3f} (centroid norms: clip {gap['clip_centroid_norm']:.3f}, "
          f"text {gap['text_centroid_norm']:.3f})")
    gen = torch.Generator().manual_seed(0)
    table = []
    print("  LAFITE noise normalize((1-a) e + a n): a | cos(noisy, clean clip) | cos(noisy, matched text) | "
          "noisy-noisy | nearest-text cos")
    for a in ALPHAS:
        noisy = lafite_noise(v, a, gen)
        row = dict(alpha=a, to_clean=float((noisy * v).sum(1).mean()), to_text=float((noisy * t).sum(1).mean()),
                   noisy_noisy=float((noisy @ noisy.T)[~torch.eye(len(v), dtype=torch.bool)].mean()),
                   text_nearest=float((t @ noisy.T).amax(1).mean()))
        table.append(row)
        print(f"    {a:.1f} | {row['to_clean']:.3f} | {row['to_text']:.3f} | {row['noisy_noisy']:.3f} | {row['text_nearest']:.3f}")
    result["lafite_noise"] = table
    print(f"  (reference: matched clip-text cosine {gap['matched']['mean']:.3f}: the noise radius that "
          f"matches it is where cos(noisy, clean) falls to that value)")

    # (c) throughput: every 8-frame window (stride 1) of a long frame sequence
    frames = corpus["frames"][:2000]
    vlm.embed_windows(frames[:64])
    t1 = time.time()
    vlm.embed_windows(frames)
    dt = time.time() - t1
    fps = len(frames) / dt
    clips = clips_of(corpus, np.arange(256))
    t1 = time.time()
    vlm.embed_video(clips)
    clip_rate = 256 / (time.time() - t1)
    result["throughput"] = dict(window_frames_per_s=fps, minutes_per_100k_frames=100000 / fps / 60,
                                independent_clips_per_s=clip_rate, threads=args.threads,
                                load_average=os.getloadavg())
    print(f"\n(c) throughput on {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}: "
          f"{fps:.0f} windows/s with embed_windows (stride 1) -> {100000 / fps / 60:.1f} min per 100k frames "
          f"(target <= 10); {clip_rate:.0f} independent 8-frame clips/s with embed_video")

    out = args.out or weights_dir() / ("bench.json" if args.caption_memory is None else "bench_caption_memory.json")
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=1, default=float))
    print(f"\nsaved {out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
