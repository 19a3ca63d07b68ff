"""Prompt benchmark (issue 4): does a prompt decode into a video of the behaviour it asks for?

For every task of a domain (standard and custom, ``tasks.list_tasks(domain)``), its prompt and a few
paraphrases of it (``PARAPHRASES`` below) go through GenRL's prompt-to-target path and back:

    prompt --VLM text--> e (E,) --aligner--> unit e' --connector rollout (T steps)--> latents z_1..T
           --world-model decoder--> imagined video (T, 64, 64, 3)
    video --VLM video (mean of its 8-frame windows)--> v (E,)
    hit  <=>  argmax_k cos(v, text(prompt of task k)) is the intended task     (k over the domain's tasks)

Top-1 accuracy is reported WITH the aligner and WITHOUT it (the prompt embedding only normalized: the
ablation). The paper's aligner ablation (GENRL_REFERENCE.md section 14: 0.76 vs 0.17) is over normalized
*returns of policies* trained on such targets; this benchmark measures the targets themselves (no policy
learning), so its numbers are related, not equal. Also printed: the ``text only`` top-1 (is the prompt's
own text embedding nearest its task's prompt?), a ceiling set by the sentence encoder, not by the model.

Shapes: N prompts, K tasks of the domain, T imagined steps, F = 8 frames per VLM window, E embedding.

    python scripts/bench_prompts.py                                  # shipped walker model, ~1 min
    python scripts/bench_prompts.py --model /tmp/me/tiny_walker --json /tmp/me/prompts.json
    python scripts/bench_prompts.py --domain cheetah                 # load_model("cheetah")

Writes ``--json`` (default ``data/models/<domain>/prompts.json`` for a shipped model) and, next to it,
``<json stem>_frames.npz`` (``prompts_frames.npz``): every 4th frame of each task prompt's imagined video,
with and without aligner, for figures (``--figure PATH`` also draws them).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import genrl_lite  # noqa: F401  (before dm_control: MUJOCO_GL and the triton guard)
from genrl_lite.connector import imagine_prompt
from genrl_lite.runtime import atomic_path, fast_mode, repo_relative
from genrl_lite.tasks import get_task, list_tasks

PARAPHRASES: dict[str, list[str]] = {
    # walker: dm_control's three tasks, then the paper's custom ones
    "walker_stand": ["a person standing upright", "a biped standing still on both legs"],
    "walker_walk": ["a person walking quickly", "a two-legged robot striding forward",
                    "walking forward at a brisk pace"],
    "walker_run": ["a person running fast", "a biped sprinting forward", "running forward at full speed"],
    "walker_flipping": ["a person flipping backwards", "somersaulting through the air"],
    "walker_high_kick": ["a person doing a high kick", "kicking one leg up high"],
    "walker_lunge_pose": ["a deep lunge with one knee bent", "a lunge pose, one leg forward"],
    "walker_lying_down": ["a person lying flat on the ground", "lying on its back on the floor"],
    "walker_one_foot": ["balancing on one leg", "a person standing on one leg"],
    "walker_sit_knees": ["kneeling down", "sitting on its knees"],
    # cheetah
    "cheetah_run": ["a cheetah running fast", "an animal sprinting forward", "a four-legged animal galloping"],
    "cheetah_lying_down": ["a cheetah lying on its back", "an animal lying flat on the ground"],
    "cheetah_standing": ["a cheetah standing up on its hind legs", "an animal standing upright on two legs"],
    # quadruped
    "quadruped_stand": ["a four-legged robot standing still", "an ant standing on its legs"],
    "quadruped_walk": ["a quadruped walking forward", "a four-legged robot walking quickly",
                       "an ant walking ahead"],
    "quadruped_run": ["a quadruped running at full speed", "a robot spider sprinting",
                      "a four-legged robot running"],
    "quadruped_jump": ["a quadruped jumping in the air", "a four-legged robot hopping"],
    "quadruped_lie_down": ["a spider lying flat on the ground", "a quadruped resting on its belly"],
    "quadruped_two_legs": ["a quadruped standing on its hind legs", "a spider balancing on two legs"],
    # stickman
    "stickman_stand": ["a stickman standing upright", "a person standing still"],
    "stickman_walk": ["a stickman walking quickly", "a person walking forward", "a humanoid striding ahead"],
    "stickman_run": ["a stickman running fast", "a person sprinting forward", "a humanoid running at full speed"],
    "stickman_boxing": ["a person boxing", "throwing punches with its fists"],
    "stickman_flipping": ["a stickman doing somersaults", "flipping through the air"],
    "stickman_hands_up": ["a person raising both arms", "arms raised above the head"],
    "stickman_headstand": ["standing on its head", "upside down with the legs in the air"],
    "stickman_high_kick": ["a person doing a high kick", "kicking one leg up high"],
    "stickman_legs_up": ["lying on its back with the legs raised", "legs in the air while lying down"],
    "stickman_lunge_pose": ["a deep lunge with one knee bent", "a lunge pose, one leg forward"],
    "stickman_lying_down": ["lying flat on the ground", "a stickman lying on its back"],
    "stickman_one_foot": ["balancing on one leg", "a person standing on one leg"],
    "stickman_sit_knees": ["kneeling down", "sitting on its knees"],
}
"""2-3 paraphrases of each task's prompt: other words for the same behaviour (hand-written)."""

