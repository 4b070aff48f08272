"""The ``tcx`` command, the shell over tcx's core: LightningCLI and the modules only it uses.

Nothing outside this package imports it (tests/test_structure.py); ``tcx.cli.command`` is the
composition root. docs/design.md#the-house lists the modules.
"""

from tcx.cli.command import DEFAULT_CONFIG, TcxCLI, main

__all__ = ["DEFAULT_CONFIG", "TcxCLI", "main"]
