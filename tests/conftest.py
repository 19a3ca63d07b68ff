"""Shared test setup: every test runs in fast mode and imports genrl_lite before dm_control."""
import os

os.environ.setdefault("GENRL_LITE_FAST", "1")
os.environ.setdefault("GENRL_LITE_NO_PROGRESS", "1")

import genrl_lite  # noqa: E402,F401  (sets MUJOCO_GL and the triton-before-Mesa guard)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _torch_one_thread_and_seed():
    """Every test starts from seed 0 on one thread: reproducible, and fair to a shared 2-core CI."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def load_script():
    """``load_script("name")`` imports ``scripts/name.py`` as a module (the scripts are not a package)."""
    import importlib.util

    from genrl_lite.runtime import REPO_ROOT

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_script", REPO_ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
