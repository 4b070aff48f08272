"""Factor grids of ground-truth datasets: each image is one point of the product of the factors'
values, stored (or rendered) in row-major order. Conversions between factor values and row
indices, checked factor tensors, uniform draws, and the mixin for datamodules that store a grid.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from tcx.errors import TcxError
from tcx.validation import check_int, check_shape

__all__ = [
    "check_integer_tensor",
    "validate_grid_factors",
    "grid_index",
    "grid_factors",
    "sample_grid_factors",
    "grid_from_classes",
    "StoredGridMixin",
]


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


def validate_grid_factors(factors, names: Sequence[str], sizes: Sequence[int]) -> Tensor:
    """Check a ``[N, K]`` integer tensor of factor indices against ``sizes``; return it as long.

    The message names the factor, the offending value and row, and the allowed range.
    """
    check_integer_tensor(factors, "factors")
    check_shape("factors", factors, ("N", len(sizes)), hint=f"columns {', '.join(names)}")
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
