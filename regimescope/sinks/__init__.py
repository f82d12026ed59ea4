"""Sinks: where measurement records go (TensorBoard, JSON lines, memory, user callbacks).

Importing this package never imports ``tensorboard``; :class:`TensorBoardSink` does when it is built.
"""

from regimescope.sinks.base import Sink
from regimescope.sinks.callback import CallbackSink
from regimescope.sinks.jsonl import JsonlSink, read_jsonl
from regimescope.sinks.layout import build_layout
from regimescope.sinks.memory import MemorySink
from regimescope.sinks.tensorboard import TensorBoardSink

__all__ = [
    "CallbackSink",
    "JsonlSink",
    "MemorySink",
    "Sink",
    "TensorBoardSink",
    "build_layout",
    "read_jsonl",
]
