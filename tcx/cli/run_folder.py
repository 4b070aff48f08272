"""One folder per run, whatever the logger (``tcx.callbacks.run_dir``): a run without a logger
gets a fresh ``runs/<command>-<time>-<pid>`` as the Trainer's ``default_root_dir`` unless the user
chose one. A ``file://`` folder is made a local path; ``memory://`` is refused from the shell."""

from __future__ import annotations

import os
import time

from jsonargparse import Namespace
from lightning.pytorch.cli import SaveConfigCallback

from tcx.errors import TcxError
from tcx.safe_io import atomic_save, join_path, storage_path

#: the folder a logger-less run chose, for the processes a multi-GPU run launches after it
RUN_DIR_ENV = "TCX_RUN_DIR"
#: the config keys that name a folder a run writes to (the Trainer's, a callback's, a logger's)
FOLDER_KEYS = ("default_root_dir", "dirpath", "save_dir", "root_dir", "output_dir")


def give_run_a_folder(trainer_config, subcommand: str, environ=os.environ) -> str | None:
    """Settle the folder URLs of a parsed trainer config, and give a run with no logger and no
    ``default_root_dir`` a fresh one (a launched process, ``LOCAL_RANK > 0``, its rank 0's)."""
    if trainer_config is None:
        return None
    settle_folder_urls(trainer_config)
    if trainer_config.get("logger", True) not in (None, False, [], ()) or trainer_config.get("default_root_dir"):
        return None
    launched = int(environ.get("LOCAL_RANK", "0") or 0) > 0
    folder = environ.get(RUN_DIR_ENV) if launched else None
    if not folder:
        folder = os.path.join("runs", f"{subcommand}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        environ[RUN_DIR_ENV] = folder
    trainer_config["default_root_dir"] = folder
    return folder


def settle_folder_urls(config) -> None:
    """Make every ``file://`` folder (:data:`FOLDER_KEYS`) of a parsed trainer config a local path;
    refuse a ``memory://`` one, which would vanish, checkpoints and all, when the command ends."""
    def visit(node, where: str) -> None:
        node = vars(node) if isinstance(node, Namespace) else node
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in list(items):
            name = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
            if not (isinstance(value, str) and key in FOLDER_KEYS):
                visit(value, name)
            elif value.startswith("memory://"):
                raise TcxError(
                    f"--{name} {value!r} is an in-memory folder: it and the run's checkpoints would vanish when "
                    "this command ends; give a local folder or a URL of lasting storage (s3://, gs://, ...)")
            elif value.startswith("file://"):
                node[key] = str(storage_path(value))

    visit(config, "trainer")


class RunConfig(SaveConfigCallback):
    """Lightning's SaveConfigCallback writing ``config.yaml`` whole or not at all into the run's own
    folder (not the logger's ``save_dir``, which W&B runs share), refusing one that cannot be written."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        from tcx.callbacks import run_dir
        from tcx.callbacks.run_guard import check_writable

        folder = run_dir(trainer)
        check_writable(folder, "the run's folder")
        text = self.parser.dump(self.config, skip_none=False)
        atomic_save(lambda f: f.write(text.encode()), join_path(folder, self.config_filename),
                    advice="point the run elsewhere (--trainer.default_root_dir)")
