"""The VLM interface, its bad-input errors, the captioner, and (if shipped) the trained weights.

Uses a tiny randomly initialized video tower with the real frozen MiniLM text tower, so nothing
here depends on pretraining; one test loads the shipped weights when they exist.
"""
from __future__ import annotations

import time

import genrl_lite  # noqa: F401
import numpy as np
import pytest
import torch

from genrl_lite import captions
from genrl_lite.embedded_vlm import EmbeddedVLM, VideoTowerConfig
from genrl_lite.vlm import check_prompts, lafite_noise, load_vlm, modality_gap_stats, weights_dir

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def vlm():
    torch.manual_seed(0)
    return EmbeddedVLM(VideoTowerConfig.preset("tiny"))


@pytest.fixture(scope="module")
def clips():
    return RNG.integers(0, 256, (5, 8, 64, 64, 3), dtype=np.uint8)


def test_shapes_and_unit_norm(vlm, clips):
    v = vlm.embed_video(clips)
    assert v.shape == (5, vlm.dim) and v.dtype == torch.float32
    assert torch.allclose(v.norm(dim=1), torch.ones(5), atol=1e-5)
    one = vlm.embed_video(clips[0])  # a single (8, S, S, 3) clip
    assert one.shape == (1, vlm.dim)
    t = vlm.embed_text(["a walker running", "a spider standing"])
    assert t.shape == (2, 384) and torch.allclose(t.norm(dim=1), torch.ones(2), atol=1e-5)
    assert vlm.n_frames == 8 and vlm.dim == 384 and vlm.name == "genrl-lite-minilm"


def test_batching_is_consistent(vlm, clips):
    batch = vlm.embed_video(clips)
    single = torch.cat([vlm.embed_video(c) for c in clips])
    assert torch.allclose(batch, single, atol=1e-5)
    prompts = ["a walker lying on its back", "a cheetah running fast", "a quadruped flipping over"]
    assert torch.allclose(vlm.embed_text(prompts), torch.cat([vlm.embed_text([p]) for p in prompts]), atol=1e-5)


def test_video_depends_on_motion_and_order(vlm, clips):
    clip = clips[0]
    still = np.repeat(clip[:1], 8, axis=0)
    assert not torch.allclose(vlm.embed_video(clip), vlm.embed_video(still), atol=1e-4)
    assert not torch.allclose(vlm.embed_video(clip), vlm.embed_video(clip[::-1].copy()), atol=1e-4)


def test_image_mode_is_the_frame_repeated(vlm, clips):
    frames = clips[:, 3]
    img = vlm.embed_image(frames)
    assert img.shape == (5, vlm.dim)
    assert torch.allclose(img, vlm.embed_video(np.repeat(frames[:, None], 8, axis=1)), atol=1e-5)
    assert vlm.embed_image(frames[0]).shape == (1, vlm.dim)


def test_text_tower_is_the_frozen_pretrained_minilm(vlm):
    """Paraphrases are closer than unrelated sentences: real language knowledge, not random."""
    t = vlm.embed_text(["a dog running fast", "an animal sprinting", "a robot lying on its back"])
    assert float(t[0] @ t[1]) > float(t[0] @ t[2]) + 0.1
    assert not any(p.requires_grad for p in vlm.model.text.parameters())


def test_text_matches_sentence_transformers(vlm):
    from sentence_transformers import SentenceTransformer

    from genrl_lite.embedded_vlm import minilm_path

    st = SentenceTransformer(minilm_path(), device="cpu")
    prompts = ["spider walking fast", "standing up straight"]
    ref = torch.from_numpy(st.encode(prompts, normalize_embeddings=True))
    assert torch.allclose(vlm.embed_text(prompts), ref, atol=1e-4)


@pytest.mark.parametrize("bad, err, words", [
    ([], ValueError, "empty prompt list"),
    (["a walker", ""], ValueError, "prompt 1 is empty"),
    (["   "], ValueError, "empty"),
    ("a walker", TypeError, "list"),
    ([3], TypeError, "not a string"),
])
def test_bad_prompts(vlm, bad, err, words):
    with pytest.raises(err, match=words):
        vlm.embed_text(bad)


