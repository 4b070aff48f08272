"""dSprites from the official file (Matthey, Higgins, Hassabis and Lerchner, 2017).

``DSpritesFile`` reads ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (``DSPRITES_FILE_NAME``,
from ``DSPRITES_URL``), checks that its rows form the row-major factor grid of the procedural
``DSprites`` (so the same factor indices address the same sprite), and keeps the images
bit-packed in memory (377 MB; optionally cached in ``cache_dir`` and memory-mapped).
``open_dsprites_npz`` and ``NpzImages`` are the reader underneath. A missing, truncated or
corrupt file raises an error naming the file, what was expected and what was found.

Details (the members, the grid, memory, bad files): docs/datamodules.md#datamodulesdsprites_filepy-dspritesfile
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor

from tcx.distributions import bernoulli_entropy
from tcx.safe_io import atomic_path
from tcx.datamodules.grids import grid_factors, grid_from_classes, grid_index, StoredGridMixin
from tcx.datamodules.loading import LoaderMixin, require_file
from tcx.datamodules.splits import HoldoutMixin
from tcx.validation import check_int
from tcx.datamodules.dsprites import FACTOR_NAMES, FACTOR_SIZES, IMAGE_SIZE
from tcx.errors import TcxError

__all__ = ["DSpritesFile", "DSPRITES_FILE_NAME", "DSPRITES_URL", "NpzImages", "open_dsprites_npz"]

DSPRITES_FILE_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = (
    "https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
)
_PIXELS = IMAGE_SIZE * IMAGE_SIZE
_PACKED = _PIXELS // 8
_CHUNK = 8192  # images per decompressed chunk: 32 MB


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _member(zf: zipfile.ZipFile, name: str, path: Path) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(f"{name}.npy")
    except KeyError:
        found = ", ".join(sorted(n.removesuffix(".npy") for n in zf.namelist())) or "none"
        raise TcxError(
            f"{str(path)!r} has no array {name!r}: the dSprites file holds imgs, latents_classes, "
            f"latents_values and metadata; found {found}. It is not the official file ({DSPRITES_URL})"
        ) from None


def _read_small(zf: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    info = _member(zf, name, path)
    try:
        with zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise TcxError(f"{str(path)!r}: the array {name!r} could not be read ({type(exc).__name__}: {exc}); "
                         "the file is truncated or corrupt: download it again") from exc


class NpzImages:
    """Batched access to the binary images of a dSprites ``.npz``: ``rows [n] -> uint8 [n, 64, 64]``.

    Memory-maps the ``imgs`` member when it is stored uncompressed; otherwise holds the images
    bit-packed (see docs/datamodules.md#datamodulesdsprites_filepy-dspritesfile). Pickles without
    copying a memory map (workers reopen it).
    """

    def __init__(self, path: Path, info: zipfile.ZipInfo, n: int, header_len: int, cache_dir: Path | None):
        self.path, self.n = path, n
        self.stored = info.compress_type == zipfile.ZIP_STORED
        self._crc, self._info_name = info.CRC, info.filename
        self._offset = self._data_offset(info, header_len) if self.stored else None
        self.cache_dir = cache_dir
        self._array: np.ndarray | None = None

    def _data_offset(self, info: zipfile.ZipInfo, header_len: int) -> int:
        with open(self.path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise TcxError(f"{str(self.path)!r}: corrupt zip (no local header for {info.filename})")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        offset = info.header_offset + 30 + name_len + extra_len + header_len
        size = self.path.stat().st_size
        if offset + self.n * _PIXELS > size:
            raise TcxError(
                f"{str(self.path)!r}: the images need {offset + self.n * _PIXELS} bytes, the file has {size}; "
                "it is truncated: download it again"
            )
        return offset

    @property
    def cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.path.stem}-{self._crc:08x}-{self.n}.bits.npy"

    def _load(self) -> np.ndarray:
        if self.stored:
            return np.memmap(self.path, dtype=np.uint8, mode="r", offset=self._offset, shape=(self.n, IMAGE_SIZE, IMAGE_SIZE))
        cache = self.cache_file
        if cache is not None and cache.is_file():
            try:
                packed = np.load(cache, mmap_mode="r", allow_pickle=False)
                if packed.shape == (self.n, _PACKED) and packed.dtype == np.uint8:
                    return packed
            except (ValueError, OSError):
                pass
            cache.unlink(missing_ok=True)  # a stale or damaged cache is rebuilt
        packed = self._decompress()
        if cache is not None:
            with atomic_path(cache, advice="give cache_dir a folder with room, or cache_dir=None") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, packed, allow_pickle=False)
        return packed

    def _decompress(self) -> np.ndarray:
        packed = np.empty((self.n, _PACKED), dtype=np.uint8)
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(self._info_name) as f:
                _npy_header(f)
                for start in range(0, self.n, _CHUNK):
                    count = min(_CHUNK, self.n - start)
                    buf = f.read(count * _PIXELS)
                    if len(buf) != count * _PIXELS:
                        raise TcxError(f"the images end after {start + len(buf) // _PIXELS} of {self.n}")
                    chunk = np.frombuffer(buf, dtype=np.uint8).reshape(count, _PIXELS)
                    if chunk.max(initial=0) > 1:
                        raise TcxError(f"pixel value {int(chunk.max())} in images {start}..{start + count - 1}; "
                                         "dSprites images are binary (0 or 1)")
                    packed[start : start + count] = np.packbits(chunk, axis=1)
                f.read()  # to the end of the member: zipfile checks its CRC-32 there
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise TcxError(
                f"{str(self.path)!r}: the images could not be read ({type(exc).__name__}: {exc}); the file is "
                f"truncated or corrupt: download it again from {DSPRITES_URL}"
            ) from exc
        return packed

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = self._load()
        return self._array

    def load(self) -> None:
        """Read (or map) the images now, so that file errors surface here."""
        _ = self.array

    def __call__(self, rows: Tensor) -> np.ndarray:
        idx = rows.cpu().numpy()
        arr = self.array
        if self.stored:
            return np.asarray(arr[idx])
        bits = np.unpackbits(arr[idx], axis=1, count=_PIXELS)
        return bits.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.stored or isinstance(self._array, np.memmap):
            state["_array"] = None  # reopened in the worker, not copied
        return state


def open_dsprites_npz(path: str | Path, cache_dir: str | Path | None = None) -> tuple[NpzImages, Tensor, Tensor, tuple[int, ...]]:
    """Check a dSprites ``.npz`` and return ``(images, latents_classes, latents_values, sizes)``.

    Reads the zip directory, the ``imgs`` header and the two small tables (``allow_pickle=False``;
    ``metadata`` is never read), checks keys, dtypes, shapes and the row-major grid, and returns
    an ``NpzImages`` accessor that reads the images on first use.
    """
    path = Path(path)
    require_file(
        path, "dSprites file",
        f"DSpritesFile needs the official {DSPRITES_FILE_NAME} (26 MB) from {DSPRITES_URL}; download it "
        "and pass its path as path=..., or use the procedural tcx.datamodules.DSprites, which needs no file",
    )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TcxError(
            f"{str(path)!r} is not a readable .npz (zip) file ({type(exc).__name__}: {exc}); it is truncated "
            f"or corrupt: download {DSPRITES_FILE_NAME} again from {DSPRITES_URL}"
        ) from exc
    with zf:
        info = _member(zf, "imgs", path)
        try:
            with zf.open(info) as f:
                shape, fortran, dtype = _npy_header(f)
                header_len = f.tell()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise TcxError(f"{str(path)!r}: the header of 'imgs' could not be read ({exc}); the file is corrupt") from exc
        if dtype != np.uint8 or fortran or len(shape) != 3 or tuple(shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
            raise TcxError(
                f"{str(path)!r}: 'imgs' must be uint8 [N, 64, 64] (C order), found {dtype} {list(shape)}"
                + (" in Fortran order" if fortran else "")
            )
        classes = torch.from_numpy(np.ascontiguousarray(_read_small(zf, "latents_classes", path)))
        values = _read_small(zf, "latents_values", path)
    if classes.dtype.is_floating_point or classes.dtype == torch.bool:
        raise TcxError(f"{str(path)!r}: 'latents_classes' must hold integers, found {classes.dtype}")
    sizes = grid_from_classes(classes, FACTOR_NAMES, f"{str(path)!r} latents_classes")
    n = classes.shape[0]
    if shape[0] != n:
        raise TcxError(
            f"{str(path)!r}: 'imgs' holds {shape[0]} images but 'latents_classes' {n} rows; the file is "
            "truncated or corrupt"
        )
    if values.shape != (n, len(FACTOR_NAMES)) or not np.issubdtype(values.dtype, np.floating):
        raise TcxError(
            f"{str(path)!r}: 'latents_values' must be float [{n}, {len(FACTOR_NAMES)}], found {values.dtype} {list(values.shape)}"
        )
    images = NpzImages(path, info, n, header_len, Path(cache_dir) if cache_dir is not None else None)
    return images, classes.long(), torch.from_numpy(values), sizes


class _FileSource:
    """Batched fetch: ``rows -> (x [n, 1, 64, 64] float in {0, 1}, y [n, 6] long)``."""

    def __init__(self, images: NpzImages, sizes: tuple[int, ...]):
        self.images, self.sizes = images, sizes

    def __call__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.from_numpy(self.images(rows)).unsqueeze(1).float()
        return x, grid_factors(rows, self.sizes)


class DSpritesFile(StoredGridMixin, HoldoutMixin, LoaderMixin, pl.LightningDataModule):
    """dSprites from the official ``.npz``: batches ``(x [B, 1, 64, 64] in {0, 1}, y [B, 6] long)``.

    The same interface as the procedural ``DSprites`` (factor declarations, ``sample_factors``,
    ``render``, ``pixel_entropy``, the seeded ``split``), reading images from the file instead of
    drawing them. See docs/datamodules.md#datamodulesdsprites_filepy-dspritesfile for the file, memory use
    and errors.

    Args:
        path: the ``.npz`` file (default ``data/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``).
        batch_size: images per batch. num_workers: DataLoader workers (0: the images are in memory
            or memory-mapped; a batch is one indexing operation). pin_memory: None pins on CUDA.
        val_size: held-out grid indices (a seeded random holdout, the rule of ``DSprites.split``).
        epoch_size: training images per epoch (a fresh seeded subset each epoch), None for all.
        seed: seed of the split and the per-epoch subsets.
        cache_dir: where to keep the bit-packed images between runs (None: no cache).

    Satisfies ``tcx.groundtruth.GroundTruth``. For the official file, ``split`` gives the very
    indices ``DSprites(val_size, seed).split`` gives, and ``factors_to_index`` the same rows.
    """

    FACTOR_NAMES = FACTOR_NAMES

    def __init__(
        self,
        path: str = f"data/{DSPRITES_FILE_NAME}",
        batch_size: int = 256,
        num_workers: int = 0,
        val_size: int = 5000,
        epoch_size: int | None = None,
        seed: int = 0,
        pin_memory: bool | None = None,
        cache_dir: str | None = None,
    ):
        super().__init__()
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("epoch_size", epoch_size, 1, allow_none=True)
        check_int("seed", seed, -(2**62), 2**62)
        self.save_hyperparameters()
        self.path = Path(path)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.val_size, self.epoch_size, self.seed = val_size, epoch_size, seed
        self._images, classes, self._values, self._sizes = open_dsprites_npz(self.path, cache_dir)
        self.num_images: int = classes.shape[0]
        check_int("val_size", val_size, 1, self.num_images - 1, hint=f"{str(self.path)!r} holds {self.num_images} images")
        self.input_shape: tuple[int, int, int] = (1, IMAGE_SIZE, IMAGE_SIZE)
        self._source = _FileSource(self._images, self._sizes)
        self._entropy_cache: dict[tuple[int, int], Tensor] = {}

    # -- declared ground truth ------------------------------------------------------------

    @property
    def is_official_grid(self) -> bool:
        """True when the file holds the full official grid (then indices match ``DSprites``)."""
        return self._sizes == FACTOR_SIZES

    def latent_values(self, factors: Tensor) -> Tensor:
        """The file's ``latents_values`` ``[num, 6]`` (float64: color 1, shape 1..3, scale, orientation
        in radians, posX, posY) of factor indices ``[num, 6]``."""
        return self._values[self.factors_to_index(factors).cpu()]

    def pixel_entropy(self, num_samples: int = 20000, seed: int = 0) -> Tensor:
        """Per-pixel marginal entropy ``H(X_i)`` in nats, ``[1, 64, 64]``: the plug-in estimate of
        ``DSprites.pixel_entropy`` on ``num_samples`` images of uniformly drawn factors."""
        check_int("num_samples", num_samples, 1)
        key = (num_samples, seed)
        if key not in self._entropy_cache:
            g = torch.Generator().manual_seed(int(seed))
            rows = grid_index(self.sample_factors(num_samples, g), self._sizes)
            counts = torch.zeros(self.input_shape, dtype=torch.float64)
            for chunk in rows.split(8192):
                counts += self._source(chunk)[0].sum(dim=0, dtype=torch.float64)
            self._entropy_cache[key] = bernoulli_entropy(counts / num_samples).float()
        return self._entropy_cache[key].clone()

    # -- split and loaders -----------------------------------------------------------------

    def _num_stored(self) -> int:
        return self.num_images

    def setup(self, stage: str | None = None) -> None:
        self._images.load()
        self._build_datasets()
