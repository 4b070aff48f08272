"""The beta-VAE: one weight ``beta`` on every latent's information (docs/math.md#beta-vae)."""

from __future__ import annotations

from tcx.models.base import CorExVAE
from tcx.validation import check_real

__all__ = ["BetaVAE"]


class BetaVAE(CorExVAE):
    """Higgins et al. 2017's beta-VAE: ``beta_j = beta`` for every latent.

    ``beta > 1`` penalizes each latent's information ``I(Z_j;X)`` more than the VAE does, which
    pushes towards fewer, more independent latents; the objective stays a lower bound on the
    weighted CorEx objective ``L_{1,beta}`` because ``beta >= 0``.

    Args:
        beta: the weight on every latent's rate (>= 0; Higgins et al. use 4 on dSprites).
        **kwargs: the arguments of :class:`tcx.models.base.CorExVAE`.
    """

    def __init__(self, beta: float = 4.0, **kwargs) -> None:
        self.beta = check_real("beta", beta, 0)
        super().__init__(**kwargs)

    def latent_weights(self) -> float:
        return self.beta
