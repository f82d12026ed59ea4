"""What is on disk after the worst moments, and `regimescope report` on it: a process SIGKILLed in the middle of a
line, a file size limit hit part-way through a write (a real short write from the kernel), torn and glued lines,
sessions appended by resumed and repeated runs, empty files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from regimescope.cli.main import main
from regimescope.report.run_data import SCORE_TAG, load_runs
from regimescope.sinks import JsonlSink, TornLineWarning, read_jsonl
from tests.robustness._logs import read_clean, steps
from tests.robustness._records import record as _record

REPO = Path(__file__).resolve().parents[2]


_KILLED_MID_LINE = """
import os, sys, time
from tests.robustness._records import record as _record
from regimescope.sinks import JsonlSink
sink = JsonlSink(sys.argv[1])
for step in range(5):
    sink.write(_record(step))
real_write = os.write
def half_then_hang(fd, data):
    real_write(fd, bytes(data[: len(data) // 2]))
    print("half written", flush=True)
    time.sleep(600)
os.write = half_then_hang
sink.write(_record(5))
"""


def test_a_process_killed_in_the_middle_of_a_line_leaves_a_readable_file_that_the_next_run_appends_to(
    tmp_path: Path,
) -> None:
    path = tmp_path / "regimescope.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_LINE, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "half written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert not path.read_bytes().endswith(b"\n")
    with pytest.warns(TornLineWarning, match=r"line\(s\) 6 "):
        assert steps(read_jsonl(path)) == [0, 1, 2, 3, 4]
    with JsonlSink(path) as sink:  # the killed process's lock is taken over
        sink.write(_record(0, value=0.25))  # a new run into the same folder
    with pytest.warns(TornLineWarning, match=r"line\(s\) 6 "):
        records = read_jsonl(path)
    assert steps(records) == [0] and records[0].scalars[SCORE_TAG] == 0.25
    with pytest.warns(TornLineWarning):
        assert steps(read_jsonl(path, as_lived=False)) == [0, 1, 2, 3, 4, 0]


_FILE_SIZE_LIMIT = """
import json, os, resource, signal, sys
from tests.robustness._records import record as _record
from regimescope.sinks import JsonlSink
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead of killing
path = sys.argv[1]
sink = JsonlSink(path)
sink.write(_record(0))
line = os.path.getsize(path)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(2.5 * line), hard))  # room for one more line and a half
report = {"errors": [], "sizes": []}
for step in range(1, 5):
    try:
        sink.write(_record(step))
    except OSError as error:
        report["errors"].append(error.errno)
    report["sizes"].append(os.path.getsize(path))
report["pending"] = sink.pending
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space again
sink.write(_record(5))
sink.close()
print(json.dumps(report))
"""


@pytest.mark.skipif(os.name != "posix", reason="resource limits are POSIX")
def test_a_short_write_from_the_kernel_is_cut_back_and_written_again_later(tmp_path: Path) -> None:
    path = tmp_path / "regimescope.jsonl"
    child = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, str(path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    line = len(path.read_bytes()) // 6
    assert report["errors"] == [27, 27, 27]  # EFBIG, after the kernel wrote part of the line
    assert report["sizes"] == [2 * line] * 4  # every failed write was cut back to its last whole line
    assert report["pending"] == 3
    assert steps(read_clean(path)) == [0, 1, 2, 3, 4, 5]


def test_torn_glued_resumed_and_repeated_sessions_read_as_lived(tmp_path: Path) -> None:
    path = tmp_path / "regimescope.jsonl"
    line = json.dumps(_record(0).to_json())
    with JsonlSink(path) as sink:  # an earlier run into this folder
        for step in (0, 10, 20):
            sink.write(_record(step, 0.9))
    with JsonlSink(path) as sink:  # this run, crashed at step 35 in the middle of the line of step 30
        for step in (0, 10, 20):
            sink.write(_record(step, 0.1))
    with path.open("a") as file:
        file.write(json.dumps(_record(30, 0.1).to_json())[: len(line) // 2])
    with path.open("a") as file:  # an older writer resumed from step 10 without starting a new line
        file.write(json.dumps(_record(20, 0.2).to_json()) + "\n")
    with JsonlSink(path) as sink:  # crashed again, resumed from the checkpoint of step 20
        sink.resume(20)
        for step in (30, 40):
            sink.write(_record(step, 0.3))
    with pytest.warns(TornLineWarning, match=r"skipped 1 .*line\(s\) 7 ") as caught:
        records = read_jsonl(path)
    assert len(caught) == 1
    assert [(r.step, r.scalars[SCORE_TAG]) for r in records] == [(0, 0.1), (10, 0.1), (20, 0.2), (30, 0.3), (40, 0.3)]


def test_regimescope_report_on_damaged_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One run torn, glued, resumed and cut at its end; one killed in the middle of its first line."""
    pytest.importorskip("matplotlib")
    logdir, out = tmp_path / "runs", tmp_path / "report"
    damaged = logdir / "damaged" / "regimescope.jsonl"
    with JsonlSink(damaged) as sink:
        for step in (0, 4, 8, 12):
            sink.write(_record(step, 0.1))
    with damaged.open("a") as file:
        file.write(json.dumps(_record(16).to_json())[:40])
    with JsonlSink(damaged) as sink:
        sink.resume(8)
        sink.write(_record(12, 0.2))
    with damaged.open("a") as file:
        file.write(json.dumps(_record(14).to_json())[:40] + json.dumps(_record(16, 0.2).to_json()) + "\n")
        file.write('{"step": 20, "sc')
    (logdir / "fragment").mkdir()
    (logdir / "fragment" / "regimescope.jsonl").write_bytes(b'{"step": 0, "scalars": {"regimescope/re')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["report", str(logdir), "--out", str(out)]) == 0
    torn = sorted(str(w.message) for w in caught if issubclass(w.category, TornLineWarning))
    assert len(torn) == 2
    assert torn[0].startswith(f"{damaged}: skipped 3 ") and "at line(s) 5, 8, 9 " in torn[0]
    assert torn[1].startswith(f"{logdir / 'fragment' / 'regimescope.jsonl'}: skipped 1 ")
    assert "Report of 2 run(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.html")) == ["damaged.html", "fragment.html", "index.html"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornLineWarning)
        runs = {run.name: run.scalars.get(SCORE_TAG) for run in load_runs(logdir)}
    assert (runs["damaged"].steps, runs["damaged"].values) == ([0, 4, 8, 12, 16], [0.1, 0.1, 0.1, 0.2, 0.2])
    assert runs["fragment"] is None
