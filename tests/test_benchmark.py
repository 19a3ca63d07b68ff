"""The benchmark (issue 7) at toy scale: aggregation on hand-made results (with missing cells), the
method table really changes what it claims, clear errors for bad names, resumability of the one
command, and cells run end to end on a tiny world model trained inside the test."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genrl_lite  # noqa: F401
from genrl_lite import benchmark as bm
from genrl_lite import benchmark_results as bres
from genrl_lite import benchmark_run as br
from genrl_lite.baseline_rewards import WMCLIPReward
from genrl_lite.rewards import GenRLReward
from genrl_lite.runtime import REPO_ROOT
from genrl_lite.tasks import UnknownNameError

E = 16


def write_result(root, cell, norm, seconds=60.0, **extra):
    path = cell.path(root) / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"normalized_mean": norm, "return_mean": 100 * norm, "train_seconds": seconds,
                                "train_updates": 10, "preset": "laptop", "commit": "abc", "seed": cell.seed,
                                "command": "python scripts/benchmark.py", "fast_mode": False, **extra}))


# --- aggregation ---------------------------------------------------------------------------------


def test_mean_and_standard_error():
    assert bres.mean_stderr([]) == (None, None)
    assert bres.mean_stderr([None, 0.5]) == (0.5, None)
    m, se = bres.mean_stderr([0.1, 0.2, 0.6])
    assert m == pytest.approx(0.3)
    assert se == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1) / math.sqrt(3))


def test_aggregate_hand_made_results_with_missing_cells(tmp_path):
    cells = bm.plan(["genrl", "align_b1"], ["walker_stand", "walker_walk"], [0, 1, 2])
    write_result(tmp_path, bm.Cell("genrl", "walker_stand", 0), 0.2, seconds=600)
    write_result(tmp_path, bm.Cell("genrl", "walker_stand", 1), 0.4, seconds=540)
    write_result(tmp_path, bm.Cell("align_b1", "walker_walk", 2), 0.1)
    (bm.Cell("align_b1", "walker_stand", 0).path(tmp_path)).mkdir(parents=True)
    (bm.Cell("align_b1", "walker_stand", 0).path(tmp_path) / "result.json").write_text("{truncated")
    rows = {(r["method"], r["task"]): r for r in bres.aggregate(cells, tmp_path)}
    r = rows[("genrl", "walker_stand")]
    assert r["seeds"] == [0, 1] and r["missing_seeds"] == [2]
    assert r["normalized_mean"] == pytest.approx(0.3) and r["normalized_stderr"] == pytest.approx(0.1)
    assert r["train_seconds_mean"] == pytest.approx(570) and r["paper"] == 1.01
    assert r["commands"] == ["python scripts/benchmark.py"] and r["presets"] == ["laptop"]
    assert rows[("genrl", "walker_walk")]["normalized_mean"] is None        # not run: never a number
    assert rows[("align_b1", "walker_stand")]["missing_seeds"] == [0, 1, 2]  # unreadable = not run
    assert rows[("align_b1", "walker_walk")]["normalized_stderr"] is None and rows[("align_b1", "walker_walk")]["paper"] is None
    dom = {(d["method"], d["domain"]): d for d in bres.domain_rows(list(rows.values()))}
    assert dom[("genrl", "walker")]["tasks_run"] == 1 and dom[("genrl", "walker")]["tasks"] == 2
    assert dom[("genrl", "walker")]["normalized_mean"] == pytest.approx(0.3) and dom[("genrl", "walker")]["paper"] == .75
    series, paper = bres.bar_series(list(rows.values()), ["genrl", "align_b1"], ["walker_stand", "walker_walk"])
    np.testing.assert_allclose(series["GenRL"][0], [0.3, np.nan])
    np.testing.assert_allclose(paper["GenRL"], [1.01, 0.95])


def test_markdown_table_shows_what_ran_and_never_fills_gaps(tmp_path):
    cells = bm.plan(["genrl", "align_b1", "data_expl", "video_walker_stand_from_walker"],
                    ["walker_stand", "walker_walk", "walker_run"], [0, 1])
    write_result(tmp_path, bm.Cell("genrl", "walker_stand", 0), 0.2)
    write_result(tmp_path, bm.Cell("genrl", "walker_stand", 1), 0.4)
    write_result(tmp_path, bm.Cell("align_b1", "walker_walk", 0), 0.1)
    rows = bres.aggregate(cells, tmp_path)
    table = bres.markdown_table(rows, ["genrl", "align_b1", "data_expl", "video_walker_stand_from_walker"],
                              bm.DATA_ABLATION_TASKS, ["genrl"])
    lines = table.splitlines()
    assert lines[0] == "| normalized score (seeds) | walker stand | walker walk |"      # walker run: nothing ran
    assert lines[2] == "| GenRL | 0.30 ± 0.10 (2) | not run |"
    assert lines[3] == "| alignment b=1 | not run | 0.10 (1) |"
    assert lines[4] == "| start states from expl data only | not run | not run |"
    assert lines[5] == "| video prompt: a walker stand clip | not run | – |"             # no such cell
    assert lines[6] == "| GenRL (paper) | 1.01 | 0.95 |" and len(lines) == 7
    assert bres.markdown_table(rows, ["td3bc_video"], ["walker_stand"]) == "(no results yet)\n"


def test_task_table_has_a_line_per_task_that_ran(tmp_path):
    cells = bm.plan(["genrl", "genrl_datafree"], ["walker_lying_down", "walker_flipping", "cheetah_standing"], [0])
    write_result(tmp_path, bm.Cell("genrl", "walker_flipping", 0), 0.25)
    write_result(tmp_path, bm.Cell("genrl_datafree", "cheetah_standing", 0), -0.5)
    lines = bres.task_table(bres.aggregate(cells, tmp_path), ["genrl", "genrl_datafree"],
                          ["walker_lying_down", "walker_flipping", "cheetah_standing"]).splitlines()
    assert lines[0] == "| task | prompt | GenRL | GenRL data-free |"
    assert lines[2] == "| walker flipping | doing backflips | 0.25 (1) | not run |"      # lying down: nothing ran
    assert lines[3].startswith("| cheetah standing | ") and lines[3].endswith(" | not run | -0.50 (1) |")
    assert len(lines) == 4
    assert bres.task_table([], ["genrl"], ["walker_flipping"]) == "(no results yet)\n"


def test_update_readme_rewrites_only_the_marked_blocks(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- benchmark:main -->\nold table\n<!-- /benchmark:main -->\nafter\n")
    assert bres.update_readme(readme, {"main": "| new |\n"})
    assert readme.read_text() == "intro\n<!-- benchmark:main -->\n| new |\n<!-- /benchmark:main -->\nafter\n"
    assert not bres.update_readme(readme, {"main": "| new |\n"})                  # already up to date
    with pytest.raises(ValueError, match="benchmark:walker"):
        bres.update_readme(readme, {"walker": "x"})


def test_progress_counts_the_whole_grid_only(tmp_path, monkeypatch, load_script):
    """The README's progress line counts current, left and stale cells, and only a run over the whole
    default grid may write it (a run of a few methods would report its own few cells as the grid)."""
    rows = [{"method": "genrl", "task": "walker_stand", "seeds": [0, 1], "missing_seeds": [2], "stale_seeds": [2]},
            {"method": "genrl", "task": "walker_walk", "seeds": [], "missing_seeds": [0, 1, 2]}]
    line = bres.progress({"rows": rows, "date": "2026-11-27 06:00:00 UTC", "cpu_hours_per_cell": 0.5})
    assert "the full grid is 6 cells (about 3 CPU-hours); 2 are current and 4 left (about 2 CPU-hours), 1 of them stale" in line
    full = [dict(r, seeds=[0, 1, 2], missing_seeds=[], stale_seeds=[]) for r in rows]
    line = bres.progress({"rows": full, "date": "2026-11-28 06:00:00 UTC", "cpu_hours_per_cell": 0.5})
    assert "the full grid is 6 cells (about 3 CPU-hours); all 6 are current" in line and "left" not in line
    line = bres.progress({"rows": rows, "date": "2026-11-28 06:00:00 UTC", "cpu_hours_per_cell": 0.35})
    assert "(about 2 CPU-hours); 2 are current and 4 left (about 1.4 CPU-hours)" in line
    assert "progress" not in bres.readme_tables({"rows": rows})
    script = load_script("benchmark")
    monkeypatch.setattr(script, "has_model", lambda settings, domain: True)
    monkeypatch.setenv("GENRL_LITE_FAST", "0")
    common = ["--aggregate-only", "--results", str(tmp_path), "--out", str(tmp_path / "b.json")]
    assert not script.main(["--methods", "genrl", "--tasks", "walker_stand"] + common)["full_grid"]
    record = script.main(common)
    assert record["full_grid"] and f"is {len(bm.suite_cells([0, 1, 2]))} cells" in bres.readme_tables(record)["progress"]


def test_readme_tables_are_the_shipped_results():
    """The README's benchmark tables are generated (``scripts/benchmark.py --aggregate-only --readme``):
    they must say what results/benchmark.json says."""
    record = json.loads((REPO_ROOT / "results" / "benchmark.json").read_text())
    text = (REPO_ROOT / "README.md").read_text()
    for name, table in bres.readme_tables(record).items():
        block = text.split(f"<!-- benchmark:{name} -->\n")[1].split(f"<!-- /benchmark:{name} -->")[0]
        assert block == table, f"README's {name!r} table is stale: run scripts/benchmark.py --aggregate-only --readme"


def test_prompt_effect_compares_a_task_asked_for_with_the_same_methods_other_prompts():
    def pol(method, trained, seed, **scores):
        return {"method": method, "trained_task": trained, "seed": seed,
                "scores": {t: {"normalized_mean": v} for t, v in scores.items()}}
    cross = {"tasks": ["q_stand", "q_walk"], "policies": [
        pol("a", "q_stand", 0, q_stand=0.8, q_walk=0.4), pol("a", "q_stand", 1, q_stand=0.6, q_walk=0.2),
        pol("a", "q_walk", 0, q_stand=0.9, q_walk=0.5),
        pol("blind", "q_stand", 0, q_stand=0.5, q_walk=0.1), pol("blind", "q_walk", 0, q_stand=0.5, q_walk=None)]}
    rows = {(r["method"], r["task"]): r for r in bres.prompt_effect(cross)}
    # seeds of one prompt are averaged before the comparison (stand policies: 0.7 on stand, 0.3 on walk)
    assert rows["a", "q_stand"]["asked"] == pytest.approx(0.7)
    assert rows["a", "q_stand"]["effect"] == pytest.approx(0.7 - 0.9)
    assert rows["a", "q_walk"]["effect"] == pytest.approx(0.5 - 0.3)
    assert rows["a", "q_walk"]["best_other_task"] == "q_stand"
    assert rows["a", "q_walk"]["effect_stderr"] is None          # no per-episode scores in this record
    # with the episodes recorded, the effect gets a standard error (the two sides' errors combined)
    for p, eps in zip(cross["policies"][:3], ([0.8, 0.8], [0.5, 0.7], [1.0, 0.8])):
        p["scores"]["q_stand"]["normalized"] = eps
    stand = next(r for r in bres.prompt_effect(cross) if r["method"] == "a" and r["task"] == "q_stand")
    asked_se, other_se = bres.mean_stderr([0.8, 0.8, 0.5, 0.7])[1], bres.mean_stderr([1.0, 0.8])[1]
    assert stand["effect"] == pytest.approx(0.7 - 0.9)
    assert stand["effect_stderr"] == pytest.approx((asked_se ** 2 + other_se ** 2) ** 0.5)
    assert rows["blind", "q_stand"]["effect"] == pytest.approx(0.0)
    # a missing score leaves the comparison empty instead of comparing with nothing
    assert rows["blind", "q_walk"]["asked"] is None and rows["blind", "q_walk"]["effect"] is None
    assert len(rows) == 4


def test_amortization_break_even():
    c = bm.amortization(100.0, 1.0, 3.0, np.arange(0, 80))
    assert c["break_even"] == 51
    assert c["genrl"][51] < c["model_free"][51] and c["genrl"][50] >= c["model_free"][50]
    assert bm.amortization(100.0, 3.0, 3.0, [1])["break_even"] is None
    assert bm.paper_amortization([0])["break_even"] == 61           # 120 h / (7 h - 5 h) + 1


def test_paper_numbers_come_from_the_reference_tables():
    assert bm.paper_score("genrl", "walker_walk") == .95
    assert bm.paper_score("td3bc_video", "cheetah_run") == -.01
    assert bm.paper_score("genrl_no_aligner", "stickman_walk") is None      # per domain only:
    assert bm.paper_domain_score("genrl_no_aligner", "stickman") == .09      # the review's ablation
    assert bm.paper_score("genrl", "walker_flipping") is None                # Fig. 3 is a bar chart
    assert bm.paper_score("align_b1", "walker_walk") is None
    assert set(bm.PAPER_SOURCES) == {"table1", "review", "compute"}


# --- the method table ----------------------------------------------------------------------------


def test_methods_change_the_config_they_claim():
    base = bm.METHODS["genrl"].behaviour_config("tiny")
    assert bm.METHODS["align_b1"].behaviour_config("tiny").window == 1 != base.window
    assert bm.METHODS["align_none"].behaviour_config("tiny").window is None
    assert bm.METHODS["genrl_datafree"].behaviour_config("tiny").data_free and not base.data_free
    laptop = bm.METHODS["align_b1"].behaviour_config("laptop", **bm.LAPTOP_OVERRIDES)
    assert laptop.minutes == 10.0 and laptop.start_batch == 8 and laptop.window == 1
    assert {m.learner for m in bm.METHODS.values()} == {"genrl", "model_free"}
    for m in bm.METHODS.values():
        assert m.label and len(m.what) > 20


def test_bad_names_list_the_valid_ones(load_script):
    with pytest.raises(UnknownNameError, match="valid methods: genrl, genrl_datafree"):
        bm.plan(["genrl", "gen_rl"], ["walker_stand"], [0])
    with pytest.raises(UnknownNameError, match="valid tasks for walker"):
        bm.plan(["genrl"], ["walker_fly"], [0])
    with pytest.raises(UnknownNameError, match="wmdata_expl"):
        bm.plan(["wmdata_kitchen"], ["walker_stand"], [0])
    with pytest.raises(UnknownNameError, match="valid suites: main"):
        bm.suite_cells([0], ["everything"])
    with pytest.raises(SystemExit, match="error: unknown method.*valid methods: genrl"):
        load_script("benchmark").main(["--methods", "genrl_fast", "--aggregate-only"])


def test_plan_and_cell_paths():
    cells = bm.plan(["data_expl", "wmdata_run", "video_walker_walk_from_stickman", "genrl"],
                    ["walker_run", "cheetah_run"], [0, 1])
    assert bm.Cell("data_expl", "cheetah_run", 0) not in cells                 # data ablations: walker only
    assert bm.Cell("wmdata_run", "cheetah_run", 0) not in cells and bm.Cell("wmdata_run", "walker_run", 1) in cells
    assert bm.Cell("wmdata_all", "walker_run", 1).path("r").as_posix() == "r/benchmark/wmdata_all/walker_run-s1"
    assert bm.Cell("video_walker_walk_from_stickman", "walker_walk", 1) in cells
    assert bm.Cell("genrl", "walker_run", 1).path("r") == bm.Cell("data_all", "walker_run", 1).path("r")
    assert bm.Cell("genrl", "walker_run", 1).path("r").as_posix() == "r/policies/walker_run-data-s1"
    suite = bm.suite_cells([0])
    assert {c.method for c in suite} >= set(bm.METHODS) and len(suite) == len(set(suite))


# --- the one command: resumable, records what produced every number -------------------------------


def test_second_run_skips_done_cells(tmp_path, monkeypatch, load_script):
    script = load_script("benchmark")
    calls = []

    def fake_run_cell(ctx, cell, show_progress=False):
        calls.append(cell)
        write_result(ctx.settings.results, cell, 0.1 * (cell.seed + 1), command=ctx.settings.command,
                     preset=ctx.settings.preset)
        return {"normalized_mean": 0.1}

    monkeypatch.setattr(script.br, "run_cell", fake_run_cell)
    monkeypatch.setenv("GENRL_LITE_FAST", "0")            # the tests run in fast mode; this is the full command
    args = ["--methods", "genrl", "align_b1", "--tasks", "walker_stand", "--seeds", "0", "1",
            "--results", str(tmp_path), "--out", str(tmp_path / "bench.json"), "--preset", "laptop"]
    first = script.main(args)
    assert len(calls) == 4
    assert first["preset"] == "laptop" and first["seeds"] == [0, 1] and "benchmark.py" in first["command"]
    assert "commit" in first and first["fast_mode"] is False
    row = next(r for r in first["rows"] if r["method"] == "align_b1")
    assert row["normalized_mean"] == pytest.approx(0.15) and row["commands"] == [first["command"]]
    script.main(args)
    assert len(calls) == 4                                           # nothing re-run
    (bm.Cell("align_b1", "walker_stand", 1).path(tmp_path) / "result.json").unlink()
    script.main(args)
    assert calls[-1] == bm.Cell("align_b1", "walker_stand", 1) and len(calls) == 5
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["rows"] and saved["paper_sources"] and "amortization" in saved["cost"]


def test_rerun_trains_a_done_cell_again_and_keeps_the_old_one(tmp_path, monkeypatch, load_script):
    """``--rerun`` re-measures the cells it names (only those), after moving each old folder aside."""
    script, calls = load_script("benchmark"), []

    def fake_run_cell(ctx, cell, show_progress=False):
        calls.append(cell.seed)
        write_result(ctx.settings.results, cell, 0.7, command=ctx.settings.command)
        return {"normalized_mean": 0.7}

    monkeypatch.setattr(script.br, "run_cell", fake_run_cell)
    monkeypatch.setattr(script, "has_model", lambda settings, domain: True)
    monkeypatch.setenv("GENRL_LITE_FAST", "0")
    for seed in (0, 1):
        write_result(tmp_path, bm.Cell("genrl", "walker_stand", seed), 0.1 * (seed + 1))
    base = ["--methods", "genrl", "--tasks", "walker_stand", "--results", str(tmp_path),
            "--out", str(tmp_path / "bench.json")]
    for incomplete in (base[:2], base[2:]):                # every cell must be named explicitly
        with pytest.raises(SystemExit, match="--methods M... --tasks T... --seeds S..."):
            script.main([*incomplete, "--seeds", "1", "--rerun"])
    script.main([*base, "--seeds", "0", "1"])
    assert calls == []                                      # without --rerun, done cells stay done
    out = script.main([*base, "--seeds", "1", "--rerun"])
    assert calls == [1]
    assert out["rows"][0]["normalized_mean"] == pytest.approx(0.7)
    kept = tmp_path / "superseded" / "policies" / "walker_stand-data-s1"
    assert json.loads((kept / "result.json").read_text())["normalized_mean"] == pytest.approx(0.2)
    assert "run again on request" in (kept / "SUPERSEDED.txt").read_text()
    first = json.loads((bm.Cell("genrl", "walker_stand", 0).path(tmp_path) / "result.json").read_text())
    assert first["normalized_mean"] == pytest.approx(0.1)   # the cell not named is untouched


def test_a_corrupted_result_is_reported_set_aside_and_run_again(tmp_path, monkeypatch, load_script, capsys):
    script, calls = load_script("benchmark"), []

    def fake_run_cell(ctx, cell, show_progress=False):
        calls.append(cell.seed)
        write_result(ctx.settings.results, cell, 0.4)
        return {"normalized_mean": 0.4}

    monkeypatch.setattr(script.br, "run_cell", fake_run_cell)
    monkeypatch.setattr(script, "has_model", lambda settings, domain: True)
    monkeypatch.setenv("GENRL_LITE_FAST", "0")
    write_result(tmp_path, bm.Cell("align_b1", "walker_walk", 0), 0.3)
    bad = bm.Cell("align_b1", "walker_walk", 1).path(tmp_path) / "result.json"
    write_result(tmp_path, bm.Cell("align_b1", "walker_walk", 1), 0.3)
    cut = bad.read_text()[:25]
    bad.write_text(cut)                                     # a file cut off half-way
    args = ["--methods", "align_b1", "--tasks", "walker_walk", "--seeds", "0", "1", "--results", str(tmp_path),
            "--out", str(tmp_path / "bench.json")]
    script.main([*args, "--dry-run"])
    assert "unreadable" in capsys.readouterr().out and calls == []
    out = script.main(args)
    assert calls == [1] and out["rows"][0]["seeds"] == [0, 1]
    kept = tmp_path / "superseded" / "benchmark" / "align_b1" / "walker_walk-s1"
    assert (kept / "result.json").read_text() == cut       # set aside as it was, nothing deleted
    assert "unreadable" in (kept / "SUPERSEDED.txt").read_text()


def tiny_model_file(tmp_path):
    """A 2-step tiny walker checkpoint at ``tmp_path/model.pt`` "trained" on 2026-06-01; (path, its dict)."""
    from genrl_lite.data import EpisodeDataset
    from genrl_lite.training import train_world_model
    from genrl_lite.world_model import WorldModelConfig

    data = EpisodeDataset(REPO_ROOT / "data" / "sample", "walker", verbose=False)
    train_world_model(WorldModelConfig.preset("tiny"), data, 2, tmp_path / "wm", show_progress=False)
    ckpt = torch.load(tmp_path / "wm" / "checkpoint.pt", weights_only=True)
    ckpt["meta"] = {"date": "2026-06-01 00:00:00 UTC"}
    torch.save(ckpt, tmp_path / "model.pt")
    return tmp_path / "model.pt", ckpt


def test_a_model_retrained_bit_for_bit_keeps_its_cells_current(tmp_path):
    """The ablation models are git-ignored and retrained on each clone: the same command on the same
    data and CPU gives the same weights (so the cells recorded with ``weights_id`` stay current)
    although the file's metadata (date, wall time) and so its sha1 differ; other weights make them stale."""
    from genrl_lite.data import EpisodeDataset
    from genrl_lite.pretrained import export_model
    from genrl_lite.training import checkpoint_id, load_checkpoint, train_world_model, weights_id
    from genrl_lite.world_model import WorldModelConfig

    data = EpisodeDataset(REPO_ROOT / "data" / "sample", "walker", verbose=False)
    cfg = WorldModelConfig.preset("tiny")
    for run, config in (("a", cfg), ("b", cfg), ("c", dataclasses.replace(cfg, seed=cfg.seed + 1))):
        train_world_model(config, data, 3, tmp_path / run, show_progress=False)
        note = {"a": "run a", "b": "a retraining of a", "c": "c"}[run]         # other file sizes, other sha1s
        export_model(tmp_path / run, tmp_path / f"{run}.pt", extra={"note": note})
    ids = {run: weights_id(torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)) for run in "abc"}
    assert ids["a"] == ids["b"] != ids["c"]
    exported = {run: load_checkpoint(tmp_path / f"{run}.pt") for run in "ab"}
    assert exported["a"].weights_id == exported["b"].weights_id != ids["a"]      # float16 weights: another id
    assert checkpoint_id(tmp_path / "a.pt") != checkpoint_id(tmp_path / "b.pt")  # the metadata differs
    model = tmp_path / "model.pt"
    model.write_bytes((tmp_path / "a.pt").read_bytes())
    result = {"model": str(model), "model_id": checkpoint_id(model), "weights_id": exported["a"].weights_id}
    assert bres.stale_reason(result, tmp_path) is None
    model.write_bytes((tmp_path / "b.pt").read_bytes())                          # retrained bit for bit
    assert bres.stale_reason(result, tmp_path) is None
    assert "which is now" in bres.stale_reason({k: result[k] for k in ("model", "model_id")}, tmp_path)
    model.write_bytes((tmp_path / "c.pt").read_bytes())                          # other weights
    assert "with weights" in bres.stale_reason(result, tmp_path)


