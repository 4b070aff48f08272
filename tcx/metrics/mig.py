"""Mutual Information Gap.

Chen, Li, Grosse, Duvenaud, "Isolating Sources of Disentanglement in Variational Autoencoders",
NeurIPS 2018, Section 5 (eq. 6); the discrete estimator of disentanglement_lib
(``evaluation/metrics/mig.py``, Locatello et al. 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import as_codes, as_factors, check_same_n
from .mutual_info import _check_num_bins, _discrete_mi, _discretize, _entropy

__all__ = ["mig"]


def mig(codes: Any, factors: Any, num_bins: int = 20) -> float:
    """Mutual information gap, in [0, 1] (dimensionless).

    ``MIG = 1/K sum_k ( I(z_(1); v_k) - I(z_(2); v_k) ) / H(v_k)``, where ``z_(1)`` and ``z_(2)``
    are the codes with the largest and second-largest mutual information with factor ``v_k``.
    Mutual information and entropy are the discrete plug-in estimates in nats of
    :func:`tcx.metrics.mutual_info_matrix` (codes in ``num_bins`` equal-width histogram bins, as
    disentanglement_lib's ``discrete_mig``; Chen et al. estimated ``I`` from the encoder's
    posterior instead).

    ``codes``: float ``[N, D]`` with ``D >= 2``; ``factors``: integer ``[N, K]`` (or a ``[N]``
    label), each factor taking at least two values. 1 when each factor is captured by exactly one
    code; 0 when the codes are independent of the factors or a factor's information is split
    evenly (a duplicated code).
    """
    num_bins = _check_num_bins(num_bins)
    z = as_codes(codes, "codes", min_dims=2)
    v = as_factors(factors, "factors")
    check_same_n(z, v)
    m = _discrete_mi(_discretize(z, num_bins), v)
    return float(_mig_from_mi(m, _entropy(v)))


def _mig_from_mi(m: np.ndarray, entropy: np.ndarray) -> float:
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropy))
