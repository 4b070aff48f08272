"""The one error type for what a user got wrong: a bad argument, config, file or checkpoint.

``TcxError`` subclasses ``ValueError`` so that callers catching ``ValueError`` keep working. The
``tcx`` command prints a ``TcxError`` as one paragraph and exits 2; every other exception is a bug
(tcx's or the user's code) and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["TcxError"]


class TcxError(ValueError):
    """Something given to tcx is wrong; the message names it and says how to fix it."""