def test_cells_of_a_retrained_model_are_stale_left_out_and_rerun(tmp_path, monkeypatch, load_script):
    """A cell measured one model file; once that file is retrained, its result must not be averaged
    with cells of the new model, and the one command re-runs it (the old folder kept aside)."""
    from genrl_lite.training import checkpoint_id

    model, ckpt = tiny_model_file(tmp_path)
    results = tmp_path / "results"
    same = dict(model=str(model), model_step=ckpt["step"])
    write_result(results, bm.Cell("align_b1", "walker_stand", 0), 0.5, model_id=checkpoint_id(model), **same)
    write_result(results, bm.Cell("align_b1", "walker_stand", 1), 0.1, date="2026-01-01 00:00:00 UTC", **same)
    write_result(results, bm.Cell("align_b1", "walker_stand", 2), 0.2, date="2026-07-01 00:00:00 UTC", **same)
    write_result(results, bm.Cell("align_b1", "walker_stand", 3), 0.3, model=str(model), model_step=ckpt["step"] + 1)
    cells = bm.plan(["align_b1"], ["walker_stand"], [0, 1, 2, 3])
    [row] = bres.aggregate(cells, results)
    assert row["seeds"] == [0, 2] and row["stale_seeds"] == [1, 3] and row["missing_seeds"] == [1, 3]
    assert row["normalized_mean"] == pytest.approx(0.35)
    assert "before" in bres.stale_reason(json.loads((cells[1].path(results) / "result.json").read_text()))

    ckpt["meta"]["note"] = "retrained"                    # same step, other weights file
    torch.save(ckpt, model)
    [row] = bres.aggregate(cells, results)
    assert row["seeds"] == [2] and row["stale_seeds"] == [0, 1, 3]

    script, calls = load_script("benchmark"), []

    def fake_run_cell(ctx, cell, show_progress=False):
        calls.append(cell.seed)
        write_result(ctx.settings.results, cell, 0.9, model=str(model), model_id=checkpoint_id(model))
        return {"normalized_mean": 0.9}

    monkeypatch.setattr(script.br, "run_cell", fake_run_cell)
    monkeypatch.setattr(script, "has_model", lambda settings, domain: True)
    monkeypatch.setenv("GENRL_LITE_FAST", "0")
    out = script.main(["--methods", "align_b1", "--tasks", "walker_stand", "--seeds", "0", "1", "2", "3",
                       "--results", str(results), "--out", str(tmp_path / "bench.json")])
    assert calls == [0, 1, 3]
    assert out["rows"][0]["seeds"] == [0, 1, 2, 3] and out["rows"][0]["stale_seeds"] == []
    kept = results / "superseded" / "benchmark" / "align_b1" / "walker_stand-s0"
    assert json.loads((kept / "result.json").read_text())["normalized_mean"] == 0.5    # nothing lost
    assert "which is now" in (kept / "SUPERSEDED.txt").read_text()