VARIANTS = ("aligner", "no_aligner")
"""With the aligner (GenRL) and without it (the embedding only normalized: the ablation)."""


@dataclasses.dataclass(frozen=True)
class PromptCase:
    """One benchmark prompt."""

    task: str
    """The intended task key (``walker_walk``)."""
    prompt: str
    """The text given to the VLM."""
    canonical: bool
    """True for the task's own prompt (``get_task(task).prompt``), False for a paraphrase."""
    kind: str
    """The task's kind: ``standard`` or ``custom``."""


def prompt_cases(domain: str, paraphrases: bool = True, tasks=None) -> list[PromptCase]:
    """The domain's task prompts (and their paraphrases). Raises ``UnknownNameError`` for a bad domain."""
    keys = list_tasks(domain)                   # raises with the valid domains
    if tasks is not None:
        unknown = sorted(set(tasks) - set(keys))
        if unknown:
            raise ValueError(f"tasks {unknown} are not tasks of domain {domain!r}; valid: {', '.join(keys)}")
        keys = [k for k in keys if k in set(tasks)]
    cases = []
    for key in keys:
        task = get_task(key)
        cases.append(PromptCase(key, task.prompt, True, task.kind))
        if paraphrases:
            cases += [PromptCase(key, p, False, task.kind) for p in PARAPHRASES.get(key, [])]
    return cases


def _check_bundle(bundle) -> None:
    if getattr(bundle, "connector", None) is None or getattr(bundle, "aligner", None) is None:
        raise ValueError(f"model {getattr(bundle, 'path', '')} has no connector/aligner: train them with "
                         "`python -m genrl_lite.training --world-model <checkpoint> --data data --out <dir>`")


@torch.no_grad()
def decode_embeddings(bundle, embeds: torch.Tensor, length: int = 32, aligner: bool = True) -> np.ndarray:
    """Prompt embeddings (N, E) -> imagined videos (N, T, S, S, 3) uint8 (T = ``length``).

    ``aligner=False`` is the ablation: the embedding is only normalized before the connector.
    Mode latents (no sampling), as GenRL's targets: the same prompt always gives the same video.
    """
    _check_bundle(bundle)
    if embeds.dim() != 2:
        raise ValueError(f"embeds must be (N, E), got {tuple(embeds.shape)}")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    device = bundle.world_model.device
    states = imagine_prompt(bundle.connector, embeds.to(device).float(), length,
                            aligner=bundle.aligner if aligner else None)
    frames = bundle.world_model.decode(states["stoch"].flatten(-2))          # (N, T, S, S, 3) in [0, 1]
    return (frames * 255).round().to(torch.uint8).cpu().numpy()


def decode_prompts(bundle, vlm, prompts, length: int = 32, aligner: bool = True) -> np.ndarray:
    """Text prompts (list of N strings) -> imagined videos (N, T, S, S, 3) uint8. Empty prompts raise."""
    return decode_embeddings(bundle, vlm.embed_text(prompts), length, aligner)


def embed_imagined(vlm, videos: np.ndarray, mode: str = "mean") -> torch.Tensor:
    """Imagined videos (N, T, S, S, 3) uint8 -> VLM embeddings (N, E), unit norm.

    ``mean``: mean of the embeddings of every 8-frame window (renormalized), the whole video counts;
    ``last``: the last 8 frames only.
    """
    videos = np.asarray(videos)
    F_ = vlm.n_frames
    if videos.ndim != 5 or videos.shape[1] < F_:
        raise ValueError(f"videos must be (N, T >= {F_}, S, S, 3) uint8, got {videos.shape}")
    if mode == "last":
        return vlm.embed_video(videos[:, -F_:])
    if mode != "mean":
        raise ValueError(f"mode must be 'mean' or 'last', got {mode!r}")
    return F.normalize(torch.stack([vlm.embed_windows(v)[F_ - 1:].mean(0) for v in videos]), dim=-1)


