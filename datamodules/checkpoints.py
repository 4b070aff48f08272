"""The data a tcx checkpoint was trained on, rebuilt from what the checkpoint records.

:func:`load_datamodule` is ``tcx.models.load_model``'s counterpart: the checkpoint is read as data
and its datamodule class is built only when it is one of :func:`tcx_datamodules` (or, with
``trust``, any ``LightningDataModule``). ``tcx traverse`` uses it. Details: docs/datamodules.md.
"""

from __future__ import annotations

import inspect

import lightning.pytorch as pl

from tcx.checkpoint_record import recorded_run
from tcx.errors import TcxError
from tcx.safe_io import load_checkpoint, resolve_class, shown

__all__ = ["load_datamodule", "tcx_datamodules"]


def tcx_datamodules() -> list[type]:
    """Every LightningDataModule defined in tcx's own datamodule modules (``tcx.datamodules.*``,
    all of which the package loads): those a checkpoint may name without ``trust``."""
    found, todo = [], list(pl.LightningDataModule.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("tcx.datamodules.") and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


def load_datamodule(path, trust: bool = False, checkpoint: dict | None = None, stage: str | None = "validate"):
    """The datamodule the checkpoint at ``path`` (a local path or an fsspec URL) records, built with
    its recorded arguments (those its class declares) and set up for ``stage`` (``None``: not set
    up). ``checkpoint``: the file as ``tcx.safe_io.load_checkpoint`` already read it. Raises
    :class:`tcx.safe_io.CheckpointRefused` for a class a user could not name (``trust`` accepts
    their own) and :class:`tcx.errors.TcxError` when the checkpoint names no datamodule or it
    cannot be built."""
    checkpoint = load_checkpoint(str(path)) if checkpoint is None else checkpoint
    recorded = recorded_run(checkpoint, str(path))["data"]
    if not recorded:
        raise TcxError("the checkpoint names no datamodule")
    cls = resolve_class(recorded["class_path"], tcx_datamodules(), pl.LightningDataModule, what="datamodule",
                        source="the checkpoint", trust=trust)
    args = {k: v for k, v in dict(recorded.get("init_args") or {}).items() if not str(k).startswith("_")}
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        args = {k: v for k, v in args.items() if k in params}  # only the arguments it declares
    try:
        datamodule = cls(**args)
        if stage is not None:
            datamodule.setup(stage)
    except Exception as exc:
        raise TcxError(f"its datamodule {shown(recorded['class_path'])} could not be built ({type(exc).__name__}: "
                       f"{shown(str(exc), 300)})") from exc
    return datamodule
