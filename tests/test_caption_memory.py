"""genrl_lite.caption_memory: prompts moved towards their nearest pretraining captions."""
from __future__ import annotations

import genrl_lite  # noqa: F401
import pytest
import torch
import torch.nn.functional as F

from genrl_lite import vlm as vlm_module
from genrl_lite.caption_memory import BUILD_COMMAND, CaptionMemory, build_caption_memory
from genrl_lite.embedded_vlm import EmbeddedVLM, VideoTowerConfig


def hand_memory(weight=0.5, k=2):
    # four captions on the axes of a 4-d space: two near e0, one on e1, one on e2
    emb = torch.tensor([[1.0, 0.1, 0, 0], [1.0, -0.1, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    return CaptionMemory(["a", "b", "c", "d"], emb, weight=weight, k=k)


def test_apply_mixes_a_prompt_with_the_mean_of_its_nearest_captions():
    mem = hand_memory()
    t = F.normalize(torch.tensor([[0.6, 0.0, 0.0, 0.8], [0.0, 0.9, 0.1, 0.0]]), dim=-1)
    assert mem.neighbours(t)[0].sort().values.tolist() == [0, 1]  # the two captions near e0
    near = F.normalize(mem.embeddings[mem.neighbours(t)].mean(1), dim=-1)
    torch.testing.assert_close(mem.apply(t), F.normalize(0.5 * t + 0.5 * near, dim=-1))
    torch.testing.assert_close(mem.apply(t).norm(dim=-1), torch.ones(2))
    # the first prompt sat nearer e3; the memory pulls it towards e0, where its captions are
    assert mem.apply(t)[0, 0] > t[0, 0] and mem.apply(t)[0, 3] < t[0, 3]
    torch.testing.assert_close(mem.with_weight(0.0).apply(t), t)
    torch.testing.assert_close(mem.with_weight(1.0, k=1).apply(t)[1], mem.embeddings[2])
    with pytest.raises(AssertionError, match=r"\(B, 4\), got \(4,\)"):
        mem.apply(t[0])


@pytest.mark.parametrize("kwargs, words", [
    (dict(weight=1.5), "a mix in \\[0, 1\\]"),
    (dict(k=5), "k must be in 1..4"),
    (dict(k=0), "k must be in 1..4"),
])
def test_bad_settings_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        CaptionMemory(["a", "b", "c", "d"], torch.eye(4), **kwargs)
    with pytest.raises(ValueError, match="one \\(E,\\) embedding per caption"):
        CaptionMemory(["a", "b"], torch.eye(4))


def test_save_load_and_the_errors_that_say_how_to_rebuild(tmp_path):
    mem = hand_memory()
    path = mem.save(tmp_path / "caption_memory.pt")
    back = CaptionMemory.load(path)
    assert back.texts == mem.texts and (back.weight, back.k) == (0.5, 2)
    torch.testing.assert_close(back.embeddings, mem.embeddings, atol=1e-3, rtol=0)  # float16 on disk
    assert (CaptionMemory.load(path, weight=0.3, k=1).weight, CaptionMemory.load(path, k=1).k) == (0.3, 1)
    with pytest.raises(FileNotFoundError, match=BUILD_COMMAND):
        CaptionMemory.load(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(RuntimeError, match="corrupted.*rebuild it with"):
        CaptionMemory.load(tmp_path / "bad.pt")
    torch.save(dict(format="something else"), tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="format 'something else'"):
        CaptionMemory.load(tmp_path / "other.pt")


def test_the_vlm_applies_it_to_text_only(tmp_path, monkeypatch):
    torch.manual_seed(0)
    vlm = EmbeddedVLM(VideoTowerConfig.preset("tiny"))
    captions = ["a walker lying on its back", "a walker standing up straight", "a cheetah moving forward fast",
                "a walker lying on its back"]  # a duplicate is kept once
    mem = build_caption_memory(vlm.embed_text, captions, weight=0.5, k=1)
    assert mem.texts == sorted(set(captions)) and mem.dim == vlm.dim
    with pytest.raises(ValueError, match="at least one caption"):
        build_caption_memory(vlm.embed_text, [])
    prompts = ["a walker upside down", "a cheetah sprinting"]
    plain = vlm.embed_text(prompts)
    clips = torch.randint(0, 256, (2, 8, 64, 64, 3), dtype=torch.uint8)
    video = vlm.embed_video(clips)
    vlm.text_memory = mem
    try:
        torch.testing.assert_close(vlm.embed_text(prompts), mem.apply(plain))
        assert not torch.allclose(vlm.embed_text(prompts), plain)
        torch.testing.assert_close(vlm.embed_video(clips), video)  # clip embeddings never change
        assert "caption memory (weight 0.5, k 1, 3 captions)" in repr(vlm)
    finally:
        vlm.text_memory = None

    # load_vlm(caption_memory=...) reads it next to the weights, and refuses other text towers
    shipped = vlm_module.weights_dir() / "vision_tower.pt"
    if not shipped.exists():
        pytest.skip("no shipped vision tower")
    monkeypatch.setattr(vlm_module, "weights_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="build it with"):
        vlm_module.load_vlm(weights=shipped, caption_memory=0.5)
    real = vlm_module.load_vlm(weights=shipped)
    build_caption_memory(real.embed_text, captions, weight=0.2, k=1).save(tmp_path / "caption_memory.pt")
    on = vlm_module.load_vlm(weights=shipped, caption_memory=True)
    assert on.text_memory.weight == 0.2 and real.text_memory is None
    assert vlm_module.load_vlm(weights=shipped, caption_memory=0.7).text_memory.weight == 0.7
    torch.testing.assert_close(on.embed_text(prompts), on.text_memory.apply(real.embed_text(prompts)))
    with pytest.raises(ValueError, match="another text tower"):
        vlm_module.load_vlm("open_clip:ViT-B-32", caption_memory=0.5)


def test_train_behaviour_embeds_the_prompt_with_the_memory_when_asked(load_script, tmp_path):
    import json

    script = load_script("train_behaviour")
    common = ["--task", "walker_stand", "--steps", "2", "--episodes", "1", "--max-steps", "5"]
    script.main(common + ["--out", str(tmp_path / "plain")])
    script.main(common + ["--out", str(tmp_path / "memory"), "--caption-memory", "0.5"])
    plain, memory = (json.loads((tmp_path / run / "behaviour.json").read_text()) for run in ("plain", "memory"))
    assert plain["text_side"] == "plain" and memory["text_side"].startswith("caption memory (weight 0.5, k 5")
    assert plain["prompt"] == memory["prompt"] and plain["prompt_hash"] != memory["prompt_hash"]
    with pytest.raises(SystemExit, match="uses no prompt"):
        script.main(common + ["--out", str(tmp_path / "true"), "--caption-memory", "0.5", "--reward", "true"])
