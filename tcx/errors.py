"""The error types for what a user got wrong: a bad argument, config, file or checkpoint.

Every one of them is a :class:`UserError`. ``TcxError`` subclasses ``ValueError`` (so callers
catching ``ValueError`` keep working), ``MissingFileError`` ``FileNotFoundError``,
``DivergedError`` ``FloatingPointError``. The ``tcx`` command prints a ``UserError`` (found
anywhere in an exception's chain) as one paragraph and exits 2; every other exception is a bug,
tcx's or the user's code, and keeps its traceback (``tcx/cli/shell_errors.py``).
"""

from __future__ import annotations

__all__ = ["UserError", "TcxError", "MissingFileError", "DivergedError"]


class UserError(Exception):
    """The mark of an error whose message says what the user got wrong and how to fix it."""


class TcxError(ValueError, UserError):
    """Something given to tcx is wrong; the message names it and says how to fix it."""


class MissingFileError(FileNotFoundError, UserError):
    """A file tcx was pointed to (data, config, checkpoint) does not exist; the message names it."""


class DivergedError(FloatingPointError, UserError):
    """Training produced a non-finite loss; the message says where and what to try."""
