"""Separated Attribute Predictability (SAP).

Kumar, Sattigeri, Balakrishnan, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations", ICLR 2018, Section 3; as disentanglement_lib
(``evaluation/metrics/sap_score.py``, Locatello et al. 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._svm import svm_1d_accuracy
from ._validate import as_codes, as_factors, check_same_n, check_test_set

__all__ = ["sap", "sap_score_matrix"]


def sap_score_matrix(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    continuous_factors: bool = False,
) -> Tensor:
    """``[D, K]`` matrix of how well each single code predicts each factor (float64 tensor).

    Discrete factors (default): the test accuracy of a linear SVM trained on the one code, the
    classifier of disentanglement_lib (``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")``:
    squared hinge loss, L2 penalty on weight and intercept, one-vs-rest). tcx solves the same
    convex problem exactly, all classes at once with prefix sums over the sorted code, instead of
    calling liblinear per pair (faster; scikit-learn's solution differs only by liblinear's
    stopping tolerance, which can move a test point lying on a decision boundary).

    Continuous factors: the squared correlation (R^2 of a linear fit) of code and factor on the
    training set, 0 for a code with variance below 1e-12; the test set is not used then (as in
    disentanglement_lib).
    """
    zt = as_codes(codes_train, "codes_train")
    vt = as_factors(factors_train, "factors_train", discrete=not continuous_factors)
    check_same_n(zt, vt, "codes_train", "factors_train")
    ze = as_codes(codes_test, "codes_test")
    ve = as_factors(factors_test, "factors_test", discrete=not continuous_factors,
                    require_varying=False)
    check_same_n(ze, ve, "codes_test", "factors_test")
    check_test_set(zt, vt, ze, ve)
    return torch.from_numpy(_score_matrix(zt, vt, ze, ve, continuous_factors))


def _score_matrix(zt, vt, ze, ve, continuous: bool) -> np.ndarray:
    d, k = zt.shape[1], vt.shape[1]
    if continuous:
        z = zt.astype(np.float64)
        zc = z - z.mean(axis=0)
        vc = vt - vt.mean(axis=0)
        n = z.shape[0]
        cov = zc.T @ vc / (n - 1)  # [D, K]
        var_z = np.sum(zc * zc, axis=0) / (n - 1)
        var_v = np.sum(vc * vc, axis=0) / (n - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = cov**2 / (var_z[:, None] * var_v[None, :])
        return np.where(var_z[:, None] > 1e-12, score, 0.0)

    score = np.zeros((d, k))
    for i in range(d):
        for j in range(k):
            score[i, j] = svm_1d_accuracy(zt[:, i], vt[:, j], ze[:, i], ve[:, j], C=0.01)
    return score


def sap(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    continuous_factors: bool = False,
) -> float:
    """SAP score in [0, 1] (dimensionless): per factor, the gap between the best and the
    second-best single-code predictability of :func:`sap_score_matrix`, averaged over factors.

    ``codes_*``: float ``[N, D]`` with ``D >= 2``; ``factors_*``: ``[N, K]`` (integer unless
    ``continuous_factors``), every training factor taking at least two values. High when each
    factor is predictable from one code only. With discrete factors the scores are
    accuracies, so a factor's gap is at most one minus the accuracy of a useless code (about
    0.5 for a balanced binary factor).
    """
    zt = as_codes(codes_train, "codes_train", min_dims=2)
    m = sap_score_matrix(zt, factors_train, codes_test, factors_test, continuous_factors).numpy()
    top = np.sort(m, axis=0)
    return float(np.mean(top[-1] - top[-2]))
