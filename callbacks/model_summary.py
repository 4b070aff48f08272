"""Lightning's model summary, without a FLOPs column that counted nothing.

Lightning counts FLOPs by running the module's ``example_input_array`` through it; tcx's models
have none (their ``forward`` is the encoder alone, so a count would leave the decoder at 0), and
the column would read 0 on every row. ``ModelSummary`` prints the same table without that column
and its "Total Flops" line whenever the total is 0, and Lightning's own table otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.callbacks import ModelSummary as LightningModelSummary
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count

__all__ = ["ModelSummary"]

# the logger Lightning's summary writes to, so that its handlers and levels apply alike
log = logging.getLogger(LightningModelSummary.__module__)


class ModelSummary(LightningModelSummary):
    """``lightning.pytorch.callbacks.ModelSummary`` (same arguments) that leaves out FLOPs
    when none were counted."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            LightningModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                            total_training_modes, total_flops=total_flops, **summarize_kwargs)
            return
        log.info("\n" + summary_table(summary_data, total_parameters, trainable_parameters, model_size,
                                      total_training_modes))


def summary_table(
    summary_data: list[tuple[str, list[str]]],
    total_parameters: int,
    trainable_parameters: int,
    model_size: float,
    total_training_modes: dict[str, int],
) -> str:
    """The summary's text: its columns but FLOPs, then the totals Lightning prints."""
    cols = [(name, [str(v) for v in values]) for name, values in summary_data if name != "FLOPs"]
    widths = [max([len(name)] + [len(v) for v in values]) for name, values in cols]
    rows = len(cols[0][1]) if cols else 0
    rule = "-" * (sum(widths) + 3 * (len(cols) + 1))
    lines = [" | ".join(name.ljust(w) for (name, _), w in zip(cols, widths)), rule]
    lines += [" | ".join(values[i].ljust(w) for (_, values), w in zip(cols, widths)) for i in range(rows)]
    lines.append(rule)
    totals = [
        (get_human_readable_count(trainable_parameters), "Trainable params"),
        (get_human_readable_count(total_parameters - trainable_parameters), "Non-trainable params"),
        (get_human_readable_count(total_parameters), "Total params"),
        (get_formatted_model_size(model_size), "Total estimated model params size (MB)"),
        (str(total_training_modes.get("train", 0)), "Modules in train mode"),
        (str(total_training_modes.get("eval", 0)), "Modules in eval mode"),
    ]
    lines += [f"{value:<10}{label}" for value, label in totals]
    return "\n".join(lines)
