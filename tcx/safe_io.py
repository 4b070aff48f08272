"""Files are data, never code (docs/design.md, "Conventions").

- :func:`load_checkpoint` reads a checkpoint with ``torch.load(weights_only=True)``, so a pickled
  object that runs code is refused instead of run.
- :func:`resolve_class` turns a class path read from a file into a class only when a user could
  name it on the command line, or, when the caller trusts the file (``tcx traverse --trust``), any
  importable subclass of the expected base class.
- :func:`atomic_path` (and :func:`atomic_save` on it, which also writes fsspec URLs), the one
  writer of every file tcx writes, checkpoints included, puts a file under its final name only once
  it is complete; a full disk is one line (:class:`DiskFullError`).

Plain Python and PyTorch: nothing here needs a Trainer.

Details: docs/running.md#tcxsafe_iopy-files-are-data-never-code
"""

from __future__ import annotations

import errno
import importlib
import os
import threading
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import torch

from tcx.errors import MissingFileError, TcxError, UserError

__all__ = ["CheckpointRefused", "DiskFullError", "WriteError", "load_checkpoint", "checkpoint_exists",
           "check_checkpoint_path", "class_spellings", "resolve_class",
           "atomic_path", "atomic_save", "is_disk_full", "disk_full_error", "storage_path", "join_path", "path_exists"]


def _is_url(path) -> bool:
    return "://" in str(path)


def checkpoint_exists(path) -> bool:
    """Whether ``path`` (a local path or an fsspec URL such as ``memory://`` or ``s3://``) is a file."""
    if _is_url(path):
        import fsspec

        fs, inner = fsspec.core.url_to_fs(str(path))
        return fs.isfile(inner)
    return Path(path).is_file()


def check_checkpoint_path(path, name: str = "checkpoint") -> None:
    """Refuse, calling it ``name`` (``--ckpt_path``), a ``path`` that is not a checkpoint file:
    missing (:class:`MissingFileError`), a folder, or an fsspec URL that cannot be reached."""
    where = f"{name} {str(path)!r}"
    if not str(path).strip():  # Path("") is the working folder
        raise MissingFileError(f"{name} is empty; give the path of a .ckpt file written by `tcx fit`")
    try:
        if checkpoint_exists(path):
            return
    except (ImportError, ValueError, OSError) as exc:
        raise TcxError(f"{where} cannot be read ({type(exc).__name__}: {exc})") from None
    if not _is_url(path) and Path(path).is_dir():
        raise TcxError(f"{where} is a directory; give the path of a .ckpt file inside it")
    raise MissingFileError(f"{where} does not exist; give the {'URL' if _is_url(path) else 'path'} of a .ckpt file "
                           "written by `tcx fit` (e.g. runs/tcx/<run>/checkpoints/last.ckpt)")


class CheckpointRefused(TcxError):
    """A checkpoint holds something tcx will not load (code, or a class it cannot vouch for)."""


class DiskFullError(OSError, UserError):
    """A file could not be written because its disk is full; nothing partial was left behind."""


def load_checkpoint(path, map_location="cpu") -> dict:
    """The checkpoint dict at ``path``, read with ``torch.load(weights_only=True)``.

    Raises ``FileNotFoundError`` for a missing file, :class:`CheckpointRefused` for a file that
    holds pickled objects other than tensors, numbers, strings and containers (loading it would
    run code), and ``ValueError`` for a truncated or foreign file.
    """
    p = str(path) if _is_url(path) else Path(path)
    check_checkpoint_path(p)
    try:
        if _is_url(p):  # an fsspec URL, as Lightning reads it
            import fsspec

            with fsspec.open(p, "rb") as f:
                checkpoint = torch.load(f, map_location=map_location, weights_only=True)
        else:
            checkpoint = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or non-checkpoint files
        text = str(exc)
        if "Unsupported global" in text:
            import re

            found = re.search(r"GLOBAL (\S+) was not an allowed global", text)
            what = found.group(1) if found else "a Python object"
            raise CheckpointRefused(
                f"checkpoint {str(p)!r} holds pickled Python objects that loading would run as code "
                f"({what}); tcx loads only tensors and plain values. Use a checkpoint written by "
                "`tcx fit`, or load this file yourself if you trust where it came from"
            ) from None
        raise TcxError(
            f"checkpoint {str(p)!r} could not be read ({type(exc).__name__}: {_first_line(exc)}); the file is "
            "truncated or not a PyTorch checkpoint: use another checkpoint of the run (e.g. last.ckpt)"
        ) from None
    if not isinstance(checkpoint, dict):
        raise TcxError(f"{str(p)!r} is not a Lightning checkpoint (not a dict)")
    return checkpoint


