"""Held-out split, cached VLM embeddings, two-stage training (frozen world model -> connector + aligner)
and the shipped-model files (genrl_lite.data, genrl_lite.training, genrl_lite.pretrained)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genrl_lite  # noqa: F401
from genrl_lite import pretrained
from genrl_lite.data import EmptyDatasetError, EpisodeDataset, is_heldout, save_episode, vlm_tag
from genrl_lite.training import CheckpointError, load_checkpoint, train_world_model
from genrl_lite.world_model import WorldModelConfig

E = 6


class CountingVLM:
    """A stand-in VLM: the embedding of window t is a unit vector that encodes the window's first pixel."""

    name, dim, n_frames = "counting", E, 8

    def __init__(self, fingerprint="v1"):
        self.fingerprint, self.calls = fingerprint, 0

    def embed_windows(self, obs):
        self.calls += 1
        T = len(obs)
        out = torch.zeros(T, E)
        for t in range(self.n_frames - 1, T):
            out[t, 0] = float(obs[t - 7:t + 1, 0, 0, 0].astype(float).mean()) / 255
            out[t, 1] = 1.0
        return torch.nn.functional.normalize(out, dim=-1) * (torch.arange(T) >= 7)[:, None]


def write_episodes(root, counts: dict, T: int = 40, S: int = 64) -> None:
    rng = np.random.default_rng(0)
    for subset, n in counts.items():
        for i in range(n):
            obs = rng.integers(0, 255, (T, S, S, 3), dtype=np.uint8)
            obs[:, 0, 0, 0] = (10 * i + np.arange(T)) % 256
            action = rng.uniform(-1, 1, (T, 6)).astype(np.float32)
            action[0] = 0
            ep = dict(obs=obs, action=action, is_first=np.arange(T) == 0, is_last=np.arange(T) == T - 1,
                      reward=np.zeros(T, np.float32), state=np.zeros((T, 3), np.float32))
            save_episode(root, "walker", subset, f"{subset}-0-{i:04d}", ep)


def test_heldout_split_is_every_tenth_episode_and_disjoint(tmp_path):
    write_episodes(tmp_path, {"expl": 12, "walk": 3}, T=10, S=8)
    train = EpisodeDataset(tmp_path, "walker", split="train")
    held = EpisodeDataset(tmp_path, "walker", split="heldout")
    everything = EpisodeDataset(tmp_path, "walker")
    assert [p.name for p in held.paths] == ["expl-0-0009.npz"]
    assert len(train) + len(held) == len(everything) == 15
    assert not set(train.paths) & set(held.paths)
    assert is_heldout("walk-3-0019-s2.npz") and not is_heldout("walk-3-0018-s2.npz")
    with pytest.raises(EmptyDatasetError, match="no heldout episodes"):
        EpisodeDataset(tmp_path, "walker", subsets=["walk"], split="heldout")
    with pytest.raises(ValueError, match="train, heldout"):
        EpisodeDataset(tmp_path, "walker", split="test")


def test_embeddings_are_cached_per_vlm_and_follow_the_sampled_windows(tmp_path):
    write_episodes(tmp_path, {"expl": 2}, T=30, S=8)
    vlm = CountingVLM()
    ds = EpisodeDataset(tmp_path, "walker").attach_embeddings(vlm)
    assert vlm.calls == 2
    batch = ds.sample(16, 12, np.random.default_rng(0))
    assert batch["embed"].shape == (16, 12, E) and batch["embed"].dtype == np.float32
    for b in range(16):  # each embed row belongs to the window ending at the same frame
        for t in range(12):
            frame = int(batch["obs"][b, t, 0, 0, 0])
            row = batch["embed"][b, t]
            if np.abs(row).sum() > 0:
                assert row[0] / row[1] == pytest.approx((frame - 3.5) / 255, abs=2e-3)
    # a second dataset reuses the cache, with the very numbers the first one trained on (float16), so
    # that a model trained before the cache existed and one trained after it are the same model
    again = EpisodeDataset(tmp_path, "walker").attach_embeddings(vlm)
    assert vlm.calls == 2
    assert all(np.array_equal(a, b) for a, b in zip(ds.embeds, again.embeds))
    fresh = [CountingVLM().embed_windows(ep["obs"]).numpy() for ep in ds.episodes]
    assert not all(np.array_equal(a, b) for a, b in zip(ds.embeds, fresh))        # rounded, not float32
    other = CountingVLM("v2")
    EpisodeDataset(tmp_path, "walker").attach_embeddings(other)
    assert other.calls == 2 and vlm_tag(other) != vlm_tag(vlm)
    # a corrupted cache file is recomputed, not trusted
    cache = next((tmp_path / "walker" / "expl" / ".embed" / vlm_tag(vlm)).glob("*.npy"))
    cache.write_bytes(b"garbage")
    EpisodeDataset(tmp_path, "walker").attach_embeddings(vlm)
    assert vlm.calls == 3


