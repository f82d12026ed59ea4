"""``regimescope sweep TARGET --grid KNOB=VALUES ...``: a phase diagram of your model from the command line.

``TARGET`` is ``module:function`` or ``path/to/file.py:function``; the function takes no argument and returns the
keyword arguments of :func:`regimescope.sweep.sweep` that describe the model: ``make_model``, ``make_optimizer``,
``data`` and optionally ``probe``, ``train_step``, ``steps``, ``monitor_options``, ``ray_options`` and ``grid`` (the
default grid, which ``--grid`` options replace knob by knob; ``--ray-option`` options update ``ray_options``).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from regimescope.alerts import RegimeWarning

DEFAULT_LOGDIR = Path("runs") / "regimescope-sweep"
FILE_MODULE_PREFIX = "regimescope_sweep_target_"
"""Name prefix of the module a ``file.py`` target is loaded as (``regimescope_sweep_target_<stem>``)."""
TASK_KEYS = (
    "make_model",
    "make_optimizer",
    "data",
    "probe",
    "train_step",
    "steps",
    "monitor_options",
    "grid",
    "base_width",
    "seed",
    "ray_options",
)
"""Keys the target function may return."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``sweep`` subcommand."""
    sweep = commands.add_parser(
        "sweep",
        help="forecast and measure the lazy/rich phase diagram of a model over up to three knobs",
        description=(
            "Builds the model of TARGET at every point of the grid, forecasts its regime from initialisation, trains "
            "it briefly with a monitor, and writes the phase diagram (PNG and HTML), TensorBoard HParams entries and "
            "points.json. Built-in knobs: init_scale, balance, delta, output_scale, parametrisation (with width); "
            "any other knob is passed to the factories that take it."
        ),
    )
    sweep.add_argument("target", help="module:function or file.py:function returning rs.sweep's keyword arguments")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KNOB=VALUES",
        help="a knob and its values: 0.1,1,10 or ntk,mup or LOW:HIGH:COUNT (log-spaced); repeat for up to 3 knobs",
    )
    sweep.add_argument(
        "--steps", type=int, default=None, help="training steps per point (default: the target's, or 200)"
    )
    sweep.add_argument("--forecast-only", action="store_true", help="draw the forecast diagram only (no training)")
    sweep.add_argument("--engine", choices=["inline", "process", "ray"], default="inline", help="how points run")
    sweep.add_argument("--workers", type=int, default=None, help="processes of the process engine")
    sweep.add_argument(
        "--ray-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the ray engine: an argument of ray.init (num_cpus=4, address=auto) or of "
        "ray.tune.TuneConfig (max_concurrent_trials=2); repeat for several",
    )
    sweep.add_argument(
        "--logdir", type=Path, default=DEFAULT_LOGDIR, help=f"TensorBoard folder (default {DEFAULT_LOGDIR})"
    )
    sweep.add_argument("--out", type=Path, default=None, help="report folder (default LOGDIR/report)")


def load_target(target: str) -> Callable[[], dict[str, Any]]:
    """The function named by ``module:function`` or ``file.py:function``.

    Raises:
        ValueError: When the target is malformed, cannot be imported or is not callable (with the fix).
    """
    location, _, name = target.rpartition(":")
    if not location or not name:
        raise ValueError(f"TARGET must be module:function or file.py:function; received {target!r}.")
    try:
        if location.endswith(".py"):
            path = Path(location).resolve()
            module_name = f"{FILE_MODULE_PREFIX}{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"no Python file {str(path)!r}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # process-pool workers (forked) find the factories by module name
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(location)
    except (ImportError, FileNotFoundError) as error:
        raise ValueError(f"Could not load {location!r} from TARGET {target!r}: {error}.") from error
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(
            f"{location!r} has no callable {name!r}; TARGET names a function returning rs.sweep's arguments."
        )
    return function


