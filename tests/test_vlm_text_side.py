"""scripts/vlm_text_side.py: prompt ensembles and a learned text head on the frozen MiniLM, at toy scale."""
from __future__ import annotations

import json

import genrl_lite  # noqa: F401
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genrl_lite.embedded_vlm import EmbeddedVLM, VideoTowerConfig


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("vlm_text_side")


@pytest.fixture(scope="module")
def tiny_vlm():
    torch.manual_seed(0)
    return EmbeddedVLM(VideoTowerConfig.preset("tiny"))


def test_prompt_ensembles(script, tiny_vlm):
    prompts = ["a walker lying on its back", "a cheetah moving forward fast"]
    raw = tiny_vlm.embed_text(prompts)
    torch.testing.assert_close(script.ensemble(tiny_vlm.embed_text, ["{}"])(prompts), raw)
    two = script.ensemble(tiny_vlm.embed_text, ["{}", "a video of {}"])(prompts)
    inline = F.normalize(raw + tiny_vlm.embed_text([f"a video of {p}" for p in prompts]), dim=-1)
    torch.testing.assert_close(two, inline)
    assert not torch.allclose(two, raw)
    for bad in ([], ["a video of"]):
        with pytest.raises(ValueError, match="needs a '{}'"):
            script.ensemble(tiny_vlm.embed_text, bad)
    # text_side swaps embed_text for the block only
    with script.text_side(tiny_vlm, script.with_head(tiny_vlm.embed_text, -torch.eye(raw.shape[1]))):
        torch.testing.assert_close(tiny_vlm.embed_text(prompts), -raw)
    torch.testing.assert_close(tiny_vlm.embed_text(prompts), raw)


def test_positive_mask_is_the_pretraining_positives(script, load_script):
    pretrain = load_script("pretrain_vlm")
    rng = np.random.default_rng(0)
    domains, postures, motions = ["cheetah", "walker"], ["lying_back", "standing"], ["still", "forward_fast"]

    def draw(n, partial):
        out = []
        for _ in range(n):
            p, m = rng.choice(postures), rng.choice(motions)
            if partial and rng.random() < 0.5:
                p, m = (None, m) if rng.random() < 0.5 else (p, None)
            out.append((rng.choice(domains), p, m))
        return out

    clips, caps = draw(12, partial=False), draw(12, partial=True)
    texts = [f"caption {i}" for i in range(12)]  # all different: only the concepts decide
    mask = script.positive_mask(script.concept_ids(clips, domains, postures, motions),
                                script.concept_ids(caps, domains, postures, motions))
    # pretraining also counts caption i as a positive of clip i (the pair it was drawn for)
    assert torch.equal(mask | torch.eye(12, dtype=torch.bool), pretrain.positives(clips, caps, texts))
    assert 0 < mask.sum() < mask.numel()
    with pytest.raises(AssertionError, match=r"\(12, 2\)"):
        script.positive_mask(torch.zeros(12, 2, dtype=torch.long), torch.zeros(12, 3, dtype=torch.long))


def test_text_head_learns_and_its_penalty_holds_it_at_the_identity(script):
    # Two concepts whose captions point away from their clips: a head must rotate them to match.
    torch.manual_seed(0)
    E = 8
    V = F.normalize(torch.randn(40, E) * 0.1 + torch.eye(E)[torch.arange(40) % 2], dim=-1)
    T = F.normalize(torch.randn(10, E) * 0.1 + torch.eye(E)[2 + torch.arange(10) % 2], dim=-1)
    clip_ids = torch.stack([torch.zeros(40, dtype=torch.long), torch.arange(40) % 2, -torch.ones(40, dtype=torch.long)], 1)
    cap_ids = torch.stack([torch.zeros(10, dtype=torch.long), torch.arange(10) % 2, -torch.ones(10, dtype=torch.long)], 1)
    clip_captions = [[j for j in range(10) if j % 2 == n % 2] for n in range(40)]
    W, losses = script.train_head(V, clip_ids, T, cap_ids, clip_captions, reg=0.0, steps=150, batch=16, lr=1e-2)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]), (losses[:3], losses[-3:])
    pred = (V @ F.normalize(T @ W, dim=-1).T).argmax(1) % 2
    assert torch.equal(pred, torch.arange(40) % 2)
    held, _ = script.train_head(V, clip_ids, T, cap_ids, clip_captions, reg=1e4, steps=50, batch=16, lr=1e-2)
    assert float((held - torch.eye(E)).norm()) < 0.05 < float((W - torch.eye(E)).norm())
    with pytest.raises(ValueError, match="at least two clips"):
        script.train_head(V, clip_ids, T, cap_ids, [[]] * 40, reg=0.0)
    with pytest.raises(AssertionError, match=r"\(40, 8\).*\(10, 4\)"):
        script.train_head(V, clip_ids, T[:, :4], cap_ids, clip_captions, reg=0.0)


