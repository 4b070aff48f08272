"""torchmetrics classes for the sample-quality measures: state that accumulates over batches and
syncs across processes, ``compute`` calling the one function in ``tcx.metrics.sample_quality``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from .sample_quality import class_entropy, frechet_distance_gaussians, mean_confidence
from tcx.errors import TcxError
from tcx.validation import check_int

__all__ = ["FrechetFeatureDistance", "ClassDiversity"]


class FrechetFeatureDistance(Metric):
    """The Frechet distance between real and generated feature sets ``[B, F]`` fed batch by batch
    (``update(features, real=True|False)``): counts, sums and sums of outer products (float64) are
    summed across batches and processes, then ``frechet_distance_gaussians`` of the two fitted
    Gaussians (unbiased covariances). Features of tcx's own classifier: an FID-like score, not the
    Inception FID (``tcx.metrics.sample_quality``)."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, num_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_features = f = check_int("num_features", num_features, 1)
        for tag in ("real", "fake"):
            self.add_state(f"{tag}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{tag}_sum", torch.zeros(f, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{tag}_outer", torch.zeros(f, f, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, features: Tensor, real: bool) -> None:
        x = features.detach().double()
        if x.dim() != 2 or x.shape[1] != self.num_features:
            raise TcxError(f"features must be [B, {self.num_features}], got {tuple(x.shape)}")
        tag = "real" if real else "fake"
        setattr(self, f"{tag}_n", getattr(self, f"{tag}_n") + x.shape[0])
        setattr(self, f"{tag}_sum", getattr(self, f"{tag}_sum") + x.sum(0))
        setattr(self, f"{tag}_outer", getattr(self, f"{tag}_outer") + x.T @ x)

    def _moments(self, tag: str) -> tuple[Tensor, Tensor]:
        n = getattr(self, f"{tag}_n")
        if float(n) < 2:
            raise TcxError(f"FrechetFeatureDistance needs at least 2 {tag} feature vectors, got {int(n)}")
        mu = getattr(self, f"{tag}_sum") / n
        cov = (getattr(self, f"{tag}_outer") - n * torch.outer(mu, mu)) / (n - 1)
        return mu, cov

    def compute(self) -> Tensor:
        return torch.tensor(frechet_distance_gaussians(*self._moments("real"), *self._moments("fake")), dtype=torch.float64)


class ClassDiversity(Metric):
    """Class entropy (nats) and mean confidence of a classifier's probabilities ``[B, C]`` over
    all batches: ``compute() -> {"entropy", "confidence"}`` (``class_entropy`` of the summed mean
    prediction, ``mean_confidence``)."""

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.add_state("n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("prob_sum", torch.zeros(self.num_classes, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("max_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: Tensor) -> None:
        p = probs.detach().double()
        mean_confidence(p)  # validates the rows
        self.n = self.n + p.shape[0]
        self.prob_sum = self.prob_sum + p.sum(0)
        self.max_sum = self.max_sum + p.max(1).values.sum()

    def compute(self) -> dict[str, Tensor]:
        if float(self.n) < 1:
            raise TcxError("ClassDiversity: no probabilities were given")
        p_bar = (self.prob_sum / self.n)[None, :]
        return {"entropy": torch.tensor(class_entropy(p_bar), dtype=torch.float64), "confidence": self.max_sum / self.n}