def test_a_video_prompt_cell_is_stale_once_its_clip_is_re_collected(tmp_path):
    """The prompt of a video cell is a clip of the data: re-collecting it changes what the cell
    measures (as retraining the model does), but a clone without the full data keeps the cell."""
    from genrl_lite.data import save_episode

    def episode(seed, best_at):
        rng = np.random.default_rng(seed)
        reward = np.zeros(20, np.float32)
        reward[best_at:best_at + 8] = 1.0
        return {"obs": rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8), "action": np.zeros((20, 6), np.float32),
                "is_first": np.arange(20) == 0, "is_last": np.arange(20) == 19, "reward": reward}

    data = tmp_path / "data"
    save_episode(data, "stickman", "walk", "a", episode(0, 5))
    entry = bm.VIDEO_PROMPTS["walker_walk_from_stickman"]
    clip, where = bm.video_prompt_clip(entry, data)
    assert where["start"] == 5 and where["clip_id"] == bm.clip_id(clip)
    result = {"video_prompt": dataclasses.asdict(entry), "episode": where["episode"], "start": 5,
              "clip_id": where["clip_id"], "data": {"root": str(data)}}
    assert bres.stale_reason(result, tmp_path) is None
    save_episode(data, "stickman", "walk", "a", episode(1, 5))         # same file and window, other pixels
    assert "re-collected" in bres.stale_reason(result, tmp_path)
    save_episode(data, "stickman", "walk", "a", episode(0, 5))
    save_episode(data, "stickman", "walk", "b", episode(2, 9) | {"reward": np.full(20, 2, np.float32)})
    assert "the data now gives" in bres.stale_reason(result, tmp_path)    # a better episode is the clip now
    old = {k: v for k, v in result.items() if k != "clip_id"} | {"episode": str(data / "stickman/walk/b.npz"),
                                                                 "start": 1, "date": "2020-01-01 00:00:00 UTC"}
    assert "before that episode was re-collected" in bres.stale_reason(old, tmp_path)
    assert bres.stale_reason(old | {"date": "2100-01-01 00:00:00 UTC"}, tmp_path) is None
    assert bres.stale_reason(result | {"data": {"root": str(tmp_path / "elsewhere")}}, tmp_path) is None


