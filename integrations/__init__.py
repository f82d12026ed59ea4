"""Framework adapters, installed as ``regimescope.integrations``.

Each adapter maps a framework's training events to :class:`regimescope.RegimeMonitor` calls and holds no math;
its framework is imported only when the adapter module is imported.
"""
