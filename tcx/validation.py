"""Argument checks shared by every part of tcx: one message format for a bad number, choice, shape or length.

Each check raises :class:`tcx.errors.TcxError` (a ``ValueError``) naming the argument, the value
it got and what is allowed (with an optional reason, ``hint``), and returns the value in its plain
type. ``bool`` is refused where a number is asked for (``True`` is an ``int`` to Python, never what
a user meant by a count). The metric functions check their numpy/tensor inputs (codes, factors)
in ``tcx/metrics/_validate.py``, in the same message format.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch

from tcx.errors import TcxError

__all__ = [
    "check_int", "check_real", "check_choice", "check_probability",
    "check_tensor", "check_shape", "check_same_shape", "check_length",
]


def _why(hint: str | None) -> str:
    return f" ({hint})" if hint else ""


def check_int(
    name: str, value, low: int | None = None, high: int | None = None, allow_none: bool = False, *,
    hint: str | None = None,
):
    """``value`` as an ``int`` in ``[low, high]`` (either end open when ``None``), or ``None`` when
    ``allow_none``; else ``ValueError`` naming ``name`` and the allowed range (and ``hint``, the
    reason, in parentheses)."""
    if value is None and allow_none:
        return None
    if low is not None and high is not None:
        allowed = f"an integer in [{low}, {high}]"
    elif low is not None:
        allowed = f"an integer >= {low}"
    elif high is not None:
        allowed = f"an integer <= {high}"
    else:
        allowed = "an integer"
    if allow_none:
        allowed += " or None"
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise TcxError(f"{name} must be {allowed}, got {value!r}{_why(hint)}")
    return int(value)


def check_real(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
    hint: str | None = None,
):
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high`` (closed ends unless
    ``low_open``/``high_open``); else ``ValueError`` naming ``name`` and the interval (and
    ``hint``)."""
    if value is None and allow_none:
        return None
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    if low is None and high is None:
        allowed = "a finite number"
    else:
        lo = "-inf" if low is None else f"{float(low)}"
        hi = "inf" if high is None else f"{float(high)}"
        allowed = f"a number in {'(' if low is None else left}{lo}, {hi}{')' if high is None else right}"
    if allow_none:
        allowed += " or None"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and low is not None:
        ok = float(value) > low if low_open else float(value) >= low
    if ok and high is not None:
        ok = float(value) < high if high_open else float(value) <= high
    if not ok:
        raise TcxError(f"{name} must be {allowed}, got {value!r}{_why(hint)}")
    return float(value)


def check_probability(name: str, value, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a ``float`` in ``[low, high]`` (default ``[0, 1]``)."""
    return check_real(name, value, low, high)


def check_choice(
    name: str, value, choices: Sequence[str], *, hint: str | None = None, ignore_case: bool = False
) -> str:
    """``value`` if it is one of ``choices`` (``value.lower()`` when ``ignore_case``); else
    ``ValueError`` listing them."""
    key = str(value).lower() if ignore_case and isinstance(value, str) else value
    if key not in choices:
        raise TcxError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}{_why(hint)}")
    return key


def _dims_text(dims: Sequence) -> str:
    return "[" + ", ".join("..." if d is Ellipsis else str(d) for d in dims) + "]"


def check_tensor(
    name: str,
    value,
    *,
    ndim: int | Sequence[int] | None = None,
    floating: bool = False,
    finite: bool = False,
    nonempty: bool = False,
    hint: str | None = None,
) -> torch.Tensor:
    """``value`` if it is a ``torch.Tensor`` with ``ndim`` dimensions (one of them, given a
    sequence), of a floating dtype when ``floating``, with no NaN or inf when ``finite`` and at
    least one element when ``nonempty``; else ``ValueError`` naming ``name`` and what failed."""
    why = _why(hint)
    if not isinstance(value, torch.Tensor):
        raise TcxError(f"{name} must be a torch.Tensor, got {type(value).__name__}{why}")
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim or ())
    if allowed and value.dim() not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise TcxError(f"{name} must have {want} dimensions, got shape {tuple(value.shape)}{why}")
    if floating and not value.is_floating_point():
        raise TcxError(f"{name} must be a floating-point tensor, got dtype {value.dtype}{why}")
    if nonempty and value.numel() == 0:
        raise TcxError(f"{name} must not be empty, got shape {tuple(value.shape)}{why}")
    if finite and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise TcxError(f"{name} contains {bad} non-finite value(s) (NaN or inf){why}")
    return value


def check_shape(name: str, value, dims: Sequence, *, hint: str | None = None) -> tuple[int, ...]:
    """The shape of ``value`` (a tensor or array) as a tuple, if it matches ``dims``: an ``int``
    entry must be that size, a ``str`` entry (a label such as ``"N"``) may be any size, and the
    same label twice must be the same size; a leading ``...`` allows any leading dimensions. Else
    ``ValueError`` showing ``dims`` and the shape."""
    shape = tuple(int(s) for s in value.shape)
    dims = tuple(dims)
    pattern = dims[1:] if dims and dims[0] is Ellipsis else dims
    ok = len(shape) >= len(pattern) if len(pattern) != len(dims) else len(shape) == len(pattern)
    tail = shape[len(shape) - len(pattern):] if ok else ()
    seen: dict[str, int] = {}
    for want, got in zip(pattern, tail):
        if isinstance(want, str):
            ok = ok and seen.setdefault(want, got) == got
        else:
            ok = ok and int(want) == got
    if not ok:
        raise TcxError(f"{name} must be {_dims_text(dims)}, got shape {shape}{_why(hint)}")
    return shape


def check_same_shape(*named, hint: str | None = None) -> tuple[int, ...]:
    """The common shape of ``(name, tensor)`` pairs; else ``ValueError`` listing every shape (or
    the devices, when the tensors are on more than one)."""
    shapes = [tuple(int(s) for s in t.shape) for _, t in named]
    if len(set(shapes)) > 1:
        listed = " and ".join(f"{n} {s}" for (n, _), s in zip(named, shapes))
        raise TcxError(f"{listed} must have the same shape{_why(hint)}")
    devices = {getattr(t, "device", None) for _, t in named} - {None}
    if len(devices) > 1:
        listed = " and ".join(f"{n} on {getattr(t, 'device', None)}" for n, t in named)
        raise TcxError(f"{listed}: put them on one device{_why(hint)}")
    return shapes[0] if shapes else ()


def check_length(name: str, value, size: int, of: str, *, hint: str | None = None):
    """``value`` if ``len(value) == size``; else ``ValueError`` saying ``name`` has so many
    entries for ``size`` ``of`` (e.g. ``"rows"``)."""
    if len(value) != size:
        raise TcxError(f"{name} has {len(value)} entries for {size} {of}{_why(hint)}")
    return value
