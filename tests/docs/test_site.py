"""The documentation site builds with MkDocs in strict mode: a broken link or anchor, a page missing from the nav or
a docstring the API page cannot render fails the build, and so this test (docs/contributing.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import regimescope
from tests.docs._pages import DOCS, ROOT

if not os.environ.get("CI"):  # CI (and `make test`, which installs the docs extra) must build; elsewhere, say how
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra is not installed: pip install -e '.[docs]'")

CONFIG = ROOT / "mkdocs.yml"


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)]
    return subprocess.run(command, capture_output=True, text=True, cwd=config.parent, timeout=300)


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    result = _build(CONFIG, tmp_path / "site")
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "Two lines in your training loop" in home and 'href="guide/"' in home  # README.md, its links rewritten
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "Tells, while a model trains, whether it learns lazily" in api  # RegimeMonitor's docstring, rendered


def test_a_page_missing_from_the_nav_or_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """The strict build must name what is wrong (here on a copy of the docs, without the API page's docstrings)."""
    shutil.copy(CONFIG, tmp_path / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "docs" / "api.md").write_text("# API reference\n", encoding="utf-8")
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n\nSee [the guide](guide.md#no-such-section).\n")
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"not included in the \"nav\" configuration:\s*- orphan\.md", output), output
    assert "does not contain an anchor '#no-such-section'" in output, output


def test_the_api_page_covers_every_public_name() -> None:
    directives = re.findall(r"^::: (\S+)", (DOCS / "api.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    documented = {path.rsplit(".", 1)[-1] for path in directives}
    missing = sorted(set(regimescope.__all__) - documented - {"__version__"})
    assert not missing, f"docs/api.md lacks {missing} (in regimescope.__all__): add a `::: regimescope.<name>` line"