def send_by_value(module: ModuleType) -> None:
    """Make Ray send the code of a ``file.py`` target's module to its workers.

    Ray pickles the task with its own cloudpickle, which refers to a module's functions by the module's name; a
    target file is a module only in this process (registered as ``regimescope_sweep_target_<stem>``), so the workers
    could not import it. Registered by value, its functions travel as code. Without Ray, nothing to do: the sweep
    stops with Ray's install line.
    """
    try:
        from ray import cloudpickle
    except ImportError:
        return
    cloudpickle.register_pickle_by_value(module)


def parse_option(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as ``(key, value)``, the value a Python literal (``4``, ``0.5``, ``True``, ``None``) or else the
    text itself (``auto``).

    Raises:
        ValueError: Without ``=`` or a key.
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--ray-option takes KEY=VALUE, e.g. --ray-option num_cpus=4; received {item!r}.")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text.strip()
    return key.strip(), value


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    from regimescope.sweep import parse_values

    target = load_target(args.target)
    if args.engine == "ray" and target.__module__.startswith(FILE_MODULE_PREFIX):
        send_by_value(sys.modules[target.__module__])
    task = target()
    if not isinstance(task, dict):
        raise TypeError(f"{args.target} returned {type(task).__name__}; expected a dict of rs.sweep arguments.")
    unknown = sorted(set(task) - set(TASK_KEYS))
    if unknown:
        raise ValueError(f"{args.target} returned unknown keys {unknown}; expected some of {list(TASK_KEYS)}.")
    grid = dict(task.pop("grid", {}))
    for item in args.grid:
        knob, sep, values = item.partition("=")
        if not sep or not knob:
            raise ValueError(f"--grid takes KNOB=VALUES, e.g. --grid init_scale=0.1,1,10; received {item!r}.")
        grid[knob.strip()] = parse_values(values)
    if not grid:
        raise ValueError("No grid: pass --grid KNOB=VALUES (e.g. --grid init_scale=0.1:10:5) or return a 'grid'.")
    if args.steps is not None:
        task["steps"] = args.steps
    if args.ray_option and args.engine != "ray":
        raise ValueError(f"--ray-option applies to --engine ray only (this sweep runs with --engine {args.engine}).")
    if args.ray_option:
        task["ray_options"] = {**task.get("ray_options", {}), **dict(map(parse_option, args.ray_option))}
    return {**task, "grid": grid}


def run(args: argparse.Namespace) -> int:
    """Run the sweep; print the table's summary and where the files are, or what went wrong (exit status 2)."""
    from regimescope.sweep import sweep

    try:
        arguments = _arguments(args)
        grid = arguments.pop("grid")
        make_model = arguments.pop("make_model")
        out = args.out if args.out is not None else args.logdir / "report"
        with warnings.catch_warnings():  # the table and the diagrams show the verdicts
            warnings.simplefilter("ignore", RegimeWarning)
            result = sweep(
                make_model,
                grid,
                measure=not args.forecast_only,
                engine=args.engine,
                workers=args.workers,
                logdir=args.logdir,
                out=out,
                **arguments,
            )
    except (ValueError, TypeError, ImportError, KeyError) as error:
        print(f"regimescope sweep: {error}", file=sys.stderr)
        return 2
    print(format_table(result.table, [axis.name for axis in result.axes]))
    print(f"\nPhase diagram: {result.files['figure']}\nPage: {result.files['page']}\nTable: {result.files['table']}")
    if "logdir" in result.files:
        print(f"HParams dashboard: tensorboard --logdir {result.files['logdir']}  (HPARAMS tab)")
    return 0


def format_table(rows: list[dict[str, Any]], knobs: list[str]) -> str:
    """The points as a fixed-width table: knobs, forecast, measured label and score, S, growth, rich at step."""

    def show(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    columns = [*knobs, "forecast", "q", "measured", "score", "S", "growth", "rich at"]
    keys = [*knobs, "forecast", "forecast_ratio", "label", "score", "distance", "growth", "time_to_rich"]
    table = [
        [show(row.get(key)) if row.get("error") is None or key in knobs else "failed" for key in keys] for row in rows
    ]
    widths = [max(len(c), *(len(line[i]) for line in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in table]
    errors = [f"  {row.get('point')}: {row['error']}" for row in rows if row.get("error")]
    return "\n".join(lines + (["", "failed points:", *errors] if errors else []))
