"""What keeps a Lightning run of a tcx model from losing work or failing silently, for any Trainer
(the ``tcx`` command adds both to every run; a Python script adds them with :func:`guard_trainer`,
with ``callbacks/run_summary.py``'s RunSummary).

- :class:`RunGuard`: ``last.ckpt`` before the end-of-epoch evaluation, ``interrupted.ckpt`` on
  SIGINT and SIGTERM, the RNG states (1 epoch + resume 1 epoch equals 2 epochs), the W&B run and
  the data config in every checkpoint; an empty training loader and an unwritable checkpoint
  folder refused before the first step.
- :class:`DiskFullMessageIO`: every checkpoint written atomically and read back; a failed save
  stops the run at once, in one paragraph.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import zipfile
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from tcx.callbacks.media_logging import run_dir
from tcx.callbacks.wandb_runs import start_wandb_runs, wandb_loggers
from tcx.callbacks.run_summary import RunSummary
from tcx.checkpoint_record import DATA_CONFIG_KEY, RNG_KEY, WANDB_GROUP_KEY, WANDB_ID_KEY
from tcx.errors import TcxError, UserError
from tcx.safe_io import DiskFullError, WriteError, atomic_save, disk_full_error, is_disk_full, join_path, storage_path

#: the signal that stopped the last run in this process ("SIGINT (Ctrl-C)", "SIGTERM"), for the
#: command's exit status (Lightning itself exits 1 after a Ctrl-C)
LAST_INTERRUPT: dict = {"reason": None}


def _collect_rng() -> dict:
    import random

    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        # as tensors and plain values, so that the checkpoint loads with weights_only=True
        "numpy": [str(kind), torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached)],
        "python": [int(version), torch.tensor(state, dtype=torch.int64), gauss],
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _restore_rng(states: dict) -> None:
    import random

    import numpy as np

    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, state, gauss = states["python"]
    random.setstate((version, tuple(int(v) for v in state.tolist()), gauss))
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class RunGuard(pl.Callback):
    """Nothing lost, exact resume, no silent empty run (the module docstring has the list).
    ``checkpoint_before_eval``: write ``last.ckpt`` (with a ModelCheckpoint's ``save_last``) before
    each end-of-epoch evaluation; ``data_config``: the run's ``--data``, recorded in checkpoints."""

    def __init__(self, checkpoint_before_eval: bool = True, data_config: dict | None = None) -> None:
        super().__init__()
        self.checkpoint_before_eval = bool(checkpoint_before_eval)
        self.data_config = data_config
        self._pending_rng: dict | None = None
        self.interrupted_path: Path | None = None
        self.interrupt_reason: str | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = _collect_rng()
        if self.data_config:
            checkpoint[DATA_CONFIG_KEY] = self.data_config
        for logger in wandb_loggers(trainer):
            run_id = logger.version  # the run's id (public; starts no run)
            if run_id:
                checkpoint[WANDB_ID_KEY] = str(run_id)
            group = getattr(logger.experiment, "group", None) if trainer.is_global_zero else None
            if isinstance(group, str) and group:
                checkpoint[WANDB_GROUP_KEY] = group  # an evaluation of the checkpoint joins it

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # the RNG as the interrupted run left it, before the first epoch's data order is drawn;
        # again after a sanity check, whose sampling the interrupted run did not do
        self._pending_rng = checkpoint.get(RNG_KEY)
        if self._pending_rng is not None:
            _restore_rng(self._pending_rng)

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        if self._pending_rng is not None:
            _restore_rng(self._pending_rng)

    def on_train_start(self, trainer, pl_module) -> None:
        self._pending_rng = None

    def on_fit_start(self, trainer, pl_module) -> None:
        # after every callback's setup (the ModelCheckpoint's dirpath is known), before any step
        check_checkpoint_folders(trainer)

    def _dirpath(self, trainer) -> str:
        # a string, not a Path: the folder may be an fsspec URL (memory://, s3://)
        ckpt = trainer.checkpoint_callback
        dirpath = getattr(ckpt, "dirpath", None) if ckpt is not None else None
        return str(dirpath) if dirpath else str(join_path(run_dir(trainer), "checkpoints"))  # the run's folder

    def on_validation_start(self, trainer, pl_module) -> None:
        if not self.checkpoint_before_eval or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        ckpt = trainer.checkpoint_callback
        if ckpt is None or not getattr(ckpt, "save_last", False) or trainer.global_step == 0:
            return
        # the name ModelCheckpoint gives its last checkpoint, from the public metrics and counters
        candidates = {**trainer.callback_metrics, "epoch": trainer.current_epoch, "step": trainer.global_step}
        try:
            path = ckpt.format_checkpoint_name(candidates, ckpt.CHECKPOINT_NAME_LAST)
        except Exception:  # another ModelCheckpoint's naming: its own last checkpoint will do
            return
        # a save (weights_only=False keeps the optimizer and loop state a resume needs)
        trainer.save_checkpoint(path, weights_only=False)
        # the ModelCheckpoint is told that this last.ckpt is its own, through the callback state
        # protocol Lightning uses on resume (state_dict / load_state_dict): it then overwrites the
        # file after the evaluation rather than writing last-v1.ckpt beside it
        ckpt.load_state_dict({**ckpt.state_dict(), "last_model_path": str(path)})

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, UserError) and trainer.world_size > 1:
            # tcx stops the run (a failed save, an unwritable run folder: found on rank 0 alone, which
            # writes): the processes it launched wait for it in a barrier and would hang there; stop
            # them as Lightning does after a Ctrl-C (its launcher's public kill)
            launcher = trainer.strategy.launcher
            if launcher is not None and trainer.is_global_zero:
                launcher.kill(getattr(signal, "SIGKILL", signal.SIGTERM))
            return
        if isinstance(exception, SIGTERMException):
            reason = "SIGTERM"
        elif isinstance(exception, KeyboardInterrupt):
            reason = "SIGINT (Ctrl-C)"
        else:
            return
        self.interrupt_reason = reason
        LAST_INTERRUPT["reason"] = reason
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        path = f"{self._dirpath(trainer).rstrip('/')}/interrupted.ckpt"
        try:
            # Lightning's public save, as its OnExceptionCheckpoint does (every rank calls, rank 0 writes)
            trainer.save_checkpoint(path, weights_only=False)
        except Exception as exc:
            print(f"tcx: {reason}: could not write {path}: {exc}", file=sys.stderr)
            return
        if not trainer.is_global_zero:
            return
        self.interrupted_path = path
        print(f"tcx: stopped by {reason} at epoch {trainer.current_epoch}, step {trainer.global_step}: "
              f"checkpoint {path}; resume with --ckpt_path {path}", file=sys.stderr)

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.global_step == 0 and trainer.num_training_batches == 0:
            dm = getattr(trainer, "datamodule", None)
            name = type(dm).__name__ if dm is not None else "the model"
            raise TcxError(
                f"the training loader of {name} yields no batches: nothing was trained. Check that "
                "its train_dataloader() has data (dataset size, batch_size with drop_last, the data "
                "path) and that --trainer.limit_train_batches is not 0"
            )