def shown(value: Any, limit: int = 100, quote: bool = False) -> str:
    """A value read from a file (a class path, a run id, a note), as a message shows it: a string
    of printable ASCII as it is (in quotes with ``quote``), anything else as its ``repr`` with every
    control character, terminal escape and non-ASCII character escaped; cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    if quote or not (isinstance(value, str) and text.isascii() and text.isprintable()):
        text = (repr(text) if isinstance(value, str) else text).encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def class_spellings(classes: Iterable[type]) -> dict[str, type]:
    """THE names a user may give each of ``classes``, to the class: its short name, its defining
    path (``tcx.models.vae.VAE``) and the path of every package above its module that exports it
    under its name (``tcx.models.VAE``); looked up in loaded modules only."""
    import sys

    names: dict[str, type] = {}
    for cls in classes:
        parts = cls.__module__.split(".")
        packages = (sys.modules.get(".".join(parts[:i])) for i in range(len(parts) - 1, 0, -1))
        public = [f"{m.__name__}.{cls.__qualname__}" for m in packages if getattr(m, cls.__qualname__, None) is cls]
        names.update(dict.fromkeys([cls.__qualname__, f"{cls.__module__}.{cls.__qualname__}", *public], cls))
    return names


def resolve_class(
    class_path: Any,
    known: dict[str, type] | Iterable[type],
    base: type,
    *,
    what: str,
    source: str,
    trust: bool = False,
    trust_flag: str = "--trust",
) -> type:
    """The class named ``class_path`` (read from the file ``source``) if a user could have named it.

    Accepted without ``trust``: a class of ``known`` (classes, by every name :func:`class_spellings`
    gives them, or a mapping of such names to classes). With ``trust``: any importable class that
    subclasses ``base``.
    Refused otherwise, before anything is imported, with :class:`CheckpointRefused` naming the
    value (escaped, :func:`shown`) and the fix.
    """
    names = known if isinstance(known, dict) else class_spellings(known)
    path = str(class_path) if isinstance(class_path, str) else None
    if path in names:
        return names[path]
    if not trust or path is None:
        short = ", ".join(sorted({c.__qualname__ for c in names.values()}))
        raise CheckpointRefused(
            f"{source} names the {what} {shown(class_path, quote=True)}, which is not one of tcx's ({short}); tcx "
            "builds only classes a user could name on the command line. If the file is yours and the class is your "
            f"own {base.__name__} subclass, pass {trust_flag} to import it"
        )
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CheckpointRefused(f"{source} names the {what} {shown(path, quote=True)}, which cannot be imported here "
                                f"({shown(str(exc), 200)})") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise CheckpointRefused(
            f"{source} names the {what} {shown(path, quote=True)}, which is not a subclass of "
            f"{base.__module__}.{base.__qualname__}; refused even with " + trust_flag
        )
    return cls


class WriteError(OSError, UserError):
    """A file tcx had to write (a checkpoint, the run's config) is not on disk; the message names
    it, why (``reason``, the system's words), and what to do."""

    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(code, message)
        self.reason = reason or message


def storage_path(path) -> Path | str:
    """``path`` as tcx writes it: a local path (a ``file://`` URL included) as a :class:`Path`, any
    other fsspec URL (``s3://``, ``memory://``) as its string."""
    text = str(path)
    if not _is_url(text):
        return Path(path)
    if text.startswith("file://"):
        import fsspec

        return Path(fsspec.core.strip_protocol(text))
    return text


def join_path(folder, *names: str) -> Path | str:
    """``folder/name/...`` for a local folder (a :class:`Path`) or an fsspec URL (a string)."""
    base = storage_path(folder)
    if isinstance(base, Path):
        return base.joinpath(*names)
    return "/".join([base.rstrip("/"), *names])


def path_exists(path) -> bool:
    """Whether ``path`` (a file or folder; local or an fsspec URL) exists."""
    target = storage_path(path)
    if isinstance(target, Path):
        return target.exists()
    import fsspec

    fs, inner = fsspec.core.url_to_fs(target)
    return fs.exists(inner)


@contextmanager
def atomic_path(path, advice: str) -> Iterator[Path]:
    """The one atomic writer of tcx: yield a temporary path beside ``path`` (same folder, so same
    filesystem) for the caller to fill; on success it is synced and renamed over ``path``.

    On any failure the temporary file is removed and an existing ``path`` is left untouched; a full
    disk (``ENOSPC``, ``EDQUOT``) raises :class:`DiskFullError` with a one-line message that ends
    with ``advice`` (where else to write). The temporary name carries the process and thread, so
    concurrent writers of one target never share it; the file gets the permissions of a file
    created normally (the umask's), not a temporary file's 0600. Local paths only (``file://``
    URLs included); :func:`atomic_save` also writes to other fsspec URLs.
    """
    target = storage_path(path)
    if not isinstance(target, Path):
        raise ValueError(f"atomic_path writes local files; {target!r} is a URL: use atomic_save")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if is_disk_full(exc):
            kept = f"the previous {target.name} is intact" if target.exists() else "nothing partial was left"
            raise disk_full_error(target, kept, advice) from None
        raise


def atomic_save(write: Callable[[Any], None], path, advice: str) -> Path | str:
    """Write ``path`` whole or not at all, ``write(file object)`` filling the file; returns where
    it went (:func:`storage_path`). A local path goes through :func:`atomic_path`; any other
    fsspec URL is filled in memory and put in one call (``pipe_file``: one object on an object
    store, so never half an object under the name). A failure to write is a :class:`DiskFullError`
    or a :class:`WriteError` that names the file, why, and ``advice``."""
    target = storage_path(path)
    try:
        if isinstance(target, Path):
            with atomic_path(target, advice=advice) as tmp:
                with open(tmp, "wb") as f:
                    write(f)
            return target
        import io

        import fsspec

        buffer = io.BytesIO()
        write(buffer)
        fs, inner = fsspec.core.url_to_fs(target)
        fs.makedirs(inner.rpartition("/")[0], exist_ok=True)
        fs.pipe_file(inner, buffer.getvalue())
    except Exception as exc:
        if isinstance(exc, UserError):
            raise
        if is_disk_full(exc):
            raise disk_full_error(target, "nothing partial was left", advice) from None
        if not isinstance(exc, OSError):
            raise
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise WriteError(exc.errno or errno.EIO, f"{str(target)!r} was not written ({reason}); give a folder you can "
                         f"write to, or {advice}", reason) from None
    return target


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or its chain is a write that failed for a full disk or quota (``ENOSPC``,
    ``EDQUOT``, or torch's zip writer's "file write failed")."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return True
        if "No space left on device" in str(exc) or "file write failed" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_error(path, kept: str, advice: str) -> DiskFullError:
    """The one-line error of a write to ``path`` that a full disk stopped: what was kept
    (``kept``) and where else to write (``advice``)."""
    folder, _, name = str(path).rpartition("/")
    return DiskFullError(errno.ENOSPC, f"no space left on the disk of {folder!r}: {name} was not written ({kept}); "
                                       f"free space there or {advice}")


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "Unsupported operand" in ln or "invalid load key" in ln]
    return (useful or lines or [type(exc).__name__])[0].strip()
