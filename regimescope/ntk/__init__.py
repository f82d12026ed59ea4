"""The empirical NTK engine."""

from regimescope.ntk.engine import empirical_ntk
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, Implementation

__all__ = ["DEFAULT_IMPLEMENTATION", "Implementation", "empirical_ntk"]
