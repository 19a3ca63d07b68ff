"""The prompt benchmark (issue 4, scripts/bench_prompts.py) on a tiny, untrained model: shapes,
determinism, the aligner ablation path, the classification bookkeeping, the CLI, and bad input.
Plus the connector-and-aligner plots of genrl_lite/plotting.py. Tiny presets, CPU, ~20 s."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genrl_lite  # noqa: F401
from genrl_lite import plotting
from genrl_lite.aligner import Aligner
from genrl_lite.connector import Connector
from genrl_lite.tasks import UnknownNameError, get_task, list_tasks
from genrl_lite.training import ModelBundle
from genrl_lite.embedded_vlm import EmbeddedVLM, VideoTowerConfig
from genrl_lite.world_model import WorldModel, WorldModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_prompts as bp  # noqa: E402

L = 12   # imagined steps: > one 8-frame VLM window, so "mean" and "last" differ


@pytest.fixture(scope="module")
def vlm():
    torch.manual_seed(0)
    return EmbeddedVLM(VideoTowerConfig.preset("tiny"))      # random video tower, real frozen MiniLM


@pytest.fixture(scope="module")
def bundle(vlm):
    torch.manual_seed(0)
    cfg = WorldModelConfig.preset("tiny")
    b = ModelBundle(cfg, WorldModel(cfg, 6), Connector(cfg, vlm.dim), Aligner(vlm.dim), 0, 6, vlm.dim)
    for m in (b.world_model, b.connector, b.aligner):
        m.eval()
    return b


def test_every_task_has_paraphrases_and_cases_follow_the_registry():
    for key in list_tasks():
        para = bp.PARAPHRASES.get(key, [])
        assert len(para) >= 2, f"add 2-3 paraphrases of {key!r} to PARAPHRASES in scripts/bench_prompts.py"
        assert get_task(key).prompt not in para and len(set(para)) == len(para), (key, para)
    cases = bp.prompt_cases("walker")
    canon = [c for c in cases if c.canonical]
    assert [c.task for c in canon] == list_tasks("walker")
    assert all(c.prompt == get_task(c.task).prompt for c in canon)
    assert len(cases) == len(canon) + sum(len(bp.PARAPHRASES[k]) for k in list_tasks("walker"))
    assert {c.kind for c in cases} == {"standard", "custom"}
    only = bp.prompt_cases("walker", paraphrases=False, tasks=["walker_walk", "walker_stand"])
    assert [(c.task, c.canonical) for c in only] == [("walker_stand", True), ("walker_walk", True)]


def test_decode_shapes_and_determinism(bundle, vlm):
    prompts = ["walk fast clean", "lying down horizontally"]
    video = bp.decode_prompts(bundle, vlm, prompts, length=L)
    assert video.shape == (2, L, 64, 64, 3) and video.dtype == np.uint8
    np.testing.assert_array_equal(video, bp.decode_prompts(bundle, vlm, prompts, length=L))   # mode latents


def test_decode_equals_aligner_connector_decoder_by_hand(bundle, vlm):
    e = vlm.embed_text(["walk fast clean", "standing up straight"])
    with torch.no_grad():
        for use, e_in in ((True, bundle.aligner(e)), (False, F.normalize(e, dim=-1))):
            z = bundle.connector.rollout(e_in, L)["stoch"].flatten(-2)
            by_hand = (bundle.world_model.decode(z) * 255).round().to(torch.uint8).numpy()
            np.testing.assert_array_equal(bp.decode_embeddings(bundle, e, L, aligner=use), by_hand)
    with_a, without = (bp.decode_embeddings(bundle, e, L, aligner=a) for a in (True, False))
    assert not np.array_equal(with_a, without), "the aligner must change the imagined video"


def test_embed_imagined_modes(vlm):
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (2, L, 64, 64, 3), dtype=np.uint8)
    last = bp.embed_imagined(vlm, videos, "last")
    torch.testing.assert_close(last, vlm.embed_video(videos[:, -8:]))
    mean = bp.embed_imagined(vlm, videos, "mean")
    windows = np.stack([videos[:, t:t + 8] for t in range(L - 7)], 1)         # (2, L-7, 8, ...)
    by_hand = F.normalize(vlm.embed_video(windows.reshape(-1, 8, 64, 64, 3)).view(2, L - 7, -1).mean(1), dim=-1)
    torch.testing.assert_close(mean, by_hand, atol=1e-5, rtol=1e-4)
    assert mean.shape == (2, vlm.dim) and not torch.allclose(mean, last)
    with pytest.raises(ValueError, match="T >= 8"):
        bp.embed_imagined(vlm, videos[:, :5])
    with pytest.raises(ValueError, match="'mean' or 'last'"):
        bp.embed_imagined(vlm, videos, "median")


def test_run_benchmark_bookkeeping(bundle, vlm):
    tasks = ["walker_stand", "walker_walk", "walker_lying_down"]
    r = bp.run_benchmark(bundle, vlm, "walker", length=L, tasks=tasks)
    keys = list_tasks("walker")
    n = len(tasks) + sum(len(bp.PARAPHRASES[k]) for k in tasks)
    assert r["task_keys"] == keys and r["n_prompts"] == len(r["rows"]) == n
    assert r["chance"] == pytest.approx(1 / len(keys), abs=1e-4)
    for v in ("aligner", "no_aligner"):
        assert r["videos"][v].shape == (n, L, 64, 64, 3)
    assert not np.array_equal(r["videos"]["aligner"], r["videos"]["no_aligner"])
    for v in ("aligner", "no_aligner", "text_only"):
        sims = r["sims"][v]
        assert sims.shape == (n, len(keys))
        hits = np.array([keys[i] == row["task"] for i, row in zip(sims.argmax(1), r["rows"])])
        assert r["accuracy"][v]["all"] == pytest.approx(hits.mean(), abs=1e-4)
        assert [row[f"pred_{v}"] for row in r["rows"]] == [keys[i] for i in sims.argmax(1)]
        assert r["accuracy"][v]["custom"] is not None and r["accuracy"][v]["standard"] is not None
    # a task's own prompt is, as text, nearest to itself: the text-only ceiling is exact there
    assert r["accuracy"]["text_only"]["task_prompts"] == 1.0
    assert json.loads(json.dumps(bp.to_json(r)))["accuracy"] == r["accuracy"]


def test_bad_input(bundle, vlm):
    with pytest.raises(UnknownNameError, match="walker"):
        bp.run_benchmark(bundle, vlm, "dog")
    with pytest.raises(ValueError, match="not tasks of domain 'walker'"):
        bp.prompt_cases("walker", tasks=["walker_fly"])
    with pytest.raises(ValueError, match="empty"):
        bp.decode_prompts(bundle, vlm, ["walk fast clean", "  "])
    with pytest.raises(ValueError, match="empty prompt list"):
        bp.decode_prompts(bundle, vlm, [])
    with pytest.raises(ValueError, match="at least the VLM window"):
        bp.run_benchmark(bundle, vlm, "walker", length=4)
    with pytest.raises(ValueError, match="built for size"):
        bp.decode_embeddings(bundle, torch.randn(2, 16))
    no_conn = ModelBundle(bundle.cfg, bundle.world_model, None, None, 0, 6, None)
    with pytest.raises(ValueError, match="no connector"):
        bp.decode_prompts(no_conn, vlm, ["walk fast clean"])


def test_cli_on_a_tiny_checkpoint(tmp_path, capsys):
    """End to end: a 2-step tiny checkpoint with 384-d embeddings, the shipped VLM, JSON + frames + figure."""
    from genrl_lite.training import SyntheticSampler, train_world_model

    cfg = WorldModelConfig.preset("tiny")
    train_world_model(cfg, SyntheticSampler(action_dim=6, embed_dim=384), 2, tmp_path / "m", show_progress=False)
    out = tmp_path / "p.json"
    bp.main(["--model", str(tmp_path / "m"), "--json", str(out), "--length", "8", "--no-paraphrases",
             "--tasks", "walker_stand", "walker_walk", "--figure", str(tmp_path / "f.png")])
    printed = capsys.readouterr().out
    assert "top-1 among 9 walker task prompts" in printed and "no_aligner" in printed
    saved = json.loads(out.read_text())
    assert saved["n_prompts"] == 2 and saved["model"]["step"] == 2 and set(saved["accuracy"]) == {
        "aligner", "no_aligner", "text_only"}
    frames = np.load(tmp_path / "p_frames.npz")                          # <json stem>_frames.npz
    assert frames["aligner"].shape == (2, 2, 64, 64, 3) and list(frames["tasks"]) == ["walker_stand", "walker_walk"]
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_connector_and_aligner_plots():
    rng = np.random.default_rng(0)
    vid = rng.integers(0, 256, (L, 64, 64, 3), dtype=np.uint8)
    figs = [plotting.imagined_prompt({"aligner": vid, "no aligner": vid[::-1]}, "walk", every=2),
            plotting.prompt_video_grid({"walk": {"aligner": vid, "no aligner": vid}, "run": {"aligner": vid}}),
            plotting.video_strips({"clip": vid[:8], "imagined": vid}, every=1, title="video prompt"),
            plotting.prompt_accuracy({"aligner": {"all": 0.5, "custom": None}, "no_aligner": {"all": 0.1}}, 0.11),
            plotting.aligner_projection(rng.normal(size=(40, 16)), rng.normal(size=(3, 16)),
                                        rng.normal(size=(3, 16)), ["a", "b", "c"])]
    assert len(figs[1].axes) == 3 and len(figs[0].axes) == 2
    assert figs[2].axes[0].images[0].get_array().shape == (64, 12 * 66 - 2, 3)   # frames side by side, 2-pixel gaps
    assert [t.get_text() for t in figs[3].axes[0].get_xticklabels()] == ["all"]   # groups without data dropped
    for fig in figs:
        plotting.close(fig)
    with pytest.raises(AssertionError, match="must match"):
        plotting.aligner_projection(rng.normal(size=(40, 16)), rng.normal(size=(3, 16)), rng.normal(size=(2, 16)))