def test_bench_behaviour_retrains_stale_policies_and_keeps_the_old_ones(tmp_path, monkeypatch, load_script):
    from genrl_lite.training import checkpoint_id

    model, ckpt = tiny_model_file(tmp_path)
    script, policies, ran = load_script("bench_behaviour"), tmp_path / "results" / "policies", []

    def write(task, mode, seed, norm, **extra):
        (policies / f"{task}-{mode}-s{seed}").mkdir(parents=True, exist_ok=True)
        (policies / f"{task}-{mode}-s{seed}" / "result.json").write_text(json.dumps(
            {"seed": seed, "normalized_mean": norm, "return_mean": 100 * norm, "train_seconds": 60.0,
             "train_updates": 10, "model": str(model), "model_step": ckpt["step"], **extra}))

    def fake_run_policy(task, mode, seed, model_arg, out, args):
        ran.append(seed)
        write(task, mode, seed, 0.9, model_id=checkpoint_id(model))
        return 0

    write("walker_stand", "data", 0, 0.2, model_id=checkpoint_id(model))
    write("walker_stand", "data", 1, 0.4, date="2026-01-01 00:00:00 UTC")     # made before the model
    monkeypatch.setattr(script, "run_policy", fake_run_policy)
    args = ["--tasks", "walker_stand", "--modes", "data", "--seeds", "0", "1", "--policies", str(policies),
            "--out", str(tmp_path / "behaviour.json"), "--model", f"walker={model}"]
    script.main(args + ["--aggregate-only"])
    [row] = json.loads((tmp_path / "behaviour.json").read_text())["rows"]
    assert ran == [] and row["seeds"] == [0] and row["normalized_mean"] == pytest.approx(0.2)
    script.main(args)
    [row] = json.loads((tmp_path / "behaviour.json").read_text())["rows"]
    assert ran == [1] and row["seeds"] == [0, 1] and row["normalized_mean"] == pytest.approx(0.55)
    old = tmp_path / "results" / "superseded" / "policies" / "walker_stand-data-s1"
    assert json.loads((old / "result.json").read_text())["normalized_mean"] == 0.4


