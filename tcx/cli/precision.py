"""The run's precision as the ``tcx`` command settles it: the user's, the checkpoint's, or the
hardware's choice (``tcx.hardware.default_precision``), said on the first process."""

from __future__ import annotations

import os

from tcx.hardware import default_precision

__all__ = ["resolve_precision", "is_first_process", "TRAINER_PRECISIONS"]


def is_first_process(environ=os.environ) -> bool:
    """Whether this is the run's first process (local rank 0 on node 0), the one that prints tcx's
    notes; the processes a multi-GPU or multi-node launch starts carry their ranks in the
    environment (``LOCAL_RANK``, ``NODE_RANK``), before any Trainer exists."""
    return environ.get("LOCAL_RANK", "0") == "0" and environ.get("NODE_RANK", "0") == "0"


#: the precisions a Lightning Trainer takes (what a checkpoint's recorded precision may be)
TRAINER_PRECISIONS = frozenset({"64-true", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true",
                                "transformer-engine", "transformer-engine-float16"})


def resolve_precision(config, recorded: dict | None = None) -> str:
    """Set ``trainer.precision`` in a parsed config when it is unset (``null``, the default), print
    the choice and why on rank 0, and return it in words. An explicit precision is kept and said to
    be the user's. With a checkpoint (``recorded``, ``tcx.cli.checkpoint_run.recorded_run``), a run
    resumed or evaluated from it keeps the precision it was trained in (``recorded["precision"]``);
    a checkpoint that does not record one (older tcx) gets the hardware's choice, said so. Otherwise
    the hardware's choice (:func:`tcx.hardware.default_precision`)."""
    trainer = config.get("trainer") if hasattr(config, "get") else None
    if trainer is None:
        return ""
    given = trainer.get("precision")
    held = (recorded or {}).get("precision")
    if given is not None:
        note = f"{given} (given explicitly)"
    elif recorded is not None and isinstance(held, str) and held in TRAINER_PRECISIONS:
        trainer["precision"] = held
        note = f"{held} (the checkpoint's: its run trained in it; --trainer.precision changes it)"
    else:
        precision, reason = default_precision(trainer.get("accelerator", "auto"))
        trainer["precision"] = precision
        note = f"{precision} (chosen by the hardware: {reason})"
        if recorded is not None:
            from tcx.safe_io import shown

            why = ("does not record its precision" if held is None
                   else f"records the unknown precision {shown(held, 60, quote=True)}")
            note += f"; the checkpoint {why}"
    if is_first_process():
        print(f"tcx: precision {note}", flush=True)
    return note
