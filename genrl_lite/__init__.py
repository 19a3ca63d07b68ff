"""genrl_lite: GenRL (Mazzaglia et al., NeurIPS 2024) re-implemented to run, see and change on a laptop CPU.

Importing the package does two things before anything touches MuJoCo, both because of facts
measured on our machines (see ``docs`` and ``../shared/STACK.md``):

1. ``MUJOCO_GL`` defaults to ``egl``. dm_control reads it once, at import, and without it tries a
   window system (GLFW) that headless machines do not have.
2. ``triton`` is imported first. Once dm_control has created an EGL/OSMesa context, a later
   ``import triton`` (pulled in by ``torch._dynamo``, torchvision and open_clip) crashes the
   process with SIGSEGV, because Mesa's LLVM and triton's LLVM clash. Importing triton before any
   GL context exists avoids the clash, so "render, then import open_clip" is safe.
"""
from __future__ import annotations

import os as _os
import sys as _sys

_os.environ.setdefault("MUJOCO_GL", "egl")

if "dm_control" in _sys.modules and "triton" not in _sys.modules:  # pragma: no cover - user order
    import warnings as _warnings

    _warnings.warn(
        "dm_control was imported before genrl_lite; import genrl_lite first (or `import triton` "
        "before rendering) to avoid a SIGSEGV when open_clip/torchvision load later.",
        RuntimeWarning,
        stacklevel=2,
    )

try:  # triton ships with the Linux torch wheel; elsewhere there is nothing to guard against.
    import triton as _triton  # noqa: F401
except Exception:  # pragma: no cover - platforms without triton
    pass

from genrl_lite.runtime import fast_mode, pick  # noqa: E402

__version__ = "0.1.0"
__all__ = ["fast_mode", "pick", "__version__"]