def _accuracies(hits: np.ndarray, cases: list[PromptCase]) -> dict:
    canon = np.array([c.canonical for c in cases])
    kind = np.array([c.kind for c in cases])

    def mean(mask):
        return None if not mask.any() else round(float(hits[mask].mean()), 4)

    return {"all": mean(np.ones(len(cases), bool)), "task_prompts": mean(canon), "paraphrases": mean(~canon),
            "standard": mean(kind == "standard"), "custom": mean(kind == "custom")}


def run_benchmark(bundle, vlm, domain: str, length: int = 32, paraphrases: bool = True, tasks=None,
                  mode: str = "mean") -> dict:
    """Decode every prompt of ``domain`` with and without aligner and classify the videos.

    Returns a dict: ``accuracy[variant]`` (top-1 over all prompts, task prompts only, paraphrases only,
    standard and custom tasks; variants ``aligner``, ``no_aligner``, ``text_only``), ``chance`` (1/K),
    ``mean_cos_intended[variant]`` (cosine of the video's embedding to the intended task's prompt),
    ``rows`` (one per prompt: task, prompt, predictions, cosines), ``task_keys``, ``task_prompts``,
    ``sims[variant]`` (N, K) and ``videos[variant]`` (N, T, S, S, 3) uint8 (the last two not JSON-able).
    """
    _check_bundle(bundle)
    if length < vlm.n_frames:
        raise ValueError(f"length must be at least the VLM window ({vlm.n_frames} frames), got {length}")
    cases = prompt_cases(domain, paraphrases, tasks)
    keys = list_tasks(domain)
    class_text = vlm.embed_text([get_task(k).prompt for k in keys])          # (K, E)
    target = np.array([keys.index(c.task) for c in cases])
    prompt_e = vlm.embed_text([c.prompt for c in cases])                     # (N, E)
    out = {"domain": domain, "task_keys": keys, "task_prompts": [get_task(k).prompt for k in keys],
           "chance": round(1.0 / len(keys), 4), "length": length, "embed_mode": mode, "n_prompts": len(cases),
           "accuracy": {}, "mean_cos_intended": {}, "sims": {}, "videos": {}}
    sims = {"text_only": (prompt_e @ class_text.T).numpy()}
    for variant in VARIANTS:
        videos = decode_embeddings(bundle, prompt_e, length, aligner=variant == "aligner")
        out["videos"][variant] = videos
        sims[variant] = (embed_imagined(vlm, videos, mode) @ class_text.T).numpy()
    rows = [dataclasses.asdict(c) for c in cases]
    for variant in VARIANTS + ("text_only",):
        s = sims[variant]
        pred = s.argmax(1)
        out["sims"][variant] = s
        out["accuracy"][variant] = _accuracies(pred == target, cases)
        out["mean_cos_intended"][variant] = round(float(s[np.arange(len(cases)), target].mean()), 4)
        for r, p, c in zip(rows, pred, s[np.arange(len(cases)), target]):
            r[f"pred_{variant}"] = keys[p]
            r[f"cos_{variant}"] = round(float(c), 4)
    out["rows"] = rows
    # how different the decoded videos of different prompts are (a collapsed target is the same video
    # whatever the prompt): mean pixel std across prompts, per frame
    for variant in VARIANTS:
        v = out["videos"][variant].astype(np.float32) / 255.0
        out.setdefault("across_prompt_pixel_std", {})[variant] = round(float(v.std(0).mean()), 4)
    return out


def to_json(result: dict) -> dict:
    """The JSON-able part of a :func:`run_benchmark` result (no videos, similarity matrices as lists)."""
    out = {k: v for k, v in result.items() if k not in ("videos", "sims")}
    out["sims"] = {k: np.round(v, 4).tolist() for k, v in result["sims"].items()}
    return out


