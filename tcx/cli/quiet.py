"""Known warnings that no user can act on, silenced by message; every other stays visible."""

from __future__ import annotations

import logging
import warnings

from tcx.cli.wandb_setup import quiet_wandb_warnings

KNOWN_UNACTIONABLE_WARNINGS = (
    # main() passes argv to LightningCLI itself (to add the default classes)
    r"LightningCLI's args parameter is intended to run from within Python",
    r".*isinstance\(treespec, LeafSpec\)",
    # the model summary counts parameters only; the precision is the hardware's choice
    r"Precision (bf16|16)-mixed is not supported by the model summary",
    # a checkpoint of another run folder: every run has its own, so its top-k bookkeeping is rightly dropped
    r"The dirpath has changed from",
)
#: Lightning's info-level advertisements (litlogger, litmodels), by their opening words
KNOWN_UNACTIONABLE_LOG_LINES = ("💡 Tip: For seamless cloud",)


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(KNOWN_UNACTIONABLE_LOG_LINES)


def quiet_known_warnings() -> None:
    """Silence the known unactionable warnings and log lines (and W&B's), by message. Idempotent."""
    for message in KNOWN_UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in log.filters):
            log.addFilter(_DropLines())
    quiet_wandb_warnings()
