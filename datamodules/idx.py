"""The IDX format of the MNIST files: a big-endian header (magic ``0x0000 08 nd``, then ``nd``
32-bit sizes) and the ``uint8`` bytes. ``read_idx`` checks a file and returns its shape, naming
what is wrong with a truncated, compressed or foreign file; ``write_idx`` writes one atomically.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from tcx.errors import TcxError
from tcx.safe_io import atomic_path

__all__ = ["read_idx", "write_idx"]


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a ``uint8`` array in the IDX format of the MNIST files (big-endian header: magic
    ``0x0000 08 nd``, then ``nd`` 32-bit sizes, then the bytes). Used by the tests; handy for
    converting one's own digits."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_path(path, advice="write it to a disk with room") as tmp:
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
