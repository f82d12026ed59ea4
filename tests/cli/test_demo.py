"""`regimescope demo --quick`: runs end to end, its verdicts are theory's, and the commands it prints run as printed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from regimescope.cli import demo
from regimescope.scenarios import DEMO, EARLY_FRACTION
from regimescope.sinks import read_jsonl
from tests.cli._demo_logs import quick_demo

LABELS = ("lazy", "transitional", "rich")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    logdir = tmp_path_factory.mktemp("demo") / "logs"
    return quick_demo(logdir), logdir


@pytest.mark.parametrize("scenario", DEMO, ids=[scenario.run for scenario in DEMO])
def test_demo_verdicts_agree_with_theory(demo_run: tuple[str, Path], scenario) -> None:
    text, logdir = demo_run
    records = read_jsonl(logdir / scenario.run / "regimescope.jsonl")
    labelled = [r for r in records if "regimescope/regime/label" in r.scalars]
    labels = [LABELS[int(r.scalars["regimescope/regime/label"])] for r in labelled]
    steps = [r.step for r in labelled]
    early = [label for label, step in zip(labels, steps) if step <= EARLY_FRACTION * scenario.build().steps][-1]
    assert scenario.theory.agrees(early, labels[-1]), (labels, steps)
    row = next(line.split() for line in text.splitlines() if line.startswith(scenario.run + " "))
    assert (" ".join(row[1:-10]), row[-9], row[-8]) == (str(scenario.theory), early, labels[-1]), row


def test_demo_prints_the_table_and_writes_tensorboard_events(demo_run: tuple[str, Path]) -> None:
    text, logdir = demo_run
    header = "run theory forecast early verdict score S(K0,KT) |dK|/|K0| loss time"
    assert text.splitlines()[1].split() == header.split()
    for scenario in DEMO:
        assert list((logdir / scenario.run).glob("events.out.tfevents.*")), scenario.run
        assert f"  {scenario.run:<11} {scenario.description}" in text


def test_printed_commands_run_as_printed(demo_run: tuple[str, Path]) -> None:
    """A command printed by its path runs from a shell whose PATH lacks the environment's scripts (a fresh shell
    outside the .venv); one printed by name is on this shell's PATH."""
    text, logdir = demo_run
    commands = [shlex.split(line) for line in text.splitlines() if line.startswith("    ")]
    assert len(commands) == 2
    assert commands[0][-2:] == ["--logdir", str(logdir)] and commands[1][-2:] == ["report", str(logdir)]
    for command, ask in ((commands[0][:-2], "--version_tb"), (commands[1][:-2], "--help")):
        env = dict(os.environ, PATH="/usr/bin:/bin") if os.sep in command[0] else None
        result = subprocess.run([*command, ask], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (command, result.stderr)


@pytest.mark.parametrize("on_path", [True, False])
def test_shell_command_names_a_script_by_path_unless_the_shell_finds_that_same_script(
    on_path: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", scripts if on_path else "/nonexistent")
    command = demo.shell_command("regimescope", "regimescope.cli.main", "report", Path("runs/my run"))
    expected_head = "regimescope" if on_path else demo._relative(Path(scripts) / "regimescope")
    assert command == shlex.join([expected_head, "report", "runs/my run"])


def test_shell_command_falls_back_to_python_dash_m(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    command = demo.shell_command("no-such-script", "regimescope.cli.main", "--help")
    assert command == shlex.join([demo._relative(sys.executable), "-m", "regimescope.cli.main", "--help"])
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, check=True)
    assert "demo" in result.stdout


def test_console_entry_point_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "regimescope.cli.main", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in result.stdout