def test_fast_mode_never_writes_the_laptop_results(monkeypatch, tmp_path, load_script):
    script = load_script("benchmark")
    args = script.parse_args(["--fast"])
    cells = script.make_cells(args, fast=True)
    assert {c.task for c in cells} <= {"walker_stand", "walker_walk"} and {c.seed for c in cells} == {0}
    assert {c.method for c in cells} >= set(bm.METHODS)
    s = br.fast_settings(tmp_path)
    assert s.preset == "tiny" and s.episodes == 1 and s.steps <= 5 and s.fast
    results, out = script.default_paths(args, fast=True)
    assert out.name == "benchmark_fast.json" and "build" in results.parts
    assert {c.path(results) for c in cells}.isdisjoint({c.path(REPO_ROOT / "results") for c in cells})
    results, out = script.default_paths(script.parse_args([]), fast=False)
    assert out == REPO_ROOT / "results" / "benchmark.json" and results == REPO_ROOT / "results"


# --- cells end to end on a tiny world model ---------------------------------------------------------


class FakeVLM:
    name, fingerprint, dim, n_frames = "fake-vlm", "0", E, 8

    def embed_text(self, prompts):
        g = torch.Generator().manual_seed(len(prompts[0]))
        return F.normalize(torch.randn(len(prompts), E, generator=g), dim=-1)

    def embed_image(self, frames):
        x = torch.as_tensor(np.asarray(frames)).float().reshape(len(frames), -1)[:, :E]
        return F.normalize(x + 1.0, dim=-1)

    def embed_video(self, clips):
        return self.embed_image(np.asarray(clips)[:, -1])

    def embed_windows(self, obs):
        return self.embed_image(obs)


