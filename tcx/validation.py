"""Argument checks shared by every part of tcx: one message format for a bad number or choice.

Each check raises :class:`tcx.errors.TcxError` (a ``ValueError``) naming the argument, the value it got and what is allowed, and
returns the value in its plain Python type. ``bool`` is refused where a number is asked for
(``True`` is an ``int`` to Python, never what a user meant by a count).
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

from tcx.errors import TcxError

__all__ = ["check_int", "check_real", "check_choice", "check_probability"]


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


def check_choice(name: str, value, choices: Sequence[str], *, hint: str | None = None) -> str:
    """``value`` if it is one of ``choices``; else ``ValueError`` listing them."""
    if value not in choices:
        raise TcxError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}{_why(hint)}")
    return value
