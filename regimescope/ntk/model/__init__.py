"""The model as the engine sees it: a side-effect-free functional call, its output map, the parameter blocks the
kernel is summed over, and the hooks that record layer data or hold the user's backward hooks aside."""
