"""Self-contained HTML pages: figures embedded as data URIs, no external asset, readable offline."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from regimescope.report.run_data import AlertRow, RunData
from regimescope.tags import CONSERVATION_DIAGNOSIS, REGIME_EXPLANATION, REGIME_FORECAST

NOTES = (
    ("Why this verdict (step {step})", REGIME_EXPLANATION),
    ("Forecast at step 0", REGIME_FORECAST),
    ("Conservation diagnosis (step {step})", CONSERVATION_DIAGNOSIS),
)
"""The texts a run's page shows above its figures (the latest of each): (title with the text's step, text tag)."""

LONG_LINE = 320
"""Characters past which a markdown line is folded: its start shown, the rest one click away (``<details>``)."""

_LIST_ITEM = re.compile(r"^\s*[-*+]\s+(.*)$")
_INLINE = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`")

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1240px; color: #212121;
       padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
img { max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border-bottom: 1px solid #e0e0e0; padding: 4px 10px; text-align: left; vertical-align: top; }
code { background: #f5f5f5; padding: 1px 4px; border-radius: 3px; }
.note { background: #fafafa; border-left: 3px solid #bdbdbd; padding: 2px 12px; font-size: 14px; }
.note ul { padding-left: 20px; } .failure { color: #b71c1c; }
.lazy { color: #2e86c1; } .transitional { color: #b7950b; } .rich { color: #c0392b; }
"""


@dataclass(frozen=True)
class Section:
    """A titled block of a page: a PNG figure (bytes) or ready HTML."""

    title: str
    png: bytes | None = None
    body: str = ""


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _inline(text: str) -> str:
    """``text`` escaped, with ``**bold**`` and ```code``` spans."""
    parts, last = [], 0
    for match in _INLINE.finditer(text):
        parts.append(html.escape(text[last : match.start()]))
        bold, code = match.groups()
        parts.append(f"<strong>{_inline(bold)}</strong>" if bold is not None else f"<code>{html.escape(code)}</code>")
        last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def _line(text: str) -> str:
    """One line as HTML, folded when longer than :data:`LONG_LINE` (a forecast naming every pair of a ResNet)."""
    if len(text) <= LONG_LINE:
        return _inline(text)
    head = text[:LONG_LINE].rsplit(" ", 1)[0]
    return f"<details><summary>{_inline(head)} … ({len(text)} characters)</summary>{_inline(text)}</details>"


def markdown_html(text: str) -> str:
    """The markdown regimescope writes (paragraph lines, ``- `` items, bold, code) as safe HTML.

    Every other character is escaped, so the result can be put into a page as it is. A list needs no blank line
    before it (CommonMark's rule, which the library's texts follow). Lines longer than :data:`LONG_LINE` are folded.
    """
    blocks: list[str] = []
    items: list[str] = []
    for line in text.split("\n"):
        item = _LIST_ITEM.match(line)
        if item:
            items.append(f"<li>{_line(item.group(1))}</li>")
            continue
        if items:
            blocks.append(f"<ul>{''.join(items)}</ul>")
            items = []
        if line.strip():
            blocks.append(f"<p>{_line(line.strip())}</p>")
    if items:
        blocks.append(f"<ul>{''.join(items)}</ul>")
    return "".join(blocks)


def latest_text(run: RunData, text_tag: str) -> tuple[int, str] | None:
    """``(step, markdown)`` of the last text of ``text_tag`` in ``run``, or ``None``."""
    entries = run.texts.get(text_tag)
    return entries[-1] if entries else None


def notes(run: RunData) -> list[tuple[str, str]]:
    """``(title, html)`` of the latest explanation, forecast and conservation diagnosis that the run holds."""
    found = []
    for title, text_tag in NOTES:
        latest = latest_text(run, text_tag)
        if latest is not None:
            found.append((title.format(step=latest[0]), markdown_html(latest[1])))
    return found


def failure(run: RunData) -> AlertRow | None:
    """The last measurement failure of the run (an alert of kind ``"note"``: the monitor paused), or ``None``."""
    return next((alert for alert in reversed(run.alerts) if alert.kind == "note"), None)


def _verdict(run: RunData) -> str:
    final = run.final()
    if final is None:
        return "no verdict"
    label, score = final
    return f'<span class="{html.escape(label)}">{html.escape(label)}</span> (score {score:.2f})'


def alerts_table(run: RunData) -> str:
    """The run's alerts as an HTML table (a sentence when there are none)."""
    if not run.alerts:
        return "<p>No alerts.</p>"
    rows = "".join(
        f"<tr><td>{alert.step}</td><td><code>{html.escape(alert.kind)}</code></td><td>{html.escape(alert.message)}</td></tr>"
        for alert in run.alerts
    )
    return f"<table><tr><th>step</th><th>kind</th><th>what happened</th></tr>{rows}</table>"


def runs_table(runs: Sequence[RunData], links: dict[str, str]) -> str:
    """One row per run: name (linked to its page), final verdict, alert count, measurements."""
    rows = []
    for run in runs:
        name = html.escape(run.name)
        link = f'<a href="{html.escape(links[run.name])}">{name}</a>' if run.name in links else name
        measurements = len(run.timeline()["steps"])
        paused = failure(run)
        verdict = _verdict(run) if paused is None else f'{_verdict(run)}; <span class="failure">measuring paused</span>'
        rows.append(
            f"<tr><td>{link}</td><td>{verdict}</td><td>{len(run.alerts)}</td><td>{measurements}</td></tr>"
        )
    return (
        f"<table><tr><th>run</th><th>final verdict</th><th>alerts</th><th>measurements</th></tr>{''.join(rows)}</table>"
    )


def page(title: str, intro: str, sections: Sequence[Section]) -> str:
    """A complete HTML document with ``sections`` in order."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{intro}</p>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.png is not None:
            parts.append(_image(section.png, section.title))
        parts.append(section.body)
    parts.append("</body></html>")
    return "\n".join(parts)


def run_page(run: RunData, figures: Sequence[Section]) -> str:
    """The page of one run: verdict (and the error that paused its monitor), the explanation, forecast and
    conservation diagnosis, alerts, then its figures."""
    intro = f"Final verdict: {_verdict(run)}. Generated by <code>regimescope report</code>."
    paused = failure(run)
    if paused is not None:
        intro += f'</p><p class="failure">Measuring paused at step {paused.step}: {_inline(paused.message)}'
    texts = [Section(title, body=f'<div class="note">{body}</div>') for title, body in notes(run)]
    return page(
        f"regimescope report: {run.name}", intro, [*texts, Section("Alerts", body=alerts_table(run)), *figures]
    )
