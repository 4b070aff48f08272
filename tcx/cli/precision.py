"""The run's precision: the user's, the checkpoint's, or the hardware's choice (``tcx.hardware``)."""

from __future__ import annotations

import os

from tcx.hardware import default_precision

#: the precisions a Lightning Trainer takes (what a checkpoint's recorded precision may be)
TRAINER_PRECISIONS = frozenset({"64-true", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true",
                                "transformer-engine", "transformer-engine-float16"})


def is_first_process(environ=os.environ) -> bool:
    """Whether this is local rank 0 on node 0 (known from the environment before any Trainer exists)."""
    return environ.get("LOCAL_RANK", "0") == "0" and environ.get("NODE_RANK", "0") == "0"


def resolve_precision(config, recorded: dict | None = None) -> str:
    """Set an unset ``trainer.precision`` of a parsed config: the checkpoint's (``recorded``, from
    ``tcx.checkpoint_record.recorded_run``) when it records a valid one, else the hardware's
    choice. Prints the choice and why on the first process and returns it in words."""
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
