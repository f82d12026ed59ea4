"""The progress bar draws on terminals, erases itself, and writes nothing when output is not a terminal."""

from __future__ import annotations

import io

import pytest

from regimescope.progress import Progress, is_terminal


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_output_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(10, "work", stream=stream) as bar:
        for _ in range(10):
            bar.update(detail="item")
    assert not bar.enabled and bar.done == 10
    assert stream.getvalue() == ""


def test_draws_in_place_on_a_terminal_and_erases_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    stream = _Terminal()
    with Progress(4, "work", stream=stream) as bar:
        bar.update(detail="first")
        drawn = stream.getvalue()
        bar.update(3, detail="last")
    assert bar.enabled
    assert drawn == "\rwork [######------------------] 1/4 first"
    assert "\rwork [########################] 4/4 last" in stream.getvalue()
    assert stream.getvalue().endswith("\r" + " " * len("work [########################] 4/4 last") + "\r")


def test_dumb_terminals_get_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert not is_terminal(_Terminal())


def test_negative_total_is_refused() -> None:
    with pytest.raises(ValueError, match="`total` must be a number of work units >= 0"):
        Progress(-1)
