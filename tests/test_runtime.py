import numpy as np
import pytest

from genrl_lite import runtime


@pytest.mark.parametrize("env,expected", [
    ({}, False),
    ({"CI": "true"}, True),
    ({"GENRL_LITE_FAST": "1"}, True),
    ({"CI": "true", "GENRL_LITE_FAST": "0"}, False),
    ({"GENRL_LITE_FAST": "false"}, False),
])
def test_fast_mode_follows_environment(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GENRL_LITE_FAST", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert runtime.fast_mode() is expected
    assert runtime.pick("full", "fast") == ("fast" if expected else "full")


def test_atomic_path_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "episode.npz"
    with runtime.atomic_path(target) as tmp:
        np.savez_compressed(tmp, x=np.arange(3))
    with pytest.raises(RuntimeError):
        with runtime.atomic_path(target) as tmp:
            np.savez_compressed(tmp, x=np.arange(10))
            raise RuntimeError("crash mid-write")
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["episode.npz"]  # no temp files left


def test_atomic_torch_save_round_trip(tmp_path):
    import torch

    path = runtime.atomic_torch_save({"w": torch.ones(2)}, tmp_path / "sub" / "ckpt.pt")
    assert torch.load(path)["w"].sum().item() == 2.0


def test_default_device_is_a_torch_device():
    import torch

    assert runtime.default_device().type in {"cpu", "cuda", "mps"}
    assert runtime.default_device("cpu") == torch.device("cpu")


def test_atomic_path_gives_normal_file_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        with runtime.atomic_path(tmp_path / "w.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "w.bin").stat().st_mode) == 0o644


def test_git_commit_marks_code_changes_dirty_but_not_results(tmp_path):
    import subprocess

    from genrl_lite.runtime import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results" / "cell").mkdir(parents=True)
    (tmp_path / "results" / "cell" / "result.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    head = git_commit(tmp_path)
    assert len(head) == 40 and not head.endswith("-dirty")
    (tmp_path / "results" / "cell" / "result.json").unlink()   # a benchmark run retiring a stale cell
    (tmp_path / "results" / "new.json").write_text("{}")       # and writing new ones
    assert git_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "-dirty"
    assert git_commit(tmp_path / "not_a_repo_dir_that_does_not_exist") == "unknown"
