"""The VAE: the CorEx bound with all weights 1 (docs/math.md#weighted-bounds)."""

from __future__ import annotations

from tcx.models.base import CorExVAE

__all__ = ["VAE"]


class VAE(CorExVAE):
    """Kingma and Welling 2014's VAE, read as CorEx: maximizes ``sum_i H(X_i) + ELBO``, a lower
    bound on ``sum_i I(X_i;Z) - sum_j I(Z_j;X)``. Every ``beta_j = 1``. Arguments are those of
    :class:`tcx.models.base.CorExVAE`."""