@pytest.fixture(scope="module")
def tiny_context(tmp_path_factory):
    """A Context holding a tiny walker model (5 steps on data/sample) and a fake VLM."""
    from genrl_lite.data import EpisodeDataset
    from genrl_lite.training import train_world_model
    from genrl_lite.world_model import WorldModelConfig

    torch.set_num_threads(1)
    data = EpisodeDataset(REPO_ROOT / "data" / "sample", "walker", verbose=False)
    data.embeds = [F.normalize(torch.randn(len(ep["obs"]), E, generator=torch.Generator().manual_seed(i)), dim=-1).numpy()
                   for i, ep in enumerate(data.episodes)]
    cfg = WorldModelConfig.preset("tiny", save_every=1000)
    bundle = train_world_model(cfg, data, 5, tmp_path_factory.mktemp("wm"), show_progress=False)
    for m in (bundle.world_model, bundle.connector, bundle.aligner):
        m.eval()
    settings = br.fast_settings(tmp_path_factory.mktemp("results"))
    settings.steps, settings.max_steps, settings.prep_steps = 2, 5, 2
    ctx = br.Context(settings)
    ctx._cache.update({"vlm": FakeVLM(), ("model", "walker"): bundle, ("data", "walker", None): data})
    return ctx


def test_reward_entries_build_the_reward_they_claim(tiny_context):
    ctx = tiny_context
    cfg = bm.METHODS["genrl"].behaviour_config("tiny")
    prompt = FakeVLM().embed_text(["standing up straight"])[0]
    plain = GenRLReward(ctx.bundle("walker").world_model, ctx.bundle("walker").connector, ctx.bundle("walker").aligner,
                        prompt, window=cfg.window)
    no_al = br.make_reward(ctx, bm.METHODS["genrl_no_aligner"], "walker", prompt, cfg)
    assert isinstance(no_al, GenRLReward) and no_al.aligner is None
    assert not torch.allclose(plain.target(6)[1], no_al.target(6)[1])       # the aligner changes the target
    wm_clip = br.make_reward(ctx, bm.METHODS["wmclip_video"], "walker", prompt, cfg)
    assert isinstance(wm_clip, WMCLIPReward)
    assert (br.prep_dir(ctx.settings, "walker") / "wmclip_video.pt").exists()
    with pytest.raises(ValueError, match="valid: genrl"):
        br.make_reward(ctx, bm.Method("x", "x", "x", reward="oops"), "walker", prompt, cfg)


