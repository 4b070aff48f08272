"""The ``tcx`` command: LightningCLI and the modules only it uses (docs/design.md#the-house).
Nothing outside this package imports it; ``tcx.cli.command`` is the composition root."""

from tcx.cli.command import DEFAULT_CONFIG, TcxCLI, main

__all__ = ["DEFAULT_CONFIG", "TcxCLI", "main"]
