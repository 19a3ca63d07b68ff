"""The Mesa/triton segfault guard (../shared/STACK.md): render first, then import open_clip."""
import subprocess
import sys
import textwrap


def test_render_then_import_open_clip_in_one_process():
    code = textwrap.dedent("""
        import os
        os.environ.pop("MUJOCO_GL", None)
        import genrl_lite
        assert os.environ["MUJOCO_GL"] == "egl"
        from genrl_lite.envs import PixelEnv
        env = PixelEnv("walker_walk", seed=0)
        frame = env.reset().obs
        assert frame.shape == (64, 64, 3)
        import open_clip, torchvision, torch._dynamo  # each pulls in triton
        print("survived", frame.mean() > 0)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode} (-11 is SIGSEGV)\n{proc.stderr[-2000:]}"
    assert "survived True" in proc.stdout
