"""The ``tcx`` console script's entry: ``tcx configs`` answered without loading torch and
Lightning, every other command handed to the composition root, :mod:`tcx.cli.command`."""

from __future__ import annotations

import sys

from tcx.cli.pipe import stdout_closed


def main(args=None) -> None:
    """The ``tcx`` console script: ``tcx configs`` here, every other command in
    :func:`tcx.cli.command.main`."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["configs"]:
        from tcx.cli.experiments import describe_experiments

        try:
            print(describe_experiments(), flush=True)
        except BrokenPipeError:
            stdout_closed()
        raise SystemExit(0)
    from tcx.cli.command import main as run

    run(argv)