def check_writable(path, what: str) -> None:
    """Refuse, naming it, a folder (local or an fsspec URL) where a probe file cannot be written,
    or a local one that is a file or lies under one."""
    import fsspec

    target = storage_path(path)
    try:
        # the nearest part that exists (a parent we may not look into is an OSError, said below)
        blocker = next((p for p in (target, *target.parents) if p.exists()), None) if isinstance(target, Path) else None
        if blocker is not None and not blocker.is_dir():
            where = "is a file" if blocker == target else f"lies under {str(blocker)!r}, which is a file"
            raise TcxError(f"{what} {str(target)!r} {where}; give a folder (it is created if missing)")
        fs, inner = fsspec.core.url_to_fs(str(target))
        probe = f"{inner.rstrip('/')}/.tcx-write-test-{os.getpid()}"
        fs.makedirs(inner, exist_ok=True)
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except OSError as exc:
        raise TcxError(
            f"{what} {str(target)!r} is not writable ({exc.strerror or exc}); give a folder you can write to"
        ) from None


def check_checkpoint_folders(trainer) -> None:
    """Refuse an unwritable ModelCheckpoint ``dirpath``; every process checks, so all stop together."""
    for callback in trainer.checkpoint_callbacks:
        dirpath = getattr(callback, "dirpath", None)
        writes = getattr(callback, "save_top_k", 1) != 0 or getattr(callback, "save_last", False)
        if dirpath and writes:
            check_writable(dirpath, "the checkpoint folder (ModelCheckpoint's dirpath)")


