"""Sending pictures, animations and tables to the Trainer's loggers, and to files.

``log_media`` is the one place that does it: W&B (``wandb.Image``, ``wandb.Video`` in GIF format,
``wandb.Table``), TensorBoard (``add_image``; tables as markdown ``add_text``), and files in
``media_dir(trainer)``: ``<name>_step<global_step, 6 digits>.png`` (images), ``.gif``, ``.csv``
(tables), for every item whatever the loggers took; a run keeps the latest and a few evenly spaced
files per picture (``TCX_KEEP_PICTURES``, :func:`thin_files`). A picture that fails to render or
to log is reported with a warning (``report``) and the run goes on. Files are written whole or not at
all, to a local folder or to the fsspec URL of the run's root (``tcx.safe_io.atomic_save``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from lightning.pytorch.utilities import rank_zero_warn

from tcx import visualize as viz
from tcx.safe_io import atomic_save, join_path, storage_path
from tcx.validation import check_choice, check_int

__all__ = ["Media", "log_media", "log_scalars", "write_media_files", "media_dir", "run_dir", "report", "step_suffix",
           "thin_files", "kept_steps", "KEEP_PICTURES_ENV", "KEEP_PICTURES"]

#: how many files of each picture a run keeps (the latest, the first and evenly spaced ones between;
#: 0 keeps all): the environment variable, and its default
KEEP_PICTURES_ENV, KEEP_PICTURES = "TCX_KEEP_PICTURES", 6


def step_suffix(step: int) -> str:
    """``_step000123``: the file name's step, zero-padded to 6 digits so that names sort by step."""
    return f"_step{int(step):06d}"


def kept_steps(steps: Sequence[int], keep: int) -> list[int]:
    """The steps of ``steps`` a run keeps with at most ``keep`` files: all when there are few
    enough (or ``keep`` is 0); else the latest and the first with every ``stride``-th after it, the
    stride the steps' common spacing doubled until they fit. Applied after every new file, the
    kept files stay evenly spaced over the whole run."""
    steps = sorted(set(int(s) for s in steps))
    if keep <= 0 or len(steps) <= keep:
        return steps
    if keep == 1:
        return steps[-1:]
    first, latest = steps[0], steps[-1]
    stride = math.gcd(*(s - first for s in steps[1:]))
    while True:
        kept = [s for s in steps if (s - first) % stride == 0 and s != latest]
        if len(kept) + 1 <= keep:
            return kept + [latest]
        stride *= 2


def thin_files(directory, names: Sequence[str], keep: int | None = None) -> list[Path]:
    """Delete the older ``<name>_step<N>.<ext>`` files of a local ``directory`` beyond ``keep`` per
    name and extension (:func:`kept_steps`; ``keep`` None: ``TCX_KEEP_PICTURES``, default 6);
    returns the deleted paths. Folders at an fsspec URL are left whole."""
    if keep is None:
        raw = os.environ.get(KEEP_PICTURES_ENV, "").strip() or str(KEEP_PICTURES)
        keep = check_int(KEEP_PICTURES_ENV, int(raw) if raw.isdigit() else raw, 0)
    if keep <= 0 or not isinstance(directory, Path) or not directory.is_dir():
        return []
    deleted: list[Path] = []
    for name in set(names):
        pattern = re.compile(re.escape(name) + r"_step(\d+)\.(\w+)")
        found: dict[str, dict[int, Path]] = {}
        for path in directory.glob(f"{name}_step*"):
            match = pattern.fullmatch(path.name)
            if match:
                found.setdefault(match.group(2), {})[int(match.group(1))] = path
        for by_step in found.values():
            kept = set(kept_steps(list(by_step), keep))
            for step, path in by_step.items():
                if step not in kept:
                    with contextlib.suppress(OSError):
                        path.unlink()
                        deleted.append(path)
    return deleted

_EXTENSIONS = {"image": "png", "gif": "gif", "table": "csv"}


# --------------------------------------------------------------------------------------------
# what is logged


