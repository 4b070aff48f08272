"""Discrete mutual information between each latent and the labels, on posterior means and samples.

``latent_label_information`` applies ``mutual_info_matrix`` (disentanglement_lib's histogram
estimate) to posterior *means* and to posterior *samples*. The MI on means can be large for a
collapsed latent; the MI on samples estimates ``I(Z_j; Y) <= I(Z_j; X)`` of the model's actual code,
so it is the one bounded by the latent's rate. Both are returned, to be shown side by side.

``subset_label_information`` measures a *set* of latents jointly, as a lower bound (Barber and
Agakov 2003): for any classifier ``q``, ``I(Z_S; Y) >= H(Y) - E[-log q(Y | Z_S)]``; here ``q`` is a
``k``-NN vote fitted on training codes with add-``alpha`` smoothing, scored on held-out codes, and
``H(Y)`` is the held-out label entropy.

Details (an example, the bias): docs/metrics.md#sample-quality-interpretability-and-likelihood
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from .mutual_info import mutual_info_matrix
from tcx.errors import TcxError
from tcx.validation import check_int, check_real, check_same_shape, check_shape

__all__ = ["latent_label_information", "subset_label_information"]


def latent_label_information(
    mean: Any,
    log_var: Any,
    labels: Any,
    num_bins: int = 20,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """``{"means": [D, K], "samples": [D, K]}``: the discrete MI in nats between each latent and
    each label column, on the posterior means ``mean [N, D]`` and on one posterior sample per row
    ``mean + exp(log_var / 2) * eps`` (``eps`` drawn with ``generator``). ``labels``: ``[N]`` or
    ``[N, K]`` integers."""
    mean = torch.as_tensor(mean).detach().double().cpu()
    log_var = torch.as_tensor(log_var).detach().double().cpu()
    check_shape("mean", mean, ("N", "D"))
    check_same_shape(("mean", mean), ("log_var", log_var))
    eps = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
    z = mean + torch.exp(0.5 * log_var) * eps
    return {
        "means": mutual_info_matrix(mean, labels, num_bins),
        "samples": mutual_info_matrix(z, labels, num_bins),
    }


def subset_label_information(
    train_codes: Any,
    train_labels: Any,
    test_codes: Any,
    test_labels: Any,
    latents: Sequence[int] | None = None,
    k: int = 50,
    alpha: float = 1.0,
) -> dict[str, float]:
    """The joint lower bound on ``I(Z_S; Y)`` in nats for one label column (see the module
    docstring): ``{"lower_bound", "label_entropy", "cross_entropy"}``; codes and labels as
    ``tcx.metrics.probe.linear_probe`` (``[N]`` labels)."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    from .probe import standardized_codes

    k = check_int("k", k, 1)
    alpha = check_real("alpha", alpha, 0, low_open=True)
    xtr, ytr, xte, yte = standardized_codes(train_codes, train_labels, test_codes, test_labels, latents)
    if ytr.shape[1] != 1:
        raise TcxError(f"subset_label_information takes one label column, got {ytr.shape[1]}")
    ytr, yte = ytr[:, 0], yte[:, 0]
    classes = np.unique(np.concatenate([ytr, yte]))
    index = {int(c): i for i, c in enumerate(classes)}
    kk = min(int(k), xtr.shape[0])
    _, nbr = NearestNeighbors(n_neighbors=kk).fit(xtr).kneighbors(xte)
    votes = np.zeros((xte.shape[0], classes.size))
    lab = np.array([index[int(c)] for c in ytr])[nbr]
    for i in range(classes.size):
        votes[:, i] = (lab == i).sum(1)
    q = (votes + float(alpha)) / (kk + float(alpha) * classes.size)
    target = np.array([index[int(c)] for c in yte])
    ce = float(-np.log(q[np.arange(target.size), target]).mean())
    freq = np.bincount(target, minlength=classes.size) / target.size
    h = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
    return {"lower_bound": h - ce, "label_entropy": h, "cross_entropy": ce}
