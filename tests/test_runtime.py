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