@dataclass
class Media:
    """One thing to log: ``kind`` ``"image"`` (``data`` a ``uint8`` RGB array ``[H, W, 3]``),
    ``"gif"`` (``data`` the bytes of an animated GIF) or ``"table"`` (``data`` a pair
    ``(columns, rows)``). ``key`` is the logger key (``"media/traversal"``); its last part is the
    file name's stem."""

    key: str
    kind: str
    data: Any
    caption: str = ""

    def __post_init__(self) -> None:
        check_choice("Media kind", self.kind, sorted(_EXTENSIONS))

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.kind]

    def write(self, path) -> Path | str:
        """Write the item to ``path`` (PNG, GIF or CSV bytes, by kind; a local path or an fsspec
        URL) and return where it went."""
        if self.kind == "image":
            data = viz.png_bytes(self.data)
        elif self.kind == "gif":
            data = self.data
        else:
            columns, rows = self.data
            text = io.StringIO(newline="")
            writer = csv.writer(text)
            writer.writerow(columns)
            writer.writerows(rows)
            data = text.getvalue().encode()
        # through tcx's one atomic writer: never a half-written picture under its name
        return atomic_save(lambda f: f.write(data), path, advice="free space in the run's folder or log elsewhere")


def _markdown_table(columns, rows) -> str:
    head = "| " + " | ".join(str(c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_fmt_cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _fmt_cell(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def report(message: str) -> None:
    """Warn (once per message, on rank 0) about something that failed while the run goes on."""
    rank_zero_warn(message, category=RuntimeWarning)


def log_scalars(trainer, scalars: dict[str, Any], step: int | None = None, module=None) -> dict[str, float]:
    """Log a callback's scalars (``None`` and non-finite values left out) and return what was
    logged: inside a hook where Lightning allows logging, through ``module.log`` (an epoch value
    on rank 0); elsewhere (``on_fit_end``, a test's end) to every logger at ``step``, a logger that
    fails reported and the run going on, and into ``trainer.callback_metrics``, which the end-of-fit
    summary reads. The one route for scalars logged by a callback."""
    clean = {k: float(v) for k, v in scalars.items() if v is not None and math.isfinite(float(v))}
    if module is not None:
        for key, value in clean.items():
            module.log(key, value, on_step=False, on_epoch=True, rank_zero_only=True)
        return clean
    for logger in trainer.loggers:
        try:
            logger.log_metrics(clean, step=step)
        except Exception as exc:
            report(f"tcx: {type(logger).__name__} could not log {sorted(clean)}: {exc}")
    # outside a hook Lightning offers no logging API that reaches callback_metrics (a public dict
    # the Trainer reads and writes itself): the values are written into it here, and only here
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in clean.items()})
    return clean


# --------------------------------------------------------------------------------------------
# where things go


def run_dir(trainer) -> Path | str:
    """The run's own folder: for W&B ``<save_dir>/<project>/<run id>`` (the folder that also holds
    the run's ``checkpoints``), for TensorBoard and CSV their ``log_dir``, for other loggers their
    ``save_dir``; with no logger ``trainer.default_root_dir`` (which the ``tcx`` CLI makes a fresh
    ``runs/<time>-<pid>`` for each logger-less run). A :class:`Path` for a local folder (``file://``
    URLs included), the string for another fsspec URL (``s3://...``). Computed on the calling
    process only (``trainer.log_dir`` would need every process)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers[:1]:
        if isinstance(logger, WandbLogger):
            version = logger.version
            if version:
                return join_path(logger.save_dir or ".", str(logger.name or "lightning_logs"), str(version))
        log_dir = getattr(logger, "log_dir", None)
        if log_dir:
            return storage_path(log_dir)
        if logger.save_dir:
            return storage_path(logger.save_dir)
    return storage_path(trainer.default_root_dir)


def media_dir(trainer) -> Path | str:
    """The folder for picture files: ``<run directory>/media`` (:func:`run_dir`)."""
    return join_path(run_dir(trainer), "media")


def write_media_files(items: Sequence[Media], directory, suffix: str = "") -> dict[str, Path | str]:
    """Write each item to ``directory/<name><suffix>.<ext>`` (a local folder or an fsspec URL);
    returns ``{key: path}``. An item that cannot be written is reported and skipped; the others
    are written."""
    written: dict[str, Path | str] = {}
    for item in items:
        path = join_path(directory, f"{item.name}{suffix}.{item.extension}")
        try:
            written[item.key] = item.write(path)
        except Exception as exc:  # a file that cannot be written must not stop training
            report(f"tcx: could not write {item.key} to {path}: {type(exc).__name__}: {exc}")
    return written


def log_media(trainer, items: Sequence[Media], step: int | None = None, write_files: bool = True) -> dict[str, Path | str]:
    """Send ``items`` to every logger of ``trainer`` that takes them; returns the files written.

    - ``WandbLogger``: one ``log`` call with ``wandb.Image`` (images), ``wandb.Video(format="gif")``
      (animations) and ``wandb.Table`` (tables), at ``trainer/global_step = step``.
    - ``TensorBoardLogger``: ``add_image(key, ..., dataformats="HWC")`` and tables as markdown
      ``add_text``; TensorBoard shows no GIFs.
    - Files ``media_dir(trainer)/<name>_step<step>.<ext>`` (:func:`step_suffix`): every item when
      ``write_files`` (the default: each epoch's pictures are kept in the run's folder too, thinned
      to ``TCX_KEEP_PICTURES`` per picture by :func:`thin_files`), else those of a kind no logger took.

    ``step`` defaults to ``trainer.global_step``. Failures are reported (a warning naming the key,
    the logger and the error) and the rest is still logged.
    """
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    step = int(trainer.global_step if step is None else step)
    taken: set[str] = set()
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            taken |= _log_wandb(logger, items, step)
        elif isinstance(logger, TensorBoardLogger):
            taken |= _log_tensorboard(logger, items, step)
    rest = [item for item in items if write_files or item.key not in taken]
    if not rest:
        return {}
    folder = media_dir(trainer)
    written = write_media_files(rest, folder, suffix=step_suffix(step))
    thin_files(folder, [item.name for item in rest])
    return written


def _log_wandb(logger, items: Sequence[Media], step: int) -> set[str]:
    import wandb

    payload: dict[str, Any] = {}
    for item in items:
        try:
            if item.kind == "image":
                payload[item.key] = wandb.Image(item.data, caption=item.caption or None)
            elif item.kind == "gif":
                payload[item.key] = wandb.Video(io.BytesIO(item.data), caption=item.caption or None, format="gif")
            else:
                columns, rows = item.data
                payload[item.key] = wandb.Table(columns=list(columns), data=[list(r) for r in rows])
        except Exception as exc:
            report(f"tcx: could not prepare {item.key} for W&B: {type(exc).__name__}: {exc}")
    if not payload:
        return set()
    try:
        logger.log_metrics(payload, step=step)
    except Exception as exc:
        report(f"tcx: W&B could not log {sorted(payload)}: {type(exc).__name__}: {exc}")
        return set()
    return set(payload)


def _log_tensorboard(logger, items: Sequence[Media], step: int) -> set[str]:
    taken: set[str] = set()
    try:
        writer = logger.experiment
    except Exception as exc:
        report(f"tcx: TensorBoard is not available: {type(exc).__name__}: {exc}")
        return taken
    for item in items:
        try:
            if item.kind == "image":
                writer.add_image(item.key, item.data, global_step=step, dataformats="HWC")
            elif item.kind == "table":
                writer.add_text(item.key, _markdown_table(*item.data), global_step=step)
            else:
                continue
            taken.add(item.key)
        except Exception as exc:
            report(f"tcx: TensorBoard could not log {item.key}: {type(exc).__name__}: {exc}")
    with contextlib.suppress(Exception):
        writer.flush()
    return taken
