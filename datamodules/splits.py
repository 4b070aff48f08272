"""Train / validation / test splits: the split names, the seeded disjoint split of stored rows,
and the mixin that holds a seeded validation holdout over a datamodule's stored points.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from tcx.datamodules.datasets import BatchDataset
from tcx.validation import check_int

__all__ = [
    "SPLITS",
    "seeded_split",
    "HoldoutMixin",
]


SPLITS = ("train", "val", "test")


def seeded_split(n: int, val_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """``(train, val)``: disjoint positions in ``0 .. n - 1``, a seeded random holdout of
    ``val_size`` positions (``torch.randperm`` with a generator seeded by ``seed``; the same rule
    as the procedural ``DSprites.split``), the same for the same ``(n, val_size, seed)``."""
    check_int("val_size", val_size, 1, n - 1, hint=f"a dataset of {n} items")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    return perm[val_size:], perm[:val_size]


class HoldoutMixin:
    """A seeded validation holdout over the ``_num_stored()`` points of ``self._source`` (a
    callable from row indices to ``(x, y)`` batches): ``split``, ``dataset_size`` and the train and
    validation ``BatchDataset``s that ``setup`` builds. Needs ``val_size`` and ``seed``."""

    val_size: int
    seed: int
    _split: tuple[Tensor, Tensor] | None = None
    train_dataset: Dataset | None = None
    val_dataset: Dataset | None = None

    def _num_stored(self) -> int:  # pragma: no cover - each datamodule says how many it holds
        raise NotImplementedError

    @property
    def dataset_size(self) -> int:
        """Number of training points: all that are stored less the ``val_size`` held out."""
        return self._num_stored() - self.val_size

    @property
    def split(self) -> tuple[Tensor, Tensor]:
        """``(train_rows, val_rows)``: a seeded random holdout of ``val_size`` rows
        (``seeded_split``), disjoint, the same for the same seed."""
        if self._split is None:
            self._split = seeded_split(self._num_stored(), self.val_size, self.seed)
        return self._split

    def _build_datasets(self) -> None:
        if self.train_dataset is None:
            train, val = self.split
            self.train_dataset = BatchDataset(self._source, train)
            self.val_dataset = BatchDataset(self._source, val)
