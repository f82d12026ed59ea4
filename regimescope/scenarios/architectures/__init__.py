"""Known answers on real architectures: a ResNet with BatchNorm and a Hugging Face GPT-2, in runs whose regime is
known by construction (docs/verdict.md, "Known answers on real architectures").

The same catalogue at two sizes: ``tests/verdict/test_real_architectures.py`` runs it at :data:`QUICK` size and
``benchmarks/architectures.py`` at :data:`FULL` size; theory's answer is a :class:`~regimescope.scenarios.Theory`, as
for the small scenarios of :mod:`regimescope.scenarios`, but these runs train by SGD with momentum on minibatches of a
real task (:mod:`.training`) instead of full-batch gradient descent on a teacher's targets. Every run is seeded and
trained by SGD with momentum 0.9 with a :class:`~regimescope.RegimeMonitor` attached at its start, with
``max_overhead=None`` (every scheduled measurement happens, exact kernels of every output) and the default
``mode="probe_stats"`` (BatchNorm normalises the probe with its own statistics, held fixed:
``regimescope.capture.probe_statistics``).

The networks:

* ``resnet``: ResNet-18's layout for small images (:class:`~regimescope.scenarios.resnet.ResNet18`: 4 stages of 2 basic
  blocks, BatchNorm after every convolution) with ``width`` channels in the first stage, on scikit-learn's handwritten
  digits (8x8, bundled with scikit-learn: no download), resized to ``image x image`` and repeated over 3 channels, 10
  classes; learning rate 0.005;
* ``gpt2``: ``transformers.GPT2LMHeadModel`` from a tiny config (2 layers, untied head, no dropout, eager attention),
  trained on next-token prediction of sequences drawn from a random Markov chain over 16 tokens; learning rate 0.1.

Both learning rates are below ``2 (1 + momentum) / lambda_max``, ``lambda_max`` the largest eigenvalue of the loss's
Gauss-Newton matrix at initialisation on a training batch (about 250 for the ResNet, 11 for GPT-2, at the quick size),
so that the linearised model trains stably: above it the linearisation diverges (catapult dynamics) and no output scale
makes training lazy.

The scenarios (theory's answer in brackets):

* ``standard``: every parameter trained from the default initialisation [rich];
* ``alpha=1``, ``alpha=100``, ``alpha=10^4``: the centred output-scaled model ``alpha (f - f_0)`` trained on the loss
  divided by ``alpha^2`` (Chizat, Oyallon & Bach 2019): the function's dynamics are the same to leading order, the
  parameters move ``~ 1 / alpha``, so training is lazy for ``alpha`` large enough [rich, lazy, lazy];
* ``small lr, wide``: 4x the width, the learning rate divided by 100, the same number of steps [lazy];
* ``small init``: every parameter multiplied by 0.1 at initialisation: the output starts near zero and the weights must
  grow to fit [rich];
* ``head only``: every parameter frozen (``requires_grad=False``) except the linear head: the model is linear in what is
  trained, its kernel is the Gram matrix of the frozen features and cannot change [lazy];
* ``fine-tune``: trained on one task for ``pretrain_steps``, then every parameter fine-tuned on a related one with the
  monitor attached at the start of fine-tuning [lazy: near-lazy fine-tuning, Malladi et al. 2023].

Theory's answers are limits (large ``alpha``, large width, large pre-trained models);
:func:`.linearisation.linearisation_gap` measures what "lazy" means directly, whether the trained network stays close to
its linearisation at the start of the run, independently of the monitor and its thresholds."""

from regimescope.scenarios.architectures.catalogue import ARCHITECTURES, SCENARIOS, Architecture, Scenario
from regimescope.scenarios.architectures.linearisation import LINEAR, NONLINEAR, agrees_with_gap, linearisation_gap
from regimescope.scenarios.architectures.runner import Outcome, run_scenario
from regimescope.scenarios.architectures.size import FULL, QUICK, Size
from regimescope.scenarios.architectures.training import MOMENTUM, Run, train

__all__ = [
    "ARCHITECTURES",
    "FULL",
    "LINEAR",
    "MOMENTUM",
    "NONLINEAR",
    "QUICK",
    "SCENARIOS",
    "Architecture",
    "Outcome",
    "Run",
    "Scenario",
    "Size",
    "agrees_with_gap",
    "linearisation_gap",
    "run_scenario",
    "train",
]
