"""DataLoaders of tcx's datamodules: the mixin that builds them (workers, pinned memory, epoch
subsets, the one training order both data paths share, ``split_dataset`` / ``split_data``), the
loader defaults for the Trainer's hardware, and the check that a data file exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, Subset

from tcx.datamodules.datasets import EpochSubsetSampler, collate_rendered
from tcx.datamodules.splits import SPLITS
from tcx.errors import MissingFileError, TcxError
from tcx.validation import check_choice, check_int

__all__ = [
    "require_file",
    "default_num_workers",
    "default_pin_memory",
    "LoaderMixin",
]


def require_file(path: Path, what: str, advice: str) -> None:
    """Raise ``FileNotFoundError`` unless ``path`` is a file: the message names ``what`` (e.g.
    "dSprites file"), the path, whether its folder exists, and ``advice`` (where to get it)."""
    if not path.is_file():
        where = f"the folder {str(path.parent)!r} does not exist" if not path.parent.is_dir() else "no such file"
        raise MissingFileError(f"{what} {str(path)!r} not found ({where}). {advice}")


def default_num_workers(trainer: pl.Trainer | None) -> int:
    """Worker processes for file-backed data that decodes on load: the CPUs this process may use,
    shared among the devices of this node, less one for the training process, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 1
    local = 1
    if trainer is not None:
        local = max(1, int(getattr(trainer, "num_devices", 1) or 1))
    return max(0, min(8, cpus // local - 1))


def default_pin_memory(trainer: pl.Trainer | None) -> bool:
    """Pin host memory when the trainer runs on CUDA GPUs (faster host-to-device copies)."""
    if trainer is None:
        return torch.cuda.is_available()
    from lightning.pytorch.accelerators import CUDAAccelerator

    return isinstance(getattr(trainer, "accelerator", None), CUDAAccelerator)


class LoaderMixin:
    """Train/val/test/predict loaders, and ``split_dataset``/``split_data`` (the data of one split,
    test distinct from validation), for a datamodule with ``train_dataset``, ``val_dataset`` and
    optionally ``test_dataset`` (``BatchDataset`` instances), ``batch_size``, ``num_workers``
    (``None`` = ``default_num_workers``), ``pin_memory`` (``None`` = ``default_pin_memory``),
    ``epoch_size`` and ``seed`` (for ``EpochSubsetSampler``)."""

    batch_size: int
    num_workers: int | None
    pin_memory: bool | None
    epoch_size: int | None = None
    seed: int = 0
    train_dataset: Dataset | None
    val_dataset: Dataset | None
    test_dataset: Dataset | None = None

    def _trainer_or_none(self):
        return getattr(self, "trainer", None)

    def loader_options(self) -> dict:
        """The DataLoader options in effect: ``num_workers`` and ``pin_memory`` resolved."""
        trainer = self._trainer_or_none()
        workers = self.num_workers if self.num_workers is not None else default_num_workers(trainer)
        pin = self.pin_memory if self.pin_memory is not None else default_pin_memory(trainer)
        return {"num_workers": int(workers), "pin_memory": bool(pin)}

    def _loader(self, dataset: Dataset, sampler: Sampler | None = None) -> DataLoader:
        opts = self.loader_options()
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            collate_fn=collate_rendered,
            persistent_workers=opts["num_workers"] > 0,
            **opts,
        )

    def train_sampler(self, n: int) -> Sampler:
        """The training order over ``n`` items: one random pass (``epoch_size=None``) or a seeded
        ``epoch_size`` subset each epoch (``EpochSubsetSampler``)."""
        if self.epoch_size is None:
            return RandomSampler(range(n))
        return EpochSubsetSampler(n, self.epoch_size, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        ds = self.train_dataset
        return self._loader(ds, self.train_sampler(len(ds)))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split_dataset("val"))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split_dataset("test"))

    def has_own_test_set(self) -> bool:
        """Whether the data come with a test set of their own (built by ``setup("test")``) rather
        than the second half of the validation holdout. False unless a datamodule says so."""
        return False

    def split_dataset(self, split: str) -> Dataset:
        """The dataset of one split: ``"train"``, ``"val"`` or ``"test"``; validation and test
        never share an item.

        A datamodule with a test set of its own (MNIST's t10k, CelebA's official partition) keeps
        it and validates on its whole validation holdout. One without (the procedural and
        single-file sources, embedded MNIST) divides its seeded validation holdout, itself a
        random subset, into two fixed halves: validation is the first ``ceil(n / 2)`` items,
        test the last ``floor(n / 2)`` (so ``val_size`` >= 2 is needed for a test split).
        ``train_dataset`` and ``val_dataset`` (the whole holdout) are unchanged.
        """
        check_choice("split", split, SPLITS)
        if split == "train":
            self.setup("fit")
            return self.train_dataset
        if self.has_own_test_set():
            if split == "val":
                self.setup("validate")  # never reads the test set just to validate
                return self.val_dataset
            self.setup("test")
            return self.test_dataset
        self.setup("validate")
        holdout = self.val_dataset
        n = len(holdout)
        cut = n - n // 2
        if split == "test" and cut == n:
            raise TcxError(
                f"{type(self).__name__} has no test set of its own and a validation holdout of {n} item; "
                "set val_size >= 2 so that it can be divided into validation and test halves"
            )
        return Subset(holdout, range(0, cut) if split == "val" else range(cut, n))

    def split_data(self, split: str, max_items: int | None = None) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of one split (see ``split_dataset``) as CPU tensors, in the split's fixed
        order: ``x [N, *input_shape]`` float, ``y`` the labels or factors (``[N]`` or ``[N, K]``).
        ``max_items`` keeps only the first ``max_items`` (None: all)."""
        check_int("max_items", max_items, 1, allow_none=True)
        ds = self.split_dataset(split)
        n = len(ds) if max_items is None else min(len(ds), max_items)
        xs, ys = [], []
        step = max(1, int(getattr(self, "batch_size", 256)))
        for start in range(0, n, step):
            positions = list(range(start, min(n, start + step)))
            if callable(getattr(ds, "__getitems__", None)):
                x, y = collate_rendered(ds.__getitems__(positions))
            else:
                x, y = collate_rendered([ds[i] for i in positions])
            xs.append(x.cpu())
            ys.append(y.cpu())
        if not xs:
            raise TcxError(f"{type(self).__name__}: the {split!r} split is empty")
        return torch.cat(xs), torch.cat(ys)

    def predict_dataloader(self) -> DataLoader:
        self.setup("predict")
        return self._loader(self.val_dataset)
