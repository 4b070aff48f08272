"""Your own arrays as a datamodule: ``tcx fit --data Arrays --data.path my.npy``.

``Arrays`` reads a numpy ``.npy``/``.npz``, a CSV or a torch ``.pt`` file (or takes tensors): vectors
``[N, n]`` or images ``[N, H, W]``, ``[N, C, H, W]``, ``[N, H, W, C]``; binary, counts or real values
(mapped to [0, 1] per column unless they lie there already); optional labels ``[N]`` or factors
``[N, K]`` with optional names. Seeded train/validation/test splits, ``dataset_size``,
``pixel_entropy`` (the CorEx bound), ``input_names``. A file it cannot use is one error naming the
file and the fix. Details: docs/datamodules.md#datamodulesarrayspy-arrays
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor

from tcx.datamodules.datasets import BatchDataset
from tcx.datamodules.loading import LoaderMixin, require_file
from tcx.errors import TcxError
from tcx.estimators import binary_pixel_entropy
from tcx.validation import check_int

__all__ = ["Arrays", "read_arrays"]

X_KEYS = ("x", "X", "data", "images", "imgs", "features")
Y_KEYS = ("y", "labels", "label", "factors", "targets", "latents_classes")
FIX = ("give a numeric array [N, n] (vectors) or [N, H, W], [N, C, H, W], [N, H, W, C] (images): "
       "numpy.save('my.npy', x), numpy.savez('my.npz', x=x, y=y), a CSV of numbers with an optional "
       "header row, or torch.save({'x': x, 'y': y}, 'my.pt')")


class _Rows:
    def __init__(self, x: Tensor, y: Tensor):
        self.x, self.y = x, y

    def __call__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[rows], self.y[rows]


def _pick(arrays: dict, keys: Sequence[str], key: str | None, path: Path, what: str):
    if key is not None:
        if key not in arrays:
            raise TcxError(f"{str(path)!r} has no array {key!r} ({what}); it holds {sorted(arrays)}. "
                           f"Name one of those with --data.{'x_key' if what == 'x' else 'y_key'}")
        return arrays[key]
    for k in keys:
        if k in arrays:
            return arrays[k]
    return None


def read_arrays(path, x_key: str | None = None, y_key: str | None = None,
                label_column: str | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """``(x, y or None, column names or None)`` from a ``.npy``, ``.npz``, ``.csv`` or ``.pt`` file;
    a file it cannot use raises ``TcxError`` naming it and the fix (``FIX``)."""
    path = Path(path).expanduser()
    require_file(path, "array file", FIX)
    suffix = path.suffix.lower()
    names = None
    try:
        if suffix == ".npy":
            x, y = np.load(path, allow_pickle=False), None
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            x = _pick(arrays, X_KEYS, x_key, path, "x")
            if x is None:
                if len(arrays) != 1:
                    raise TcxError(f"{str(path)!r} holds {sorted(arrays)} and none is named like the data "
                                   f"({', '.join(X_KEYS)}): pass --data.x_key NAME")
                x = next(iter(arrays.values()))
            y = _pick(arrays, Y_KEYS, y_key, path, "y")
        elif suffix == ".pt":
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, Tensor):
                x, y = obj.numpy(), None
            elif isinstance(obj, dict):
                x, y = _pick(obj, X_KEYS, x_key, path, "x"), _pick(obj, Y_KEYS, y_key, path, "y")
                if x is None:
                    raise TcxError(f"{str(path)!r} is a dict of {sorted(obj)} without the data under one of "
                                   f"{X_KEYS}: pass --data.x_key NAME")
                x = torch.as_tensor(x).numpy()
                y = None if y is None else torch.as_tensor(y).numpy()
            else:
                raise TcxError(f"{str(path)!r} holds a {type(obj).__name__}, not a tensor or a dict. {FIX}")
        elif suffix in (".csv", ".txt"):
            with path.open() as f:
                first = f.readline().strip().split(",")
            try:
                [float(v) for v in first]
                header = False
            except ValueError:
                header = True
            table = np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2)
            names = [c.strip() for c in first] if header else None
            y = None
            if label_column is not None:
                if names is None or label_column not in names:
                    raise TcxError(f"{str(path)!r} has no column {label_column!r} (columns: {names}); "
                                   "label_column needs a header row naming it")
                k = names.index(label_column)
                y = table[:, k]
                table = np.delete(table, k, axis=1)
                names = names[:k] + names[k + 1:]
            x = table
        else:
            raise TcxError(f"{str(path)!r}: unknown file type {suffix!r}; use .npy, .npz, .csv or .pt. {FIX}")
    except TcxError:
        raise
    except Exception as exc:  # a corrupt or unreadable file: one line, tcx's message first
        raise TcxError(f"{str(path)!r} could not be read as {suffix or 'an array file'} "
                       f"({type(exc).__name__}: {exc}). {FIX}") from None
    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or x.ndim not in (2, 3, 4) or len(x) < 3:
        raise TcxError(f"{str(path)!r}: the data are {x.dtype} of shape {x.shape}; need at least 3 rows of "
                       f"numbers. {FIX}")
    if not np.isfinite(x).all():
        raise TcxError(f"{str(path)!r}: the data hold NaN or infinite values; remove or impute them first")
    if y is not None and len(y) != len(x):
        raise TcxError(f"{str(path)!r}: {len(y)} labels for {len(x)} rows of data; give one per row")
    return x, y, names


class Arrays(LoaderMixin, pl.LightningDataModule):
    """Arrays from a file or tensors (module docstring); batches ``(x, y)`` with ``x`` float in [0, 1].

    Args:
        path: ``.npy``, ``.npz`` (data under ``x``/``data``/``images``.., labels under ``y``/``labels``..),
            ``.csv`` (header optional) or ``.pt``; or pass ``x`` (and ``y``) tensors instead.
        x_key, y_key: the arrays' names in a ``.npz``/``.pt``. label_column: a CSV column of labels.
        factor_names: names of the ``K`` columns of ``y`` (factors). class_names: of the labels.
        input_names: of the inputs (a CSV header gives them).
        val_size, test_size: held-out rows (a fraction in (0, 1) or a count). seed: of the splits.
        scale: ``auto`` (uint8 images / 255; columns outside [0, 1] min-max scaled to it) or ``none``.
    """

    def __init__(self, path: str | None = None, x=None, y=None, x_key: str | None = None, y_key: str | None = None,
                 label_column: str | None = None, factor_names: Sequence[str] | None = None,
                 class_names: Sequence[str] | None = None, input_names: Sequence[str] | None = None,
                 val_size: float = 0.1, test_size: float = 0.1, scale: str = "auto", batch_size: int = 128,
                 num_workers: int = 0, pin_memory: bool | None = None, epoch_size: int | None = None,
                 seed: int = 0):
        super().__init__()
        self.save_hyperparameters(ignore=["x", "y"])
        if (path is None) == (x is None):
            raise TcxError(f"Arrays needs one of path= (a file) and x= (a tensor), got {'both' if x is not None else 'neither'}")
        names = None
        if path is not None:
            x, y, names = read_arrays(path, x_key, y_key, label_column)
        self.source = str(path) if path is not None else "tensors"
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
        was_uint8 = x.dtype == torch.uint8
        x = x.to(torch.float32)
        if x.dim() == 3:
            x = x[:, None]
        elif x.dim() == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = x.permute(0, 3, 1, 2).contiguous()
        if scale not in ("auto", "none"):
            raise TcxError(f"Arrays: scale must be 'auto' or 'none', got {scale!r}")
        if scale == "auto":
            if was_uint8 and float(x.max()) > 1:
                x = x / 255.0
            else:
                flat = x.reshape(len(x), -1)
                low, high = flat.min(0).values, flat.max(0).values
                outside = (low < 0) | (high > 1)
                if bool(outside.any()):
                    span = (high - low).clamp_min(1e-12)
                    flat = torch.where(outside, (flat - low) / span, flat)
                    x = flat.reshape(x.shape)
        self.x = x.contiguous()
        n = len(self.x)
        if y is None:
            self.y = torch.zeros(n, 0, dtype=torch.long)
        else:
            yt = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y)
            if yt.is_floating_point() and bool((yt != yt.round()).any()):
                raise TcxError(f"Arrays ({self.source}): labels or factors must be whole numbers (class or level "
                               "indices); bin real-valued factors first")
            yt = yt.long()
            self.y = yt.reshape(n) if yt.dim() == 2 and yt.shape[1] == 1 and factor_names is None else yt
        self.input_shape = tuple(int(s) for s in self.x.shape[1:])
        self.input_names = list(input_names) if input_names is not None else names
        if self.input_names is not None and len(self.input_names) != self.x[0].numel():
            raise TcxError(f"Arrays: {len(self.input_names)} input_names for {self.x[0].numel()} inputs")
        if factor_names is not None:
            if self.y.dim() != 2 or self.y.shape[1] != len(factor_names):
                raise TcxError(f"Arrays: {len(factor_names)} factor_names for y of shape {tuple(self.y.shape)}")
            self.factor_names = tuple(str(s) for s in factor_names)
        if class_names is not None:
            self.class_names = tuple(str(s) for s in class_names)
        if self.y.dim() == 1:
            self.num_classes = int(self.y.max()) + 1
        self.val_size, self.test_size = self._count(val_size, n, "val_size"), self._count(test_size, n, "test_size")
        if self.val_size + self.test_size >= n:
            raise TcxError(f"Arrays: val_size {self.val_size} + test_size {self.test_size} leave no training rows of {n}")
        check_int("batch_size", batch_size, 1)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.epoch_size, self.seed = epoch_size, int(seed)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        self.val_rows = perm[: self.val_size]
        self.test_rows = perm[self.val_size: self.val_size + self.test_size]
        self.train_rows = perm[self.val_size + self.test_size:]
        self.train_dataset = self.val_dataset = self.test_dataset = None

    @staticmethod
    def _count(size, n: int, name: str) -> int:
        if isinstance(size, float) and 0 < size < 1:
            return max(1, int(round(size * n)))
        return check_int(name, int(size), 1, n - 2)

    @property
    def dataset_size(self) -> int:
        """Training rows."""
        return len(self.train_rows)

    @property
    def value_kind(self) -> str:
        """``binary``, ``discrete`` (at most 16 values per column) or ``real``."""
        flat = self.x.reshape(len(self.x), -1)
        if bool(((flat == 0) | (flat == 1)).all()):
            return "binary"
        return "discrete" if all(len(torch.unique(c)) <= 16 for c in flat.T[:256]) else "real"

    def pixel_entropy(self, num_samples: int = 20000, seed: int = 0) -> Tensor | None:
        """``H(X_i)`` in nats of the training rows (plug-in, ``binary_pixel_entropy``): each binary
        column's entropy; for grey levels the Bernoulli cross-entropy docs/math.md#pixel-entropy
        describes. ``num_samples`` training rows at most (seeded)."""
        rows = self.train_rows
        if len(rows) > num_samples:
            rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:num_samples]]
        return binary_pixel_entropy(self.x[rows]).reshape(self.input_shape)

    def has_own_test_set(self) -> bool:
        """The test rows are their own seeded split, never validation rows."""
        return True

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is None:
            fetch = _Rows(self.x, self.y)
            self.train_dataset = BatchDataset(fetch, self.train_rows)
            self.val_dataset = BatchDataset(fetch, self.val_rows)
            self.test_dataset = BatchDataset(fetch, self.test_rows)
