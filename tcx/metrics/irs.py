"""Interventional Robustness Score (IRS).

Suter, Miladinovic, Schoelkopf, Bauer, "Robustly Disentangled Causal Mechanisms: Validating Deep
Representations for Interventional Robustness", ICML 2019, Section 4 (the estimator of their
Algorithm 1 for data with independent factors); as disentanglement_lib
(``evaluation/metrics/irs.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import as_codes, as_factors, check_same_n
from .mutual_info import _check_num_bins, _discretize
from tcx.validation import check_real

__all__ = ["irs"]


def irs(codes: Any, factors: Any, diff_quantile: float = 0.99, num_bins: int = 20
        ) -> dict[str, float]:
    """Interventional robustness score in [0, 1] (dimensionless, higher is more robust).

    The factors are first discretised into ``num_bins`` equal-width bins (disentanglement_lib
    discretises them with its histogram discretiser; a factor with at most ``num_bins`` values
    keeps its values). Codes with zero variance are dropped. For each factor ``k`` and each of
    its values ``g``, ``dev(d, k, g)`` is the ``diff_quantile`` quantile of
    ``|z_d - E[z_d | v_k = g]|`` over the samples with ``v_k = g`` (the paper's maximum, made
    robust by the quantile; ``diff_quantile=1`` is the paper's version); ``dev(d, k)`` averages it
    over the values. With ``max_dev(d) = max |z_d - E[z_d]|``, the score matrix is
    ``1 - dev(d, k) / max_dev(d)``, each code's score is its maximum over factors, and
    ``irs`` is the average of the codes' scores weighted by ``max_dev(d)``.

    Returns ``{"irs": ..., "num_active_dims": ...}`` (the number of codes kept, as a float);
    ``irs`` is 0 when no code varies, as in disentanglement_lib.
    """
    diff_quantile = check_real("diff_quantile", diff_quantile, 0, 1)
    num_bins = _check_num_bins(num_bins)
    z = as_codes(codes, "codes")
    v = as_factors(factors, "factors")
    check_same_n(z, v)
    z = z.astype(np.float64)
    active = z.var(axis=0) > 0.0
    if not active.any():
        return {"irs": 0.0, "num_active_dims": 0.0}
    z = z[:, active]
    v = _discretize(v.astype(np.float64), num_bins)

    max_dev = np.max(np.abs(z - z.mean(axis=0)), axis=0)  # [D]
    cum_dev = np.zeros((z.shape[1], v.shape[1]))
    for k in range(v.shape[1]):
        values = np.unique(v[:, k])
        for g in values:
            group = z[v[:, k] == g]
            diffs = np.abs(group - group.mean(axis=0))
            cum_dev[:, k] += np.quantile(diffs, diff_quantile, axis=0)
        cum_dev[:, k] /= len(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (1.0 - cum_dev / max_dev[:, None]).max(axis=1)
    if max_dev.sum() > 0:
        avg = float(np.average(scores, weights=max_dev))
    else:  # pragma: no cover - active codes have positive deviation
        avg = float(np.mean(scores))
    return {"irs": avg, "num_active_dims": float(active.sum())}
