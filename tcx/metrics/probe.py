"""Linear probes: how well a label or factor can be read, linearly, from chosen latents.

A probe (Alain and Bengio 2016, "Understanding intermediate layers using linear classifier
probes") is a multinomial logistic regression fitted on the codes of training data and scored by
its accuracy on held-out codes: the fraction of held-out items whose label the chosen latents
give away to a linear read-out. Here it measures the interpretability of a subset of latents (the
anchors by default, in ``tcx.callbacks.QualityMetrics``): the paper's claim that anchors "make
latent codes more interpretable" predicts that the anchors alone tell the main factor (for MNIST,
the digit) better than as many other latents do.

Codes are standardised with the training codes' mean and standard deviation, then scikit-learn's
``LogisticRegression`` (L2, ``C``, lbfgs) is fitted. Chance level is the frequency of the most
common held-out label; the accuracy is biased downwards when the training set is small.
``knn_probe`` is the nonlinear read-out beside it: the majority label of the ``k`` nearest
standardised training codes (Euclidean), which also reads labels a line cannot separate.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from tcx.errors import TcxError
from tcx.metrics._validate import as_codes
from tcx.validation import check_int

__all__ = ["knn_probe", "linear_probe", "standardized_codes"]


def _codes(name: str, value: Any) -> np.ndarray:
    return as_codes(value, name).astype(np.float64, copy=False)


def _labels(name: str, value: Any, n: int) -> np.ndarray:
    a = np.asarray(value.detach().cpu().numpy() if isinstance(value, Tensor) else value)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n:
        raise TcxError(f"{name} must be [N] or [N, K] with N={n} rows, got shape {a.shape}")
    if a.dtype.kind not in "iub":
        raise TcxError(f"{name} must hold integer labels, got dtype {a.dtype}")
    return a.astype(np.int64)


def linear_probe(
    train_codes: Any,
    train_labels: Any,
    test_codes: Any,
    test_labels: Any,
    latents: Sequence[int] | None = None,
    C: float = 1.0,
    max_iter: int = 500,
) -> Tensor:
    """Held-out accuracy ``[K]`` (float64, in [0, 1]) of a linear probe per label column.

    ``train_codes [N, D]``, ``test_codes [M, D]``: codes (e.g. posterior means); ``train_labels``
    and ``test_labels``: ``[N]`` / ``[M]`` class labels or ``[N, K]`` / ``[M, K]`` factor indices.
    ``latents``: the latent indices the probe may read (None: all). A column that is constant in
    the training labels is predicted as that constant.
    """
    from sklearn.linear_model import LogisticRegression

    xtr, ytr, xte, yte = standardized_codes(train_codes, train_labels, test_codes, test_labels, latents)
    out = np.empty(ytr.shape[1])
    for k in range(ytr.shape[1]):
        classes = np.unique(ytr[:, k])
        if classes.size < 2:
            out[k] = float((yte[:, k] == classes[0]).mean())
            continue
        clf = LogisticRegression(C=C, max_iter=max_iter)
        clf.fit(xtr, ytr[:, k])
        out[k] = float((clf.predict(xte) == yte[:, k]).mean())
    return torch.from_numpy(out)


def knn_probe(
    train_codes: Any,
    train_labels: Any,
    test_codes: Any,
    test_labels: Any,
    latents: Sequence[int] | None = None,
    k: int = 25,
) -> Tensor:
    """Held-out accuracy ``[K]`` (float64) of the ``k``-nearest-neighbour read-out per label
    column; arguments as ``linear_probe``."""
    from sklearn.neighbors import KNeighborsClassifier

    k = check_int("k", k, 1)
    xtr, ytr, xte, yte = standardized_codes(train_codes, train_labels, test_codes, test_labels, latents)
    out = np.empty(ytr.shape[1])
    for c in range(ytr.shape[1]):
        clf = KNeighborsClassifier(n_neighbors=min(int(k), xtr.shape[0])).fit(xtr, ytr[:, c])
        out[c] = float((clf.predict(xte) == yte[:, c]).mean())
    return torch.from_numpy(out)


def standardized_codes(
    train_codes: Any, train_labels: Any, test_codes: Any, test_labels: Any, latents: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked float64 codes restricted to ``latents`` and standardised by the training codes'
    mean and standard deviation, with int64 labels ``[N, K]``: ``(xtr, ytr, xte, yte)``."""
    xtr, xte = _codes("train_codes", train_codes), _codes("test_codes", test_codes)
    if xtr.shape[1] != xte.shape[1]:
        raise TcxError(f"train_codes has {xtr.shape[1]} latents, test_codes {xte.shape[1]}")
    ytr, yte = _labels("train_labels", train_labels, xtr.shape[0]), _labels("test_labels", test_labels, xte.shape[0])
    if ytr.shape[1] != yte.shape[1]:
        raise TcxError(f"train_labels has {ytr.shape[1]} columns, test_labels {yte.shape[1]}")
    if latents is not None:
        latents = [int(j) for j in latents]
        bad = [j for j in latents if not 0 <= j < xtr.shape[1]]
        if not latents or bad:
            raise TcxError(f"latents={latents}: give at least one index in 0 .. {xtr.shape[1] - 1}")
        xtr, xte = xtr[:, latents], xte[:, latents]
    mu, sd = xtr.mean(0), xtr.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return (xtr - mu) / sd, ytr, (xte - mu) / sd, yte
