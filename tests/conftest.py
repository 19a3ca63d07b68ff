"""Shared test setup: every test runs in fast mode and imports genrl_lite before dm_control."""
import os

os.environ.setdefault("GENRL_LITE_FAST", "1")
os.environ.setdefault("GENRL_LITE_NO_PROGRESS", "1")

import genrl_lite  # noqa: E402,F401  (sets MUJOCO_GL and the triton-before-Mesa guard)
