"""The regimescope TensorBoard plugin: a tab with the regime timeline, alerts, per-layer heat maps and NTK images."""

from __future__ import annotations

import json
import logging
import math
from importlib import resources
from typing import Any, Callable

from tensorboard import context as tb_context
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from regimescope.tensorboard_plugin import PLUGIN_NAME
from regimescope.tensorboard_plugin.data import RunReader
from regimescope.tensorboard_plugin.views import run_view, summary_view

logger = logging.getLogger(__name__)

STATIC = {"/index.js": ("index.js", "text/javascript"), "/style.css": ("style.css", "text/css")}
"""Frontend files shipped in ``regimescope/tensorboard_plugin/static``: route -> (file, mime type)."""


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class RegimescopePlugin(base_plugin.TBPlugin):
    """Serves the "regimescope" tab: an ES module frontend and JSON routes read through the data provider.

    Routes (under ``/data/plugin/regimescope``):

    - ``/index.js``, ``/style.css``: the frontend, shipped in the package (no network access needed);
    - ``/runs``: every run with regimescope data (a run whose monitor paused with its error), its final verdict,
      verdict timeline and whole-model kernel series;
    - ``/run?run=NAME``: one run: the above, its explanation, forecast and conservation diagnosis (as HTML), alerts,
      per-layer heat maps (kernel distance per block and per layer, balance), images;
    - ``/image?run=NAME&index=I``: the ``I``-th NTK heatmap PNG of the run.

    Args:
        context: TensorBoard's context (its ``data_provider`` is all the plugin reads).
    """

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        self._provider = context.data_provider

    def get_plugin_apps(self) -> dict[str, Callable]:
        """The routes above."""
        apps: dict[str, Callable] = {route: self._static(name, mime) for route, (name, mime) in STATIC.items()}
        apps["/runs"] = self._serve_runs
        apps["/run"] = self._serve_run
        apps["/image"] = self._serve_image
        return apps

    def is_active(self) -> bool:
        """Whether any run has regimescope data (read lazily; ``False`` when the provider cannot tell)."""
        if self._provider is None:
            return False
        try:
            return bool(RunReader(self._provider, tb_context.RequestContext(), "").runs())
        except Exception:
            logger.debug("regimescope plugin: is_active could not list runs", exc_info=True)
            return False

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """An iframed ES module frontend, tab "regimescope"."""
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="regimescope")

    def _reader(self, request: wrappers.Request) -> RunReader:
        return RunReader(
            self._provider, plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        )

    @staticmethod
    def _static(name: str, mime: str) -> Callable:
        @wrappers.Request.application
        def serve(request: wrappers.Request) -> wrappers.Response:
            content = resources.files("regimescope.tensorboard_plugin").joinpath("static", name).read_bytes()
            return http_util.Respond(request, content, mime)

        return serve

    @staticmethod
    def _json(request: wrappers.Request, body: Any, code: int = 200) -> wrappers.Response:
        return http_util.Respond(request, json.dumps(_finite(body)), "application/json", code=code)

    @wrappers.Request.application
    def _serve_runs(self, request: wrappers.Request) -> wrappers.Response:
        reader = self._reader(request)
        return self._json(request, {"runs": [summary_view(reader.run(name)) for name in reader.runs()]})

    @wrappers.Request.application
    def _serve_run(self, request: wrappers.Request) -> wrappers.Response:
        name = request.args.get("run")
        reader = self._reader(request)
        if name not in reader.runs():
            return self._json(
                request, {"error": f"no regimescope run named {name!r}; expected one of {reader.runs()}"}, 404
            )
        images = reader.kernel_images(name)
        return self._json(request, run_view(reader.run(name), [image.step for image in images]))

    @wrappers.Request.application
    def _serve_image(self, request: wrappers.Request) -> wrappers.Response:
        name = request.args.get("run", "")
        images = self._reader(request).kernel_images(name)
        try:
            image = images[int(request.args.get("index", ""))]
        except (ValueError, IndexError):
            return self._json(
                request,
                {"error": f"run {name!r} has {len(images)} heatmap image(s); ask index 0..{len(images) - 1}"},
                404,
            )
        return http_util.Respond(request, self._reader(request).blob(image.blob_key), "image/png")
