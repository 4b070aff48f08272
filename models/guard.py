"""The non-finite loss guard: training stops with one clear paragraph before any update.

:func:`check_finite` costs one reduction per step; only when it fails does it look further: NaN
or inf in the batch is reported as the data's fault, a diverged loss gets advice that follows
the Trainer's precision. :meth:`tcx.models.base.CorExVAE.training_terms` calls it on every
training loss; FactorVAE also on its discriminator's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tcx.errors import DivergedError
from tcx.models.data import attached_trainer

__all__ = ["check_finite"]


def check_finite(model, value: Tensor, terms=None, what: str = "the loss", x: Tensor | None = None) -> None:
    """Raise :class:`tcx.errors.DivergedError` (a ``FloatingPointError``) when ``value``, a loss of
    ``model``, is not finite; ``terms`` (the bound's ``CorExTerms``) and the batch ``x`` make the
    message precise."""
    if torch.isfinite(value).all():
        return
    name, step = type(model).__name__, model.global_step
    if x is not None and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise DivergedError(
            f"{name}: the data batch at global step {step} holds {bad} NaN or inf values (x of shape "
            f"{tuple(x.shape)}), so {what} is {value.item()}: the data, not the optimizer, is at fault. Fix or "
            "filter the datamodule's data (tcx.datamodules.check_datamodule checks a datamodule); no weights "
            "were updated."
        )
    detail = ""
    if terms is not None:
        detail = f" (reconstruction={terms.reconstruction.item():.4g}, rate={terms.rate.item():.4g} nats)"
    trainer = attached_trainer(model)
    precision = str(trainer.precision) if trainer is not None else "32-true"
    lr = model.hparams.lr
    if "16" in precision:
        advice = f"Lower the learning rate (--model.lr, now {lr:g}) or train in precision='32-true' (now {precision!r})."
    else:
        advice = (f"Lower the learning rate (--model.lr, now {lr:g}) or clip the gradients "
                  f"(--trainer.gradient_clip_val 1.0); the precision ({precision!r}) is already full.")
    raise DivergedError(
        f"{name}: {what} is {value.item()} at global step {step}{detail}. Training stopped before the "
        f"weights were updated; checkpoints already written are intact. {advice}"
    )
