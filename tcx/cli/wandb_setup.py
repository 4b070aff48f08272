"""W&B for the ``tcx`` command: its mode, a bound on reaching its server, the resumed run's id.

- :func:`configure_wandb_mode`: online only when the user has set W&B up, offline otherwise.
- :func:`settle_wandb_mode`: online W&B whose server does not accept a connection within a few
  seconds goes offline with one line; :func:`start_runs` bounds ``wandb.init`` itself (its
  ``init_timeout``), so a server that accepts and never answers also falls back offline.
- :func:`resume_wandb_run`: a resumed fit continues its checkpoint's W&B run (its id checked as
  data: a bad one is one line and a new run, or a stop with ``TCX_WANDB_RESUME=must``).
- :func:`finish_runs`: the command's run ends with the command; :func:`quiet_wandb_footer` keeps
  W&B's closing history (~40 lines after tcx's summary) off unless the user asks for it.
- :func:`quiet_wandb_warnings`: the one place tcx changes a W&B function (see its docstring).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

from tcx.cli.checkpoint_run import WANDB_ID_KEY, recorded_run

__all__ = [
    "configure_wandb_mode",
    "settle_wandb_mode",
    "start_runs",
    "resume_wandb_run",
    "valid_run_id",
    "finish_runs",
    "quiet_wandb_footer",
    "quiet_wandb_warnings",
    "wandb_loggers",
    "wandb_logger_args",
    "WANDB_ID_KEY",
]


def wandb_loggers(trainer) -> list:
    """The ``WandbLogger``s of ``trainer``: the shell's one lookup of them."""
    from lightning.pytorch.loggers import WandbLogger

    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def wandb_logger_args(config) -> list:
    """The ``init_args`` of each ``WandbLogger`` of a parsed subcommand config (before it is built)."""
    loggers = config.get("trainer", {}).get("logger")
    loggers = loggers if isinstance(loggers, list) else [loggers]
    return [lg.get("init_args") for lg in loggers if hasattr(lg, "get") and lg.get("init_args") is not None
            and str(lg.get("class_path", "")).endswith("WandbLogger")]



WANDB_TIMEOUT_S = 5.0


def configure_wandb_mode(environ=os.environ) -> str:
    """Choose W&B's mode: the user's ``WANDB_MODE`` if set; online if an API key is configured
    (``WANDB_API_KEY`` or an ``api.wandb.ai`` entry in ``~/.netrc``); offline otherwise."""
    if environ.get("WANDB_MODE"):
        return environ["WANDB_MODE"]
    netrc = Path(environ.get("NETRC", Path.home() / ".netrc"))
    has_key = bool(environ.get("WANDB_API_KEY"))
    if not has_key and netrc.is_file():
        try:
            has_key = "api.wandb.ai" in netrc.read_text(errors="ignore")
        except OSError:
            has_key = False
    mode = "online" if has_key else "offline"
    environ["WANDB_MODE"] = mode
    return mode


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


#: a W&B run id tcx passes on from a checkpoint: W&B's own rule (the installed SDK refuses an empty
#: id, surrounding whitespace and any of ``:;,#?/'``), narrowed to what is also safe as a folder
#: name and in a terminal: 1 to 64 ASCII letters, digits, ``_``, ``-`` and ``.``, starting with a
#: letter or digit (W&B's own ids are 8 of ``[a-z0-9]``)
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: what a resumed fit does with its checkpoint's W&B run (``TCX_WANDB_RESUME``): ``allow`` (the
#: default) continues it when the recorded id is valid and starts a new run otherwise, with one
#: line; ``must`` stops (exit 2) when there is no valid id to continue; ``never`` always starts a
#: new run
RESUME_CHOICES = ("allow", "must", "never")


def valid_run_id(value) -> bool:
    """Whether ``value`` (read from a checkpoint) is a W&B run id tcx passes on (:data:`RUN_ID`)."""
    return isinstance(value, str) and RUN_ID.fullmatch(value) is not None


