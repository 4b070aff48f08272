"""The ``tcx`` command: LightningCLI and the modules only it uses (docs/design.md#the-house).
Nothing outside this package imports it; ``tcx.cli.command`` is the composition root, loaded on
first use, so that ``tcx configs`` answers without loading torch and Lightning."""

from __future__ import annotations

from tcx.cli.launch import main

__all__ = ["DEFAULT_CONFIG", "TcxCLI", "main"]


def __getattr__(name: str):
    if name in ("DEFAULT_CONFIG", "TcxCLI"):
        from tcx.cli import command

        return getattr(command, name)
    raise AttributeError(f"module 'tcx.cli' has no attribute {name!r}")
