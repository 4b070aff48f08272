"""What keeps a ``tcx fit`` run from losing work or failing noisily (used by ``tcx.cli``).

- :class:`AtomicCheckpointIO`: every checkpoint is written beside its target and renamed into
  place (``tcx.safe_io.atomic_save``), so a crash or a full disk never leaves a truncated file
  under a checkpoint's name, and a full disk is one line.
- :class:`RunGuard`, a callback the CLI adds to every fit: it writes ``last.ckpt`` before the
  end-of-epoch evaluation (which may take minutes), ``interrupted.ckpt`` on SIGINT and SIGTERM,
  the RNG states (torch, CUDA, numpy, Python) and the W&B run id into every checkpoint, and
  restores them on resume so that 1 epoch + resume 1 epoch equals 2 epochs; it refuses an empty
  training loader.
- :func:`settle_wandb_mode`: online W&B that cannot reach its server within a few seconds goes
  offline with a one-line notice; :func:`check_writable`: a logger folder that cannot be written
  is refused before training.
- :func:`describe_error`: the one-paragraph message the CLI prints for a user's error (a bad
  value, a missing file, a bad config), instead of a traceback.

This module is part of the CLI's composition root: it imports Lightning, never models,
datamodules or callbacks.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from tcx.checkpoint_run import DATA_CONFIG_KEY
from tcx.errors import MissingFileError, TcxError
from tcx.safe_io import CheckpointRefused, DiskFullError, atomic_save

__all__ = [
    "AtomicCheckpointIO",
    "RunGuard",
    "settle_wandb_mode",
    "check_writable",
    "describe_error",
    "TerminationWatch",
    "RNG_KEY",
    "WANDB_ID_KEY",
    "SIGTERMException",
    "TcxError",
]

RNG_KEY = "tcx_rng_states"
WANDB_ID_KEY = "tcx_wandb_run_id"
WANDB_TIMEOUT_S = 5.0


# --------------------------------------------------------------------------------------------
# checkpoints


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose writes are atomic: a temporary file in the target's folder,
    synced, then ``os.replace`` (``tcx.safe_io.atomic_save``); a full disk raises
    ``tcx.safe_io.DiskFullError`` with a one-line message and leaves no partial file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_save(lambda f: torch.save(checkpoint, f), path)


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


def _wandb_loggers(trainer) -> list:
    return [lg for lg in trainer.loggers if type(lg).__name__ == "WandbLogger"]


class RunGuard(pl.Callback):
    """Nothing lost, exact resume, no silent empty run (the module docstring has the list).

    Args:
        checkpoint_before_eval: write ``last.ckpt`` (in the ModelCheckpoint's folder, when it has
            ``save_last``) at the end of each training epoch, before the validation and the
            callbacks' end-of-epoch evaluation run.
    """

    def __init__(self, checkpoint_before_eval: bool = True, data_config: dict | None = None) -> None:
        super().__init__()
        self.checkpoint_before_eval = bool(checkpoint_before_eval)
        #: the run's ``--data`` config (plain values), recorded in every checkpoint so that a
        #: later ``--ckpt_path`` command rebuilds the same data (tcx/checkpoint_run.py)
        self.data_config = data_config
        self._pending_rng: dict | None = None
        #: path of the checkpoint written on an interrupt, if any
        self.interrupted_path: Path | None = None
        self.interrupt_reason: str | None = None

    # ---- state in every checkpoint
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = _collect_rng()
        if self.data_config:
            checkpoint[DATA_CONFIG_KEY] = self.data_config
        for logger in _wandb_loggers(trainer):
            run_id = getattr(logger, "_id", None) or getattr(getattr(logger, "_experiment", None), "id", None)
            if run_id:
                checkpoint[WANDB_ID_KEY] = str(run_id)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # the RNG goes back to where the interrupted run was when it wrote the checkpoint, before
        # the first epoch's data order is drawn (Lightning creates that iterator before
        # on_train_start); again after a sanity check, whose sampling the interrupted run did not do
        self._pending_rng = checkpoint.get(RNG_KEY)
        if self._pending_rng is not None:
            _restore_rng(self._pending_rng)

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        if self._pending_rng is not None:
            _restore_rng(self._pending_rng)

    def on_train_start(self, trainer, pl_module) -> None:
        self._pending_rng = None

    # ---- nothing lost
    def _dirpath(self, trainer) -> Path:
        ckpt = trainer.checkpoint_callback
        dirpath = getattr(ckpt, "dirpath", None) if ckpt is not None else None
        return Path(dirpath) if dirpath else Path(trainer.default_root_dir) / "checkpoints"

    def on_validation_start(self, trainer, pl_module) -> None:
        if not self.checkpoint_before_eval or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        ckpt = trainer.checkpoint_callback
        if ckpt is None or not getattr(ckpt, "save_last", False) or trainer.global_step == 0:
            return
        try:
            path = ckpt.format_checkpoint_name(ckpt._monitor_candidates(trainer), ckpt.CHECKPOINT_NAME_LAST)
        except Exception:  # another ModelCheckpoint's naming: its own last checkpoint will do
            return
        # a save, not a load: Lightning's save-side weights_only=False writes the optimizer and loop
        # state too, which resuming needs; every load in tcx stays weights_only=True (tcx.safe_io)
        trainer.save_checkpoint(path, weights_only=False)
        # the ModelCheckpoint then overwrites this same file after the evaluation (it would
        # otherwise think the name taken and write last-v1.ckpt)
        ckpt.last_model_path = str(path)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            reason = "SIGTERM"
        elif isinstance(exception, KeyboardInterrupt):
            reason = "SIGINT (Ctrl-C)"
        else:
            return
        self.interrupt_reason = reason
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        path = self._dirpath(trainer) / "interrupted.ckpt"
        try:
            # Lightning's public save, as its OnExceptionCheckpoint does: every rank that got the
            # signal calls it, rank 0 writes. A save, not a load: weights_only=False keeps the
            # optimizer and loop state for the resume
            trainer.save_checkpoint(path, weights_only=False)
        except Exception as exc:
            print(f"tcx: {reason}: could not write {path}: {exc}", file=sys.stderr)
            return
        if not trainer.is_global_zero:
            return
        self.interrupted_path = path
        print(f"tcx: stopped by {reason} at epoch {trainer.current_epoch}, step {trainer.global_step}: "
              f"checkpoint {path}; resume with --ckpt_path {path}", file=sys.stderr)

    # ---- no silent empty run
    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.global_step == 0 and getattr(trainer.fit_loop, "max_batches", None) == 0:
            dm = getattr(trainer, "datamodule", None)
            name = type(dm).__name__ if dm is not None else "the model"
            raise TcxError(
                f"the training loader of {name} yields no batches: nothing was trained. Check that "
                "its train_dataloader() has data (dataset size, batch_size with drop_last, the data "
                "path) and that --trainer.limit_train_batches is not 0"
            )


def resume_wandb_run(config) -> str | None:
    """Give the W&B loggers of a parsed subcommand config (before instantiation) the run id that
    its ``ckpt_path`` was logged to, as WandbLogger's own ``id`` argument (its ``resume`` is
    ``"allow"``), so that a resumed fit continues the same W&B run; returns the id (``None`` when
    there is no checkpoint, it names no run, or the user chose an id or version)."""
    ckpt_path = config.get("ckpt_path")
    loggers = config.get("trainer", {}).get("logger")
    loggers = loggers if isinstance(loggers, list) else [loggers]
    wandb_args = [lg.get("init_args") for lg in loggers
                  if hasattr(lg, "get") and str(lg.get("class_path", "")).endswith("WandbLogger")]
    if not ckpt_path or not wandb_args:
        return None
    from tcx.safe_io import load_checkpoint

    try:
        run_id = load_checkpoint(ckpt_path).get(WANDB_ID_KEY)
    except (OSError, ValueError):
        return None  # Lightning reports an unreadable ckpt_path itself
    if not run_id:
        return None
    for args in wandb_args:
        if args is not None and args.get("id") is None and args.get("version") is None:
            args["id"] = str(run_id)
    return str(run_id)


class TerminationWatch:
    """Remembers a SIGTERM the whole time the CLI runs: outside ``fit`` it stops the process at
    once (exit 143); inside, Lightning's own handler (which calls this one too) stops the fit at
    the next batch, :class:`RunGuard` writes ``interrupted.ckpt``, and the CLI exits 143."""

    def __init__(self) -> None:
        self.received = False
        self.in_fit = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum, frame) -> None:
        self.received = True
        if not self.in_fit:
            raise SystemExit(128 + signal.SIGTERM)


# --------------------------------------------------------------------------------------------
# W&B


def _reachable(url: str, timeout: float) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result = {"ok": False}

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result["ok"] = True
        except OSError:
            pass

    # the name lookup itself has no timeout: bound the whole probe by a daemon thread
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return result["ok"]


def settle_wandb_mode(environ=os.environ, timeout: float = WANDB_TIMEOUT_S) -> str:
    """When W&B is to run online (``WANDB_MODE=online``) but its server (``WANDB_BASE_URL``,
    default ``https://api.wandb.ai``) does not accept a connection within ``timeout`` seconds,
    switch to offline with a one-line notice on how to upload later; returns the mode."""
    mode = environ.get("WANDB_MODE", "")
    if mode != "online":
        return mode
    url = environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    if _reachable(url, timeout):
        return mode
    environ["WANDB_MODE"] = "offline"
    print(f"tcx: W&B server {url} not reachable within {timeout:g} s: logging offline; upload the run "
          "later with `wandb sync <run dir>` (the summary at the end names it)", file=sys.stderr)
    return "offline"


def check_writable(path, what: str) -> None:
    """Refuse a folder that cannot be created or written, naming it (``ValueError``)."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".tcx-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TcxError(
            f"{what} {str(p)!r} is not writable ({exc.strerror or exc}); give a folder you can write to"
        ) from None


# --------------------------------------------------------------------------------------------
# errors


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        if exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            exc = None if exc.__suppress_context__ else exc.__context__


def describe_error(exc: BaseException) -> str | None:
    """The one-paragraph message for a user's error found anywhere in ``exc``'s chain (a tcx
    ``ValueError``, a missing file, a full disk, a refused checkpoint, a diverged run); ``None``
    for anything else (a bug, which keeps its traceback)."""
    user_types = (ValueError, FileNotFoundError, FloatingPointError, DiskFullError, CheckpointRefused,
                  NotADirectoryError, PermissionError)
    found = None
    for e in _chain(exc):
        if isinstance(e, user_types):
            found = e  # the innermost one names the value
    if found is None:
        return None
    if isinstance(found, OSError) and found.strerror and not isinstance(found, DiskFullError) and found.filename:
        text = f"{found.strerror}: {found.filename}"
    elif isinstance(found, DiskFullError):
        text = found.strerror or str(found)
    else:
        text = str(found)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# wiring (called by tcx.cli)


def prepare_trainer(trainer, data_config: dict | None = None) -> None:
    """Atomic checkpoint writes (unless the user chose another CheckpointIO) and a
    :class:`RunGuard` (recording ``data_config`` in the checkpoints) first among the callbacks."""
    strategy = trainer.strategy
    if type(getattr(strategy, "checkpoint_io", None)) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()
    if not any(isinstance(cb, RunGuard) for cb in trainer.callbacks):
        trainer.callbacks.insert(0, RunGuard(data_config=data_config))


def check_loggers_writable(trainer) -> None:
    """Refuse, before training, a logger whose folder cannot be written (W&B would otherwise fall
    back to the system's temporary folder without a word)."""
    for logger in trainer.loggers:
        save_dir = getattr(logger, "save_dir", None)
        if save_dir:
            name = type(logger).__name__
            check_writable(save_dir, f"the {name}'s save_dir (--trainer.logger.init_args.save_dir)")


def check_argument_order(argv: list[str]) -> None:
    """Refuse ``--data.X ... --data Class`` (and ``--model``): a class flag starts that class's
    arguments afresh, so its own arguments must come after it; say so instead of jsonargparse's
    "Option 'X' is not accepted"."""
    for group in ("--model", "--data"):
        first_class = None
        for i, arg in enumerate(argv):
            flag = arg.partition("=")[0]
            if flag == group:
                first_class = i
                break
        if first_class is None:
            continue
        early = [a.partition("=")[0] for a in argv[:first_class] if a.startswith(group + ".")]
        if early:
            name = argv[first_class].partition("=")[2] or (argv[first_class + 1] if first_class + 1 < len(argv) else "")
            raise TcxError(
                f"{', '.join(early)} comes before {group} {name}: put the class first, then its "
                f"arguments ({group} {name} {early[0]} ...), since {group} NAME starts that class's "
                "arguments afresh"
            )


def check_config_files(argv: list[str]) -> None:
    """Every ``-c``/``--config`` file exists and is valid YAML; the error names the file, the line
    and the column (the parser's own message names none)."""
    import yaml

    from tcx.experiments import flag_values, is_inline_config

    for _, flag, path in flag_values(argv, ("-c", "--config")):
        if not path or is_inline_config(path):
            continue  # YAML given inline: jsonargparse parses (and reports) it
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(f"config file {path!r} does not exist (given with {flag})")
        try:
            yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TcxError(f"config file {path!r} is not valid YAML{where}: {problem}; fix the file "
                             "(`tcx fit --print_config` shows a valid one)") from None