@pytest.mark.parametrize("shape, dtype, words", [
    ((2, 7, 64, 64, 3), np.uint8, r"\(B, 8, 64, 64, 3\)"),
    ((2, 8, 3, 64, 64), np.uint8, "channels last"),
    ((2, 8, 32, 32, 3), np.uint8, r"\(B, 8, 64, 64, 3\)"),
    ((2, 8, 64, 64, 3), np.float32, "uint8"),
    ((0, 8, 64, 64, 3), np.uint8, "shape"),
])
def test_bad_frames(vlm, shape, dtype, words):
    with pytest.raises((ValueError, TypeError), match=words):
        vlm.embed_video(np.zeros(shape, dtype))


def test_bad_images(vlm):
    with pytest.raises(ValueError, match=r"\(B, 64, 64, 3\)"):
        vlm.embed_image(np.zeros((2, 8, 64, 64, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        vlm.embed_image(torch.zeros(2, 64, 64, 3))


def test_sliding_windows_equal_clip_embeddings(vlm):
    obs = RNG.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
    w = vlm.embed_windows(obs)
    assert w.shape == (30, vlm.dim)
    assert torch.all(w[:7] == 0), "the first 7 rows are zero padding, as in the reference"
    for t in (7, 12, 29):
        assert torch.allclose(w[t], vlm.embed_video(obs[t - 7:t + 1])[0], atol=1e-5)
    rep = vlm.embed_windows(obs, pad="repeat")
    assert torch.allclose(rep[:7], w[7:8].expand(7, -1)) and torch.allclose(rep[7:], w[7:])
    with pytest.raises(ValueError, match="at least 8 frames"):
        vlm.embed_windows(obs[:5])
    with pytest.raises(ValueError, match="pad"):
        vlm.embed_windows(obs, pad="mirror")


def test_missing_and_corrupted_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/pretrain_vlm.py"):
        load_vlm(weights=tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="corrupted.*scripts/pretrain_vlm.py"):
        load_vlm(weights=bad)


def test_save_and_load_roundtrip(vlm, clips, tmp_path):
    from genrl_lite.runtime import atomic_torch_save

    atomic_torch_save(vlm.state(), tmp_path / "vt.pt")
    again = load_vlm(weights=tmp_path / "vt.pt")
    # weights ship in float16: embeddings agree to ~1e-3
    assert torch.allclose(again.embed_video(clips), vlm.embed_video(clips), atol=5e-3)


def test_unknown_vlm_name():
    with pytest.raises(ValueError, match="genrl-lite-minilm"):
        load_vlm("internvideo2")


def test_open_clip_without_weights_fails_at_once():
    t0 = time.time()
    with pytest.raises(RuntimeError, match="pretrained=.*safetensors"):
        load_vlm("open_clip:ViT-B-32")
    with pytest.raises(RuntimeError, match="no file or folder"):
        load_vlm("open_clip:ViT-B-32", pretrained="/nonexistent/open_clip_model.safetensors")
    with pytest.raises(RuntimeError, match="needs real pretrained weights"):
        load_vlm("open_clip:ViT-B-32", pretrained="laion2b_s34b_b79k")  # a tag not in the offline cache
    assert time.time() - t0 < 10, "must fail without a hub retry loop"


def test_open_clip_random_plumbing(tmp_path):
    """A tiny randomly initialized open_clip CLIP, registered as a config, through the factory."""
    import json

    import open_clip

    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                                           "patch_size": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "genrl-tiny-clip-test.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path)
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="needs real pretrained weights"):
        load_vlm("open_clip:genrl-tiny-clip-test")
    vlm = load_vlm("open_clip:genrl-tiny-clip-test", allow_random=True)
    assert vlm.dim == 32 and vlm.input_size == 32 and "random" in vlm.name
    clips = RNG.integers(0, 256, (3, 8, 48, 48, 3), dtype=np.uint8)  # any size: resized inside
    v = vlm.embed_video(clips)
    assert v.shape == (3, 32) and torch.allclose(v.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(v, torch.cat([vlm.embed_video(c) for c in clips]), atol=1e-5)
    assert vlm.embed_text(["a walker"]).shape == (1, 32)
    obs = RNG.integers(0, 256, (12, 48, 48, 3), dtype=np.uint8)
    w = vlm.embed_windows(obs)
    assert torch.allclose(w[10], vlm.embed_video(obs[3:11])[0], atol=1e-5)
    assert torch.all(w[:7] == 0)


def test_lafite_noise_and_gap_stats():
    e = torch.nn.functional.normalize(torch.randn(200, 64), dim=-1)
    gen = torch.Generator().manual_seed(0)
    assert torch.allclose(lafite_noise(e, 0.0, gen), e, atol=1e-6)
    cos = [(lafite_noise(e, a, gen) * e).sum(1).mean().item() for a in (0.1, 0.5, 0.9)]
    assert cos[0] > cos[1] > cos[2] > -0.2
    stats = modality_gap_stats(e, torch.nn.functional.normalize(e + 2.0, dim=-1))
    assert stats["centroid_distance"] > 0.5 and stats["matched"]["mean"] > stats["clip_text"]["mean"]


def _walker(state: str):
    from dm_control import suite

    env = suite.load("walker", "stand", task_kwargs={"random": 0})
    env.reset()
    p = env.physics
    with p.reset_context():
        p.data.qpos[:] = 0
        if state == "lying":
            p.named.data.qpos["rooty"] = -np.pi / 2  # front (+x) turned up: on its back
            p.named.data.qpos["rootz"] = -1.1
        if state == "upside_down":
            p.named.data.qpos["rooty"] = np.pi
            p.named.data.qpos["rootz"] = 0.0
    return p


def test_captioner_on_hand_set_states():
    stand = captions.frame_features("walker", _walker("standing"))
    lying = captions.frame_features("walker", _walker("lying"))
    upside = captions.frame_features("walker", _walker("upside_down"))
    assert captions.frame_posture("walker", stand) == "standing"
    assert captions.frame_posture("walker", lying) == "lying_back"
    assert captions.frame_posture("walker", upside) == "upside_down"
    # motion from displacement over the clip
    frames = [dict(stand, x=stand["x"] + 0.15 * i) for i in range(8)]
    assert captions.clip_concepts("walker", frames, dt=0.05) == ("standing", "forward_fast")
    frames = [dict(lying, x=lying["x"] - 0.04 * i, limbs=0.0) for i in range(8)]
    assert captions.clip_concepts("walker", frames, dt=0.05) == ("lying_back", "backward")
    still = [dict(lying, limbs=0.0)] * 8
    assert captions.clip_concepts("walker", still, dt=0.05) == ("lying_back", "still")
    # a gait: upright frames that alternate 'standing' and 'one leg up' are one upright clip
    gait = [dict(stand, x=stand["x"] + 0.05 * i, foot_dz=0.35 if i % 3 else 0.1) for i in range(8)]
    assert {captions.frame_posture("walker", f) for f in gait} == {"standing", "one_leg_up"}
    assert captions.clip_concepts("walker", gait, dt=0.05) == ("standing", "forward_slow")
    # ... but a body that goes down mid-clip is not
    falling = gait[:4] + [dict(lying, x=lying["x"] + 0.05 * i) for i in range(4, 8)]
    assert captions.clip_concepts("walker", falling, dt=0.05)[0] is None


def test_captions_compose_and_paraphrases_are_held_out():
    rng = np.random.default_rng(0)
    cap = captions.make_caption("quadruped", "standing", "forward_fast", rng)
    assert any(cap.startswith(n) for n in captions.BODY_NAMES["quadruped"])
    with pytest.raises(ValueError, match="posture or a motion"):
        captions.make_caption("walker", None, None, rng)
    with pytest.raises(ValueError, match="captioned domains"):
        captions.postures("humanoid")
    templates = [p for table in captions.POSTURE_PHRASES.values() for ps in table.values() for p in ps]
    templates += [p for table in (captions.MOTION_PHRASES, captions.GAIT_PHRASES, captions.SLIDE_PHRASES)
                  for ps in table.values() for p in ps]
    for factor, table in captions.PARAPHRASES.items():
        for concept, phrases in table.items():
            for phrase in phrases:
                assert not any(phrase in t for t in templates), (concept, phrase)
    # every concept of every domain has held-out paraphrases for the benchmark
    for d in captions.POSTURE_PHRASES:
        assert set(captions.postures(d)) <= set(captions.PARAPHRASES["posture"])
    assert set(captions.MOTIONS) == set(captions.PARAPHRASES["motion"])


def test_gait_words_only_for_upright_postures():
    """'walking'/'running' must mean 'on its feet': a body sliding on its back is only 'moving fast',
    and a caption without a posture (a positive for clips of every posture) never says 'running'."""
    rng = np.random.default_rng(0)
    gait = ("walk", "run", "sprint", "stroll", "step", "march")
    for motion in ("forward_slow", "forward_fast", "backward", "in_place", "still"):
        for posture in (None, "lying_back", "lying_front", "upside_down", "splits", "kneeling"):
            for _ in range(40):
                cap = captions.make_caption("walker", posture, motion, rng)
                name = max((n for n in captions.BODY_NAMES["walker"] if cap.startswith(n)), key=len)
                words = cap[len(name):].replace(",", " ").split()  # "a walker" is a name, not a gait
                assert not any(w.startswith(gait) for w in words), (posture, motion, cap)
        assert not any(p.split()[0].startswith(gait) for p in captions.motion_phrases("upside_down", motion))
    ups = {captions.make_caption("walker", "standing", "forward_fast", rng) for _ in range(200)}
    assert any("running" in c for c in ups) and any("moving forward fast" in c for c in ups)
    slides = {captions.make_caption("walker", "lying_back", "forward_fast", rng) for _ in range(200)}
    assert any("sliding" in c for c in slides)


def test_task_prompts_are_covered():
    from genrl_lite import tasks

    tasks.list_tasks()
    for key, (posture, motion) in captions.task_concepts().items():
        if key not in tasks.TASKS:  # a custom task not registered in this checkout
            continue
        domain = tasks.get_task(key).domain
        assert posture is not None or motion is not None
        assert set(captions.concept_set(posture) or ()) <= set(captions.postures(domain)), (key, posture)
        assert set(captions.concept_set(motion) or ()) <= set(captions.MOTIONS), (key, motion)
    for key in ("walker_stand", "walker_walk", "walker_run", "cheetah_run", "quadruped_stand",
                "quadruped_walk", "quadruped_run"):
        assert key in captions.task_concepts(), f"standard task {key} must be covered by a concept"


def test_check_prompts_returns_a_list():
    assert check_prompts(("a", "b")) == ["a", "b"]


@pytest.mark.skipif(not (weights_dir() / "vision_tower.pt").exists(), reason="trained VLM weights not shipped yet")
def test_shipped_weights_separate_standing_from_lying():
    """Rendered walker frames: a standing clip is nearer 'standing' than a lying one, and vice versa."""
    from genrl_lite.envs import make_fast_to_render

    t0 = time.time()
    vlm = load_vlm()
    assert time.time() - t0 < 60
    embs = []
    for state in ("standing", "lying"):
        p = _walker(state)
        make_fast_to_render(p, 64)
        frame = p.render(64, 64, camera_id=0)
        embs.append(vlm.embed_video(np.repeat(frame[None], 8, axis=0)))
    text = vlm.embed_text(["a walker standing up straight", "a walker lying on its back"])
    sims = torch.cat(embs) @ text.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0], sims


def test_corpus_segments_driven_by_experts(tmp_path, load_script):
    """`make_vlm_corpus.py --experts P`: segments played by the task-replay experts are labelled from
    state like any other; without snapshots the script says how to train them."""
    corpus = load_script("make_vlm_corpus")
    with pytest.raises(FileNotFoundError, match="train_experts.py --task walker_run walker_stand walker_walk"):
        corpus.domain_experts("walker", tmp_path)
    from genrl_lite.runtime import data_dir

    experts = corpus.domain_experts("walker", data_dir() / "experts")
    assert len(experts) == 6  # the last two snapshots of stand, walk, run
    played = corpus.render_shard("walker", seed=7, n_frames=120, show=False, experts=experts, expert_prob=1.0)
    plain = corpus.render_shard("walker", seed=7, n_frames=120, show=False)
    for shard in (played, plain):
        assert shard["frames"].shape[1:] == (64, 64, 3) and len(shard["starts"]) > 10
        assert set(shard["posture"]) <= set(captions.postures("walker")) | {""}
    assert not np.array_equal(played["frames"], plain["frames"])
    # the experts really walk and run upright (what the puppeteer alone never shows well)
    gaits = {(p, m) for p, m in zip(played["posture"], played["motion"]) if m.startswith("forward")}
    assert ("standing", "forward_slow") in gaits or ("standing", "forward_fast") in gaits, gaits
