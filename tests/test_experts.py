"""The privileged SAC learner that generates task-replay data (genrl_lite.experts), at toy scale."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genrl_lite  # noqa: F401

torch.set_num_threads(1)  # tiny networks: threads only add overhead on a shared 2-core machine
from genrl_lite.experts import (EXPERT_LEVEL, SAC, Learner, ReplayBuffer, SACConfig, StateEnv, evaluate,
                                load_results, load_snapshot, replay_span, save_snapshot, snapshot_paths)


def test_tiny_sac_run_saves_snapshots_and_resumes(tmp_path):
    cfg = SACConfig.preset("tiny")
    run_dir, snap_dir = tmp_path / "run", tmp_path / "experts" / "walker_stand"
    learner = Learner("walker_stand", cfg, run_dir=run_dir, seed=0)
    records = learner.train(steps=80, snapshot_dir=snap_dir, log=lambda *_: None)
    assert learner.step == 80 and learner.buffer.size == 80
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[-1] == 80
    assert all(np.isfinite(v) for v in learner.last_losses.values()), learner.last_losses
    assert (run_dir / "learner.pt").exists()

    paths = snapshot_paths("walker_stand", tmp_path / "experts")
    assert [p.name for p in paths] == [f"snapshot_{k}.pt" for k in range(5)]
    policy = load_snapshot(paths[-1])
    assert policy.meta["task"] == "walker_stand" and policy.meta["step"] == 80
    state = StateEnv("walker_stand").reset()
    action = policy(state)
    assert action.shape == (6,) and action.dtype == np.float32
    assert np.all(np.abs(action) <= 1)
    # The float16 snapshot acts like the learner's own deterministic actor.
    with torch.no_grad():
        own = learner.sac.actor(torch.as_tensor(state)[None], deterministic=True)[0][0].numpy()
    np.testing.assert_allclose(action, own, atol=2e-2)
    noisy = policy(state, np.random.default_rng(0), noise=5.0)
    assert np.all(np.abs(noisy) <= 1) and not np.allclose(noisy, action)
    with pytest.raises(ValueError, match="expects a state of shape"):
        policy(np.zeros(3))

    # Resume: a new learner picks up the step count, buffer and weights, then trains further.
    resumed = Learner("walker_stand", cfg, run_dir=run_dir, seed=0)
    assert resumed.step == 80 and resumed.buffer.size == 80
    for a, b in zip(resumed.sac.parameters(), learner.sac.parameters()):
        torch.testing.assert_close(a, b)
    assert resumed.train(steps=80, snapshot_dir=snap_dir, log=lambda *_: None) == []  # already done
    # A larger budget continues training and re-takes only the snapshots that are now due later.
    more = resumed.train(steps=100, snapshot_dir=snap_dir, log=lambda *_: None)
    assert resumed.step == 100 and [(r["index"], r["step"]) for r in more] == [(4, 100)]
    with pytest.raises(ValueError, match="is for walker_stand"):
        Learner("walker_walk", cfg, run_dir=run_dir)



def test_warm_start_from_another_task_of_the_same_domain(tmp_path):
    cfg = SACConfig.preset("tiny")
    walk = Learner("walker_walk", cfg, run_dir=tmp_path / "walk", seed=0)
    walk.train(steps=60, log=lambda *_: None)
    run = Learner("walker_run", cfg, run_dir=tmp_path / "run", seed=1,
                  init_from=tmp_path / "walk" / "learner.pt")
    # It starts with the walk learner's networks but none of its experience or steps.
    for a, b in zip(run.sac.parameters(), walk.sac.parameters()):
        torch.testing.assert_close(a, b)
    assert run.step == 0 and run.buffer.size == 0 and run.init_from == "walker_walk"
    # A cold learner's first action is the uniform seeding draw; the warm one acts with its policy.
    cold = Learner("walker_run", cfg, seed=1)
    cold.env_step()
    run.env_step()
    seeding = np.random.default_rng(1).uniform(-1, 1, 6).astype(np.float32)
    np.testing.assert_allclose(cold.buffer.a[0], seeding)
    assert not np.allclose(run.buffer.a[0], seeding) and np.all(np.abs(run.buffer.a[0]) <= 1)
    run.train(steps=60, log=lambda *_: None)
    # Up to seed_steps + warm_critic_steps (50 + 20 in tiny) only the critics learn the new reward.
    assert "actor_loss" not in run.last_losses and np.isfinite(run.last_losses["critic_loss"])
    for a, b in zip(run.sac.actor.parameters(), walk.sac.actor.parameters()):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(run.sac.critic.parameters(), walk.sac.critic.parameters()))
    resumed = Learner("walker_run", cfg, run_dir=tmp_path / "run", seed=1)
    assert resumed.init_from == "walker_walk" and resumed.step == 60
    resumed.train(steps=90, log=lambda *_: None)  # past the warm-up the actor learns too
    assert "actor_loss" in resumed.last_losses
    assert any(not torch.equal(a, b) for a, b in zip(resumed.sac.actor.parameters(), walk.sac.actor.parameters()))
    with pytest.raises(ValueError, match="domains differ"):
        Learner("cheetah_run", cfg, init_from=tmp_path / "walk" / "learner.pt")
    with pytest.raises(FileNotFoundError, match="train that task first"):
        Learner("walker_run", cfg, init_from=tmp_path / "nowhere" / "learner.pt")

def test_continue_a_task_from_its_snapshot_when_the_learner_is_gone(tmp_path):
    """Learner checkpoints are git-ignored: another machine continues a shipped expert from its last
    snapshot (actor only, fresh critics), keeps the earlier snapshots and counts steps on from it."""
    cfg = SACConfig.preset("tiny")
    snap_dir = tmp_path / "experts" / "walker_run"
    first = Learner("walker_run", cfg, seed=0)
    first.train(steps=60, snapshot_dir=snap_dir, log=lambda *_: None)
    old = {p.name: p.read_bytes() for p in snapshot_paths("walker_run", tmp_path / "experts")}
    cont = Learner("walker_run", cfg, run_dir=tmp_path / "run", seed=1, init_from=snap_dir / "snapshot_4.pt")
    assert cont.init_from == "walker_run snapshot 4" and cont.step == 0 and cont.buffer.size == 0
    assert (cont.offset_steps, cont.offset_seconds) == (60, load_snapshot(snap_dir / "snapshot_4.pt").meta["train_seconds"])
    # The actor is the snapshot's (float16 on disk); the critics are new, not the first learner's.
    for a, b in zip(cont.sac.actor.parameters(), first.sac.actor.parameters()):
        torch.testing.assert_close(a, b.half().float())
    assert all(not torch.equal(a, b) for a, b in zip(cont.sac.critic.parameters(), first.sac.critic.parameters()))
    cont.env_step()  # no uniform seeding: the inherited actor acts from the first step
    seeding = np.random.default_rng(1).uniform(-1, 1, 6).astype(np.float32)
    assert not np.allclose(cont.buffer.a[0], seeding)
    records = cont.train(steps=100, snapshot_dir=snap_dir, log=lambda *_: None, first_snapshot=4)
    assert [(r["index"], r["step"]) for r in records] == [(4, 160)]
    now = {p.name: p.read_bytes() for p in snapshot_paths("walker_run", tmp_path / "experts")}
    assert all(now[f"snapshot_{k}.pt"] == old[f"snapshot_{k}.pt"] for k in range(4))
    assert now["snapshot_4.pt"] != old["snapshot_4.pt"] and load_snapshot(snap_dir / "snapshot_4.pt").meta["step"] == 160
    resumed = Learner("walker_run", cfg, run_dir=tmp_path / "run", seed=1)  # the offset survives a resume
    assert (resumed.step, resumed.offset_steps, resumed.init_from) == (100, 60, "walker_run snapshot 4")
    # Another task of the body may start from the snapshot too, but counts its own steps.
    walk = Learner("walker_walk", cfg, init_from=snap_dir / "snapshot_4.pt")
    assert walk.offset_steps == 0 and walk.init_from == "walker_run snapshot 4"
    with pytest.raises(ValueError, match="first_snapshot must be in 0..4"):
        cont.train(steps=200, first_snapshot=5, log=lambda *_: None)
    with pytest.raises(ValueError, match="hidden width 32.*preset it was trained with"):
        Learner("walker_run", SACConfig.preset("laptop"), init_from=snap_dir / "snapshot_4.pt")
    with pytest.raises(ValueError, match="domains differ"):
        Learner("cheetah_run", cfg, init_from=snap_dir / "snapshot_4.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(RuntimeError, match="neither a learner checkpoint nor an expert snapshot"):
        Learner("walker_run", cfg, init_from=bad)


def test_train_experts_script_continues_a_snapshot_and_keeps_how_the_earlier_ones_were_made(tmp_path, load_script):
    script = load_script("train_experts")
    out, runs = tmp_path / "experts", tmp_path / "runs"
    common = ["--task", "walker_run", "--preset", "tiny", "--eval-episodes", "1", "--out", str(out), "--runs", str(runs)]
    script.main(common + ["--steps", "60"])
    first = json.loads((out / "results.json").read_text())["walker_run"]
    script.main(common + ["--steps", "40", "--runs", str(tmp_path / "runs2"), "--first-snapshot", "4",
                          "--init-from", str(out / "walker_run" / "snapshot_4.pt")])
    entry = json.loads((out / "results.json").read_text())["walker_run"]
    assert [s["step"] for s in entry["snapshots"]] == [s["step"] for s in first["snapshots"][:4]] + [100]
    assert entry["snapshots"][:4] == first["snapshots"][:4]  # the same files, measured the same way
    assert entry["first_snapshot"] == 4 and entry["earlier_run"]["command"] == first["command"]
    assert entry["init_from"] == "walker_run snapshot 4"
    readme = (out / "README.md").read_text()
    assert "snapshots before 4: `" + first["command"] + "`" in readme
    # resuming the continued run with a larger budget still credits snapshots 0-3 to the first run
    script.main(common + ["--steps", "50", "--runs", str(tmp_path / "runs2"), "--first-snapshot", "4",
                          "--init-from", str(out / "walker_run" / "snapshot_4.pt")])
    resumed = json.loads((out / "results.json").read_text())["walker_run"]
    assert resumed["earlier_run"]["command"] == first["command"] and resumed["snapshots"][4]["step"] == 110
    (out / "walker_run" / "snapshot_2.pt").unlink()
    with pytest.raises(SystemExit):
        script.main(common + ["--steps", "40", "--runs", str(tmp_path / "runs3"), "--first-snapshot", "4",
                              "--init-from", str(out / "walker_run" / "snapshot_4.pt")])


def test_eval_only_re_measures_the_snapshots_over_more_episodes_and_trains_nothing(tmp_path, load_script):
    script = load_script("train_experts")
    out, runs = tmp_path / "experts", tmp_path / "runs"
    common = ["--task", "walker_run", "--preset", "tiny", "--out", str(out), "--runs", str(runs)]
    script.main(common + ["--steps", "60", "--eval-episodes", "1"])
    before = json.loads((out / "results.json").read_text())["walker_run"]
    files = {p.name: p.read_bytes() for p in snapshot_paths("walker_run", out)}
    script.main(common + ["--eval-only", "--eval-episodes", "2"])
    after = json.loads((out / "results.json").read_text())["walker_run"]
    assert {p.name: p.read_bytes() for p in snapshot_paths("walker_run", out)} == files  # nothing retrained
    assert (after["command"], after["steps"]) == (before["command"], before["steps"])
    assert after["eval_episodes"] == 2 and "--eval-only" in after["eval_command"]
    for old, new in zip(before["snapshots"], after["snapshots"], strict=True):
        # the same evaluation seeds: the first episode is the one measured before, then one more
        assert len(new["returns"]) == 2 and new["returns"][0] == old["returns"][0]
        assert new["return_mean"] == pytest.approx(np.mean(new["returns"]), abs=0.1)
    readme = (out / "README.md").read_text()
    assert "returns over 2 evaluation episodes" in readme and "re-measured without training" in readme
    with pytest.raises(SystemExit):  # a task that was never trained has nothing to re-measure
        script.main(["--task", "walker_walk", "--eval-only", "--out", str(out)])


def test_critic_fits_a_fixed_batch():
    torch.manual_seed(0)
    cfg = SACConfig(hidden=32, batch_size=64, lr=1e-2, gamma=0.0)  # gamma 0: Q must equal the reward
    sac = SAC(4, 2, cfg)
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(4, 2, 64)
    for _ in range(64):
        s, a = rng.normal(size=4), rng.uniform(-1, 1, 2)
        buf.add(s, a, float(s[0] + a[0]), rng.normal(size=4), 1.0)
    batch = [torch.as_tensor(x) for x in (buf.s, buf.a, buf.r, buf.s2, buf.nd)]
    first = sac.update(*batch)["critic_loss"]
    for _ in range(100):
        last = sac.update(*batch)
    assert all(np.isfinite(v) for v in last.values())
    assert last["critic_loss"] < 0.1 * first, (first, last)


def test_missing_and_corrupted_snapshots_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_experts.py"):
        load_snapshot(tmp_path / "nope.pt")
    bad = tmp_path / "snapshot_0.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(RuntimeError, match="corrupted.*retrain"):
        load_snapshot(bad)


def test_snapshot_returns_are_measured_on_true_reward(tmp_path):
    sac = SAC(24, 6, SACConfig.preset("tiny"))
    path = save_snapshot(sac.actor, tmp_path / "snapshot_0.pt", task="walker_stand", step=0)
    assert path.stat().st_size < 50_000
    returns = evaluate(load_snapshot(path), "walker_stand", episodes=1)
    assert len(returns) == 1 and 0 <= returns[0] <= 1000


def test_replay_span_reads_how_far_each_shipped_expert_gets(tmp_path):
    from genrl_lite import tasks
    from genrl_lite.runtime import REPO_ROOT

    ref = tasks.get_task("walker_run").reference
    snaps = [dict(index=i, step=i, train_seconds=60.0 * (i + 1), return_mean=r)
             for i, r in enumerate([ref.random, 500.0, ref.random + EXPERT_LEVEL * (ref.expert - ref.random)])]
    rows = replay_span({"walker_run": dict(snapshots=snaps), "walker_stand": dict(snapshots=[])})
    assert [r["task"] for r in rows] == ["walker_run"]  # a task without snapshots has no replay
    (row,) = rows
    assert row["first"] == ref.random and row["first_norm"] == pytest.approx(0.0)
    assert row["final_norm"] == pytest.approx(EXPERT_LEVEL) and row["expert_level"] and row["minutes"] == 3.0
    snaps[-1]["return_mean"] -= 1.0
    assert not replay_span({"walker_run": dict(snapshots=snaps)})[0]["expert_level"]

    # the shipped table describes the shipped snapshot files, one row per task with experts
    root = REPO_ROOT / "data" / "experts"
    shipped = load_results(root)
    assert {r["task"] for r in replay_span(shipped)} == {p.name for p in root.iterdir() if snapshot_paths(p.name, root)}
    for key, entry in shipped.items():
        files = [str(p.relative_to(root)) for p in snapshot_paths(key, root)]
        assert [s["file"] for s in entry["snapshots"]] == files, key

    with pytest.raises(FileNotFoundError, match="train_experts.py"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"walker_run": {"snapshots": [')
    with pytest.raises(RuntimeError, match="corrupted.*git checkout"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"walker_run": {"command": "x"}}')
    with pytest.raises(RuntimeError, match="no list of snapshots"):
        load_results(tmp_path)


def test_experts_readme_says_which_tasks_reach_expert_level(tmp_path, load_script):
    from genrl_lite import tasks

    script = load_script("train_experts")
    ref = tasks.get_task("walker_stand").reference

    def entry(final_norm):
        final = ref.random + final_norm * (ref.expert - ref.random)
        snaps = [dict(index=i, step=100 * (i + 1), train_seconds=60.0 * (i + 1), return_mean=r, return_std=1.0)
                 for i, r in enumerate([ref.random, final])]
        return dict(command="python scripts/train_experts.py --task walker_stand --minutes 2", steps=200,
                    train_seconds=120.0, preset="laptop", snapshots=snaps,
                    random_return=dict(mean=ref.random, std=1.0))

    script.write_readme({"walker_stand": entry(0.9)}, tmp_path / "README.md")
    text = (tmp_path / "README.md").read_text()
    assert "walker_stand" in text and "-> 0.90, expert-level)" in text
    script.write_readme({"walker_stand": entry(0.5)}, tmp_path / "README.md")
    assert "-> 0.50, below expert level)" in (tmp_path / "README.md").read_text()


_ACT_UNDER_MKL = """
import sys, numpy as np, torch
torch.set_num_threads(1)
from genrl_lite.experts import load_snapshot
policy = load_snapshot(sys.argv[1])
states = np.random.default_rng(0).normal(0, 3, (200, policy.state_dim)).astype(np.float32)
np.save(sys.argv[2], np.stack([policy(s) for s in states]))
"""


@pytest.mark.parametrize("snapshot", ["walker_run/snapshot_4.pt", "quadruped_walk/snapshot_4.pt"])
def test_expert_actions_do_not_depend_on_the_instruction_set_mkl_picks(tmp_path, snapshot):
    """Replay data is reproducible across CPUs only if the experts act the same on every CPU. MKL picks
    its float32 matrix kernels by instruction set, which MKL_ENABLE_INSTRUCTIONS caps, so capping it
    plays another CPU on this one (in float32 the actions differed in their last bits here)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = Path(genrl_lite.__file__).resolve().parents[1] / "data" / "experts" / snapshot
    assert path.exists(), f"shipped expert snapshot {path} is missing"
    actions = {}
    for isa in ["", "AVX2", "SSE4_2"]:
        env = {k: v for k, v in os.environ.items() if k != "MKL_ENABLE_INSTRUCTIONS"}
        if isa:
            env["MKL_ENABLE_INSTRUCTIONS"] = isa
        out = tmp_path / f"actions_{isa or 'default'}.npy"
        subprocess.run([sys.executable, "-c", _ACT_UNDER_MKL, str(path), str(out)], env=env, check=True)
        actions[isa or "default"] = np.load(out)
    for isa, a in actions.items():
        assert a.dtype == np.float32 and a.shape == actions["default"].shape, (isa, a.dtype, a.shape)
        assert np.array_equal(a, actions["default"]), \
            f"actions under MKL_ENABLE_INSTRUCTIONS={isa} differ by up to {np.abs(a - actions['default']).max()}"
