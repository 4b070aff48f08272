"""Posterior collapse in words, for the end-of-run summary (``tcx.cli.summary``)."""

from __future__ import annotations

import math
from typing import Sequence

#: a total rate below this (nats) is a collapsed posterior whatever the reconstruction
TOTAL_RATE_NATS = 0.1
#: a latent whose rate is below this (nats) carries nothing
LATENT_RATE_NATS = 0.05
#: the reconstruction is poor when ``-E log q(x|z)`` is above this fraction of ``sum_i H(X_i)``
POOR_RECONSTRUCTION = 0.9

TRY = ("Try: train longer (--trainer.max_epochs), a smaller weight on the rate (--model.beta, or "
       "--model.anchor_beta for AnchorVAE's anchors, where the family has one), capacity annealing "
       "(--model AnnealedVAE), or another learning rate (--model.lr).")


def collapse_warning(rate: float | None, rates: Sequence[float | None] = (), reconstruction: float | None = None,
                     input_entropy: float | None = None) -> str | None:
    """The warning for a collapsed posterior (all in nats), or ``None``: a total ``rate`` under
    :data:`TOTAL_RATE_NATS`, or idle latents while the reconstruction explains little of
    ``input_entropy`` (the data's ``sum_i H(X_i)``)."""
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