def test_script_end_to_end_on_a_tiny_corpus(script, load_script, tmp_path):
    corpus = load_script("make_vlm_corpus")
    for name, seed in (("walker_0.npz", 0), ("heldout_walker_1000.npz", 1000)):
        shard = corpus.render_shard("walker", seed=seed, n_frames=160, show=False)
        with open(tmp_path / name, "wb") as fh:
            np.savez(fh, **shard)
    out = tmp_path / "text_side.json"
    result = script.main(["--corpus", str(tmp_path), "--train-clips", "30", "--regs", "0.1", "--steps", "3",
                          "--per-concept", "3", "--memory-weights", "0", "0.5", "--memory-k", "2",
                          "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result["ensembles"]) == set(script.TEMPLATE_SETS) and len(result["heads"]) == 1
    grid = result["memory"]["grid"]
    assert [(g["weight"], g["k"]) for g in grid] == [(0.0, 2), (0.5, 2)] and result["memory"]["captions"] > 2
    for r in [result["shipped"], *result["ensembles"].values(), *result["heads"], *grid]:
        assert 0 <= r["templated"] <= 1 and 0 <= r["paraphrase"] <= 1
        assert r["ratio"] == pytest.approx(r["paraphrase"] / max(r["templated"], 1e-9), abs=1e-3)
    assert result["heads"][0]["w_minus_identity"] > 0
    # a memory of weight 0 leaves the text side as shipped
    assert {k: grid[0][k] for k in ("templated", "paraphrase")} == \
        {k: result["shipped"][k] for k in ("templated", "paraphrase")}

    from genrl_lite.caption_memory import CaptionMemory
    saved = script.main(["--corpus", str(tmp_path), "--save-memory", str(tmp_path / "memory.pt")])
    memory = CaptionMemory.load(tmp_path / "memory.pt")
    assert len(memory.texts) == saved["captions"] == result["memory"]["captions"] and memory.weight == 0.5
    assert "walker_0.npz" in memory.source
    fresh = result["fresh_paraphrases"]
    assert {k: fresh["plain"][k] for k in ("templated",)} == {k: result["shipped"][k] for k in ("templated",)}
    assert (fresh["memory"]["weight"], fresh["memory"]["k"]) == (0.5, 5)


def test_second_paraphrase_set_is_held_out_and_covers_every_concept(script):
    from genrl_lite import captions

    taught = [p for table in captions.POSTURE_PHRASES.values() for ps in table.values() for p in ps]
    taught += [p for table in (captions.MOTION_PHRASES, captions.GAIT_PHRASES, captions.SLIDE_PHRASES)
               for ps in table.values() for p in ps]
    first = [p for table in captions.PARAPHRASES.values() for ps in table.values() for p in ps]
    fresh = script.FRESH_PARAPHRASES
    for factor, table in fresh.items():
        assert set(table) == set(captions.PARAPHRASES[factor]), factor
        for concept, phrases in table.items():
            assert len(phrases) == 2, concept
            for phrase in phrases:  # neither inside the other: a really new wording
                assert not any(phrase in t or t in phrase for t in taught + first), (concept, phrase)
    before = captions.PARAPHRASES
    with script.paraphrase_set(fresh):
        assert captions.concept_prompt("walker", "posture", "upside_down", captions.PARAPHRASES["posture"]["upside_down"][0]) \
            == captions.concept_prompt("walker", "posture", "upside_down", fresh["posture"]["upside_down"][0])
        assert captions.PARAPHRASES is fresh
    assert captions.PARAPHRASES is before
