"""The episode format, atomic writes, corrupted-file handling and the window sampler (genrl_lite.data)."""
from __future__ import annotations

import numpy as np
import pytest

import genrl_lite  # noqa: F401
from genrl_lite import data
from genrl_lite.data import CorruptEpisodeError, EmptyDatasetError, EpisodeDataset, load_episode, save_episode


def fake_episode(T: int, A: int = 6, P: int = 5, seed: int = 0, S: int = 8) -> dict:
    """An episode in the documented convention; obs encode (episode seed, t) so windows are traceable."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((T, S, S, 3), np.uint8)
    obs[:, 0, 0, 0] = seed
    obs[:, 0, 0, 1] = np.arange(T) % 256
    obs[:, 1:] = rng.integers(0, 255, (T, S - 1, S, 3), dtype=np.uint8)
    action = rng.uniform(-1, 1, (T, A)).astype(np.float32)
    action[0] = 0
    reward = rng.uniform(0, 2, T).astype(np.float32)
    reward[0] = 0
    return dict(obs=obs, action=action, is_first=np.arange(T) == 0, is_last=np.arange(T) == T - 1,
                reward=reward, state=rng.normal(size=(T, P)).astype(np.float32))


def test_round_trip_keeps_dtypes_shapes_and_splits_eval_data(tmp_path):
    ep = fake_episode(31)
    path = save_episode(tmp_path, "walker", "walk", "ep0", ep, meta=dict(task="walker_walk", seed=3))
    assert path == tmp_path / "walker" / "walk" / "ep0.npz"
    wm = load_episode(path)
    assert set(wm) == {"obs", "action", "is_first", "is_last"}  # no reward/state for the world model
    for k in wm:
        np.testing.assert_array_equal(wm[k], ep[k])
        assert wm[k].dtype == ep[k].dtype
    assert wm["obs"].shape == (31, 8, 8, 3) and wm["action"].shape == (31, 6)
    assert wm["is_first"][0] and not wm["is_first"][1:].any() and not wm["action"][0].any()
    full = load_episode(path, with_eval=True)
    np.testing.assert_array_equal(full["reward"], ep["reward"])
    np.testing.assert_array_equal(full["state"], ep["state"])
    assert full["meta"]["task"] == "walker_walk" and full["meta"]["subset"] == "walk"
    with np.load(path) as f:  # the world-model file itself has no privileged arrays
        assert "reward" not in f.files and "state" not in f.files


@pytest.mark.parametrize("breaker, message", [
    (lambda ep: ep["action"].__setitem__(0, 1.0), "action\\[0\\] must be zeros"),
    (lambda ep: ep["is_first"].__setitem__(3, True), "is_first"),
    (lambda ep: ep.__setitem__("obs", ep["obs"].astype(np.float32)), "uint8"),
    (lambda ep: ep.__setitem__("action", ep["action"][:-1]), "action must be"),
])
def test_convention_violations_are_rejected(tmp_path, breaker, message):
    ep = fake_episode(10)
    breaker(ep)
    with pytest.raises(ValueError, match=message):
        save_episode(tmp_path, "walker", "expl", "bad", ep)
    assert not list(tmp_path.rglob("*.npz"))


@pytest.mark.parametrize("fail_on_call", [1, 2])  # 1: the eval sidecar, 2: the world-model file
def test_atomic_write_leaves_no_partial_file_when_the_writer_raises(tmp_path, monkeypatch, fail_on_call):
    ep = fake_episode(10)
    save_episode(tmp_path, "walker", "expl", "old", ep)
    real, calls = np.savez_compressed, []

    def flaky_savez(f, **arrays):
        calls.append(1)
        if len(calls) == fail_on_call:
            f.write(b"PK\x03\x04 half an archive")
            raise RuntimeError("disk full")
        real(f, **arrays)

    monkeypatch.setattr(data.np, "savez_compressed", flaky_savez)
    with pytest.raises(RuntimeError, match="disk full"):
        save_episode(tmp_path, "walker", "expl", "new", ep)
    files = sorted(p.name for p in (tmp_path / "walker" / "expl").iterdir())
    assert files == ["old.eval.npz", "old.npz"], files  # nothing of "new", no temp file


def _write_dataset(root, lengths_by_subset):
    eps = {}
    seed = 1
    for subset, lengths in lengths_by_subset.items():
        for i, T in enumerate(lengths):
            ep = fake_episode(T, seed=seed)
            save_episode(root, "walker", subset, f"{subset}-{i}", ep, meta=dict(task=f"walker_{subset}"))
            eps[seed] = ep
            seed += 1
    return eps


def test_truncated_and_garbage_files_are_skipped_with_a_warning(tmp_path):
    _write_dataset(tmp_path, {"expl": [20, 20, 20]})
    base = tmp_path / "walker" / "expl"
    good = (base / "expl-1.npz").read_bytes()
    (base / "expl-1.npz").write_bytes(good[: len(good) // 2])  # truncated copy
    (base / "garbage.npz").write_bytes(b"this is not a zip file at all")
    with pytest.warns(RuntimeWarning, match="skipped 2 unreadable"):
        ds = EpisodeDataset(tmp_path, "walker")
    assert ds.num_episodes == 2 and ds.num_frames == 40
    assert sorted(p.name for p, _ in ds.skipped) == ["expl-1.npz", "garbage.npz"]
    with pytest.raises(CorruptEpisodeError, match="garbage.npz.*delete it and re-collect"):
        load_episode(base / "garbage.npz")


def test_empty_root_says_how_to_get_data(tmp_path):
    with pytest.raises(EmptyDatasetError, match="make data.*data/sample"):
        EpisodeDataset(tmp_path, "walker")
    _write_dataset(tmp_path, {"expl": [10]})
    with pytest.raises(EmptyDatasetError, match="subsets found: expl"):
        EpisodeDataset(tmp_path, "walker", subsets=["walk"])


def test_sampler_shapes_and_windows_stay_inside_one_episode(tmp_path):
    eps = _write_dataset(tmp_path, {"expl": [12, 30], "walk": [7, 25]})  # 7 < L: never eligible
    ds = EpisodeDataset(tmp_path, "walker")
    batch = ds.sample(64, 10, np.random.default_rng(0))
    assert batch["obs"].shape == (64, 10, 8, 8, 3) and batch["obs"].dtype == np.uint8
    assert batch["action"].shape == (64, 10, 6) and batch["action"].dtype == np.float32
    assert batch["is_first"].shape == (64, 10) and batch["is_last"].dtype == bool
    seeds_seen = set()
    for b in range(64):
        seed = batch["obs"][b, :, 0, 0, 0]
        t = batch["obs"][b, :, 0, 0, 1].astype(int)
        assert (seed == seed[0]).all(), "window mixes two episodes"
        assert (np.diff(t) == 1).all(), "window is not contiguous"
        ep = eps[int(seed[0])]
        np.testing.assert_array_equal(batch["action"][b], ep["action"][t[0]:t[0] + 10])
        # is_first only where the episode really starts; is_last only at its real end.
        assert batch["is_first"][b].tolist() == (t == 0).tolist()
        assert batch["is_last"][b].tolist() == (t == len(ep["obs"]) - 1).tolist()
        seeds_seen.add(int(seed[0]))
    assert seeds_seen == {1, 2, 4}  # all episodes long enough are sampled, the 7-frame one never
    with pytest.raises(ValueError, match="no episode has 40 frames"):
        ds.sample(2, 40, np.random.default_rng(0))


def test_summary_counts_frames_and_true_returns_per_subset(tmp_path):
    eps = _write_dataset(tmp_path, {"expl": [12, 30], "walk": [25]})
    ds = EpisodeDataset(tmp_path, "walker")
    rows = {r["subset"]: r for r in ds.summary()}
    assert rows["expl"]["episodes"] == 2 and rows["expl"]["frames"] == 42
    assert rows["walk"]["episodes"] == 1 and rows["walk"]["frames"] == 25
    expl_returns = [eps[1]["reward"].sum(), eps[2]["reward"].sum()]
    assert rows["expl"]["return_mean"] == pytest.approx(np.mean(expl_returns), rel=1e-5)
    assert rows["expl"]["return_max"] == pytest.approx(max(expl_returns), rel=1e-5)
    assert rows["walk"]["return_std"] == pytest.approx(0.0)
    assert [len(ep["obs"]) for ep in ds] == [12, 30, 25]
    assert EpisodeDataset(tmp_path, "walker", subsets="walk").num_frames == 25


def test_rollout_follows_the_previous_action_convention():
    from genrl_lite.envs import PixelEnv

    env = PixelEnv("walker_walk", seed=0, size=16)
    actions = []

    def act(step):
        a = np.full(env.action_dim, 0.1 * (len(actions) + 1), np.float32)
        actions.append(a)
        return a

    ep = data.rollout(env, act, max_steps=5)
    data.validate_episode(ep)
    assert ep["obs"].shape == (6, 16, 16, 3) and ep["state"].shape[0] == 6
    np.testing.assert_allclose(ep["action"][1:], np.stack(actions))  # action[t] led to obs[t]
    assert ep["reward"][0] == 0 and not ep["is_last"].any()  # cut short: the episode did not end
    env.close()


def test_subset_returns_plot_has_one_panel_per_domain():
    from genrl_lite import plotting

    fig = plotting.subset_returns({"walker": {"expl": [10.0, 20.0], "walk": [300.0]}, "cheetah": {"expl": []}},
                                  references={"walker": {"walk": 960.0}})
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["walker", "cheetah"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["expl", "walk"]
    assert len(axes[0].collections) == 2 + 2 + 1  # 2 scatters, 2 mean bars, 1 reference tick
    plotting.close(fig)


def test_collection_plan_resumes_and_overwrite_collects_again(load_script, tmp_path):
    from genrl_lite.data import episode_paths
    from genrl_lite.runtime import REPO_ROOT

    script = load_script("collect_data")
    experts = REPO_ROOT / "data" / "experts"
    jobs = script.plan_jobs("walker", 1, 2, experts, tmp_path, 0, 5, 0.2)
    assert sorted(j["subset"] for j in jobs) == ["expl", "run", "run", "stand", "stand", "walk", "walk"]
    finals = [j for j in jobs if j["episode_id"].endswith("-0000-s4")]
    assert len(finals) == 3                                        # each task's first episode: its final snapshot
    done = episode_paths(tmp_path, "walker", jobs[1]["subset"], jobs[1]["episode_id"])[0]
    done.parent.mkdir(parents=True)
    done.write_bytes(b"")
    again = script.plan_jobs("walker", 1, 2, experts, tmp_path, 0, 5, 0.2)
    assert len(again) == 6 and jobs[1]["episode_id"] not in [j["episode_id"] for j in again]   # resumes
    forced = script.plan_jobs("walker", 1, 2, experts, tmp_path, 0, 5, 0.2, overwrite=True)
    assert [j["episode_id"] for j in forced] == [j["episode_id"] for j in jobs]


def test_larger_collection_extends_the_smaller_one(load_script, tmp_path):
    # README: `make data` (60/30) is what the models and benchmark used; bigger sizes add episodes
    # and never change the first ones, so they extend the same data.
    from genrl_lite.runtime import REPO_ROOT

    script = load_script("collect_data")
    experts = REPO_ROOT / "data" / "experts"
    key = lambda j: (j["subset"], j["episode_id"], j["seed"], j["snapshot"])
    small = {key(j) for j in script.plan_jobs("walker", 2, 3, experts, tmp_path, 0, 5, 0.2)}
    large = {key(j) for j in script.plan_jobs("walker", 4, 6, experts, tmp_path, 0, 5, 0.2)}
    assert len(small) == 2 + 3 * 3 and len(large) == 4 + 3 * 6
    assert small < large
    assert script.FULL == {"expl": 60, "replay": 30}       # the sizes data/models/README.md names


def test_collection_reproduces_the_committed_sample_bit_for_bit(load_script, tmp_path):
    # data/README.md: collection is deterministic, and the experts act in float64 so that their
    # actions do not depend on the CPU. The committed sample was collected on one machine; run on
    # another kind of CPU (CI's, a learner's), this test checks that claim there.
    from genrl_lite.data import episode_paths
    from genrl_lite.runtime import REPO_ROOT

    script = load_script("collect_data")
    sample = REPO_ROOT / "data" / "sample"
    jobs = script.plan_jobs("walker", 1, 1, REPO_ROOT / "data" / "experts", tmp_path, 0,
                            script.SAMPLE["steps"], 0.2, overwrite=True)
    jobs = [j for j in jobs if j["subset"] in ("expl", "run")]     # babbling, and the liveliest expert
    assert [j["episode_id"] for j in jobs] == ["expl-0-0000", "run-0-0000-s4"]
    for job in jobs:
        record = script.run_job(job)
        assert record["frames"] == script.SAMPLE["steps"] + 1, record
        for new, old in zip(episode_paths(tmp_path, "walker", job["subset"], job["episode_id"]),
                            episode_paths(sample, "walker", job["subset"], job["episode_id"])):
            with np.load(new) as a, np.load(old) as b:
                assert sorted(a.files) == sorted(b.files), (a.files, b.files)
                for k in a.files:
                    if a[k].dtype.kind in "fiub":
                        assert np.array_equal(a[k], b[k]), \
                            f"{old.name}[{k!r}] differs from a fresh collection (max |diff| " \
                            f"{np.abs(a[k].astype(float) - b[k].astype(float)).max()})"
