"""One line about many pairs: how many are left out for each cause, with a few names, so that a ResNet's or a
transformer's dozens of pairs do not fill the log (the full list stays on the object that made it)."""

from __future__ import annotations

from collections.abc import Iterable

from regimescope.conservation.pairs import Break


def cause_label(breaks: Iterable[Break]) -> str:
    """The causes of one pair as a short label, e.g. ``"normalisation + residual"`` (``"other"`` without any)."""
    return " + ".join(sorted(cause.value for cause in breaks)) or "other"


def count_summary(labelled: Iterable[tuple[str, str]], examples: int = 2, labels: int = 4) -> str:
    """``"12 normalisation (conv1-conv2, conv3-conv4, ...), 4 residual (fc1-fc2, ...)"``, most frequent first.

    Args:
        labelled: ``(label, pair name)`` per pair.
        examples: Pair names shown per label.
        labels: Labels shown; the rest are counted together (``"and 3 more of 2 other kinds"``).

    Returns:
        The summary (empty for no pairs).
    """
    groups: dict[str, list[str]] = {}
    for label, name in labelled:
        groups.setdefault(label, []).append(name)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    parts = []
    for label, names in ordered[:labels]:
        shown = ", ".join(names[:examples]) + (", ..." if len(names) > examples else "")
        parts.append(f"{len(names)} {label} ({shown})")
    rest = ordered[labels:]
    if rest:
        kinds = "kind" if len(rest) == 1 else "kinds"
        parts.append(f"and {sum(len(names) for _, names in rest)} more of {len(rest)} other {kinds}")
    return ", ".join(parts)
