"""Capturing what indicators need from the model on the probe."""

from regimescope.capture.capture import capture
from regimescope.capture.config import CaptureConfig
from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot

__all__ = ["CaptureConfig", "Need", "Snapshot", "capture"]
