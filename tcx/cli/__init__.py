"""The ``tcx`` command: LightningCLI and the modules only it uses (docs/design.md#the-house).
Nothing outside this package imports it; ``tcx.cli.command`` is the composition root, loaded on
first use, so that ``tcx configs`` answers without loading torch and Lightning."""

from __future__ import annotations

import os
import sys

__all__ = ["DEFAULT_CONFIG", "TcxCLI", "main"]


def main(args=None) -> None:
    """The ``tcx`` console script (:func:`tcx.cli.command.main`)."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv == ["configs"]:
        from tcx.cli.experiments import describe_experiments

        try:
            print(describe_experiments(), flush=True)
        except BrokenPipeError:
            # the reader went away (`tcx configs | head -1`): nothing failed; keep Python's own
            # flush at exit from raising again on the closed pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0)
    from tcx.cli.command import main as run

    run(argv)


def __getattr__(name: str):
    if name in ("DEFAULT_CONFIG", "TcxCLI"):
        from tcx.cli import command

        return getattr(command, name)
    raise AttributeError(f"module 'tcx.cli' has no attribute {name!r}")
