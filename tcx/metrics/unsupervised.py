"""Unsupervised scores of a representation: correlation of its codes without ground truth.

As disentanglement_lib's ``evaluation/metrics/unsupervised_metrics.py`` (Locatello et al.,
"Challenging Common Assumptions in the Unsupervised Learning of Disentangled Representations",
ICML 2019, Section 5 / Appendix): the Gaussian total correlation and the Gaussian Wasserstein
correlation of the codes' covariance, and the mean pairwise discretised mutual information.
docs/metrics.md#unsupervised-scores; docs/math.md#gaussian-total-correlation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tcx.estimators import gaussian_total_correlation

from ._validate import as_codes
from .mutual_info import _check_num_bins, _discrete_mi, _discretize

__all__ = ["unsupervised", "gaussian_total_correlation", "gaussian_wasserstein_correlation"]

# re-exported: the one implementation is tcx.estimators.gaussian_total_correlation


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between ``N(0, S)`` and ``N(0, diag S)``, in squared code
    units: ``W^2 = 2 tr S - 2 tr( (V^(1/2) S V^(1/2))^(1/2) )`` with ``V = diag S``.

    disentanglement_lib writes ``2 tr S - 2 tr sqrtm(S * diag(S)[:, None])``, the square root of
    ``V S``; ``V S`` is similar to ``V^(1/2) S V^(1/2)``, so the two traces are equal. tcx takes
    the symmetric form through its eigenvalues, which is real and stable where ``sqrtm`` can
    return small imaginary parts.
    """
    sd = np.sqrt(np.diag(cov))
    m = cov * sd[:, None] * sd[None, :]
    eig = np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)
    return float(2.0 * np.trace(cov) - 2.0 * np.sum(np.sqrt(eig)))


def unsupervised(codes: Any, num_bins: int = 20) -> dict[str, float]:
    """Unsupervised scores of codes ``[N, D]`` (``D >= 2``); lower means less correlated codes.

    - ``gaussian_total_correlation`` (nats): :func:`tcx.estimators.gaussian_total_correlation`
      of the codes (their sample covariance ``S``, ``ddof=1``; ``inf`` when ``S`` is singular).
    - ``gaussian_wasserstein_correlation``: :func:`gaussian_wasserstein_correlation` of ``S``.
    - ``gaussian_wasserstein_correlation_norm``: that divided by ``tr S``, the sum of the
      codes' variances (dimensionless).
    - ``mutual_info_score`` (nats): the mean over ordered pairs of distinct codes of their
      discretised mutual information (:func:`tcx.metrics.mutual_info_matrix` with the codes as
      "factors", both in ``num_bins`` equal-width bins), ``sum_{i != j} I(z_i; z_j) / (D^2 - D)``.

    Deviation from disentanglement_lib: codes with zero variance are left out of the Gaussian
    scores (a constant is independent of everything, so the scores of the other codes are the
    limit; disentanglement_lib returns NaN). They stay in ``mutual_info_score``.
    """
    num_bins = _check_num_bins(num_bins)
    z = as_codes(codes, "codes", min_dims=2)
    d = z.shape[1]
    cov = np.cov(z.astype(np.float64), rowvar=False)
    keep = np.diag(cov) > 0
    cov_k = cov[np.ix_(keep, keep)]
    if keep.sum() == 0:
        tc = wc = wc_norm = 0.0
    else:
        tc = gaussian_total_correlation(z)
        wc = gaussian_wasserstein_correlation(cov_k)
        wc_norm = wc / float(np.trace(cov_k))
    zd = _discretize(z, num_bins)
    mi = _discrete_mi(zd, zd)
    np.fill_diagonal(mi, 0.0)
    return {
        "gaussian_total_correlation": tc,
        "gaussian_wasserstein_correlation": wc,
        "gaussian_wasserstein_correlation_norm": wc_norm,
        "mutual_info_score": float(mi.sum() / (d * d - d)),
    }
