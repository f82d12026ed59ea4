"""The entry point TensorBoard loads: builds the plugin, and never lets a failure break TensorBoard."""

from __future__ import annotations

import logging

from tensorboard.plugins import base_plugin

logger = logging.getLogger(__name__)


class RegimescopeLoader(base_plugin.TBLoader):
    """Loads :class:`~regimescope.tensorboard_plugin.plugin.RegimescopePlugin`.

    The plugin module is imported here, inside :meth:`load`, so that an import error (a missing dependency, a
    broken installation) is logged and the tab left out, while TensorBoard and its other plugins run on.
    """

    def load(self, context: base_plugin.TBContext) -> base_plugin.TBPlugin | None:
        """The plugin, or ``None`` (logged) when it cannot be built."""
        try:
            from regimescope.tensorboard_plugin.plugin import RegimescopePlugin

            return RegimescopePlugin(context)
        except Exception:
            logger.exception("The regimescope TensorBoard plugin could not be loaded; the regimescope tab is left out.")
            return None
