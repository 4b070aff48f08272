"""Schedules of a training run's weights, as pure functions of the step.

- :func:`linear_capacity`: the capacity ``C`` of the annealed beta-VAE (C. P. Burgess et al.,
  "Understanding disentangling in beta-VAE", 2018, section 5, eq. 8), in nats.
"""

from __future__ import annotations

from tcx.validation import check_int

__all__ = ["linear_capacity"]


def linear_capacity(step: int, capacity_max: float, capacity_steps: int) -> float:
    """The annealed capacity ``C(step) = capacity_max * min(1, step / capacity_steps)`` in nats
    (Burgess et al. 2018, section 5: ``C`` grows linearly from 0 to ``C_max``, then stays)."""
    check_int("capacity_steps", capacity_steps, 1)
    return float(capacity_max) * min(1.0, max(0, int(step)) / int(capacity_steps))
