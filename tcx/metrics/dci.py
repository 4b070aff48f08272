"""Disentanglement, Completeness and Informativeness (DCI).

Eastwood and Williams, "A Framework for the Quantitative Evaluation of Disentangled
Representations", ICLR 2018, Section 2; with gradient-boosted-tree importances as in
disentanglement_lib (``evaluation/metrics/dci.py``, Locatello et al. 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._validate import as_codes, as_factors, check_same_n, check_test_set
from tcx.errors import TcxError
from tcx.validation import check_choice

__all__ = ["dci", "gbt_importance_matrix", "dci_from_importance"]

BOOSTERS = ("tcx", "sklearn")


def _inputs(codes_train, factors_train, codes_test, factors_test):
    zt = as_codes(codes_train, "codes_train", min_dims=2)
    vt = as_factors(factors_train, "factors_train")
    check_same_n(zt, vt, "codes_train", "factors_train")
    ze = as_codes(codes_test, "codes_test", min_dims=2)
    ve = as_factors(factors_test, "factors_test", require_varying=False)
    check_same_n(ze, ve, "codes_test", "factors_test")
    check_test_set(zt, vt, ze, ve)
    return zt, vt, ze, ve


def gbt_importance_matrix(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    booster: str = "tcx",
    seed: int = 0,
    n_jobs: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per factor, a gradient-boosted classifier of the factor from all codes.

    Returns ``(importance [D, K], accuracy_train [K], accuracy_test [K])`` (float64 tensors):
    ``importance[:, k]`` is the classifier's impurity-decrease feature importance (it sums to 1,
    or is all 0 when no tree split), the accuracies are the fraction of correctly predicted
    factor values.

    ``booster="tcx"`` (default) is tcx's compiled re-implementation of scikit-learn's
    ``GradientBoostingClassifier()`` with its default settings, the classifier
    disentanglement_lib trains per factor: the same loss, initialisation, 100 stages, learning
    rate 0.1, depth-3 trees with exact greedy Friedman-MSE splits on float32 codes, Newton leaf
    values and impurity-decrease importances, with the trees of all classes of all factors grown
    together (``tcx/metrics/_boosting.py``); it matches scikit-learn up to ties and rounding and
    is tens of times faster (``benchmarks/results/metrics_speed.md`` records both).
    ``booster="sklearn"`` runs scikit-learn's classifier itself, one per factor, as
    disentanglement_lib does (minutes for 10,000 samples and factors with 30-40 values).
    ``seed``: scikit-learn breaks exact ties between features at random; tcx draws its
    tie-breaking from ``seed`` (and passes ``random_state=seed`` to the scikit-learn booster).
    ``n_jobs``: threads for the tcx booster (default ``torch.get_num_threads()``); the result
    does not depend on it.
    """
    check_choice("booster", booster, BOOSTERS)
    zt, vt, ze, ve = _inputs(codes_train, factors_train, codes_test, factors_test)
    if booster == "tcx":
        try:  # numba compiles the booster; imported here so that tcx.metrics works without it
            from ._boosting import fit_boosted_trees
        except ImportError as exc:  # pragma: no cover - numba is a dependency of tcx
            raise ImportError(
                f"dci(booster='tcx') needs numba ({exc}); install it (pip install numba) or pass "
                f"booster='sklearn' (much slower)."
            ) from exc
        res = fit_boosted_trees(zt, vt, ze, ve, seed=seed, n_jobs=n_jobs)
        imp, acc_train, acc_test = res.importances, res.accuracy_train, res.accuracy_test
    else:
        from sklearn.ensemble import GradientBoostingClassifier

        imp = np.zeros((zt.shape[1], vt.shape[1]))
        acc_train = np.zeros(vt.shape[1])
        acc_test = np.zeros(vt.shape[1])
        for k in range(vt.shape[1]):
            model = GradientBoostingClassifier(random_state=seed)
            model.fit(zt, vt[:, k])
            imp[:, k] = np.abs(model.feature_importances_)
            acc_train[k] = np.mean(model.predict(zt) == vt[:, k])
            acc_test[k] = np.mean(model.predict(ze) == ve[:, k])
    return torch.from_numpy(imp), torch.from_numpy(acc_train), torch.from_numpy(acc_test)


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy (base ``base``) of each row of ``p``, normalised to sum 1 as ``scipy.stats.entropy``
    does."""
    p = p / p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
    return h / np.log(base)


def dci_from_importance(importance: Any) -> dict[str, float]:
    """Disentanglement and completeness of an importance matrix ``R`` ``[D, K]`` (non-negative).

    Eastwood and Williams 2018, Section 2, as disentanglement_lib:
    ``disentanglement = sum_d rho_d (1 - H_K(P_d))`` with ``P_d = R[d, :] / sum_k R[d, k]``, the
    entropy ``H_K`` in base K and ``rho_d = sum_k R[d, k] / sum R``;
    ``completeness = sum_k rho_k (1 - H_D(P_k))`` over the columns, base D. ``1e-11`` is added
    to ``R`` inside the entropies and an all-zero ``R`` gets uniform weights, as in
    disentanglement_lib. Deviation: with a single factor (K = 1) every code is trivially
    disentangled and the per-code term is 1 (disentanglement_lib divides by ``log 1 = 0``).
    """
    r = np.asarray(importance.detach().cpu() if isinstance(importance, Tensor) else importance,
                   dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 1:
        raise TcxError(f"importance must be a [D, K] matrix with D >= 2, got shape {r.shape}.")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise TcxError("importance must be finite and non-negative.")
    d, k = r.shape
    if k == 1:
        per_code = np.ones(d)
    else:
        per_code = 1.0 - _entropy_rows(r + 1e-11, base=k)
    per_factor = 1.0 - _entropy_rows(r.T + 1e-11, base=d)
    weights = r if r.sum() > 0 else np.ones_like(r)
    code_importance = weights.sum(axis=1) / weights.sum()
    factor_importance = weights.sum(axis=0) / weights.sum()
    return {
        "disentanglement": float(np.sum(per_code * code_importance)),
        "completeness": float(np.sum(per_factor * factor_importance)),
    }


def dci(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    booster: str = "tcx",
    seed: int = 0,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """DCI scores (Eastwood and Williams 2018), each in [0, 1].

    Returns ``disentanglement`` (does each code capture at most one factor?), ``completeness``
    (is each factor captured by one code?) from the importance matrix of
    :func:`gbt_importance_matrix` (see :func:`dci_from_importance` for the formulas), and
    ``informativeness_train`` / ``informativeness_test``: the classifiers' accuracy averaged over
    factors (disentanglement_lib's "informativeness"; the paper's is a prediction error).

    ``codes_*``: float ``[N, D]`` with ``D >= 2``; ``factors_*``: integer ``[N, K]`` (or ``[N]``),
    every training factor taking at least two values. disentanglement_lib's defaults are
    10,000 training and 5,000 test samples. ``booster``: ``"tcx"`` (default, fast) or
    ``"sklearn"`` (scikit-learn's ``GradientBoostingClassifier``, what disentanglement_lib runs);
    see :func:`gbt_importance_matrix`.
    """
    imp, acc_train, acc_test = gbt_importance_matrix(
        codes_train, factors_train, codes_test, factors_test, booster=booster, seed=seed,
        n_jobs=n_jobs,
    )
    scores = dci_from_importance(imp)
    scores["informativeness_train"] = float(acc_train.mean())
    scores["informativeness_test"] = float(acc_test.mean())
    return scores