def test_two_stage_training_freezes_the_world_model_and_exports_a_slim_model(tmp_path):
    write_episodes(tmp_path / "d", {"expl": 3}, T=40)
    cfg = WorldModelConfig.preset("tiny", save_every=1000)
    plain = EpisodeDataset(tmp_path / "d", "walker")
    stage1 = train_world_model(cfg, plain, 3, tmp_path / "wm", show_progress=False)
    assert stage1.connector is None
    vlm = CountingVLM()
    with_embed = EpisodeDataset(tmp_path / "d", "walker").attach_embeddings(vlm)
    with pytest.raises(ValueError, match="need VLM embeddings"):
        train_world_model(cfg, plain, 3, tmp_path / "bad", world_model_from=tmp_path / "wm", show_progress=False)
    stage2 = train_world_model(cfg, with_embed, 4, tmp_path / "conn", world_model_from=tmp_path / "wm",
                               show_progress=False)
    before = load_checkpoint(tmp_path / "wm").world_model.state_dict()
    for k, v in stage2.world_model.state_dict().items():
        torch.testing.assert_close(v, before[k])  # the world model did not move
    assert stage2.connector is not None and stage2.step == 4
    out = pretrained.export_model(tmp_path / "conn", tmp_path / "ship" / "model.pt", vlm=vlm,
                                  extra={"command": "test"})
    full_size = (tmp_path / "conn" / "checkpoint.pt").stat().st_size
    assert out.stat().st_size < 0.6 * full_size  # no optimizer state, float16 weights
    bundle = pretrained.load_model(out)
    assert bundle.meta == {"command": "test"} and bundle.vlm_tag == vlm_tag(vlm)
    pretrained.check_vlm(bundle, vlm)
    with pytest.raises(CheckpointError, match="retrain the connector"):
        pretrained.check_vlm(bundle, CountingVLM("v2"))
    with pytest.raises(CheckpointError, match="no connector"):
        pretrained.check_vlm(load_checkpoint(tmp_path / "wm"), vlm)
    w = stage2.world_model.state_dict()
    for k, v in bundle.world_model.state_dict().items():
        torch.testing.assert_close(v, w[k], atol=2e-3, rtol=2e-3)
    # a new VLM needs only stage 2, started from the shipped (slim) file
    again = train_world_model(cfg, with_embed, 2, tmp_path / "conn2", world_model_from=out, show_progress=False)
    for k, v in again.world_model.state_dict().items():
        torch.testing.assert_close(v, bundle.world_model.state_dict()[k])


def test_load_model_names_and_missing_files(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="shipped: walker, cheetah, quadruped"):
        pretrained.load_model("walkr")
    monkeypatch.setattr(pretrained, "models_dir", lambda: tmp_path)
    with pytest.raises(CheckpointError, match="data/models/README.md"):
        pretrained.load_model("walker")
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupted"):
        pretrained.load_model(tmp_path / "x.pt")


@pytest.mark.parametrize("domain", pretrained.SHIPPED_DOMAINS)
def test_every_shipped_model_loads_fits_its_domain_and_beats_the_baseline(domain):
    import json

    from genrl_lite.behaviour import task_action_dim
    from genrl_lite.tasks import list_tasks

    folder = pretrained.models_dir() / domain
    bundle = pretrained.load_model(domain)
    assert bundle.connector is not None and bundle.aligner is not None
    assert bundle.action_dim == task_action_dim(list_tasks(domain)[0])
    # every domain's connector was trained on the same shipped VLM's embeddings
    assert bundle.vlm_tag == pretrained.load_model("walker").vlm_tag
    info = json.loads((folder / "info.json").read_text())
    assert info["domain"] == domain and info["connector_steps"] == bundle.step
    q = json.loads((folder / "quality.json").read_text())
    assert q["domain"] == domain and q["open_loop_mse"] < q["baseline_mse"], q
    # one posterior step and a decoded frame, with the shapes the notebooks expect
    frame = torch.zeros(1, 1, 64, 64, 3, dtype=torch.uint8)
    rssm = bundle.world_model.rssm
    with torch.no_grad():
        posts, _ = rssm.observe(bundle.world_model.encode(bundle.world_model.preprocess(frame)),
                                torch.zeros(1, 1, bundle.action_dim), torch.ones(1, 1, dtype=torch.bool))
        assert bundle.world_model.decode(rssm.stoch_flat(posts)).shape[-3:] == (64, 64, 3)
