"""Discretised mutual information between codes and factors: the building block of MIG,
modularity and the unsupervised scores.

Definitions as in disentanglement_lib (``evaluation/metrics/utils.py``): each code is discretised
into ``num_bins`` equal-width bins over its sample range (``np.digitize(x, np.histogram(x,
num_bins)[1][:-1])``), and the mutual information is the plug-in (empirical) discrete mutual
information in nats, as ``sklearn.metrics.mutual_info_score`` computes it (clipped at 0). The
contingency tables of all (code, factor) pairs are counted at once with ``bincount`` instead of one
scikit-learn call per pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from tcx.validation import check_int

from ._validate import as_codes, as_factors, check_same_n

__all__ = ["histogram_discretize", "mutual_info_matrix", "discrete_entropy"]


def _check_num_bins(num_bins: int) -> int:
    return check_int("num_bins", num_bins, 2)


def histogram_discretize(codes: Any, num_bins: int = 20) -> Tensor:
    """Discretise each code (column) into ``num_bins`` equal-width bins over its sample range.

    Matches disentanglement_lib's ``_histogram_discretize``: the edges are ``np.histogram``'s
    (``linspace(min, max, num_bins + 1)`` in the codes' own dtype; a constant code gets the range
    ``[v - 0.5, v + 0.5]``) and the bin of ``x`` is ``np.digitize(x, edges[:-1]) - 1``, so the
    maximum falls in the last bin. Returns a long tensor ``[N, D]`` with values in
    ``0 .. num_bins - 1`` (disentanglement_lib's labels are these plus one; mutual information
    does not depend on labels).
    """
    num_bins = _check_num_bins(num_bins)
    arr = as_codes(codes, "codes")
    return torch.from_numpy(_discretize(arr, num_bins))


def _discretize(arr: np.ndarray, num_bins: int) -> np.ndarray:
    out = np.empty(arr.shape, dtype=np.int64)
    for j in range(arr.shape[1]):
        col = arr[:, j]
        edges = np.histogram_bin_edges(col, num_bins)
        out[:, j] = np.searchsorted(edges[:-1], col, side="right") - 1
    return out


def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column relabelled to ``0 .. n_j - 1``; returns the labels and the ``n_j``."""
    out = np.empty(labels.shape, dtype=np.int64)
    sizes = np.empty(labels.shape[1], dtype=np.int64)
    for j in range(labels.shape[1]):
        uniq, inv = np.unique(labels[:, j], return_inverse=True)
        out[:, j] = inv.reshape(-1)
        sizes[j] = len(uniq)
    return out, sizes


def _discrete_mi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[A, B]`` matrix of plug-in mutual information (nats) between the integer columns of
    ``a [N, A]`` and ``b [N, B]``, as ``sklearn.metrics.mutual_info_score`` computes it."""
    n = a.shape[0]
    a, a_sizes = _encode(a)
    b, b_sizes = _encode(b)
    out = np.zeros((a.shape[1], b.shape[1]))
    log_n = np.log(n)
    for j in range(b.shape[1]):
        nb = int(b_sizes[j])
        col_b = b[:, j]
        # One bincount for the tables of every column of `a` against column j of `b`.
        offsets = np.concatenate([[0], np.cumsum(a_sizes[:-1] * nb)])
        idx = (offsets[None, :] + a * nb + col_b[:, None]).ravel()
        counts = np.bincount(idx, minlength=int(np.sum(a_sizes) * nb)).astype(np.float64)
        count_b = np.bincount(col_b, minlength=nb).astype(np.float64)
        for i in range(a.shape[1]):
            table = counts[offsets[i]: offsets[i] + a_sizes[i] * nb].reshape(a_sizes[i], nb)
            count_a = table.sum(axis=1)
            nz_a, nz_b = np.nonzero(table)
            c = table[nz_a, nz_b]
            terms = (c / n) * (np.log(c) + log_n - np.log(count_a[nz_a]) - np.log(count_b[nz_b]))
            terms = np.where(np.abs(terms) < np.finfo(np.float64).eps, 0.0, terms)
            out[i, j] = max(float(terms.sum()), 0.0)
    return out


def mutual_info_matrix(codes: Any, factors: Any, num_bins: int = 20) -> Tensor:
    """``[D, K]`` matrix of the discrete mutual information ``I(z_d; v_k)`` in nats between each
    code, discretised by :func:`histogram_discretize` into ``num_bins`` equal-width bins, and each
    factor.

    ``codes``: float ``[N, D]``; ``factors``: integer ``[N, K]`` (or a ``[N]`` label). The
    plug-in estimate ``sum_{a,b} p(a,b) log(p(a,b) / (p(a) p(b)))`` over the empirical joint
    distribution, clipped at 0, as disentanglement_lib's ``discrete_mutual_info`` (via
    ``sklearn.metrics.mutual_info_score``). It is biased upwards by roughly
    ``(bins_a - 1)(bins_b - 1) / (2N)`` nats, so independent variables score slightly above 0.
    Returns a float64 tensor.
    """
    num_bins = _check_num_bins(num_bins)
    z = as_codes(codes, "codes")
    v = as_factors(factors, "factors", require_varying=False)
    check_same_n(z, v)
    return torch.from_numpy(_discrete_mi(_discretize(z, num_bins), v))


def discrete_entropy(factors: Any) -> Tensor:
    """``[K]`` plug-in entropy ``H(v_k) = -sum_a p(a) log p(a)`` of each factor, in nats
    (disentanglement_lib's ``discrete_entropy``, i.e. ``mutual_info_score(v_k, v_k)``)."""
    v = as_factors(factors, "factors", require_varying=False)
    return torch.from_numpy(_entropy(v))


def _entropy(v: np.ndarray) -> np.ndarray:
    out = np.empty(v.shape[1])
    for j in range(v.shape[1]):
        _, counts = np.unique(v[:, j], return_counts=True)
        p = counts / counts.sum()
        out[j] = float(-(p * np.log(p)).sum())
    return out
