"""One folder per run, whatever the logger (used by ``tcx.cli``).

A run's checkpoints, pictures (``media/``, one file per picture and step), predictions and its
``config.yaml`` all live in the run's folder (``tcx.callbacks.run_dir``): the W&B run's
``<save_dir>/<project>/<run id>``, the TensorBoard or CSV ``log_dir``, or, for a run without a
logger, a fresh ``runs/<command>-<time>-<pid>`` that :func:`give_run_a_folder` sets as the
Trainer's ``default_root_dir`` (unless the user chose one). Two runs never share a folder.
"""

from __future__ import annotations

import os
import time

from lightning.pytorch.cli import SaveConfigCallback

__all__ = ["RunConfig", "give_run_a_folder", "RUN_DIR_ENV"]

#: the folder a logger-less run chose, for the processes a multi-GPU run launches after it
RUN_DIR_ENV = "TCX_RUN_DIR"


def _has_logger(value) -> bool:
    if value in (None, False, [], ()):
        return False
    return True


def give_run_a_folder(trainer_config, subcommand: str, environ=os.environ) -> str | None:
    """Set ``default_root_dir`` of a parsed trainer config to a fresh ``runs/<command>-<time>-<pid>``
    when the run has no logger and the user gave no ``default_root_dir``; returns it (``None`` when
    nothing was changed). Processes launched by the run (DDP) reuse the first one's folder."""
    if trainer_config is None or _has_logger(trainer_config.get("logger", True)):
        return None
    if trainer_config.get("default_root_dir"):
        return None
    # a process that a multi-GPU run launched (LOCAL_RANK > 0) joins the folder of its rank 0
    launched = int(environ.get("LOCAL_RANK", "0") or 0) > 0
    folder = environ.get(RUN_DIR_ENV) if launched else None
    if not folder:
        folder = os.path.join("runs", f"{subcommand}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        environ[RUN_DIR_ENV] = folder
    trainer_config["default_root_dir"] = folder
    return folder


class RunConfig(SaveConfigCallback):
    """Lightning's SaveConfigCallback writing ``config.yaml`` into the run's own folder
    (``tcx.callbacks.run_dir``) rather than the logger's ``save_dir``, which W&B runs share.
    Give it ``save_to_log_dir=False`` (the CLI does)."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        from tcx.callbacks import run_dir

        folder = run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(folder / self.config_filename), skip_none=False, overwrite=True,
                         multifile=self.multifile)