def test_image_embeddings_are_computed_lazily_per_frame(tiny_context):
    ds, vlm = tiny_context.data("walker"), FakeVLM()
    emb = br.ImageEmbeddings(ds, vlm)
    got = emb[1][2:5]
    np.testing.assert_allclose(got, vlm.embed_image(ds.episodes[1]["obs"][2:5]).numpy())
    assert len(emb.cache) == 3 and len(emb) == len(ds.episodes)
    emb[1][3:6]
    assert len(emb.cache) == 4                                          # frames 3, 4 reused


@pytest.mark.parametrize("method", ["align_b1", "genrl_no_aligner", "td3bc_video", "genrl_image",
                                    "video_walker_walk_from_stickman", "wmclip_video"])
def test_cells_run_end_to_end_and_record_what_made_them(tiny_context, method):
    ctx = tiny_context
    task = bm.VIDEO_PROMPTS[method[6:]].task if method.startswith("video_") else "walker_stand"
    cell = bm.Cell(method, task, 0)
    r = br.run_cell(ctx, cell)
    saved = json.loads((cell.path(ctx.settings.results) / "result.json").read_text())
    assert saved == json.loads(json.dumps(r))
    assert saved["fast_mode"] and saved["preset"] == "tiny" and saved["eval_episodes"] == 1
    assert len(saved["returns"]) == 1 and saved["normalized_mean"] is not None and saved["train_updates"] == 2
    if method == "align_b1":
        assert saved["config"]["window"] == 1
    if method == "genrl_no_aligner":
        info = json.loads((cell.path(ctx.settings.results) / "behaviour.json").read_text())
        assert info["reward"] == "GenRLReward" and saved["reward"] == "genrl_no_aligner"
    if method == "td3bc_video":
        assert saved["mode"] == "model-free" and (cell.path(ctx.settings.results) / "model_free.pt").exists()
    if method == "genrl_image":
        assert "image_connector" in saved["model"] and saved["embedding"] == "image"
    if method.startswith("video_"):
        assert saved["video_prompt"]["domain"] == "stickman" and saved["prompt"] == "(video clip)"
        assert saved["clip_id"] == bm.video_prompt_clip(bm.VIDEO_PROMPTS[method[6:]], ctx.settings.data)[1]["clip_id"]
    if method == "wmclip_video":
        from genrl_lite.training import checkpoint_id

        assert saved["reward_head_id"] == checkpoint_id(REPO_ROOT / saved["reward_head"]) is not None


