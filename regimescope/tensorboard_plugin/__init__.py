"""The regimescope dashboard inside TensorBoard: a "regimescope" tab, installed with the package.

TensorBoard finds it through the ``tensorboard_plugins`` entry point, which names
:class:`~regimescope.tensorboard_plugin.loader.RegimescopeLoader`. Nothing on this import path imports torch, and
the loader turns any failure into a log line, so a broken environment never keeps TensorBoard from starting.
"""

PLUGIN_NAME = "regimescope"
"""The plugin's name: its routes live under ``/data/plugin/regimescope/``."""

__all__ = ["PLUGIN_NAME"]
