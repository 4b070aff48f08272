"""How the ``tcx`` command reports a failure: one paragraph for a user's error, a traceback for a bug.

:func:`describe_error` gives the paragraph of a :class:`tcx.errors.UserError` in an exception's
chain (a DataLoader worker's included), of a full disk, or of running out of memory while building
the model or a batch; ``None`` for a bug, for which :func:`user_code_frame` finds the innermost
frame in the user's own Python files (never tcx's, an installed package's or a compiled one's).
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import traceback
from pathlib import Path

import torch

from tcx.errors import UserError
from tcx.safe_io import is_disk_full

_TCX_ROOT = Path(__file__).resolve().parents[2]
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
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def describe_error(exc: BaseException) -> str | None:
    """The paragraph for a user's error in ``exc``'s chain (the innermost), else ``None``."""
    users = [e for e in _chain(exc) if isinstance(e, UserError)]
    if users:
        found = users[-1]
        # an OSError built as (errno, message) prints "[Errno N] message": the message alone
        text = found.strerror if isinstance(found, OSError) and len(found.args) >= 2 and found.strerror else str(found)
        return " ".join(_worker_message(text).split())
    oom = out_of_memory_message(exc)
    if oom is not None or not is_disk_full(exc):
        return oom
    e = next((e for e in _chain(exc) if isinstance(e, OSError)), exc)
    where = f" writing {e.filename}" if getattr(e, "filename", None) else ""
    return (f"no space left on the disk{where} ({getattr(e, 'strerror', None) or e}); free space there or point the run "
            "elsewhere (--trainer.default_root_dir, or the logger's save_dir)")


_WORKER = "Original Traceback (most recent call last):"


def _worker_message(text: str) -> str:
    """A DataLoader worker's error (quoting its traceback) as the worker exception's message."""
    if _WORKER not in text:
        return text
    head, _, quoted = text.partition(_WORKER)
    lines = quoted.splitlines()
    last = max((i for i, ln in enumerate(lines) if ln and not ln[0].isspace()), default=None)
    if last is None:
        return text
    message = "\n".join(lines[last:]).partition(": ")[2] or lines[last]
    worker = re.search(r"in (DataLoader worker process \d+)", head)
    return f"{message} (in {worker.group(1)})" if worker else message


#: RuntimeError texts of torch's allocators when an allocation fails (CPU, CUDA, MPS)
_ALLOCATION_FAILED = re.compile(r"can't allocate memory|CUDA out of memory|MPS backend out of memory")
_ASKED_BYTES = re.compile(r"tried to allocate (\d+) bytes", re.IGNORECASE)
_ASKED_UNITS = re.compile(r"tried to allocate ([\d.]+ [KMGT]i?B)", re.IGNORECASE)


def out_of_memory_message(exc: BaseException) -> str | None:
    """The paragraph for running out of memory while building the model or a batch: the size asked
    and what to lower. ``None`` otherwise: memory that ran out elsewhere may be a bug."""
    error = next((e for e in _chain(exc) if isinstance(e, (MemoryError, torch.OutOfMemoryError))
                  or (isinstance(e, RuntimeError) and _ALLOCATION_FAILED.search(str(e)))), None)
    if error is None:
        return None
    ours = [(f, str(Path(f.f_code.co_filename).resolve())) for f, _ in traceback.walk_tb(error.__traceback__)]
    text = str(error)
    found = _ASKED_BYTES.search(text)
    asked = (f"{int(found.group(1)) / 2**30:.1f} GiB" if found else
             (_ASKED_UNITS.search(text).group(1) if _ASKED_UNITS.search(text) else None))
    asked = f"it asked for {asked} at once, more than is free" if asked else "more memory than is free"
    model = [f for f, path in ours if f.f_code.co_name == "__init__"
             and (path.startswith(str(_TCX_ROOT / "models")) or path == str(_TCX_ROOT / "tcx" / "networks.py"))]
    if model:
        built = model[0].f_locals.get("self")
        name = type(built).__name__ if built is not None else "the model"
        latents = model[0].f_locals.get("latent_dim")
        size = f" with {latents} latents" if isinstance(latents, int) else ""
        return (f"out of memory building the model {name}{size}: {asked}; lower --model.latent_dim (or "
                "--model.hidden_dims, or give smaller inputs)")
    batch = [f for f, path in ours if path.startswith(str(_TCX_ROOT / "datamodules"))
             or f"{os.sep}torch{os.sep}utils{os.sep}data{os.sep}" in path
             or (path.startswith(str(_TCX_ROOT / "models")) and f.f_code.co_name in _STEPS)]
    if not batch and "DataLoader worker" not in text:
        return None
    # the batch a model's step was given (the outermost of its frames that holds one)
    inputs = next((f.f_locals["x"] for f, path in ours if path.startswith(str(_TCX_ROOT / "models"))
                   and hasattr(f.f_locals.get("x"), "shape") and len(f.f_locals["x"].shape) >= 1), None)
    size = f" of {inputs.shape[0]} inputs {tuple(inputs.shape[1:])}" if inputs is not None else ""
    return (f"out of memory on a batch{size}: {asked}; lower --data.batch_size (or the model's size: "
            "--model.latent_dim, --model.hidden_dims)")


#: a model's methods that run on a batch
_STEPS = frozenset({"training_step", "validation_step", "test_step", "predict_step", "training_terms", "step_terms",
                    "bound", "forward", "encode", "decode", "_evaluation_terms", "_unpack"})


def _is_user_file(filename: str) -> bool:
    # a Python file that exists: a compiled library's frame (h5py/h5f.pyx, a .so) is never the
    # user's, whatever folder the command runs in
    if not filename or filename.startswith("<") or not filename.endswith((".py", ".pyw")):
        return False
    if not Path(filename).is_file():
        return False
    path = str(Path(filename).resolve())
    if path.startswith(_OWN) or path.startswith(_NOT_USER) or f"{os.sep}site-packages{os.sep}" in path:
        return False
    return not path.startswith(str(Path(sys.prefix).resolve()))


_TRACEBACK_LINE = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def user_code_frame(exc: BaseException) -> tuple[str, int, str] | None:
    """``(file, line, function)`` of the innermost frame of ``exc``'s chain (or of a worker's
    traceback quoted in its message) in the user's own code, else ``None``."""
    for e in _chain(exc):
        found = [(f.f_code.co_filename, line, f.f_code.co_name) for f, line in traceback.walk_tb(e.__traceback__)]
        found += [(file, int(line), func) for file, line, func in _TRACEBACK_LINE.findall(str(e))]
        found = [where for where in found if _is_user_file(where[0])]
        if found:
            return found[-1]
    return None
