"""Knobs that move a network between the lazy and the rich regime, as functions on a model you build.

Each returns a new model (a copy, or a new build) and never changes the model it is given, so knobs act on the
model you are about to train, never on one being trained. Each module says what theory predicts the knob does:

- :func:`scale_init`: initialisation scale, globally or per layer (small is rich, large is lazy).
- :func:`rebalance`: layer balance at a fixed product of each unit's weights (GRQ / lambda-balanced; upstream is
  rich fast, downstream fits on fixed features first).
- :func:`scale_output`: output scale ``alpha f`` or Chizat's centred ``alpha (f - f_0)`` (large is lazy).
- :func:`at_width`: build a model at a width under the standard, NTK or muP parametrisation (wider is lazier under
  NTK, not under muP).
- :func:`advise`: which of these knobs would move a run across the boundary, from the step-0 forecast.
"""

from regimescope.knobs.advice import CLEAR_MARGIN, Advice, Move, advise, model_at_init
from regimescope.knobs.balance import rebalance
from regimescope.knobs.init_scale import scale_init
from regimescope.knobs.output_scale import OutputScaled, scale_output
from regimescope.knobs.width import InputMultiplier, Parametrisation, at_width, multipliers

__all__ = [
    "CLEAR_MARGIN",
    "Advice",
    "InputMultiplier",
    "Move",
    "OutputScaled",
    "Parametrisation",
    "advise",
    "at_width",
    "model_at_init",
    "multipliers",
    "rebalance",
    "scale_init",
    "scale_output",
]