CHECKPOINT_ADVICE = "point the checkpoints elsewhere (--trainer.default_root_dir or ModelCheckpoint's dirpath)"


class DiskFullMessageIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO``, except that what it says it wrote is on disk: a local
    path is written beside its final name and renamed (:func:`tcx.safe_io.atomic_save`; Lightning's
    temporary file may lie on another filesystem), and every save is read back, which catches a
    failure Lightning swallows (its fsspec transaction drops a ``PermissionError``)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        target = storage_path(path)
        try:
            if isinstance(target, Path) and storage_options is None:
                atomic_save(lambda f: torch.save(checkpoint, f), target, advice=CHECKPOINT_ADVICE)
            else:
                super().save_checkpoint(checkpoint, target, storage_options=storage_options)
        except DiskFullError:
            raise
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full_error(target, "nothing partial was left", CHECKPOINT_ADVICE) from None
            if not isinstance(exc, OSError):
                raise
            raise _not_written(target, checkpoint, getattr(exc, "reason", None) or exc.strerror or str(exc)) from None
        problem = checkpoint_file_problem(target)
        if problem:
            raise _not_written(target, checkpoint, problem)


def checkpoint_file_problem(path) -> str | None:
    """Why ``path`` (local or an fsspec URL) is not a readable checkpoint (its zip directory lists
    no ``data.pkl``), or ``None``. Reads the directory only, not the tensors."""
    import fsspec

    try:
        with fsspec.open(str(storage_path(path)), "rb") as handle, zipfile.ZipFile(handle) as archive:
            names = archive.namelist()
    except FileNotFoundError:
        return "the file is not there after the save"
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"the file does not read back as a checkpoint: {exc}"
    if not any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return "the file does not read back as a checkpoint: no data.pkl in it"
    return None


def _not_written(target, checkpoint: dict, why: str) -> WriteError:
    where = ""
    if isinstance(checkpoint, dict) and "global_step" in checkpoint:
        where = f" at epoch {checkpoint.get('epoch')}, step {checkpoint['global_step']}"
    folder, _, name = str(target).rpartition("/")
    return WriteError(errno.EIO, f"checkpoint {str(target)!r} was not written ({why}); the run stops here{where} so that "
                                 f"no more training goes unsaved. Make {folder!r} writable, or {CHECKPOINT_ADVICE}, "
                                 f"and resume from the newest checkpoint that is there (--ckpt_path)")


def check_loggers_writable(trainer) -> None:
    """Refuse a logger folder that cannot be written (W&B would fall back to /tmp without a word)."""
    for logger in trainer.loggers:
        if getattr(logger, "save_dir", None):
            check_writable(logger.save_dir, f"the {type(logger).__name__}'s save_dir (--trainer.logger.init_args.save_dir)")


def guard_trainer(trainer, data_config: dict | None = None, summary: RunSummary | None = None) -> RunSummary:
    """What every ``tcx`` run has, for ``trainer``: :class:`RunGuard` first among the callbacks,
    :class:`DiskFullMessageIO` unless the user chose another CheckpointIO, a :class:`RunSummary`
    (``summary``, or one with its defaults), the loggers' folders checked, and the W&B runs
    started, bounded (``start_wandb_runs``). Returns the Trainer's RunSummary."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = DiskFullMessageIO()
    if not any(isinstance(cb, RunGuard) for cb in trainer.callbacks):
        trainer.callbacks.insert(0, RunGuard(data_config=data_config))
    found = next((cb for cb in trainer.callbacks if isinstance(cb, RunSummary)), None)
    if found is None:
        found = summary or RunSummary()
        trainer.callbacks.append(found)
    check_loggers_writable(trainer)
    start_wandb_runs(trainer)
    return found
