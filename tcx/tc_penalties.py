"""Penalties of the disentangling VAE baselines, as pure functions on tensors.

Each baseline adds one term to the negative ELBO (or replaces the rate term); the functions below
compute those terms from the encoder's output, so that a model family only wires them in and a
test can check them against an independent computation.

- :func:`dip_covariance`, :func:`dip_penalty`: DIP-VAE I and II (Kumar et al., ICLR 2018, section
  3, eqs. 5-7), as in disentanglement_lib's ``dip_vae``.
- :func:`permute_dims`, :func:`density_ratio_tc`, :func:`discriminator_loss`: FactorVAE's
  density-ratio estimate of the total correlation (Kim and Mnih, ICML 2018, section 3, algorithm 2).

The annealed beta-VAE's capacity schedule is in :mod:`tcx.schedules`; beta-TCVAE's three terms are
:func:`tcx.estimators.aggregate_information`'s ``mutual_info``, ``total_correlation``, ``dimension_wise_kl``.

Details: docs/math.md#baselines
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from tcx.errors import TcxError
from tcx.validation import check_choice, check_int, check_same_shape, check_shape

__all__ = [
    "DIP_TYPES",
    "dip_covariance",
    "dip_penalty",
    "permute_dims",
    "density_ratio_tc",
    "discriminator_loss",
]

DIP_TYPES = ("i", "ii")


def _check_batch(mean: Tensor, log_var: Tensor | None = None) -> None:
    rows = check_shape("mean", mean, ("batch", "latents"))[0]
    check_int("the batch size", rows, 2, hint="a covariance over the batch needs at least 2 rows")
    if log_var is not None:
        check_same_shape(("mean", mean), ("log_var", log_var))


def dip_covariance(mean: Tensor, log_var: Tensor | None = None, dip_type: str = "i") -> Tensor:
    """The covariance DIP-VAE drives towards the identity, ``[D, D]``, from one batch.

    - ``dip_type='i'`` (DIP-VAE-I, Kumar et al. 2018, eq. 6): ``Cov_{p(x)}[mu(x)]``, the covariance
      of the posterior means over the batch;
    - ``dip_type='ii'`` (DIP-VAE-II, eq. 7): the covariance of the aggregate posterior
      ``q(z) = E_x p(z|x)``, ``Cov_q[z] = E_x[Sigma(x)] + Cov_{p(x)}[mu(x)]`` with
      ``Sigma(x) = diag(exp(log_var(x)))``.

    Covariances are the batch's maximum-likelihood estimates (divided by the batch size ``M``, not
    ``M - 1``), as in disentanglement_lib's ``compute_covariance_z_mean``.
    """
    key = check_choice("dip_type", dip_type, DIP_TYPES, ignore_case=True)
    _check_batch(mean, log_var)
    centred = mean - mean.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / mean.shape[0]
    if key == "ii":
        if log_var is None:
            raise TcxError("dip_type='ii' needs log_var: the aggregate covariance adds E_x[Sigma(x)]")
        cov = cov + torch.diag(torch.exp(log_var).mean(dim=0))
    return cov


def dip_penalty(cov: Tensor, lambda_od: float, lambda_d: float) -> tuple[Tensor, Tensor, Tensor]:
    """DIP-VAE's regularizer ``lambda_od sum_{i != j} C_ij^2 + lambda_d sum_i (C_ii - 1)^2``.

    Kumar et al. 2018, eq. 5: matching the moments of ``C`` to those of the ``N(0, I)`` prior.
    Returns ``(penalty, off_diagonal, diagonal)`` with ``off_diagonal = sum_{i != j} C_ij^2`` and
    ``diagonal = sum_i (C_ii - 1)^2`` (both unweighted and dimensionless: squared covariances).
    """
    check_shape("cov", cov, ("D", "D"), hint="a square matrix")
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    off_diagonal = off.pow(2).sum()
    diagonal = (diag - 1.0).pow(2).sum()
    return lambda_od * off_diagonal + lambda_d * diagonal, off_diagonal, diagonal


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each column of ``z`` ``[M, D]`` shuffled by its own random permutation of the rows.

    Kim and Mnih 2018, algorithm 1: the rows of the result are samples of ``prod_j q(z_j)``, the
    product of the marginals, whereas the rows of ``z`` are samples of ``q(z)``.
    """
    m, d = check_shape("z", z, ("batch", "latents"))
    gen_device = generator.device if generator is not None else z.device
    perms = torch.stack([torch.randperm(m, generator=generator, device=gen_device) for _ in range(d)], dim=1)
    return torch.gather(z, 0, perms.to(z.device))


def density_ratio_tc(logits: Tensor) -> Tensor:
    """FactorVAE's estimate of ``TC(Z)`` in nats from the discriminator's logits on ``z ~ q(z)``.

    The discriminator outputs two logits per code, class 0 "drawn from ``q(z)``" and class 1 "drawn
    from ``prod_j q(z_j)``"; with ``D(z)`` the probability of class 0,
    ``TC(Z) = KL(q(z) || prod_j q(z_j)) ~= E_q[log D(z) / (1 - D(z))] = E_q[logit_0 - logit_1]``
    (Kim and Mnih 2018, eq. 3, the density-ratio trick).
    """
    check_shape("logits", logits, ("batch", 2))
    logits = logits.float()
    return (logits[:, 0] - logits[:, 1]).mean()


def discriminator_loss(logits_joint: Tensor, logits_permuted: Tensor) -> Tensor:
    """The discriminator's cross-entropy in nats: class 0 for codes of ``q(z)``, class 1 for codes
    of ``prod_j q(z_j)`` (:func:`permute_dims`), each set's mean weighted one half (Kim and Mnih
    2018, algorithm 2)."""
    zeros = torch.zeros(logits_joint.shape[0], dtype=torch.long, device=logits_joint.device)
    ones = torch.ones(logits_permuted.shape[0], dtype=torch.long, device=logits_permuted.device)
    return 0.5 * (F.cross_entropy(logits_joint.float(), zeros) + F.cross_entropy(logits_permuted.float(), ones))
