"""Helpers shared by tcx's datamodules: argument checks, factor grids, seeded splits, batched
datasets, loader defaults and atomic file writes.

Nothing here is public API; the datamodules re-export what users need.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, Subset

from tcx.validation import check_choice, check_int, check_probability
from tcx.errors import MissingFileError, TcxError


__all__ = [
    "check_int",
    "check_choice",
    "check_probability",
    "seeded_split",
    "grid_index",
    "grid_factors",
    "validate_grid_factors",
    "check_integer_tensor",
    "require_file",
    "sample_grid_factors",
    "grid_from_classes",
    "BatchDataset",
    "LoaderMixin",
    "HoldoutMixin",
    "StoredGridMixin",
    "default_num_workers",
    "default_pin_memory",
    "SPLITS",
]

SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------------ arguments


# one implementation for all of tcx (tcx.validation), re-exported for the datamodules


# ----------------------------------------------------------------------------------- factor grid


def _strides(sizes: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for s in reversed(sizes):
        strides.append(acc)
        acc *= int(s)
    return strides[::-1]


def check_integer_tensor(value, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a tensor of an integer dtype."""
    if not isinstance(value, Tensor):
        raise TcxError(f"{name} must be a torch.Tensor of integer indices, got {type(value).__name__}")
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise TcxError(
            f"{name} must have an integer dtype (torch.long), got {value.dtype}; "
            "convert with .long() if the values are whole numbers"
        )


def require_file(path: Path, what: str, advice: str) -> None:
    """Raise ``FileNotFoundError`` unless ``path`` is a file: the message names ``what`` (e.g.
    "dSprites file"), the path, whether its folder exists, and ``advice`` (where to get it)."""
    if not path.is_file():
        where = f"the folder {str(path.parent)!r} does not exist" if not path.parent.is_dir() else "no such file"
        raise MissingFileError(f"{what} {str(path)!r} not found ({where}). {advice}")


def validate_grid_factors(factors, names: Sequence[str], sizes: Sequence[int]) -> Tensor:
    """Check a ``[N, K]`` integer tensor of factor indices against ``sizes``; return it as long.

    The message names the factor, the offending value and row, and the allowed range.
    """
    check_integer_tensor(factors, "factors")
    if factors.dim() != 2 or factors.shape[1] != len(sizes):
        raise TcxError(
            f"factors must have shape [N, {len(sizes)}] (columns {', '.join(names)}), "
            f"got {list(factors.shape)}"
        )
    factors = factors.long()
    if factors.numel():
        bound = torch.tensor(list(sizes), device=factors.device)
        bad = (factors < 0) | (factors >= bound)
        if bool(bad.any()):
            row, col = (int(i) for i in bad.nonzero()[0])
            raise TcxError(
                f"factor {names[col]!r} (column {col}) has index {int(factors[row, col])} at row {row}; "
                f"allowed range is 0 .. {sizes[col] - 1}"
            )
    return factors


def grid_index(factors: Tensor, sizes: Sequence[int]) -> Tensor:
    """Row-major grid index ``[N]`` of already validated factor indices ``[N, K]``."""
    strides = torch.tensor(_strides(sizes), device=factors.device)
    return (factors.long() * strides).sum(dim=1)


def grid_factors(index: Tensor, sizes: Sequence[int]) -> Tensor:
    """Factor indices ``[N, K]`` of row-major grid indices ``[N]`` (inverse of ``grid_index``)."""
    index = index.long()
    out = torch.empty(index.shape[0], len(sizes), dtype=torch.long, device=index.device)
    rest = index
    for col in range(len(sizes) - 1, -1, -1):
        out[:, col] = rest % int(sizes[col])
        rest = rest // int(sizes[col])
    return out


