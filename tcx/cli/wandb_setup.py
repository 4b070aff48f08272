"""W&B for the ``tcx`` command: online only when set up (:func:`configure_wandb_mode`; the runs
start bounded, ``tcx.callbacks.start_wandb_runs``); a resumed fit continues its checkpoint's run
(:func:`resume_wandb_run`, the id checked as data); each command's run ends with it; W&B's closing
history and unactionable warnings are kept quiet."""

from __future__ import annotations

import os
import re
import secrets
import string
import sys
from pathlib import Path

from tcx.cli.checkpoint_run import read_recorded_run

#: a W&B run id tcx passes on from a checkpoint: W&B's own rule, narrowed to what is also safe as a
#: folder name and in a terminal (W&B's own ids are 8 of ``[a-z0-9]``)
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: ``TCX_WANDB_RESUME``: ``allow`` (continue a valid recorded id, else a new run with one line),
#: ``must`` (stop, exit 2, without a valid id), ``never`` (always a new run)
RESUME_CHOICES = ("allow", "must", "never")
#: W&B console warnings with nothing to act on: Lightning's WandbLogger always passes
#: ``anonymous``, and the git lookup of the run folder reports a folder W&B has not made yet
KNOWN_UNACTIONABLE_WANDB = (r"The anonymous setting has no effect", r"git root .* does not exist")


def wandb_logger_args(config) -> list:
    """The ``init_args`` of each ``WandbLogger`` of a parsed subcommand config."""
    loggers = config.get("trainer", {}).get("logger")
    loggers = loggers if isinstance(loggers, list) else [loggers]
    return [lg.get("init_args") for lg in loggers if hasattr(lg, "get") and lg.get("init_args") is not None
            and str(lg.get("class_path", "")).endswith("WandbLogger")]


def configure_wandb_mode(environ=os.environ) -> str:
    """W&B's mode: the user's ``WANDB_MODE``, else online with an API key (``WANDB_API_KEY`` or
    ``api.wandb.ai`` in ``~/.netrc``), else offline."""
    if environ.get("WANDB_MODE"):
        return environ["WANDB_MODE"]
    netrc = Path(environ.get("NETRC", Path.home() / ".netrc"))
    has_key = bool(environ.get("WANDB_API_KEY"))
    if not has_key and netrc.is_file():
        try:
            has_key = "api.wandb.ai" in netrc.read_text(errors="ignore")
        except OSError:
            has_key = False
    environ["WANDB_MODE"] = "online" if has_key else "offline"
    return environ["WANDB_MODE"]


def valid_run_id(value) -> bool:
    """Whether ``value`` (read from a checkpoint) is a W&B run id tcx passes on (:data:`RUN_ID`)."""
    return isinstance(value, str) and RUN_ID.fullmatch(value) is not None


def resume_wandb_run(config, recorded: dict | None = None, environ=os.environ) -> str | None:
    """Give the W&B loggers of a parsed config with a ``ckpt_path`` the run id the checkpoint was
    logged to (WandbLogger's ``id``), unless the user chose one; returns it. An invalid recorded id
    is said in one line, escaped, and a new run starts (or a stop, :data:`RESUME_CHOICES`)."""
    from tcx.cli.precision import is_first_process
    from tcx.errors import TcxError
    from tcx.safe_io import shown

    ckpt_path = config.get("ckpt_path")
    wandb_args = wandb_logger_args(config)
    if not ckpt_path or not wandb_args:
        return None
    choice = environ.get("TCX_WANDB_RESUME", "allow").strip().lower() or "allow"
    if choice not in RESUME_CHOICES:
        raise TcxError(f"TCX_WANDB_RESUME={shown(choice, 40, quote=True)} is not one of {', '.join(RESUME_CHOICES)}")
    chosen = [args for args in wandb_args if args.get("id") is None and args.get("version") is None]
    if not chosen or choice == "never":
        return None
    try:
        run_id = (recorded or read_recorded_run(ckpt_path))["wandb_id"]
    except (OSError, ValueError):
        return None  # Lightning reports an unreadable ckpt_path itself
    if valid_run_id(run_id):
        for args in chosen:
            args["id"] = run_id
        return run_id
    problem = ("records no W&B run id" if run_id is None else
               f"records the W&B run id {shown(run_id, 80, quote=True)}, which is not a valid W&B run id")
    if choice == "must":
        raise TcxError(f"--ckpt_path {shown(str(ckpt_path), 200)} {problem}, and TCX_WANDB_RESUME=must asks to "
                       "continue its run; give the run's id (--trainer.logger.init_args.id ID), or unset "
                       "TCX_WANDB_RESUME to start a new W&B run")
    if run_id is not None and is_first_process():
        print(f"tcx: the checkpoint {problem} (1-64 letters, digits, _ - .): logging to a new W&B run; "
              "TCX_WANDB_RESUME=must stops instead, --trainer.logger.init_args.id ID names the run",
              file=sys.stderr, flush=True)
    return None


