"""What a tcx model records in its checkpoints beside the weights (the keys: ``tcx.checkpoint_record``).

:class:`RecordsClasses` (``on_save_checkpoint``) writes the family's and the datamodule's class
paths and the Trainer's precision into every checkpoint, so that ``load_model``
(``models/checkpoints.py``) and ``tcx traverse`` can rebuild any checkpoint on its own and a run
from it keeps its precision.
"""

from __future__ import annotations

from tcx.checkpoint_record import CLASS_KEY, DATAMODULE_CLASS_KEY, PRECISION_KEY
from tcx.models.data import attached_trainer

__all__ = ["CLASS_KEY", "DATAMODULE_CLASS_KEY", "PRECISION_KEY", "RecordsClasses"]


class RecordsClasses:
    """``on_save_checkpoint``: the model's class, the Trainer's datamodule class and precision
    travel with the weights."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"
        trainer = attached_trainer(self)
        if trainer is None:
            return
        dm = getattr(trainer, "datamodule", None)
        if dm is not None:
            checkpoint[DATAMODULE_CLASS_KEY] = f"{type(dm).__module__}.{type(dm).__qualname__}"
        checkpoint[PRECISION_KEY] = str(trainer.precision)
