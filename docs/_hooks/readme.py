"""MkDocs hook: the repository's README.md is the site's home page, so the front page is written once.

The README links to pages as ``docs/<page>.md`` (GitHub shows it from the repository root); on the site it is
``index.md`` inside ``docs/``, so those links lose their ``docs/`` prefix. Pages link back to the front page as
``../README.md``, which becomes ``index.md``. Links are rewritten before MkDocs validates them, so a broken link in
the README fails the strict build like one in any page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

HOME = "index.md"


def on_files(files: Files, config: Any) -> Files:
    """Add README.md (next to ``mkdocs.yml``) as the page ``index.md``."""
    readme = Path(config.config_file_path).parent / "README.md"
    files.append(File.generated(config, HOME, abs_src_path=str(readme)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Rewrite the README's ``docs/`` links and the pages' ``../README.md`` links for the site's layout."""
    if page.file.src_uri == HOME:
        return re.sub(r"\]\(docs/", "](", markdown)
    return re.sub(r"\]\(\.\./README\.md", f"]({HOME}", markdown)