def test_training_data_ablation_trains_a_model_on_its_subset_only_and_reuses_it(tiny_context, tmp_path):
    import shutil

    from genrl_lite.pretrained import load_model
    from genrl_lite.training import CheckpointError, checkpoint_id

    data = tmp_path / "data"                            # the VLM's embeddings get cached next to the data
    shutil.copytree(REPO_ROOT / "data" / "sample" / "walker", data / "walker")
    ctx = br.Context(dataclasses.replace(tiny_context.settings, data=data, results=tmp_path / "results"))
    ctx._cache["vlm"] = FakeVLM()
    first = br.run_cell(ctx, bm.Cell("wmdata_expl", "walker_stand", 0))
    out = br.prep_dir(ctx.settings, "walker") / "wmdata_expl"
    info = json.loads((out / "info.json").read_text())
    assert info["train_data"]["subsets"] == ["expl"] and info["train_data"]["episodes"] == 2
    assert (info["world_model_steps"], info["connector_steps"]) == (2, 2)          # settings.prep_steps
    assert "--subsets expl" in info["reproduce"] and "--out" in info["reproduce"]
    assert first["model"] == f"{out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}/model.pt"
    assert first["model_id"] == checkpoint_id(out / "model.pt") and first["data"]["subsets"] == ["expl"]
    summary = json.loads((out.parent / "wmdata_expl.json").read_text())             # the cost section's entry
    assert summary["subsets"] == ["expl"] and summary["steps"] == [2, 2]
    before = (out / "model.pt").stat().st_mtime_ns
    second = br.run_cell(ctx, bm.Cell("wmdata_expl", "walker_walk", 1))            # the same model, not retrained
    assert second["model_id"] == first["model_id"] and (out / "model.pt").stat().st_mtime_ns == before
    assert summary["weights_id"] == second["weights_id"] == load_model(out / "model.pt").weights_id
    summary["weights_id"] = "0123456789ab"                                           # as if trained elsewhere
    (out.parent / "wmdata_expl.json").write_text(json.dumps(summary))
    shutil.rmtree(out)                                                               # a fresh clone: retrained
    fresh = br.Context(ctx.settings)
    fresh._cache["vlm"] = FakeVLM()
    with pytest.warns(UserWarning, match=r"retrained with other weights .* records \(0123456789ab\)"):
        third = br.run_cell(fresh, bm.Cell("wmdata_expl", "walker_walk", 2))
    assert third["weights_id"] == first["weights_id"]                              # the same data, the same CPU
    assert json.loads((out.parent / "wmdata_expl.json").read_text())["weights_id"] == first["weights_id"]
    br.run_cell(ctx, bm.Cell("wmdata_all", "walker_stand", 0))                      # another subset, another model
    assert json.loads((out.parent / "wmdata_all" / "info.json").read_text())["train_data"]["subsets"] == \
        ["expl", "run", "stand", "walk"]
    assert bres.method_label("wmdata_stand") == "world model and start states from stand data only"
    shutil.copytree(out, out.parent / "wmdata_run")                                  # a model of the wrong data
    with pytest.raises(CheckpointError, match=r"trained on \['expl'\], not on \['run'\]: move that folder"):
        br.run_cell(ctx, bm.Cell("wmdata_run", "walker_stand", 0))


def test_plots_mark_cells_not_run_and_figures_come_from_the_json(tmp_path, monkeypatch, load_script):
    from genrl_lite import plotting

    fig = plotting.benchmark_bars(["a", "b"], {"GenRL": (np.array([0.3, np.nan]), np.array([0.1, np.nan]))},
                                  {"GenRL": np.array([1.0, 0.9])})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts].count("not run") == 1
    assert [round(p.get_height(), 3) for p in ax.patches] == [0.3, 0.0]
    plotting.close(fig)
    fig = plotting.amortization_curve(np.arange(5), np.arange(5) + 10.0, 3.0 * np.arange(5), 6)
    assert len(fig.axes[0].lines) == 3                                   # two curves and the break-even line
    plotting.close(fig)
    write_result(tmp_path, bm.Cell("genrl", "walker_stand", 0), 0.25)
    write_result(tmp_path, bm.Cell("wmdata_expl", "walker_stand", 0), 0.15)
    rows = bres.aggregate(bm.plan(["genrl", "align_b1", "wmdata_expl"], ["walker_stand"], [0]), tmp_path)
    fb = load_script("figures_benchmark")
    figs = fb.figures({"rows": rows, "cost": {"amortization": None}})
    assert set(figs) == {"benchmark_tasks.png", "benchmark_domains.png", "benchmark_ablations.png",
                         "benchmark_amortization.png"}                  # no custom task ran: no such figure
    world_model_data = figs["benchmark_ablations.png"].axes[2]          # its own panel, beside the start states
    assert "world-model data" in world_model_data.get_title()
    assert 0.15 in [round(b.get_height(), 3) for b in world_model_data.patches]
    for f in figs.values():
        plotting.close(f)
    write_result(tmp_path, bm.Cell("genrl", "walker_one_foot", 0), 0.2)
    rows = bres.aggregate(bm.plan(["genrl", "genrl_datafree"], ["walker_stand", "walker_one_foot"], [0]), tmp_path)
    figs = fb.figures({"rows": rows, "cost": {"amortization": None}})
    assert "benchmark_generalization.png" in figs
    assert [round(b.get_height(), 3) for b in figs["benchmark_generalization.png"].axes[0].patches] == [0.2, 0.0]
    for f in figs.values():
        plotting.close(f)
    (tmp_path / "fast.json").write_text(json.dumps({"fast_mode": True, "rows": rows}))
    with pytest.raises(SystemExit, match="fast-mode"):
        fb.load(tmp_path / "fast.json")


def test_ablation_prompt_figure_shows_each_model_s_target_per_task_prompt(tmp_path, load_script):
    fb = load_script("figures_benchmark")
    assert fb.wmdata_prompts(tmp_path) is None                          # a fresh clone: no models, no frames
    tasks = ["walker_flipping", "walker_stand", "walker_walk", "walker_run"]
    for subset, level in (("all", 200), ("run", 60)):
        (tmp_path / f"wmdata_{subset}").mkdir()
        frames = np.zeros((4, 8, 64, 64, 3), np.uint8)
        frames[tasks.index("walker_stand")] = level                     # the stand prompt's video, per model
        np.savez_compressed(tmp_path / f"wmdata_{subset}" / "prompts_frames.npz", tasks=np.array(tasks),
                            prompts=np.array([f"prompt of {t}" for t in tasks]), aligner=frames,
                            no_aligner=np.zeros_like(frames))
    fig = fb.wmdata_prompts(tmp_path)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == [f'wmdata_{s}: "prompt of {t}"' for t in ("walker_stand", "walker_walk", "walker_run")
                      for s in ("all", "run")]                          # grouped by prompt, custom tasks left out
    shown = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert [s[:, :64].max() for s in shown[:3]] == [200, 60, 0]         # first frame; white gaps between frames
    fb.plotting.close(fig)
