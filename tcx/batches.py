"""The one reader of a batch: ``split_batch`` turns what a DataLoader yields into ``(x, y)``.

A batch may be a tensor ``x``; a tuple or list ``(x,)``, ``(x, y)`` or longer (the rest is ignored),
as ``TensorDataset`` gives; or a dict with the inputs under ``"x"`` (or ``"image"``) and the labels
or factors, if any, under ``"y"`` (or ``"label"``, ``"factors"``). Models and callbacks read
batches only through it; anything else is refused with one line naming what was found.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from tcx.errors import TcxError

__all__ = ["split_batch", "X_KEYS", "Y_KEYS"]

X_KEYS = ("x", "image")
Y_KEYS = ("y", "label", "factors")


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"a dict with keys {sorted(map(str, value))}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(_describe(v) for v in value[:3])})"
    return f"a {type(value).__name__}"


def split_batch(batch) -> tuple[Tensor, Tensor | None]:
    """``(x, y)`` of a batch (module docstring); ``y`` is ``None`` when the batch has none."""
    x = y = None
    if isinstance(batch, Tensor):
        x = batch
    elif isinstance(batch, (tuple, list)) and batch:
        x = batch[0]
        y = batch[1] if len(batch) > 1 else None
    elif isinstance(batch, Mapping):
        x = next((batch[k] for k in X_KEYS if k in batch), None)
        y = next((batch[k] for k in Y_KEYS if k in batch), None)
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise TcxError(
            f"tcx cannot read this batch: it is {_describe(batch)}; a batch must be a tensor x, a tuple "
            f"(x,) or (x, y), or a dict with x under one of {', '.join(map(repr, X_KEYS))} (and labels under "
            f"one of {', '.join(map(repr, Y_KEYS))}), x a tensor [B, ...]"
        )
    return x, (y if isinstance(y, Tensor) else None)
