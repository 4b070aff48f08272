"""One folder per run, whatever the logger (used by ``tcx.cli``).

A run's checkpoints, pictures (``media/``, one file per picture and step), predictions and its
``config.yaml`` all live in the run's folder (``tcx.callbacks.run_dir``): the W&B run's
``<save_dir>/<project>/<run id>``, the TensorBoard or CSV ``log_dir``, or, for a run without a
logger, a fresh ``runs/<command>-<time>-<pid>`` that :func:`give_run_a_folder` sets as the
Trainer's ``default_root_dir`` (unless the user chose one). Two runs never share a folder.
A ``file://`` folder is made a local path; ``memory://`` is refused from the shell (it would
vanish with the process); any other fsspec URL takes every file (:func:`tcx.safe_io.atomic_save`).
"""

from __future__ import annotations

import os
import time

from jsonargparse import Namespace
from lightning.pytorch.cli import SaveConfigCallback

from tcx.errors import TcxError
from tcx.safe_io import atomic_save, join_path, storage_path

__all__ = ["RunConfig", "give_run_a_folder", "settle_folder_urls", "RUN_DIR_ENV"]

#: the folder a logger-less run chose, for the processes a multi-GPU run launches after it
RUN_DIR_ENV = "TCX_RUN_DIR"


def _has_logger(value) -> bool:
    if value in (None, False, [], ()):
        return False
    return True


def give_run_a_folder(trainer_config, subcommand: str, environ=os.environ) -> str | None:
    """Set ``default_root_dir`` of a parsed trainer config to a fresh ``runs/<command>-<time>-<pid>``
    when the run has no logger and the user gave no ``default_root_dir``; returns it (``None`` when
    nothing was changed). Processes launched by the run (DDP) reuse the first one's folder. The
    folders the config names first go through :func:`settle_folder_urls`."""
    if trainer_config is not None:
        settle_folder_urls(trainer_config)
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


#: the config keys that name a folder a run writes to (the Trainer's, a ModelCheckpoint's, a logger's)
FOLDER_KEYS = ("default_root_dir", "dirpath", "save_dir", "root_dir", "output_dir")


def settle_folder_urls(config) -> None:
    """In a parsed trainer config (``default_root_dir``, the callbacks' ``dirpath`` and
    ``output_dir``, the logger's ``save_dir``): make every ``file://`` folder a local path, and
    refuse a ``memory://`` one in one line (:class:`tcx.errors.TcxError`): a command's memory
    filesystem, its checkpoints with it, is gone when the command ends. (From Python, where the
    process goes on, ``memory://`` works.)"""
    def visit(node, where: str) -> None:
        if isinstance(node, Namespace):
            items = vars(node).items()
        elif isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            return
        for key, value in list(items):
            name = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
            if isinstance(value, str) and key in FOLDER_KEYS:
                if value.startswith("memory://"):
                    raise TcxError(
                        f"--{name} {value!r} is an in-memory folder: it and the run's checkpoints would vanish when "
                        "this command ends; give a local folder or a URL of lasting storage (s3://, gs://, ...)")
                if value.startswith("file://"):
                    node[key] = str(storage_path(value))
            else:
                visit(value, name)

    visit(config, "trainer")


class RunConfig(SaveConfigCallback):
    """Lightning's SaveConfigCallback writing ``config.yaml`` into the run's own folder
    (``tcx.callbacks.run_dir``) rather than the logger's ``save_dir``, which W&B runs share.
    Give it ``save_to_log_dir=False`` (the CLI does). The file is written whole or not at all, to
    a local folder or an fsspec URL (:func:`tcx.safe_io.atomic_save`); a folder that cannot be
    written is refused, naming it, before training."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        from tcx.callbacks import run_dir
        from tcx.cli.run_safety import check_writable

        folder = run_dir(trainer)
        check_writable(folder, "the run's folder")
        path = join_path(folder, self.config_filename)
        if self.multifile and not isinstance(storage_path(path), str):
            self.parser.save(self.config, str(path), skip_none=False, overwrite=True, multifile=True)
            return
        text = self.parser.dump(self.config, skip_none=False)
        atomic_save(lambda f: f.write(text.encode()), path, advice="point the run elsewhere (--trainer.default_root_dir)")
