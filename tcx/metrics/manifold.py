"""Sample realism and diversity from nearest neighbours in a feature space, and class balance.

- ``precision_recall``: improved precision and recall (Kynkaanniemi et al. 2019). Each set's
  manifold is the union of balls around its points, of radius the distance to the k-th nearest
  neighbour in the same set. Precision: generated points inside the real manifold (realism).
  Recall: real points inside the generated manifold (diversity, "richness").
- ``density_coverage``: density and coverage (Naeem et al. 2020), from the real balls alone:
  density counts how many real balls hold each generated point (about 1 when both sets come
  from one distribution, (k + 1) / k for two identical sets); coverage is the share of real
  balls that hold at least one generated point.
- ``class_divergence``: KL(data's class frequencies || the samples' predicted class frequencies).

Details: docs/metrics.md#sample-quality-interpretability-and-likelihood
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tcx.errors import TcxError
from tcx.validation import check_int, check_tensor

__all__ = ["knn_radii", "precision_recall", "density_coverage", "class_divergence"]


def _features(name: str, value: Any) -> Tensor:
    t = check_tensor(name, torch.as_tensor(value), ndim=2, nonempty=True, hint="[N, F]").detach().double().cpu()
    if not bool(torch.isfinite(t).all()):
        raise TcxError(f"{name} has non-finite values")
    return t


def _distances(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(a, b)


# a radius is compared with distances computed in another order, which round differently in the
# last bits: a point on a ball's boundary (the k-th neighbour itself) must count as inside
_SLACK = 1 + 1e-9


def _chunked_min_compare(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """For each point: whether any ball ``(centre, radius)`` holds it, and how many do."""
    inside_any, counts = [], []
    for p in points.split(chunk):
        inside = _distances(p, centres) <= radii[None, :]
        inside_any.append(inside.any(1))
        counts.append(inside.sum(1))
    return torch.cat(inside_any), torch.cat(counts)


def knn_radii(points: Any, k: int, chunk: int = 1024) -> Tensor:
    """The distance of each point ``[N, F]`` to its ``k``-th nearest other point ``[N]``."""
    x = _features("points", points)
    check_int("k", k, 1)
    if x.shape[0] <= k:
        raise TcxError(f"k={k} needs more than {k} points, got {x.shape[0]}")
    # the point itself is its own nearest neighbour at distance 0: the (k + 1)-th smallest
    return _SLACK * torch.cat([_distances(c, x).topk(k + 1, dim=1, largest=False).values[:, k] for c in x.split(chunk)])


def precision_recall(real: Any, fake: Any, k: int = 3) -> dict[str, float]:
    """``{"precision", "recall"}`` in [0, 1] of generated features ``fake`` against ``real``."""
    r, f = _features("real", real), _features("fake", fake)
    if r.shape[1] != f.shape[1]:
        raise TcxError(f"real and fake features differ in width: {r.shape[1]} and {f.shape[1]}")
    precise, _ = _chunked_min_compare(f, r, knn_radii(r, k))
    recalled, _ = _chunked_min_compare(r, f, knn_radii(f, k))
    return {"precision": float(precise.double().mean()), "recall": float(recalled.double().mean())}


def density_coverage(real: Any, fake: Any, k: int = 5) -> dict[str, float]:
    """``{"density", "coverage"}`` of generated features ``fake`` against ``real`` (density >= 0,
    coverage in [0, 1])."""
    r, f = _features("real", real), _features("fake", fake)
    if r.shape[1] != f.shape[1]:
        raise TcxError(f"real and fake features differ in width: {r.shape[1]} and {f.shape[1]}")
    radii = knn_radii(r, k)
    _, counts = _chunked_min_compare(f, r, radii)
    # coverage: the nearest generated point of each real point inside that real point's ball
    nearest = torch.cat([_distances(c, f).min(1).values for c in r.split(1024)])
    return {"density": float(counts.double().sum() / (k * f.shape[0])),
            "coverage": float((nearest <= radii).double().mean())}


def class_divergence(predicted: Any, reference: Any, num_classes: int, smoothing: float = 0.5) -> float:
    """``KL(p_ref || p_gen)`` in nats between the class frequencies of ``reference`` labels (the
    data's) and of ``predicted`` labels (the classifier's argmax on samples); ``smoothing`` is
    added to every class count of the samples so that a missing class gives a finite value."""
    check_int("num_classes", num_classes, 2)
    counts = []
    for name, labels in (("predicted", predicted), ("reference", reference)):
        y = check_tensor(name, torch.as_tensor(labels), ndim=1, nonempty=True).long().cpu()
        if int(y.min()) < 0 or int(y.max()) >= num_classes:
            raise TcxError(f"{name} labels must lie in 0 .. {num_classes - 1}")
        counts.append(torch.bincount(y, minlength=num_classes).double())
    gen = (counts[0] + smoothing) / (counts[0].sum() + smoothing * num_classes)
    ref = counts[1] / counts[1].sum()
    seen = ref > 0
    return float((ref[seen] * (ref[seen] / gen[seen]).log()).sum())
