"""W&B runs that never hang a run: the one place tcx starts them (``guard_trainer`` calls
:func:`start_wandb_runs`). Online W&B whose server does not accept a connection within
:data:`SERVER_TIMEOUT_S` goes offline at once (:func:`settle_wandb_mode`); ``wandb.init`` itself
is bounded by ``WANDB_INIT_TIMEOUT`` and retried offline when it fails. Either way one line says
so, with how to upload the run later, and training goes on."""

from __future__ import annotations

import math
import os
import socket
import sys
import threading
from urllib.parse import urlparse

from tcx.errors import TcxError

__all__ = ["wandb_loggers", "settle_wandb_mode", "start_wandb_runs", "SERVER_TIMEOUT_S", "INIT_TIMEOUT_S"]

#: seconds to wait for the W&B server to accept a connection before logging offline
SERVER_TIMEOUT_S = 5.0
#: seconds ``wandb.init`` may take (``WANDB_INIT_TIMEOUT`` set by the user wins; W&B's default is 90)
INIT_TIMEOUT_S = 30
UPLOAD_LATER = "logging offline; upload the run later with `wandb sync <run dir>` (the summary at the end names it)"


def wandb_loggers(trainer) -> list:
    """The ``WandbLogger``s of ``trainer``."""
    from lightning.pytorch.loggers import WandbLogger

    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def _address(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of a server URL, or ``None`` for one that names no host or is malformed."""
    try:
        parsed = urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:  # an unclosed [IPv6 address, a port that is not a number or out of range
        return None
    return (parsed.hostname, port) if parsed.hostname else None


def _server_answers(address: tuple[str, int], timeout: float) -> bool:
    answered = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection(address, timeout=timeout):
                answered.set()
        except OSError:
            pass

    # the name lookup itself has no timeout: the whole probe is bounded by a daemon thread
    threading.Thread(target=probe, daemon=True).start()
    return answered.wait(timeout)


def settle_wandb_mode(environ=os.environ, timeout: float = SERVER_TIMEOUT_S) -> str:
    """Online W&B (``WANDB_MODE=online``) whose server (``WANDB_BASE_URL``) does not accept a
    connection within ``timeout`` s, or is no URL, goes offline, with one line; returns the mode."""
    mode = environ.get("WANDB_MODE", "")
    if mode != "online":
        return mode
    url = environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    address = _address(url)
    if address is not None and _server_answers(address, timeout):
        return mode
    environ["WANDB_MODE"] = "offline"
    why = f"not reachable within {timeout:g} s" if address is not None else "is not a server URL (WANDB_BASE_URL)"
    print(f"tcx: W&B server {url!r} {why}: {UPLOAD_LATER}", file=sys.stderr, flush=True)
    return "offline"


def start_wandb_runs(trainer, environ=os.environ) -> None:
    """Start every W&B run of ``trainer`` now: the server probed first (:func:`settle_wandb_mode`,
    on the first process, which alone starts runs), then ``wandb.init`` bounded by
    ``WANDB_INIT_TIMEOUT``; an online init that fails or times out is retried offline."""
    loggers = wandb_loggers(trainer)
    if not loggers:
        return
    timeout = environ.setdefault("WANDB_INIT_TIMEOUT", str(INIT_TIMEOUT_S))
    try:
        seconds = float(timeout)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):  # W&B would stop the run with a traceback of its settings' validation
        raise TcxError(f"WANDB_INIT_TIMEOUT={timeout!r} is not a number of seconds > 0 (how long wandb.init may "
                       f"take); unset it for {INIT_TIMEOUT_S}")
    if trainer.is_global_zero:
        settle_wandb_mode(environ)
    for logger in loggers:
        try:
            logger.experiment  # noqa: B018  (the public property that calls wandb.init)
        except Exception as exc:
            if environ.get("WANDB_MODE") == "offline":
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            print(f"tcx: W&B could not start an online run within {environ['WANDB_INIT_TIMEOUT']} s "
                  f"({type(exc).__name__}: {first}): {UPLOAD_LATER}", file=sys.stderr, flush=True)
            environ["WANDB_MODE"] = "offline"
            import wandb

            wandb.teardown()  # W&B's process-wide settings were made online: made again, from the environment
            logger.experiment  # noqa: B018
