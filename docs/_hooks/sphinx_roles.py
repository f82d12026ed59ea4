"""MkDocs hook: show the docstrings' Sphinx cross-reference roles as plain code on the API page.

The docstrings name other objects the Sphinx way, ``:func:`~regimescope.tags.layer_tag```, which the API page
(mkdocstrings, reading the docstrings as markdown) would print as ``:func:`` followed by the code. The role is
dropped, and a leading ``~`` keeps only the last part of the name, as Sphinx shows it: ``layer_tag``.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|const):\s*<code>(?P<tilde>~?)(?P<name>[^<]+)</code>")


def _shown(match: re.Match[str]) -> str:
    name = match["name"]
    return f"<code>{name.rsplit('.', 1)[-1] if match['tilde'] else name}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Replace each ``:role:<code>[~]name</code>`` of the rendered page by ``<code>name</code>``."""
    return ROLE.sub(_shown, html)
