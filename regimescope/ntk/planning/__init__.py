"""Planning: the probe pass (:mod:`~regimescope.ntk.planning.profile`), the cost of each form
(:mod:`~regimescope.ntk.planning.costs`), the memory budget (:mod:`~regimescope.ntk.planning.memory`) and the plan
that chooses forms and chunks before any expensive work (:mod:`~regimescope.ntk.planning.plan`)."""