def sample_grid_factors(num: int, sizes: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
    """``[num, K]`` long factor indices, each factor uniform on ``0 .. size - 1`` and independent."""
    check_int("num", num, 0)
    if not sizes:
        return torch.zeros(num, 0, dtype=torch.long)
    return torch.stack([torch.randint(0, int(s), (num,), generator=generator) for s in sizes], dim=1)


def grid_from_classes(classes: Tensor, names: Sequence[str], what: str) -> tuple[int, ...]:
    """Factor sizes of a ``[N, K]`` table of per-row factor indices that must be the complete
    row-major grid (the layout of the official dSprites and Shapes3D files).

    Raises ``ValueError`` (prefixed by ``what``, e.g. the file name) when the table has the wrong
    width, when its size is not the product of the factor sizes (a truncated file), or when a row
    is not where the row-major order puts it (naming the first such row).
    """
    if classes.dim() != 2 or classes.shape[1] != len(names):
        raise TcxError(
            f"{what}: expected a table of shape [N, {len(names)}] ({', '.join(names)}), "
            f"found shape {list(classes.shape)}"
        )
    if classes.numel() == 0:
        raise TcxError(f"{what}: the file holds no rows")
    if int(classes.min()) < 0:
        raise TcxError(f"{what}: negative factor index {int(classes.min())}")
    sizes = tuple(int(s) + 1 for s in classes.max(dim=0).values)
    n = classes.shape[0]
    if math.prod(sizes) != n:
        raise TcxError(
            f"{what}: {n} rows, but the factors take {sizes} values ({' x '.join(map(str, sizes))} = "
            f"{math.prod(sizes)} combinations); the file is truncated or is not the complete factor grid"
        )
    expected = grid_factors(torch.arange(n), sizes)
    mismatch = (expected != classes.long()).any(dim=1)
    if bool(mismatch.any()):
        row = int(mismatch.nonzero()[0, 0])
        raise TcxError(
            f"{what}: row {row} has factors {classes[row].tolist()}, but the row-major factor grid "
            f"puts {expected[row].tolist()} there; the file is corrupt or not in the official order"
        )
    return sizes


# -------------------------------------------------------------------------------------- splits


def seeded_split(n: int, val_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """``(train, val)``: disjoint positions in ``0 .. n - 1``, a seeded random holdout of
    ``val_size`` positions (``torch.randperm`` with a generator seeded by ``seed``; the same rule
    as the procedural ``DSprites.split``), the same for the same ``(n, val_size, seed)``."""
    if not 1 <= val_size < n:
        raise TcxError(f"val_size must be in [1, {n - 1}] for a dataset of {n} items, got {val_size}")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    return perm[val_size:], perm[:val_size]


# ------------------------------------------------------------------------------------ datasets


class RenderedBatch(NamedTuple):
    """A whole batch made at once by a dataset's ``__getitems__``: observations and targets."""

    x: Tensor
    y: Tensor


def collate_rendered(batch) -> tuple[Tensor, Tensor]:
    """DataLoader ``collate_fn`` for the batched datasets (``DSpritesDataset``, ``BatchDataset``): ``(x, y)``.

    Accepts a ``RenderedBatch`` (what ``__getitems__`` returns: passed through) or a list of
    ``(x, y)`` samples from ``__getitem__`` (stacked). Module-level, so it pickles for workers.
    """
    if isinstance(batch, RenderedBatch):
        return batch.x, batch.y
    xs, ys = zip(*batch)
    return torch.stack(xs), torch.stack(ys)


class EpochSubsetSampler(Sampler[int]):
    """Draws ``num_samples`` distinct positions of a dataset of size ``n`` each epoch, seeded.

    The draw of epoch ``e`` depends only on ``(seed, e)``: every process of a distributed run
    produces the same list, which Lightning's ``DistributedSamplerWrapper`` then shards, and
    ``set_epoch`` (called by Lightning every epoch) gives a fresh subset. Without ``set_epoch`` each
    new iteration moves on to the next epoch's draw. When ``num_samples > n`` the epoch is a
    concatenation of independent permutations.
    """

    def __init__(self, n: int, num_samples: int, seed: int = 0):
        if n < 1:
            raise TcxError(f"n must be >= 1, got {n}")
        if num_samples < 1:
            raise TcxError(f"num_samples must be >= 1, got {num_samples}")
        self.n, self.num_samples, self.seed = n, num_samples, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def indices(self, epoch: int) -> Tensor:
        """Positions drawn for ``epoch`` (without advancing)."""
        g = torch.Generator().manual_seed((self.seed * 0x9E3779B1 + 0x5851F42D * (epoch + 1)) % 2**63)
        parts, have = [], 0
        while have < self.num_samples:
            parts.append(torch.randperm(self.n, generator=g))
            have += self.n
        return torch.cat(parts)[: self.num_samples]

    def __iter__(self):
        idx = self.indices(self.epoch)
        self.epoch += 1
        return iter(idx.tolist())




class BatchDataset(Dataset):
    """Map-style dataset whose items come from ``fetch(rows [n] long) -> (x [n, ...], y [n, ...])``.

    ``indices`` select the rows of the underlying source. ``__getitems__`` fetches a whole batch in
    one call (torch's DataLoader uses it when present); pair it with ``collate_rendered``. ``fetch``
    must pickle (a module-level object or a bound method of one) for worker processes.
    """

    def __init__(self, fetch: Callable[[Tensor], tuple[Tensor, Tensor]], indices: Tensor):
        self.fetch = fetch
        self.indices = indices.reshape(-1).long()

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.fetch(self.indices[int(i)].reshape(1))
        return x[0], y[0]

    def __getitems__(self, positions: Sequence[int]) -> RenderedBatch:
        x, y = self.fetch(self.indices[torch.as_tensor(positions, dtype=torch.long)])
        return RenderedBatch(x, y)


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


class StoredGridMixin:
    """Ground truth of a file that stores one image per combination of factor values, in
    row-major order over ``self._sizes`` (``factor_names`` from the class's ``FACTOR_NAMES``):
    ``factor_sizes``, ``sample_factors``, ``factors_to_index`` and ``render``."""

    FACTOR_NAMES: tuple[str, ...] = ()
    _sizes: tuple[int, ...]

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.FACTOR_NAMES)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        """Read from the file."""
        return self._sizes

    def sample_factors(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``[num, K]`` long factor indices, each uniform and independent over the file's grid."""
        return sample_grid_factors(num, self._sizes, generator)

    def factors_to_index(self, factors: Tensor) -> Tensor:
        """Row ``[N]`` of the file for factor indices ``[N, K]`` (row-major)."""
        return grid_index(validate_grid_factors(factors, self.factor_names, self._sizes), self._sizes)

    def render(self, factors: Tensor) -> Tensor:
        """The file's images of factor indices ``[num, K]``, float in [0, 1], on the device of
        ``factors``."""
        rows = self.factors_to_index(factors)
        return self._source(rows.cpu())[0].to(factors.device)


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


# ------------------------------------------------------------------------------------- files
