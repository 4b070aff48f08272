"""Sample quality in a classifier's feature space: a Frechet distance, class entropy, confidence.

The Frechet distance between two sets of feature vectors, each summarised by its mean and
covariance, is ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` (Dowson and Landau 1982),
the formula behind the FID (Heusel et al. 2017), here in the features of a classifier tcx itself
trains (``tcx.metrics.classifier``): an **FID-like score, not the Inception FID**, comparable only
between models measured with the same classifier. It is biased upwards at small sample sizes.

The class entropy ``H(mean_n p(y|x_n))`` (nats) says how evenly generated images cover the
classes; the mean confidence ``mean_n max_y p(y|x_n)`` how sure the classifier is of each sample.

Details: docs/metrics.md#sample-quality-interpretability-and-likelihood
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from tcx.errors import TcxError
from tcx.validation import check_tensor

__all__ = ["frechet_distance", "frechet_distance_gaussians", "feature_moments", "class_entropy", "mean_confidence"]


def _as_float64(name: str, value: Any, ndim: int) -> Tensor:
    t = check_tensor(name, torch.as_tensor(value), ndim=ndim)
    if not torch.is_floating_point(t):
        t = t.double()
    t = t.detach().double().cpu()
    if not bool(torch.isfinite(t).all()):
        raise TcxError(f"{name} has non-finite values")
    return t


def feature_moments(features: Any) -> tuple[Tensor, Tensor]:
    """``(mean [F], covariance [F, F])`` of ``features [N, F]`` (float64; the unbiased covariance,
    divisor ``N - 1``, as numpy's ``np.cov`` that the FID reference code uses). Needs ``N >= 2``."""
    f = _as_float64("features", features, 2)
    if f.shape[0] < 2:
        raise TcxError(f"features needs at least 2 rows to estimate a covariance, got {f.shape[0]}")
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def _psd_sqrt(s: Tensor) -> Tensor:
    vals, vecs = torch.linalg.eigh((s + s.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance_gaussians(mu_a: Any, cov_a: Any, mu_b: Any, cov_b: Any) -> float:
    """``||mu_a - mu_b||^2 + Tr(cov_a + cov_b - 2 (cov_a cov_b)^{1/2})``: the squared 2-Wasserstein
    (Frechet) distance between ``N(mu_a, cov_a)`` and ``N(mu_b, cov_b)``, in squared feature units.

    ``Tr((cov_a cov_b)^{1/2})`` is computed as ``Tr((A^{1/2} cov_b A^{1/2})^{1/2})`` with
    ``A^{1/2}`` the symmetric square root of ``cov_a`` (both by eigendecomposition, float64): the
    same number as scipy's ``sqrtm`` in the FID code, without its complex round-off. Tiny negative
    eigenvalues from round-off are set to 0.
    """
    mu_a, mu_b = _as_float64("mu_a", mu_a, 1), _as_float64("mu_b", mu_b, 1)
    cov_a, cov_b = _as_float64("cov_a", cov_a, 2), _as_float64("cov_b", cov_b, 2)
    f = mu_a.shape[0]
    for name, t in (("mu_b", mu_b), ("cov_a", cov_a), ("cov_b", cov_b)):
        if t.shape[0] != f or (t.dim() == 2 and t.shape != (f, f)):
            raise TcxError(f"{name} has shape {tuple(t.shape)}, expected ({f},) or ({f}, {f}) like mu_a")
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    tr_cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    d = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * tr_cross
    return float(d.clamp_min(0))


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets ``[N_a, F]`` and
    ``[N_b, F]`` (``feature_moments`` then ``frechet_distance_gaussians``); see the module
    docstring for what it means with tcx's classifier features and its small-sample bias."""
    return frechet_distance_gaussians(*feature_moments(features_a), *feature_moments(features_b))


def _check_probs(probs: Any) -> Tensor:
    p = _as_float64("probs", probs, 2)
    if bool((p < -1e-6).any()) or not torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-4):
        raise TcxError("probs must be rows of class probabilities (non-negative, summing to 1); apply softmax to logits")
    if p.shape[0] == 0:
        raise TcxError("probs has no rows")
    return p.clamp_min(0)


def class_entropy(probs: Any) -> float:
    """``H(p_bar) = -sum_c p_bar_c log p_bar_c`` in nats, ``p_bar = mean_n probs[n]``: the entropy
    of the classifier's average prediction over ``probs [N, C]`` (rows of class probabilities).
    ``log C`` when the samples cover the classes evenly, 0 when all are one class."""
    p_bar = _check_probs(probs).mean(0)
    return float(-(torch.xlogy(p_bar, p_bar)).sum())


def mean_confidence(probs: Any) -> float:
    """``mean_n max_c probs[n, c]``, in [1/C, 1]: how sure the classifier is of each image."""
    return float(_check_probs(probs).max(1).values.mean())
