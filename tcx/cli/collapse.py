"""Posterior collapse, said in words: when a run's latents carry (almost) nothing about its inputs.

:func:`collapse_warning` reads the numbers the end-of-run summary prints (the total rate, the rate
per latent, the reconstruction term and the data's ``sum_i H(X_i)``, all in nats) and returns one
paragraph saying what collapsed and what to try, or ``None`` (used by ``tcx.cli.summary``).
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["collapse_warning", "TOTAL_RATE_NATS", "LATENT_RATE_NATS", "POOR_RECONSTRUCTION"]

#: a total rate below this (nats) is a collapsed posterior whatever the reconstruction
TOTAL_RATE_NATS = 0.1
#: a latent whose rate is below this (nats) carries nothing
LATENT_RATE_NATS = 0.05
#: the reconstruction is poor when ``-E log q(x|z)`` is above this fraction of ``sum_i H(X_i)``
#: (the cost of coding each input with no latent at all): the latents explain under 10% of it
POOR_RECONSTRUCTION = 0.9

TRY = ("Try: train longer (--trainer.max_epochs), a smaller weight on the rate (--model.beta, or "
       "--model.anchor_beta for AnchorVAE's anchors, where the family has one), capacity annealing "
       "(--model AnnealedVAE), or another learning rate (--model.lr).")


def collapse_warning(rate: float | None, rates: Sequence[float | None] = (), reconstruction: float | None = None,
                     input_entropy: float | None = None) -> str | None:
    """The warning for a collapsed posterior, or ``None``: the total ``rate`` (``sum_j KL_j``, nats)
    below :data:`TOTAL_RATE_NATS`, or latents below :data:`LATENT_RATE_NATS` each while the
    ``reconstruction`` term ``E log q(x|z)`` is poor (``-reconstruction`` above
    :data:`POOR_RECONSTRUCTION` of ``input_entropy``, the data's ``sum_i H(X_i)``, when known)."""
    if rate is None or not math.isfinite(rate):
        return None
    if rate < TOTAL_RATE_NATS:
        return (f"the posterior has collapsed: the total rate is {rate:.3f} nats, so the latents carry almost "
                f"nothing about the inputs and the decoder ignores them. {TRY}")
    known = [r for r in rates if r is not None]
    idle = [j for j, r in enumerate(rates) if r is not None and r < LATENT_RATE_NATS]
    if not idle or reconstruction is None or not input_entropy or input_entropy <= 0:
        return None
    explained = 1.0 - (-reconstruction) / input_entropy
    if explained >= 1.0 - POOR_RECONSTRUCTION:
        return None
    return (f"the posterior has partly collapsed: {len(idle)} of {len(known)} latents carry under "
            f"{LATENT_RATE_NATS} nats each (z{', z'.join(str(j) for j in idle)}) while the reconstruction explains "
            f"{max(explained, 0.0):.0%} of the inputs' entropy sum_i H(X_i) = {input_entropy:.1f} nats. {TRY}")
