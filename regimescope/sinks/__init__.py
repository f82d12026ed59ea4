"""Sinks: where measurement records go (TensorBoard, JSON lines, memory, user callbacks).

Importing this package never imports ``tensorboard``; :class:`TensorBoardSink` does when it is built.
"""

from regimescope.sinks.base import Sink
from regimescope.sinks.callback import CallbackSink
from regimescope.sinks.group import SinkGroup
from regimescope.sinks.jsonl import JsonlSink, TornLineWarning, read_jsonl
from regimescope.sinks.layout import build_layout
from regimescope.sinks.logdir import JSONL_NAME, logdir_sinks
from regimescope.sinks.memory import MemorySink
from regimescope.sinks.tensorboard import TensorBoardSink

__all__ = [
    "JSONL_NAME",
    "CallbackSink",
    "JsonlSink",
    "MemorySink",
    "Sink",
    "SinkGroup",
    "TensorBoardSink",
    "TornLineWarning",
    "build_layout",
    "logdir_sinks",
    "read_jsonl",
]
