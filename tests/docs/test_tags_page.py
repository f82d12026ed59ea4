"""docs/tags.md lists every tag of regimescope/tags.py, and each indicator's tags as the indicator declares them."""

from __future__ import annotations

import re

import pytest

from regimescope import tags
from regimescope.indicators.base import Direction
from regimescope.indicators.defaults import default_indicators
from tests.docs._pages import DOCS

PAGE = DOCS / "tags.md"
PLACEHOLDER = re.compile(r"/<(layer|pair|param)>$")
NOISE = f"{tags.ROOT}/{tags.NOISE_FAMILY}/<family>/<metric>[/<layer>]"
RICH_WHEN = {Direction.HIGHER: "higher", Direction.LOWER: "lower", Direction.NONE: "—"}


def _rows() -> dict[tuple[str, bool], dict[str, str]]:
    """``(tag without placeholder, per layer) -> {column: cell}`` of the page's tag table."""
    lines = [line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith("| `regimescope")]
    rows = {}
    for line in lines:
        tag, kind, writer, rich, meaning = (cell.strip() for cell in line.strip().strip("|").split(" | "))
        name = tag.strip("`")
        base = PLACEHOLDER.sub("", name)
        key = (base, base != name)
        assert key not in rows, f"{name} is listed twice in docs/tags.md"
        rows[key] = {"kind": kind, "writer": writer, "rich": rich, "meaning": meaning}
    return rows


ROWS = _rows()


def _constants() -> set[str]:
    """Every tag constant of regimescope/tags.py (upper-case strings under ``regimescope/``)."""
    prefix = f"{tags.ROOT}/"
    return {value for name, value in vars(tags).items() if name.isupper() and str(value).startswith(prefix)}


def test_every_tag_of_the_module_is_on_the_page() -> None:
    listed = {base for base, _ in ROWS}
    missing = sorted(_constants() - listed)
    assert not missing, f"docs/tags.md lacks {missing} (regimescope/tags.py has them)"


def test_every_tag_on_the_page_is_in_the_module() -> None:
    unknown = sorted(base for base, _ in ROWS if base not in _constants() and base != NOISE)
    assert not unknown, f"docs/tags.md lists {unknown}, which regimescope/tags.py does not define"


def test_the_noise_family_is_on_the_page() -> None:
    assert (NOISE, False) in ROWS
    assert tags.noise_tag(tags.KERNEL_VELOCITY).startswith(NOISE.split("<")[0])


@pytest.mark.parametrize(
    "indicator, output",
    [(indicator, output) for indicator in default_indicators() for output in indicator.outputs],
    ids=lambda item: getattr(item, "tag", type(item).__name__),
)
def test_each_declared_output_is_listed_as_declared(indicator, output) -> None:
    row = ROWS.get((output.tag, output.per_layer))
    where = f"{output.tag}{'/<layer>' if output.per_layer else ''}"
    assert row is not None, f"docs/tags.md has no row for {where}, which {type(indicator).__name__} writes"
    assert f"`{type(indicator).__name__}`" in row["writer"], f"{where}: written by {type(indicator).__name__}"
    assert row["rich"] == RICH_WHEN[output.rich_when], f"{where}: {type(indicator).__name__} declares {output.rich_when}"
