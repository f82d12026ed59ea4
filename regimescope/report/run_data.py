"""One run's regimescope series and alerts, as the report and the TensorBoard dashboard read them.

Light on purpose: no torch, no matplotlib, no TensorBoard, so that the dashboard plugin can import it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from regimescope.record import Record
from regimescope.sinks.jsonl import read_jsonl
from regimescope.sinks.logdir import JSONL_NAME
from regimescope.tags import (
    ALERTS,
    BALANCE,
    KERNEL_DISTANCE,
    LABELS,
    NOISE_FAMILY,
    PAIR_SCALARS,
    REGIME_LABEL,
    REGIME_SCORE,
    below,
)

SCORE_TAG = REGIME_SCORE
"""The verdict's score, the series every run's timeline follows."""
LAYER_DISTANCE_PREFIX = below(KERNEL_DISTANCE)
"""How the tags of the per-layer kernel distances start (one :class:`LayerGrid` row per layer)."""
BALANCE_PREFIX = below(BALANCE)
"""How the tags of the per-pair balances start (one :class:`LayerGrid` row per layer pair)."""

_ALERT_LINE = re.compile(r"^\*\*step (\d+)\*\* · (?:`([^`]+)` · )?(.*)$")


@dataclass(frozen=True)
class Series:
    """A scalar time series: ``values[i]`` measured at ``steps[i]``."""

    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class AlertRow:
    """One alert as written under ``regimescope/alerts`` (``kind`` is ``"note"`` for measurement failures)."""

    step: int
    kind: str
    message: str


@dataclass(frozen=True)
class LayerGrid:
    """A layer x step table of one per-layer family, ``None`` where a layer has no value at a step.

    Attributes:
        layers: Row names (layers or layer pairs), in a stable order.
        steps: Column steps, ascending.
        values: ``values[row][column]``.
    """

    layers: list[str]
    steps: list[int]
    values: list[list[float | None]]


@dataclass
class RunData:
    """Everything the report and the dashboard show of one run.

    Attributes:
        name: The run's name (its folder relative to the logdir).
        scalars: ``tag -> series`` of every ``regimescope/`` scalar.
        alerts: The alerts in step order.
        texts: ``tag -> [(step, markdown), ...]`` of every text (explanation, forecast, diagnosis, alerts).
    """

    name: str
    scalars: dict[str, Series] = field(default_factory=dict)
    alerts: list[AlertRow] = field(default_factory=list)
    texts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def series(self, tag: str) -> Series | None:
        """The series of ``tag``, or ``None``."""
        return self.scalars.get(tag)

    def timeline(self) -> dict[str, list]:
        """``{"steps", "score", "label"}``: the verdict over the run (label names, not indices)."""
        score = self.scalars.get(SCORE_TAG, Series([], []))
        label = self.scalars.get(REGIME_LABEL, Series([], []))
        names = dict(zip(label.steps, (LABELS[int(v)] if 0 <= v < len(LABELS) else "?" for v in label.values)))
        return {"steps": score.steps, "score": score.values, "label": [names.get(s, "?") for s in score.steps]}

    def final(self) -> tuple[str, float] | None:
        """``(label, score)`` of the last verdict, or ``None`` when the run has none."""
        timeline = self.timeline()
        if not timeline["steps"]:
            return None
        return timeline["label"][-1], timeline["score"][-1]

    def layer_grid(self, prefix: str) -> LayerGrid:
        """The layer x step table of the tags ``prefix + <layer>`` (e.g. :data:`LAYER_DISTANCE_PREFIX`)."""
        rows = {
            tag[len(prefix) :]: s
            for tag, s in self.scalars.items()
            if tag.startswith(prefix) and "/" not in tag[len(prefix) :]
        }
        steps = sorted({step for s in rows.values() for step in s.steps})
        column = {step: i for i, step in enumerate(steps)}
        values: list[list[float | None]] = []
        layers = sorted(rows)
        for layer in layers:
            row: list[float | None] = [None] * len(steps)
            for step, value in zip(rows[layer].steps, rows[layer].values):
                row[column[step]] = value if math.isfinite(value) else None
            values.append(row)
        return LayerGrid(layers=layers, steps=steps, values=values)

    def panels(self) -> dict[str, dict[str, Series]]:
        """The run's scalars grouped into panels: ``panel -> {layer or "": series}`` (see :func:`split_tag`).

        Noise estimates (``regimescope/noise/...``) are left out: they belong with the series they qualify.
        """
        grouped: dict[str, dict[str, Series]] = {}
        for tag in sorted(self.scalars):
            panel, layer = split_tag(tag)
            if panel.startswith(f"{NOISE_FAMILY}/"):
                continue
            grouped.setdefault(panel, {})[layer or ""] = self.scalars[tag]
        return grouped


def split_tag(tag: str) -> tuple[str, str | None]:
    """``(panel, layer)`` of a tag: ``regimescope/kernel/velocity`` -> ``("kernel/velocity", None)``,
    ``regimescope/kernel/distance_from_init/fc1`` -> ``("kernel/distance_from_init", "fc1")``,
    ``regimescope/balance/fc1-fc2`` -> ``("balance", "fc1-fc2")`` (the balance families name a layer pair third).
    """
    parts = tag.split("/")
    if len(parts) == 3 and "/".join(parts[:2]) in PAIR_SCALARS:
        return parts[1], parts[2]
    if len(parts) <= 3:
        return "/".join(parts[1:]), None
    return "/".join(parts[1:3]), "/".join(parts[3:])


def parse_alerts(entries: Iterable[tuple[int, str]]) -> list[AlertRow]:
    """Alerts from ``(step, markdown text)`` entries of ``regimescope/alerts`` (several alerts per text allowed).

    Lines look like ``**step 40** · `regime_shift` · regime lazy -> rich ...``; a line without a kind (a
    measurement failure) gets the kind ``"note"``.
    """
    rows = []
    for step, text in entries:
        for line in text.split("\n"):
            line = line.strip()
            if not line:
                continue
            match = _ALERT_LINE.match(line)
            if match:
                rows.append(AlertRow(int(match.group(1)), match.group(2) or "note", match.group(3)))
            else:
                rows.append(AlertRow(step, "note", line))
    return sorted(rows, key=lambda row: row.step)


def run_from_records(name: str, records: list[Record]) -> RunData:
    """A :class:`RunData` from a monitor's records (its ``history``, or a JSONL file's run as lived)."""
    columns: dict[str, tuple[list[int], list[float]]] = {}
    texts: dict[str, list[tuple[int, str]]] = {}
    for record in records:
        for tag, value in record.scalars.items():
            steps, values = columns.setdefault(tag, ([], []))
            steps.append(record.step)
            values.append(float(value))
        for tag, text in record.texts.items():
            texts.setdefault(tag, []).append((record.step, text))
    scalars = {tag: Series(steps, values) for tag, (steps, values) in columns.items()}
    return RunData(name=name, scalars=scalars, alerts=parse_alerts(texts.get(ALERTS, [])), texts=texts)


def find_runs(logdir: str | os.PathLike[str]) -> list[Path]:
    """Folders under ``logdir`` (itself included) holding a ``regimescope.jsonl``, sorted by name."""
    root = Path(logdir)
    return sorted(path.parent for path in root.rglob(JSONL_NAME))


def load_runs(logdir: str | os.PathLike[str]) -> list[RunData]:
    """Every run of ``logdir``, read from the JSONL files (full resolution), in the order of :func:`find_runs`.

    Each file is read as the run was lived (:func:`regimescope.sinks.read_jsonl`): a fragment cut short by a crash
    or a full disk is skipped with a warning, a run resumed from a checkpoint shows its steps up to the checkpoint
    and then the resumed session's, and a folder written by several runs shows the last one.

    Raises:
        FileNotFoundError: When ``logdir`` does not exist or holds no ``regimescope.jsonl``.
    """
    root = Path(logdir)
    if not root.is_dir():
        raise FileNotFoundError(f"Expected a log folder; {str(root)!r} does not exist or is not a folder.")
    folders = find_runs(root)
    if not folders:
        raise FileNotFoundError(
            f"No {JSONL_NAME} under {str(root)!r}; expected the logdir of a RegimeMonitor (created with "
            "`logdir=`), e.g. the folder `regimescope demo --logdir DIR` wrote."
        )
    runs = []
    for folder in folders:
        name = folder.relative_to(root).as_posix() if folder != root else root.name
        runs.append(run_from_records(name, read_jsonl(folder / JSONL_NAME)))
    return runs


def series_from_mapping(data: Mapping[str, tuple[list[int], list[float]]]) -> dict[str, Series]:
    """``tag -> Series`` from ``tag -> (steps, values)`` pairs, sorted by step."""
    result = {}
    for tag, (steps, values) in data.items():
        pairs = sorted(zip(steps, values))
        result[tag] = Series([int(s) for s, _ in pairs], [float(v) for _, v in pairs])
    return result
