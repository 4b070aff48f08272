"""Modularity and explicitness.

Ridgeway and Mozer, "Learning Deep Disentangled Embeddings With the F-Statistic Loss",
NeurIPS 2018, Section 3; as disentanglement_lib
(``evaluation/metrics/modularity_explicitness.py``, Locatello et al. 2019).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ._validate import as_codes, as_factors, check_same_n, check_test_set
from .mutual_info import _check_num_bins, _discrete_mi, _discretize

__all__ = ["modularity_explicitness", "modularity_from_mi"]


def modularity_from_mi(mi: Any) -> float:
    """Modularity of a ``[D, K]`` mutual information matrix ``m`` (nats), in [0, 1].

    Per code ``d`` with ``theta_d = max_k m[d, k]``: ``1 - sum_{k != argmax} m[d, k]^2 /
    (theta_d^2 (K - 1))``, i.e. one minus the squared deviation from the ideal template (all of
    the code's information about one factor), normalised; a code with no information scores 0;
    averaged over codes. Deviation from disentanglement_lib: with a single factor (K = 1) a code
    with information scores 1 (disentanglement_lib divides 0 by 0).
    """
    m = np.asarray(mi.detach().cpu() if hasattr(mi, "detach") else mi, dtype=np.float64)
    sq = m**2
    top = sq.max(axis=1)
    k = m.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (k - 1)) if k > 1 else np.zeros(len(top))
    score = 1.0 - delta
    score[top == 0.0] = 0.0
    return float(np.mean(score))


def _fit_binary_logistic(x: np.ndarray, positive: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="liblinear").fit(x, positive)


def _explicitness(zt, vt, ze, ve, n_jobs: int | None = None) -> tuple[float, float]:
    """Per factor, one-vs-rest liblinear logistic regressions (what ``OneVsRestClassifier(
    LogisticRegression(solver="liblinear"))`` fits: one binary model per class, probabilities
    normalised over the classes; a single model for a binary factor), scored by ROC AUC. The
    binary models of all factors are fitted in threads (liblinear releases the GIL)."""
    from sklearn.metrics import roc_auc_score

    mean = zt.mean(axis=0, dtype=np.float64)
    std = zt.std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    xt = (zt - mean) / std
    xe = (ze - mean) / std
    classes = [np.unique(vt[:, j]) for j in range(vt.shape[1])]
    jobs = []  # (factor, class index): the binary problem "class vs rest"
    for j, cls in enumerate(classes):
        jobs += [(j, 1)] if len(cls) == 2 else [(j, i) for i in range(len(cls))]
    if n_jobs is None:
        n_jobs = torch.get_num_threads()

    def fit(job):
        j, i = job
        return _fit_binary_logistic(xt, vt[:, j] == classes[j][i])

    if n_jobs > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            models = dict(zip(jobs, pool.map(fit, jobs)))
    else:
        models = {job: fit(job) for job in jobs}

    train, test = [], []
    for j, cls in enumerate(classes):
        for x, v, out in ((xt, vt[:, j], train), (xe, ve[:, j], test)):
            if len(cls) == 2:
                p1 = models[(j, 1)].predict_proba(x)[:, 1]
                proba = np.stack([1.0 - p1, p1], axis=1)
            else:
                proba = np.stack([models[(j, i)].predict_proba(x)[:, 1]
                                  for i in range(len(cls))], axis=1)
                proba /= proba.sum(axis=1, keepdims=True)
            aucs = [
                roc_auc_score(v == c, proba[:, i])
                for i, c in enumerate(cls)
                if 0 < np.sum(v == c) < len(v)
            ]
            out.append(np.mean(aucs) if aucs else np.nan)
    return float(np.mean(train)), float(np.mean(test))


def modularity_explicitness(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    num_bins: int = 20,
) -> dict[str, float]:
    """Modularity and explicitness (Ridgeway and Mozer 2018), each in [0, 1].

    ``modularity``: :func:`modularity_from_mi` of the training set's discretised mutual
    information (:func:`tcx.metrics.mutual_info_matrix`, ``num_bins`` equal-width bins).
    ``explicitness_train`` / ``explicitness_test``: per factor, a one-vs-rest logistic regression
    of the factor from all codes (standardised with the training mean and std), scored by the
    ROC AUC of each class against the rest, averaged over classes and then factors. The
    classifier is disentanglement_lib's ``LogisticRegression()`` with the defaults of the
    scikit-learn it ran on (0.20: liblinear, one-vs-rest, ``C=1``); newer scikit-learn defaults
    to a multinomial model, so tcx asks for the liblinear one-vs-rest model explicitly.

    Deviations from disentanglement_lib, both where it fails: a class absent from an evaluation
    set is left out of that set's average (its AUC is undefined; disentanglement_lib raises), and
    a constant code is standardised by 1 instead of 0 (disentanglement_lib divides by zero).
    """
    num_bins = _check_num_bins(num_bins)
    zt = as_codes(codes_train, "codes_train")
    vt = as_factors(factors_train, "factors_train")
    check_same_n(zt, vt, "codes_train", "factors_train")
    ze = as_codes(codes_test, "codes_test")
    ve = as_factors(factors_test, "factors_test", require_varying=False)
    check_same_n(ze, ve, "codes_test", "factors_test")
    check_test_set(zt, vt, ze, ve)
    mi = _discrete_mi(_discretize(zt, num_bins), vt)
    train, test = _explicitness(zt, vt, ze, ve)
    return {
        "modularity": modularity_from_mi(mi),
        "explicitness_train": train,
        "explicitness_test": test,
    }
