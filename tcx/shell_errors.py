"""How the ``tcx`` command reports a failure: one paragraph for a user's error, a traceback for a bug.

- :func:`describe_error`: the one-paragraph message of a :class:`tcx.errors.UserError` found in an
  exception's chain (tcx's own checks, a refused checkpoint, a missing data file, a full disk),
  or ``None`` for anything else, which keeps its traceback.
- :func:`user_code_frame`: for such a bug, the innermost frame in the user's own code (their
  datamodule or model, not tcx, Python or an installed package), also found in the traceback
  text a DataLoader worker sends back, so the command can name their file and line first.
- :func:`parse_error_line`: a jsonargparse parse error as one line, with the closest valid keys.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import sysconfig
from pathlib import Path

from tcx.errors import UserError
from tcx.safe_io import is_disk_full

__all__ = ["describe_error", "user_code_frame", "parse_error_line"]

_TCX_ROOT = Path(__file__).resolve().parents[1]
_NOT_USER = tuple(
    str(Path(p).resolve())
    for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")} if p
)
_OWN = tuple(str(_TCX_ROOT / d) for d in ("tcx", "models", "datamodules", "callbacks"))


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        if exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            exc = None if exc.__suppress_context__ else exc.__context__


def describe_error(exc: BaseException) -> str | None:
    """The one-paragraph message for a user's error in ``exc``'s chain (the innermost
    :class:`UserError`, which names the value; or a full disk), ``None`` for anything else."""
    found = None
    for e in _chain(exc):
        if isinstance(e, UserError):
            found = e
    if found is None:
        if is_disk_full(exc):
            e = next((e for e in _chain(exc) if isinstance(e, OSError)), exc)
            where = f" writing {e.filename}" if getattr(e, "filename", None) else ""
            return (f"no space left on the disk{where} ({getattr(e, 'strerror', None) or e}); free space there or point the run "
                    "elsewhere (--trainer.default_root_dir, or the logger's save_dir)")
        return None
    # an OSError built as (errno, message) prints "[Errno N] message": the message alone
    text = found.strerror if isinstance(found, OSError) and len(found.args) >= 2 and found.strerror else str(found)
    return " ".join(text.split())


def _is_user_file(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    path = str(Path(filename).resolve())
    if path.startswith(_OWN) or path.startswith(_NOT_USER) or f"{os.sep}site-packages{os.sep}" in path:
        return False
    return not path.startswith(str(Path(sys.prefix).resolve()))


_TRACEBACK_LINE = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def user_code_frame(exc: BaseException) -> tuple[str, int, str] | None:
    """``(file, line, function)`` of the innermost frame of ``exc`` (or of its chain, or of a
    worker's traceback quoted in its message) that is in the user's own code; ``None`` if none."""
    found = None
    for e in _chain(exc):
        tb = e.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if _is_user_file(code.co_filename):
                found = (code.co_filename, tb.tb_lineno, code.co_name)
            tb = tb.tb_next
        for filename, line, func in _TRACEBACK_LINE.findall(str(e)):
            if _is_user_file(filename):
                found = (filename, int(line), func)
        if found is not None:
            return found
    return found


def parse_error_line(message: str, known_keys) -> str:
    """A jsonargparse parse error as one line: the option and what is wrong with it, and, for an
    unknown option, the closest valid ones among ``known_keys`` ("did you mean")."""
    message = str(message)
    parents = [k for k in re.findall(r'Parser key "([^"]+)"', message)]
    unknown = (re.search(r"does not accept option '([^']+)'", message)
               or re.search(r"unrecognized arguments: --?([^\s=]+)", message))
    option = re.search(r"Option '([^']+)' is not accepted", message)
    typed = re.search(r"Expected an? <class '([^']+)'>\. Got value: (.+)", message)
    key = None
    if unknown:
        key = unknown.group(1)
        text = f"unknown option --{key}"
    elif option:
        key = ".".join([*parents[:1], option.group(1)])
        text = f"unknown option --{key}"
    elif typed:
        name = ".".join(dict.fromkeys(parents)) or "a value"
        text = f"--{name} expects {typed.group(1)}, got {typed.group(2).strip()!r}"
    else:
        lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
        text = next((ln for ln in lines if not ln.startswith(("usage:", "Parser key"))), lines[0] if lines else message)
        text = text if len(text) <= 300 else text[:297] + "..."
    if key:
        close = difflib.get_close_matches(key, list(known_keys), n=2, cutoff=0.7)
        if close:
            text += f"; did you mean {' or '.join('--' + c for c in close)}?"
    return text
