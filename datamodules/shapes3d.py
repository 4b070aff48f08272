"""3D Shapes from the official file (Burgess and Kim, 2018, https://github.com/deepmind/3d-shapes).

``Shapes3D`` reads ``3dshapes.h5`` (``SHAPES3D_FILE_NAME``, from ``SHAPES3D_URL``) with h5py:
480,000 images ``x [3, 64, 64]`` float in [0, 1] over six factors (``FACTOR_NAMES``,
``FACTOR_SIZES``; ``SHAPE_NAMES``), checked to form the row-major grid. Images are read batch by
batch (``H5Images``) or, with ``in_memory=True``, all at once. A missing or bad file raises an
error naming the file, what was expected and what was found.

Details (the datasets, the factors, memory, bad files): docs/datamodules.md#datamodulesshapes3dpy-shapes3d
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor

from tcx.datamodules.grids import grid_factors, grid_from_classes, StoredGridMixin
from tcx.datamodules.loading import LoaderMixin, require_file
from tcx.datamodules.splits import HoldoutMixin
from tcx.validation import check_int
from tcx.errors import TcxError

__all__ = ["Shapes3D", "FACTOR_NAMES", "FACTOR_SIZES", "SHAPE_NAMES", "SHAPES3D_FILE_NAME", "SHAPES3D_URL", "H5Images"]

FACTOR_NAMES: tuple[str, ...] = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES: tuple[int, ...] = (10, 10, 10, 8, 4, 15)
SHAPE_NAMES: tuple[str, ...] = ("cube", "cylinder", "sphere", "capsule")
SHAPES3D_FILE_NAME = "3dshapes.h5"
SHAPES3D_URL = "https://storage.googleapis.com/3d-shapes/3dshapes.h5"
IMAGE_SIZE = 64


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency of tcx
        raise ImportError("Shapes3D reads HDF5 files with h5py: `pip install h5py`") from exc
    return h5py


def _corrupt(path: Path, exc: Exception) -> TcxError:
    # a TcxError (a ValueError that is the user's to fix): the tcx command prints it as its one
    # paragraph, before any library frame
    return TcxError(
        f"{str(path)!r} could not be read as HDF5 ({type(exc).__name__}: {exc}); the file is truncated or "
        f"corrupt: download {SHAPES3D_FILE_NAME} again from {SHAPES3D_URL}"
    )


class H5Images:
    """Batched reads of ``images`` from a Shapes3D ``.h5``: ``rows [n] -> uint8 [n, 64, 64, 3]``.

    The file is opened lazily in each process (an h5py handle must not cross a fork) and not
    pickled; ``load_all`` reads every image into memory.
    """

    def __init__(self, path: Path, n: int):
        self.path, self.n = path, n
        self._file = None
        self._pid = None
        self._array: np.ndarray | None = None

    def _dataset(self):
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = _h5py().File(self.path, "r")
            except OSError as exc:
                raise _corrupt(self.path, exc) from exc
            self._pid = os.getpid()
        return self._file["images"]

    def load_all(self) -> None:
        if self._array is None:
            try:
                self._array = self._dataset()[...]
            except OSError as exc:
                raise _corrupt(self.path, exc) from exc

    def __call__(self, rows: Tensor) -> np.ndarray:
        idx = rows.cpu().numpy()
        if self._array is not None:
            return self._array[idx]
        # h5py selects increasing, distinct rows only
        unique, inverse = np.unique(idx, return_inverse=True)
        try:
            block = self._dataset()[unique]
        except OSError as exc:
            raise _corrupt(self.path, exc) from exc
        return block[inverse]

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = state["_pid"] = None
        return state


def open_shapes3d(path: str | Path) -> tuple[H5Images, Tensor, tuple[int, ...], tuple[Tensor, ...]]:
    """Check a Shapes3D ``.h5`` and return ``(images, labels, sizes, value_table)``."""
    path = Path(path)
    require_file(
        path, "Shapes3D file",
        f"Shapes3D needs the official {SHAPES3D_FILE_NAME} (255 MB) from {SHAPES3D_URL} (see "
        "https://github.com/deepmind/3d-shapes); download it and pass its path as path=...",
    )
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _corrupt(path, exc) from exc
    with f:
        missing = [k for k in ("images", "labels") if k not in f]
        if missing:
            raise TcxError(
                f"{str(path)!r} has no dataset {', '.join(map(repr, missing))}: the Shapes3D file holds "
                f"'images' and 'labels', found {sorted(f.keys())}"
            )
        images, labels = f["images"], f["labels"]
        if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise TcxError(
                f"{str(path)!r}: 'images' must be uint8 [N, 64, 64, 3], found {images.dtype} {list(images.shape)}"
            )
        if labels.ndim != 2 or labels.shape[1] != len(FACTOR_NAMES) or not np.issubdtype(labels.dtype, np.floating):
            raise TcxError(
                f"{str(path)!r}: 'labels' must be float [N, {len(FACTOR_NAMES)}] ({', '.join(FACTOR_NAMES)}), "
                f"found {labels.dtype} {list(labels.shape)}"
            )
        if labels.shape[0] != images.shape[0]:
            raise TcxError(
                f"{str(path)!r}: 'images' holds {images.shape[0]} images but 'labels' {labels.shape[0]} rows; "
                "the file is truncated or corrupt"
            )
        try:
            values = labels[...]
        except OSError as exc:
            raise _corrupt(path, exc) from exc
    table, classes = [], []
    for k in range(values.shape[1]):
        uniq, cls = np.unique(values[:, k], return_inverse=True)
        table.append(torch.from_numpy(uniq))
        classes.append(cls.reshape(-1))
    sizes = grid_from_classes(torch.from_numpy(np.stack(classes, axis=1)), FACTOR_NAMES, f"{str(path)!r} labels")
    return H5Images(path, values.shape[0]), torch.from_numpy(values), sizes, tuple(table)


class _Source:
    """Batched fetch: ``rows -> (x [n, 3, 64, 64] float in [0, 1], y [n, 6] long)``."""

    def __init__(self, images: H5Images, sizes: tuple[int, ...]):
        self.images, self.sizes = images, sizes

    def __call__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(self.images(rows))).permute(0, 3, 1, 2).float() / 255.0
        return x, grid_factors(rows, self.sizes)


class Shapes3D(StoredGridMixin, HoldoutMixin, LoaderMixin, pl.LightningDataModule):
    """Shapes3D from the official ``.h5``: batches ``(x [B, 3, 64, 64] float in [0, 1], y [B, 6] long)``.

    Args:
        path: the ``.h5`` file (default ``data/3dshapes.h5``).
        batch_size: images per batch.
        num_workers: DataLoader workers; None (the default) uses the CPUs available to this
            process less one, at most 8 (reading from the file decompresses HDF5 chunks). 0 with
            ``in_memory``.
        pin_memory: None pins when training on CUDA.
        val_size: held-out images (a seeded random holdout, ``seeded_split``).
        epoch_size: training images per epoch (a fresh seeded subset each epoch), None for all.
        seed: seed of the split and the per-epoch subsets.
        in_memory: read all images into memory at setup instead of batch by batch.

    Satisfies ``tcx.groundtruth.GroundTruth``: ``render`` reads the file's image of each factor
    combination.
    """

    FACTOR_NAMES = FACTOR_NAMES

    def __init__(
        self,
        path: str = f"data/{SHAPES3D_FILE_NAME}",
        batch_size: int = 256,
        num_workers: int | None = None,
        val_size: int = 5000,
        epoch_size: int | None = None,
        seed: int = 0,
        pin_memory: bool | None = None,
        in_memory: bool = False,
    ):
        super().__init__()
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0, allow_none=True)
        check_int("epoch_size", epoch_size, 1, allow_none=True)
        check_int("seed", seed, -(2**62), 2**62)
        self.save_hyperparameters()
        self.path = Path(path)
        self.batch_size, self.pin_memory, self.in_memory = batch_size, pin_memory, bool(in_memory)
        self.num_workers = 0 if (num_workers is None and self.in_memory) else num_workers
        self.val_size, self.epoch_size, self.seed = val_size, epoch_size, seed
        self._images, self._labels, self._sizes, self._table = open_shapes3d(self.path)
        self.num_images: int = self._labels.shape[0]
        check_int("val_size", val_size, 1, self.num_images - 1, hint=f"{str(self.path)!r} holds {self.num_images} images")
        self.input_shape: tuple[int, int, int] = (3, IMAGE_SIZE, IMAGE_SIZE)
        self._source = _Source(self._images, self._sizes)

    @property
    def factor_value_table(self) -> tuple[Tensor, ...]:
        """For each factor, its values in index order (float64), as found in ``labels``."""
        return self._table

    def latent_values(self, factors: Tensor) -> Tensor:
        """The file's ``labels`` ``[num, 6]`` (float64) of factor indices ``[num, 6]``."""
        return self._labels[self.factors_to_index(factors).cpu()]

    def _num_stored(self) -> int:
        return self.num_images

    def setup(self, stage: str | None = None) -> None:
        if self.in_memory:
            self._images.load_all()
        self._build_datasets()

    def teardown(self, stage: str | None = None) -> None:
        self._images.close()
