"""torchmetrics ``Metric`` classes that gather codes and factors over batches (and across
processes under DDP) and score them with the functions of :mod:`tcx.metrics`.

The functions are the single implementation; these classes only accumulate. Each keeps two list
states, ``codes`` and ``factors``, reduced by concatenation, so that after the sync every process
holds all samples in rank order and computes the same value. ``compute`` returns a float64 scalar
tensor, or a dict of them for metrics with several scores (log those with ``log_dict``).

Metrics that need a train and a test set (DCI, SAP, modularity/explicitness) split the gathered
samples by a seeded random permutation: ``train_fraction`` of them to train on, the rest to test,
by default 2/3 (disentanglement_lib's 10,000 training and 5,000 test points).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from .dci import dci
from .mig import mig
from .modularity import modularity_explicitness
from .irs import irs
from .sap import sap
from .unsupervised import unsupervised
from tcx.errors import TcxError
from tcx.validation import check_real

__all__ = [
    "DisentanglementMetric",
    "MIG",
    "DCI",
    "SAP",
    "ModularityExplicitness",
    "IRS",
    "Unsupervised",
]


def _scalar(value: float) -> Tensor:
    return torch.tensor(value, dtype=torch.float64)


def _dict(values: dict[str, float]) -> dict[str, Tensor]:
    return {k: _scalar(v) for k, v in values.items()}


class DisentanglementMetric(Metric):
    """Base class: ``update(codes [B, D], factors [B, K] or [B])`` appends a batch; subclasses
    implement ``compute`` with a :mod:`tcx.metrics` function on all gathered samples."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("codes", default=[], dist_reduce_fx="cat")
        self.add_state("factors", default=[], dist_reduce_fx="cat")

    def forward(self, codes: Tensor, factors: Tensor | None = None) -> None:
        """Calling the metric on a batch only accumulates it: these scores need all samples, a
        per-batch value would be meaningless (and, for DCI, slow)."""
        self.update(codes, factors)

    def update(self, codes: Tensor, factors: Tensor | None = None) -> None:
        codes = torch.as_tensor(codes)
        if codes.ndim != 2:
            raise TcxError(
                f"codes must be a 2-D tensor [B, D], got shape {tuple(codes.shape)}."
            )
        if factors is None:
            factors = torch.zeros(codes.shape[0], 0, dtype=torch.long, device=codes.device)
        factors = torch.as_tensor(factors)
        if factors.ndim == 1:
            factors = factors[:, None]
        if factors.ndim != 2:
            raise TcxError(
                f"factors must be a 2-D tensor [B, K] (or a [B] label), got shape "
                f"{tuple(factors.shape)}."
            )
        if factors.shape[0] != codes.shape[0]:
            raise TcxError(
                f"codes and factors must have the same batch size, got codes of shape "
                f"{tuple(codes.shape)} and factors of shape {tuple(factors.shape)}."
            )
        if len(self.codes) > 0 and (codes.shape[1] != self.codes[0].shape[1]
                                    or factors.shape[1] != self.factors[0].shape[1]):
            raise TcxError(
                f"every batch must have the same D and K: got codes [.., {codes.shape[1]}] and "
                f"factors [.., {factors.shape[1]}] after [.., {self.codes[0].shape[1]}] and "
                f"[.., {self.factors[0].shape[1]}]."
            )
        codes = codes.detach()
        if not codes.is_floating_point():
            codes = codes.double()
        self.codes.append(codes)
        # Integer (and boolean) factors are kept as int64, whatever the caller's integer type, so
        # that every process gathers one dtype under DDP; float factors are kept as given (the
        # metric functions refuse non-integer values where they need indices; a cast here would
        # truncate them silently).
        factors = factors.detach()
        self.factors.append(factors if factors.is_floating_point() or factors.is_complex() else factors.long())

    def _sync_dist(self, *args: Any, **kwargs: Any) -> None:
        # A process without a batch would gather torchmetrics' 1-D float placeholder against the
        # others' [n, D] and [n, K] states: a collective mismatch far from its cause. Say it here.
        if isinstance(self.codes, list) and len(self.codes) == 0:
            raise TcxError(
                f"{type(self).__name__}: this process called update() with no batch before the "
                f"cross-process sync; under DDP every process must update at least once (a batch of "
                f"zero rows, codes [0, D] and factors [0, K], will do)."
            )
        super()._sync_dist(*args, **kwargs)

    def _gathered(self) -> tuple[Tensor, Tensor]:
        # A list of batches, or one tensor once synced across processes.
        if isinstance(self.codes, list) and len(self.codes) == 0:
            raise TcxError(
                f"{type(self).__name__}.compute() called before any update(codes, factors)."
            )
        return dim_zero_cat(self.codes).cpu(), dim_zero_cat(self.factors).cpu()

    def _split(self, train_fraction: float, seed: int):
        codes, factors = self._gathered()
        n = codes.shape[0]
        n_train = int(round(n * train_fraction))
        if not 2 <= n_train <= n - 1:
            raise TcxError(
                f"{type(self).__name__}: {n} gathered samples with train_fraction="
                f"{train_fraction} leave {n_train} to train and {n - n_train} to test; gather "
                f"more samples."
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        train, test = perm[:n_train], perm[n_train:]
        return codes[train], factors[train], codes[test], factors[test]


def _check_fraction(train_fraction: float) -> float:
    return check_real("train_fraction", train_fraction, 0, 1, low_open=True, high_open=True)


class MIG(DisentanglementMetric):
    """Mutual information gap of all gathered samples (:func:`tcx.metrics.mig`)."""

    def __init__(self, num_bins: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_bins = num_bins

    def compute(self) -> Tensor:
        codes, factors = self._gathered()
        return _scalar(mig(codes, factors, num_bins=self.num_bins))


class DCI(DisentanglementMetric):
    """DCI scores (:func:`tcx.metrics.dci`) on a seeded train/test split of the gathered
    samples; ``compute`` returns the dict of :func:`tcx.metrics.dci`."""

    def __init__(self, train_fraction: float = 2 / 3, seed: int = 0, booster: str = "tcx",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_fraction = _check_fraction(train_fraction)
        self.seed = seed
        self.booster = booster

    def compute(self) -> dict[str, Tensor]:
        return _dict(dci(*self._split(self.train_fraction, self.seed), booster=self.booster,
                         seed=self.seed))


class SAP(DisentanglementMetric):
    """SAP score (:func:`tcx.metrics.sap`) on a seeded train/test split."""

    def __init__(self, train_fraction: float = 2 / 3, seed: int = 0,
                 continuous_factors: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_fraction = _check_fraction(train_fraction)
        self.seed = seed
        self.continuous_factors = continuous_factors

    def compute(self) -> Tensor:
        return _scalar(sap(*self._split(self.train_fraction, self.seed),
                           continuous_factors=self.continuous_factors))


class ModularityExplicitness(DisentanglementMetric):
    """Modularity and explicitness (:func:`tcx.metrics.modularity_explicitness`) on a seeded
    train/test split."""

    def __init__(self, train_fraction: float = 2 / 3, seed: int = 0, num_bins: int = 20,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_fraction = _check_fraction(train_fraction)
        self.seed = seed
        self.num_bins = num_bins

    def compute(self) -> dict[str, Tensor]:
        return _dict(modularity_explicitness(*self._split(self.train_fraction, self.seed),
                                             num_bins=self.num_bins))


class IRS(DisentanglementMetric):
    """Interventional robustness score of all gathered samples (:func:`tcx.metrics.irs`)."""

    def __init__(self, diff_quantile: float = 0.99, num_bins: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.diff_quantile = diff_quantile
        self.num_bins = num_bins

    def compute(self) -> dict[str, Tensor]:
        codes, factors = self._gathered()
        return _dict(irs(codes, factors, diff_quantile=self.diff_quantile,
                         num_bins=self.num_bins))


class Unsupervised(DisentanglementMetric):
    """Unsupervised scores of all gathered codes (:func:`tcx.metrics.unsupervised`); factors
    are optional (``update(codes)``) and ignored."""

    higher_is_better = False

    def __init__(self, num_bins: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_bins = num_bins

    def compute(self) -> dict[str, Tensor]:
        codes, _ = self._gathered()
        return _dict(unsupervised(codes, num_bins=self.num_bins))