def quiet_wandb_footer(environ=os.environ) -> bool:
    """Set ``WANDB_QUIET=true`` (no closing history; warnings still print) unless the user set
    ``WANDB_QUIET`` or ``WANDB_SILENT``; returns whether it set it."""
    if "WANDB_QUIET" in environ or "WANDB_SILENT" in environ:
        return False
    environ["WANDB_QUIET"] = "true"
    return True


def finish_runs(failed: bool) -> None:
    """End the command's W&B run (Lightning leaves it open), so the next command starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


def quiet_wandb_warnings() -> None:
    """Drop W&B's console warnings of ``KNOWN_UNACTIONABLE_WANDB``; all others still print.

    THE ONE PLACE tcx changes another library's function: W&B prints these through
    ``wandb.termwarn``, which no warnings or logging filter reaches, so it is wrapped. Idempotent."""
    import wandb

    termwarn = wandb.termwarn
    if getattr(termwarn, "tcx_filtered", False):
        return
    pattern = re.compile("|".join(KNOWN_UNACTIONABLE_WANDB))

    def filtered_termwarn(string, *args, **kwargs):
        if not pattern.match(str(string)):
            return termwarn(string, *args, **kwargs)

    filtered_termwarn.tcx_filtered = True
    wandb.termwarn = filtered_termwarn


def label_wandb_run(config, subcommand: str, recorded: dict | None) -> str | None:
    """Give each W&B logger of a parsed subcommand config absolute folders, and ``job_type`` (the
    command) and ``group`` unless the user set them: a fit's group is its own run id, a command
    with a checkpoint (``recorded``) joins the group of the run that wrote it. Returns the group."""
    chosen = [args for args in wandb_logger_args(config) if args]
    if not chosen:
        return None
    recorded = recorded or {}
    inherited = recorded.get("wandb_group") or recorded.get("wandb_id")
    group = None
    for args in chosen:
        for key in ("save_dir", "dir"):
            # W&B writes a run's records from its service process, which keeps the working folder
            # of the process's first run: a relative folder would miss a later run's records
            if args.get(key) and "://" not in str(args[key]):
                args[key] = os.path.abspath(args[key])
        if args.get("job_type") is None:
            args["job_type"] = subcommand
        if args.get("group") is None:
            if inherited:
                args["group"] = str(inherited)
            elif subcommand == "fit":
                if args.get("id") is None and args.get("version") is None:
                    # a W&B sweep agent names the run it starts (WANDB_RUN_ID): keep its id
                    args["id"] = os.environ.get("WANDB_RUN_ID") or new_run_id()
                args["group"] = str(args.get("id") or args.get("version"))
        group = args.get("group")
    return group


def new_run_id() -> str:
    """A fresh W&B run id of W&B's own form: 8 characters of ``[a-z0-9]``."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
