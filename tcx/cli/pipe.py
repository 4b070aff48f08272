"""Output to a reader that went away (``tcx configs | head -1``): nothing failed."""

from __future__ import annotations

import os
import sys


def stdout_closed() -> None:
    """After a ``BrokenPipeError`` on stdout: stdout goes to /dev/null, so that Python's own flush
    at exit does not raise again on the closed pipe."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
