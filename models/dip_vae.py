"""DIP-VAE I and II (A. Kumar, P. Sattigeri, A. Balakrishnan, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", ICLR 2018, section 3).

The VAE's loss plus a moment-matching penalty that drives a covariance ``C`` of the codes to the
identity, the covariance of the ``N(0, I)`` prior (:mod:`tcx.tc_penalties`):

    loss = -ELBO + lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2

- DIP-VAE-I: ``C = Cov_{p(x)}[mu(x)]``, the covariance of the posterior means (eq. 6);
- DIP-VAE-II: ``C = Cov_{q(z)}[z] = E_x[Sigma(x)] + Cov_{p(x)}[mu(x)]``, the covariance of the
  aggregate posterior (eq. 7).

Decorrelated latents are independent in the Gaussian case, so the off-diagonal term is a
second-order surrogate for ``TC(Z)`` (docs/math.md#dip-vae; the Gaussian total
correlation of docs/math.md#gaussian-total-correlation is 0 exactly when ``C`` is diagonal).
"""

from __future__ import annotations

from torch import Tensor

from tcx.distributions import DiagonalGaussian
from tcx.models.base import CorExVAE
from tcx.objective import CorExTerms
from tcx.tc_penalties import DIP_TYPES, dip_covariance, dip_penalty
from tcx.validation import check_choice, check_real

__all__ = ["DIPVAE"]


class DIPVAE(CorExVAE):
    """Kumar et al. 2018's DIP-VAE, type I or II.

    Args:
        dip_type: ``'i'`` (covariance of the posterior means) or ``'ii'`` (covariance of the
            aggregate posterior).
        lambda_od: weight on the squared off-diagonal entries of ``C``; 10 by default, inside the
            range disentanglement_lib sweeps for both types (1, 2, 5, 10, 20, 50).
        lambda_d: weight on the squared deviations of the diagonal from 1. ``None`` takes the
            paper's rule: ``10 * lambda_od`` for DIP-VAE-I and ``lambda_od`` for DIP-VAE-II
            (Kumar et al. 2018, section 4; disentanglement_lib's ``lambda_d_factor`` 10 and 1).
        **kwargs: the arguments of :class:`tcx.models.base.CorExVAE` (all rate weights are 1: the
            penalty is added to the negative ELBO).

    The covariance is estimated on each batch (divided by the batch size, as disentanglement_lib
    does), so batches need at least 2 rows. Logged besides the base's terms: ``*/dip_off_diagonal``
    (``sum_{i != j} C_ij^2``) and ``*/dip_diagonal`` (``sum_i (C_ii - 1)^2``), both dimensionless
    (squared covariances of the codes), and ``*/loss/dip``, the weighted penalty added to the loss.
    """

    def __init__(
        self,
        dip_type: str = "i",
        lambda_od: float = 10.0,
        lambda_d: float | None = None,
        **kwargs,
    ) -> None:
        key = check_choice("dip_type", dip_type, DIP_TYPES, ignore_case=True, hint="'i' is DIP-VAE-I, 'ii' DIP-VAE-II")
        lambda_od = check_real("lambda_od", lambda_od, 0.0)
        if lambda_d is None:
            lambda_d = 10.0 * lambda_od if key == "i" else float(lambda_od)
        lambda_d = check_real("lambda_d", lambda_d, 0.0)
        self.dip_type = key
        self.lambda_od = float(lambda_od)
        self.lambda_d = float(lambda_d)
        super().__init__(**kwargs)

    def extra_loss(self, x: Tensor, posterior: DiagonalGaussian, z: Tensor, terms: CorExTerms) -> dict[str, Tensor]:
        cov = dip_covariance(posterior.mean, posterior.log_var, self.dip_type)
        penalty, off_diagonal, diagonal = dip_penalty(cov, self.lambda_od, self.lambda_d)
        self.report("dip_off_diagonal", off_diagonal)
        self.report("dip_diagonal", diagonal)
        return {"loss/dip": penalty}
