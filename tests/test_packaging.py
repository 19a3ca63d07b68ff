"""pyproject.toml, requirements-lock.txt and environment.yml must describe the same install."""
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, Requirement]:
    reqs = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            r = Requirement(line)
            reqs[_norm(r.name)] = r
    return reqs


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_requirements() -> list[Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in meta["dependencies"]]
    for extra in meta["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_every_pyproject_dependency_is_pinned_in_the_lock_and_satisfies_its_range():
    lock = _lock()
    for req in _pyproject_requirements():
        name = _norm(req.name)
        assert name in lock, f"{req.name} is in pyproject.toml but not in requirements-lock.txt"
        pins = [s for s in lock[name].specifier if s.operator == "=="]
        for pin in pins:
            assert Version(pin.version) in req.specifier, (
                f"lock pins {req.name}=={pin.version}, outside pyproject's range {req.specifier}")


def test_the_stack_pins_that_matter():
    lock = _lock()
    assert str(lock["torch"].specifier) == "==2.14.1"
    assert str(lock["torchvision"].specifier) == "==0.29.1"
    assert str(lock["mujoco"].specifier) == "==3.17.0"  # mujoco 4.x breaks dm_control


def test_environment_yml_is_a_thin_layer_over_the_same_pip_install():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- pip\s*$", text, re.M)
    assert "-r requirements-lock.txt" in text
    assert re.search(r"-e \.\[notebooks,test\]", text)
    deps_block = text.split("dependencies:", 1)[1]
    conda_deps = re.findall(r"^  - ([A-Za-z0-9_.-]+)", deps_block, re.M)
    # Only python and pip come from conda; everything else from the same pip files.
    assert set(conda_deps) <= {"python", "pip"}, conda_deps
    python_pin = re.search(r"python=(\d+\.\d+)", text).group(1)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    from packaging.specifiers import SpecifierSet

    assert Version(python_pin) in SpecifierSet(requires)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"notebooks", "test"} <= set(extras)


def test_every_module_is_in_the_readme_map_and_explains_itself():
    # a learner finds a concept from the README's table of modules, then reads the module's docstring
    readme = (ROOT / "README.md").read_text()
    modules = sorted(p for p in (ROOT / "genrl_lite").glob("*.py") if p.name != "__init__.py")
    assert len(modules) > 20
    missing = [p.name for p in modules if f"| `{p.name}`" not in readme and f"| `{p.name}`," not in readme]
    assert not missing, f"add these modules to README.md's table of genrl_lite/: {missing}"
    import ast

    packages = sorted(p.parent for p in (ROOT / "genrl_lite").glob("*/__init__.py"))
    missing = [p.name for p in packages if f"| `{p.name}/`" not in readme]
    assert not missing, f"add these subpackages to README.md's table of genrl_lite/: {missing}"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert all(f"genrl_lite.{p.name}" in declared for p in packages), f"pyproject.toml packages: {declared}"
    for p in modules + sorted(f for pkg in packages for f in pkg.glob("*.py")):
        doc = ast.get_docstring(ast.parse(p.read_text()))
        assert doc and len(doc.splitlines()) >= 2, f"{p.name} needs a module docstring that says what it is"


def test_every_config_dataclass_builds_from_its_defaults_and_serializes():
    # A learner writes ``WorldModelConfig(cnn_depth=8)``; a classmethod named like a field once
    # leaked into such a config as its default (the field ``preset``) and broke saving it as JSON.
    import dataclasses
    import importlib
    import json

    checked = []
    for p in sorted((ROOT / "genrl_lite").glob("*.py")):
        module = importlib.import_module(f"genrl_lite.{p.stem}")
        for name, cls in vars(module).items():
            if not (name.endswith("Config") and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__):
                continue
            if any(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   for f in dataclasses.fields(cls)):
                continue
            cfg = cls()
            values = dataclasses.asdict(cfg)
            bad = {k: v for k, v in values.items() if callable(v)}
            assert not bad, f"{name}() has callables as field values: {bad}"
            json.dumps(values)
            if "preset" in values:
                assert values["preset"] == "custom", f"{name}().preset = {values['preset']!r}"
            checked.append(name)
    assert {"WorldModelConfig", "BehaviourConfig", "ModelFreeConfig", "ActorCriticConfig"} <= set(checked), checked
