"""Packaging: `integrations/` installs as `regimescope.integrations`, editable and from a wheel; the wheel holds every
subpackage and builds without a warning; the core stays light."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorboard", "lightning", "pytorch_lightning", "transformers", "matplotlib")


LIGHT_CORE = """
import importlib, pkgutil, sys
import regimescope
for name in regimescope.__all__:
    getattr(regimescope, name)
for info in pkgutil.walk_packages(regimescope.__path__, "regimescope."):
    if not info.name.startswith(("regimescope.integrations", "regimescope.tensorboard_plugin")):
        importlib.import_module(info.name)
print(" ".join(m for m in HEAVY if m in sys.modules))
"""


def test_the_core_pulls_in_no_optional_framework() -> None:
    """Every public name resolved and every core module imported (the lazy ``__init__`` alone imports nothing):
    still no optional framework. The TensorBoard plugin and the integrations are the places that import them."""
    code = f"HEAVY = {HEAVY!r}\n{LIGHT_CORE}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_integrations_importable_from_the_installed_project() -> None:
    code = "import regimescope.integrations as i; print(i.__file__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert Path(result.stdout.strip()).resolve() == (ROOT / "integrations" / "__init__.py").resolve()


def test_every_subpackage_is_packaged() -> None:
    """`[tool.setuptools] packages` is a list kept by hand: a folder of regimescope/ missing from it would be left out
    of the wheel without a word (the TensorBoard plugin's `static` frontend included)."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(folder.relative_to(ROOT).parts)
        for folder in [ROOT / "regimescope", *(ROOT / "regimescope").rglob("*")]
        if folder.is_dir() and folder.name != "__pycache__" and any(f.is_file() for f in folder.iterdir())
    }
    assert folders | {"regimescope.integrations"} == listed


@pytest.mark.slow
def test_wheel_maps_integrations_into_the_package(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Warning" not in build.stdout + build.stderr  # e.g. setuptools' deprecations, a package left out
    wheel = next(tmp_path.glob("regimescope-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "regimescope/integrations/__init__.py" in names
    assert not any(name.startswith("integrations/") for name in names)
    assert {"regimescope/tensorboard_plugin/static/index.js", "regimescope/tensorboard_plugin/static/style.css"} <= set(
        names
    )
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import regimescope, regimescope.integrations as i; print(regimescope.__file__); print(i.__file__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd="/")
    for line in result.stdout.split():
        assert Path(line).is_relative_to(target)