def print_table(result: dict, file=None) -> None:
    """A per-prompt table, then the summary (top-1 with and without the aligner)."""
    file = file or sys.stdout
    p = lambda *a: print(*a, file=file)  # noqa: E731
    p(f"{'task':22s} {'prompt':42s} {'aligner':>22s} {'no aligner':>22s}")
    for r in result["rows"]:
        mark = lambda v: ("ok " if r[f"pred_{v}"] == r["task"] else "-- ") + r[f"pred_{v}"].split("_", 1)[1]  # noqa: E731
        p(f"{r['task']:22s} {(r['prompt'] if r['canonical'] else '~ ' + r['prompt'])[:42]:42s} "
          f"{mark('aligner'):>22s} {mark('no_aligner'):>22s}")
    acc = result["accuracy"]
    p(f"\ntop-1 among {len(result['task_keys'])} {result['domain']} task prompts (chance {result['chance']:.2f}), "
      f"{result['n_prompts']} prompts, {result['length']}-step videos, embedding mode {result['embed_mode']}:")
    p(f"{'':12s} {'all':>6s} {'tasks':>6s} {'paraph':>6s} {'std':>6s} {'custom':>6s}  cos(video, intended)")
    for v in ("aligner", "no_aligner", "text_only"):
        a = acc[v]
        cells = " ".join("   n/a" if a[k] is None else f"{a[k]:6.2f}"
                         for k in ("all", "task_prompts", "paraphrases", "standard", "custom"))
        p(f"{v:12s} {cells}  {result['mean_cos_intended'][v]:.3f}")
    std = result["across_prompt_pixel_std"]
    p(f"pixel std across prompts (0 = every prompt gives the same video): aligner {std['aligner']:.3f}, "
      f"no aligner {std['no_aligner']:.3f}")


def save_frames(result: dict, path, every: int = 4) -> Path:
    """Every ``every``-th frame of each task prompt's video, with and without aligner, as a compressed npz."""
    canon = np.array([r["canonical"] for r in result["rows"]])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {v: result["videos"][v][canon][:, ::every] for v in VARIANTS}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, prompts=np.array([r["prompt"] for r in result["rows"] if r["canonical"]]),
                                tasks=np.array([r["task"] for r in result["rows"] if r["canonical"]]), **arrays)
    return path


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default="walker", help="domain whose task prompts are decoded (default walker)")
    ap.add_argument("--model", default=None, help="checkpoint file or training out_dir (default: the shipped "
                                                    "model of --domain, load_model(domain))")
    ap.add_argument("--length", type=int, default=None, help="imagined steps per prompt (default 32; 16 in fast mode)")
    ap.add_argument("--embed", default="mean", choices=["mean", "last"],
                    help="embed a video as the mean of its 8-frame windows (default) or its last 8 frames")
    ap.add_argument("--no-paraphrases", action="store_true", help="only the tasks' own prompts")
    ap.add_argument("--tasks", nargs="*", default=None, help="only these task keys")
    ap.add_argument("--json", default=None, help="output JSON (default data/models/<domain>/prompts.json for a "
                                                 "shipped model, nothing for --model)")
    ap.add_argument("--frames", default=None, help="npz of decoded frames (default: <json stem>_frames.npz next to --json)")
    ap.add_argument("--figure", default=None, help="also draw the task prompts' videos to this PNG")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    from genrl_lite.pretrained import check_vlm, load_model, models_dir
    from genrl_lite.vlm import load_vlm

    list_tasks(args.domain)                                  # a bad domain fails before any loading
    bundle = load_model(args.model or args.domain)
    vlm = load_vlm()
    check_vlm(bundle, vlm)
    length = args.length or (16 if fast_mode() else 32)
    result = run_benchmark(bundle, vlm, args.domain, length, not args.no_paraphrases, args.tasks, args.embed)
    result["seconds"] = round(time.time() - t0, 1)
    result["model"] = {"path": repo_relative(bundle.path), "preset": bundle.preset, "step": bundle.step,
                       "vlm_tag": bundle.vlm_tag}
    result["vlm"] = vlm.name
    result["command"] = "python scripts/bench_prompts.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result["threads"] = args.threads
    print_table(result)
    print(f"model {bundle.path} ({bundle.preset}, step {bundle.step}); {result['seconds']} s on {args.threads} thread(s)")
    json_path = args.json or (None if args.model else str(models_dir() / args.domain / "prompts.json"))
    if json_path:
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(to_json(result), indent=1))
        frames = save_frames(result, args.frames or Path(json_path).with_name(Path(json_path).stem + "_frames.npz"))
        print(f"wrote {json_path} and {frames}")
    elif args.frames:
        print(f"wrote {save_frames(result, args.frames)}")
    if args.figure:
        from genrl_lite import plotting
        canon = [i for i, r in enumerate(result["rows"]) if r["canonical"]]
        fig = plotting.prompt_video_grid({result["rows"][i]["prompt"]: {v: result["videos"][v][i] for v in VARIANTS}
                                          for i in canon}, every=2, max_frames=8)
        print(f"wrote {plotting.save(fig, args.figure)}")
        plotting.close(fig)
    return result


if __name__ == "__main__":
    main()