def resume_wandb_run(config, recorded: dict | None = None, environ=os.environ) -> str | None:
    """Give the W&B loggers of a parsed subcommand config (before instantiation) the run id that
    its ``ckpt_path`` was logged to, as WandbLogger's own ``id`` argument (its ``resume`` is
    ``"allow"``), so that a resumed fit continues the same W&B run; returns the id (``None`` when
    there is no checkpoint, it names no valid run, or the user chose an id or version).

    The id is data from a file: one that is not a valid W&B run id (:func:`valid_run_id`) is not
    used; the command says so in one line, escaped, and starts a new W&B run, or stops with
    ``TCX_WANDB_RESUME=must`` (:data:`RESUME_CHOICES`)."""
    from tcx.errors import TcxError
    from tcx.cli.precision import is_first_process
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
        run_id = (recorded or recorded_run(ckpt_path))["wandb_id"]
    except (OSError, ValueError):
        return None  # Lightning reports an unreadable ckpt_path itself
    if valid_run_id(run_id):
        for args in chosen:
            args["id"] = run_id
        return run_id
    if run_id is None:
        problem = "records no W&B run id"
    else:
        problem = f"records the W&B run id {shown(run_id, 80, quote=True)}, which is not a valid W&B run id"
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
    """Set ``WANDB_QUIET=true`` (W&B's own setting: no version header, no closing run history and
    summary) unless the user set ``WANDB_QUIET`` or ``WANDB_SILENT``; returns whether it set it.
    Unlike ``WANDB_SILENT`` it keeps W&B's warnings and errors on the console."""
    if "WANDB_QUIET" in environ or "WANDB_SILENT" in environ:
        return False
    environ["WANDB_QUIET"] = "true"
    return True


def finish_runs(failed: bool) -> None:
    """End the command's W&B run (Lightning leaves it open for notebooks), so that the next
    command in the same process starts its own run and its own folder."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


#: seconds ``wandb.init`` may take before an online run falls back offline (``WANDB_INIT_TIMEOUT``
#: set by the user wins; W&B's own default is 90)
INIT_TIMEOUT_S = 30


def start_runs(trainer, environ=os.environ) -> None:
    """Start the W&B run of every ``WandbLogger`` of ``trainer`` now, bounded: ``wandb.init`` gets
    ``WANDB_INIT_TIMEOUT`` (``INIT_TIMEOUT_S`` unless set), and an online init that fails or times
    out (a server that is down, refuses, or accepts and never answers) is retried offline with one
    line, so that training goes on and the run can be uploaded later with ``wandb sync``."""
    loggers = wandb_loggers(trainer)
    if not loggers:
        return
    environ.setdefault("WANDB_INIT_TIMEOUT", str(INIT_TIMEOUT_S))
    for logger in loggers:
        try:
            logger.experiment  # noqa: B018  (the public property that calls wandb.init)
        except Exception as exc:
            if environ.get("WANDB_MODE") == "offline":
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            print(f"tcx: W&B could not start an online run within {environ['WANDB_INIT_TIMEOUT']} s "
                  f"({type(exc).__name__}: {first}): logging offline; upload the run later with "
                  "`wandb sync <run dir>` (the summary at the end names it)", file=sys.stderr, flush=True)
            environ["WANDB_MODE"] = "offline"
            import wandb

            wandb.teardown()  # W&B's process-wide settings were made online: made again, from the environment
            logger.experiment  # noqa: B018


#: W&B console warnings with nothing to act on: Lightning's WandbLogger always passes
#: ``anonymous``, and the git lookup of the run folder reports a folder W&B has not made yet
KNOWN_UNACTIONABLE_WANDB = (r"The anonymous setting has no effect", r"git root .* does not exist")


def quiet_wandb_warnings() -> None:
    """Drop W&B's console warnings of ``KNOWN_UNACTIONABLE_WANDB``; all others still print.

    THE ONE PLACE tcx changes another library's function: W&B writes these through its own
    terminal printer (``wandb.termwarn``), which no ``warnings`` filter, logging filter or setting
    reaches short of silencing W&B altogether (``WANDB_SILENT``), so ``wandb.termwarn`` is wrapped
    by a filter that passes every other message through unchanged. Idempotent.
    """
    try:
        import wandb
    except ImportError:  # pragma: no cover
        return
    termwarn = wandb.termwarn
    if getattr(termwarn, "tcx_filtered", False):
        return
    pattern = re.compile("|".join(KNOWN_UNACTIONABLE_WANDB))

    def filtered_termwarn(string, *args, **kwargs):
        if not pattern.match(str(string)):
            return termwarn(string, *args, **kwargs)

    filtered_termwarn.tcx_filtered = True
    wandb.termwarn = filtered_termwarn
