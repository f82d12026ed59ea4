"""Which indicators drove a verdict, in a few sentences (``monitor.explain()``, TensorBoard text)."""

from __future__ import annotations

from collections.abc import Mapping

from regimescope.tags import (
    KERNEL_DISTANCE,
    KERNEL_SHARE,
    LAZY,
    PATTERN_CHANGE,
    REPRESENTATION_CKA,
    RICH,
    TRANSITIONAL,
    by_layer,
    noise_tag,
)
from regimescope.verdict.labeler import LAZY_BELOW, RICH_ABOVE, Verdict
from regimescope.verdict.score import RAMPS, default_sources

CHANGED_REPRESENTATION = 0.8
"""Linear CKA to init below which a representation counts as changed (worth a word next to a lazy verdict)."""
MINOR_SHARE = 0.05
"""Kernel share below which a layer "carries little of the kernel"."""
UNCERTAIN_SIGMAS = 2.0
"""A driving value within this many of its noise errors of a label boundary makes the label uncertain."""

_EVIDENCE = {
    "direction": ("S(K_0, K_t)", "the kernel turned"),
    "scale": ("|K_t - K_0| / |K_0|", "the kernel grew or shrank"),
}
_MEANING = {
    LAZY: "the NTK has stayed near its initial value: the network trains as its linearisation (kernel regime)",
    TRANSITIONAL: "the NTK has started to move: features are beginning to be learnt",
    RICH: "the NTK has moved far from its initial value: the network is learning features",
}


def _evidence_line(name: str, evidence: Mapping[str, float], value: float, driver: str) -> str:
    symbol, meaning = _EVIDENCE[name]
    ramp = RAMPS[name]
    role = "drove the score" if name == driver else "in the score"
    return (
        f"{symbol} = {value:.3g} -> {evidence[name]:.2f} ({role}; lazy below "
        f"{ramp.boundary(LAZY_BELOW):.2g}, rich above {ramp.boundary(RICH_ABOVE):.2g}): "
        f"{meaning if evidence[name] > 0 else 'no sign of it'}."
    )


def _confidence_line(name: str, value: float, noise: float | None) -> str | None:
    """A warning when ``value`` lies within :data:`UNCERTAIN_SIGMAS` noise errors of a label boundary."""
    if noise is None or noise <= 0:
        return None
    ramp = RAMPS[name]
    boundary = min((ramp.boundary(LAZY_BELOW), ramp.boundary(RICH_ABOVE)), key=lambda b: abs(value - b))
    sigmas = abs(value - boundary) / noise
    if sigmas >= UNCERTAIN_SIGMAS:
        return None
    return (
        f"Uncertain: {_EVIDENCE[name][0]} = {value:.3g} +- {noise:.2g} is {sigmas:.1f} noise errors from the "
        f"boundary at {boundary:.2g}; another probe could give the neighbouring label."
    )


def _context_lines(label: str, scalars: Mapping[str, float]) -> list[str]:
    """Indicators outside the score that a reader should see next to it (theory.md section 5)."""
    lines = []
    cka = by_layer(scalars, REPRESENTATION_CKA)
    shares = by_layer(scalars, KERNEL_SHARE)
    distances = by_layer(scalars, KERNEL_DISTANCE)
    if cka:
        layer, value = min(cka.items(), key=lambda item: item[1])
        if label != RICH and value < CHANGED_REPRESENTATION:
            lines.append(
                f"Representation of `{layer}` changed (CKA to init {value:.2f}) while the NTK did not: not counted "
                "(theory.md 5.5); a layer whose features change can carry almost none of the kernel."
            )
        else:
            lines.append(f"Representations: lowest CKA to init {value:.2f} (`{layer}`); not part of the score.")
    minor = {name: d for name, d in distances.items() if shares.get(name, 1.0) < MINOR_SHARE}
    if minor:
        layer, value = max(minor.items(), key=lambda item: item[1])
        if value > 1e-3:
            lines.append(
                f"Layer `{layer}` turned its own kernel block (S = {value:.2g}) but carries {shares[layer]:.2%} of "
                "the NTK, so it barely moves the function."
            )
    patterns = by_layer(scalars, PATTERN_CHANGE)
    if patterns:
        layer, value = max(patterns.items(), key=lambda item: item[1])
        lines.append(f"Activation patterns: {value:.1%} of on/off states flipped since init (`{layer}`).")
    return lines


def explain(
    verdict: Verdict | None,
    scalars: Mapping[str, float],
    forecast_text: str | None = None,
    sources: Mapping[str, str] | None = None,
    measurement: str | None = None,
    advice: str | None = None,
) -> str:
    """A short markdown explanation of ``verdict`` from the record it was made on.

    Names the label and what it means, the value of each kernel evidence with the ramp it went through and
    which one drove the score (the score is their maximum), then the indicators outside the score worth reading
    next to it: a changed representation next to a lazy kernel (the trap of theory.md 5.5), a layer that turned
    but carries little of the kernel, flipped activation patterns. The forecast made at step 0 follows, and the
    advice (which knob would move the run across the boundary, :func:`regimescope.knobs.advise`) ends it.

    Args:
        verdict: The verdict (``None``: no kernel measurement yet).
        scalars: The record's scalars (``regimescope/...`` tags).
        forecast_text: One line about the step-0 forecast, appended as is.
        sources: ``evidence name -> tag`` the score was built from (default: the built-in indicators').
        measurement: What a reduced measurement computed (fewer probe examples, an output projection), said so.
        advice: The text of :func:`regimescope.knobs.advise` for this run, appended as is.

    Returns:
        Markdown, one item per line.
    """
    if verdict is None:
        return "No verdict yet: the monitor has not measured the kernel."
    sources = default_sources() if sources is None else sources
    evidence = dict(verdict.evidence)
    present = [name for name in _EVIDENCE if name in evidence and sources.get(name) in scalars]
    driver = max(present, key=lambda name: evidence[name]) if present else ""
    lines = [f"**{verdict.label}** at step {verdict.step} (score {verdict.score:.2f}): {_MEANING[verdict.label]}."]
    lines += [f"- {_evidence_line(name, evidence, scalars[sources[name]], driver)}" for name in present]
    if driver:
        value, noise = scalars[sources[driver]], scalars.get(noise_tag(sources[driver]))
        uncertain = _confidence_line(driver, value, noise)
        lines += [f"- {uncertain}"] if uncertain else []
    if measurement:
        lines.append(
            f"- Reduced measurement: {measurement}, to keep the monitor within its overhead budget; the noise of "
            "each value (`regimescope/noise/...`) includes the reduction's."
        )
    lines += [f"- {line}" for line in _context_lines(verdict.label, scalars)]
    if forecast_text:
        lines.append(f"- {forecast_text}")
    if advice:
        lines.append(f"- {advice}")
    return "\n".join(lines)
