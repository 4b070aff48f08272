"""What a tcx model logs of a step, and on which training steps it builds it.

:func:`term_values` names the terms of one step (``{stage}/{name}``, all in nats, ``rate/z{j}``
per latent, ``rate_anchors``/``rate_others`` for a model with anchors); :func:`logs_this_step`
is the Trainer's own logger cadence (``log_every_n_steps``), so that the values are built only
on the training steps the loggers write, plus the last of each epoch and of the run.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["batch_number", "logs_this_step", "term_values"]


def batch_number(trainer, batch_idx: int) -> int | None:
    """The index (from 0, across epochs) of the training batch ``batch_idx`` of the current epoch,
    or ``None`` for a loader without a length."""
    per_epoch = trainer.num_training_batches
    return trainer.current_epoch * int(per_epoch) + batch_idx if math.isfinite(per_epoch) else None


def logs_this_step(trainer, number: int | None) -> bool:
    """Whether the training batch ``number`` (:func:`batch_number`) is one whose values the
    Trainer's loggers write: every ``log_every_n_steps``-th batch, the last batch of each epoch
    and of the run, and every batch where the Trainer's rule cannot be followed from outside."""
    every = int(trainer.log_every_n_steps)
    if every == 0:
        return False
    # with accumulation the Trainer counts optimizer steps and no public attribute says which
    # batch it writes; a loader without a length gives no number: log every batch (exact)
    if int(getattr(trainer, "accumulate_grad_batches", 1)) > 1 or number is None:
        return True
    # the Trainer's own rule: batch k (from 0, across epochs) is written when (k + 1) % every == 0
    if (number + 1) % every == 0 or trainer.should_stop or trainer.is_last_batch:
        return True
    return 0 < trainer.max_steps <= trainer.global_step + 1


def term_values(stage: str, out, anchors: tuple[int, ...] = ()) -> dict[str, Tensor]:
    """The values of a step's :class:`tcx.models.base.StepOutput` ``out`` to log, detached, keyed
    ``{stage}/{name}``: the bound's terms, the loss, the family's extra and reported terms, the
    rate of each latent, and with ``anchors`` the anchors' rate against the others'."""
    logged = {f"{stage}/{k}": v.detach() for k, v in out.terms.scalars().items()}
    logged[f"{stage}/loss"] = out.loss.detach()
    for k, v in (*out.extra.items(), *out.reported.items()):
        logged[f"{stage}/{k}"] = v.detach()
    rates = out.terms.rate_per_latent.detach()
    for j in range(rates.numel()):
        logged[f"{stage}/rate/z{j}"] = rates[j]
    if anchors:
        mask = torch.zeros(rates.numel(), dtype=torch.bool, device=rates.device)
        mask[list(anchors)] = True
        logged[f"{stage}/rate_anchors"] = rates[mask].sum()
        logged[f"{stage}/rate_others"] = rates[~mask].sum()
    return logged
