"""What a run records of itself (used by ``tcx.cli``): its W&B labels and config, and summary.json.

- :func:`label_wandb_run`: before the loggers are built, each W&B logger gets ``job_type`` (the
  command), a ``group`` (a fit's own run id; an evaluation or resume of a checkpoint joins the
  group of the run that wrote it) and keeps the ``tags`` the user gave (``init_args.tags``).
- :func:`run_record`: the model and data classes and arguments, the Trainer's settings, the seed,
  tcx's version and git commit, the chosen precision, the CPU or GPU; into W&B's config by
  :func:`record_wandb_run`, which also saves the run's ``config.yaml`` among its files.
- :func:`write_summary`: ``<run folder>/summary.json``, what the end-of-run table prints and more.
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import string
import subprocess
import time
from pathlib import Path

__all__ = ["label_wandb_run", "run_record", "record_wandb_run", "write_summary", "summary_values",
           "SUMMARY_FILE", "GROUP_KEY", "device_kind", "git_commit"]

#: the file every run leaves in its folder
SUMMARY_FILE = "summary.json"
from tcx.cli.checkpoint_run import WANDB_GROUP_KEY as GROUP_KEY, plain_config  # noqa: E402
from tcx.cli.wandb_setup import wandb_logger_args, wandb_loggers  # noqa: E402


def label_wandb_run(config, subcommand: str, recorded: dict | None) -> str | None:
    """Give each W&B logger of a parsed subcommand config (before instantiation) absolute folders,
    and ``job_type`` (``fit``, ``validate``, ``test``, ``predict``) and ``group`` unless the user
    set them; returns the group. The group of a fit is its own run id (made here when the run has
    none yet, :func:`new_run_id`); a command with a checkpoint (``recorded``, its
    :func:`tcx.cli.checkpoint_run.recorded_run`) takes the group it records, else the id of its run."""
    chosen = [args for args in wandb_logger_args(config) if args]
    if not chosen:
        return None
    recorded = recorded or {}
    inherited = recorded.get("wandb_group") or recorded.get("wandb_id")
    group = None
    for args in chosen:
        for key in ("save_dir", "dir"):
            # W&B writes a run's records from its service process, which keeps the working folder
            # of the process's first run: a relative folder would miss a later run's records
            if args.get(key) and "://" not in str(args[key]):
                args[key] = os.path.abspath(args[key])
        if args.get("job_type") is None:
            args["job_type"] = subcommand
        if args.get("group") is None:
            if inherited:
                args["group"] = str(inherited)
            elif subcommand == "fit":
                if args.get("id") is None and args.get("version") is None:
                    # a W&B sweep agent names the run it starts (WANDB_RUN_ID): keep its id
                    args["id"] = os.environ.get("WANDB_RUN_ID") or new_run_id()
                args["group"] = str(args.get("id") or args.get("version"))
        group = args.get("group")
    return group


def new_run_id() -> str:
    """A fresh W&B run id of W&B's own form: 8 characters of ``[a-z0-9]``, from ``secrets``."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def git_commit(folder: str | os.PathLike | None = None) -> str | None:
    """The git commit of tcx's own source (a checkout holding ``tcx/cli/run_record.py``; ``folder`` a
    folder in it), with ``-dirty`` when it has uncommitted changes; ``None`` when tcx is not run
    from a git checkout of its own, or git is missing."""
    folder = str(folder or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD", "--show-toplevel"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        commit, top = (head.stdout.split() + ["", ""])[:2]
        if not (Path(top) / "tcx" / "cli" / Path(__file__).name).is_file():
            return None  # tcx installed inside another project's checkout: not tcx's commit
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def device_kind(trainer=None) -> str:
    """The processor the run trained on: the GPU's name on CUDA, else the CPU's model name."""
    import torch

    accelerator = type(getattr(trainer, "accelerator", None)).__name__ if trainer is not None else ""
    if "CUDA" in accelerator and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="ignore").splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def _plain(value):
    """A parsed config value as JSON-ready plain data (what has no plain form as its text)."""
    return plain_config(value, other=str)


def _class_and_args(spec) -> tuple[str | None, dict]:
    spec = _plain(spec) or {}
    if not isinstance(spec, dict):
        return None, {}
    args = dict(spec.get("init_args") or {})
    args.update(spec.get("dict_kwargs") or {})
    return spec.get("class_path"), args


def run_record(config, subcommand: str, precision: str | None, trainer=None) -> dict:
    """What a run is: ``command``, ``model_class``, ``model_args``, ``data_class``, ``data_args``,
    ``trainer`` (every Trainer setting), ``seed_everything``, ``optimizer``, ``lr_scheduler``,
    ``ckpt_path``, ``tcx_version``, ``git_commit``, ``precision`` (the one the run uses) and
    ``device``: plain values, for W&B's config and summary.json."""
    from importlib.metadata import PackageNotFoundError, version

    plain = _plain(config)
    model_class, model_args = _class_and_args(plain.get("model"))
    data_class, data_args = _class_and_args(plain.get("data"))
    try:
        tcx_version = version("tcx")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        tcx_version = None
    if trainer is not None and precision is None:
        precision = str(trainer.precision)
    return {
        "command": subcommand, "model_class": model_class, "model_args": model_args, "data_class": data_class,
        "data_args": data_args, "trainer": plain.get("trainer") or {}, "seed_everything": plain.get("seed_everything"),
        "optimizer": plain.get("optimizer"), "lr_scheduler": plain.get("lr_scheduler"),
        "ckpt_path": plain.get("ckpt_path"), "tcx_version": tcx_version, "git_commit": git_commit(),
        "precision": precision, "device": device_kind(trainer),
    }


def record_wandb_run(trainer, record: dict, config_file=None) -> None:
    """Put ``record`` into the config of every W&B run of ``trainer`` and, when given, save the
    run's ``config_file`` (its ``config.yaml``) among the W&B run's files as ``tcx/config.yaml``
    (W&B's own ``config.yaml`` of the files keeps its name). Rank 0 only."""
    if not trainer.is_global_zero:
        return
    for logger in wandb_loggers(trainer):
        run = logger.experiment
        run.config.update(record, allow_val_change=True)
        if config_file is not None and Path(str(config_file)).is_file() and getattr(run, "dir", None):
            target = Path(run.dir) / "tcx" / "config.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Path(str(config_file)).read_bytes())
            run.save(str(target), base_path=run.dir, policy="now")


def summary_values(metrics: dict) -> dict[str, float]:
    """The scalar values of ``trainer.callback_metrics`` (tensors or numbers), as floats; the
    ones that are not finite as strings (``"nan"``, ``"inf"``), which JSON has no number for."""
    out = {}
    for key, value in sorted(metrics.items()):
        try:
            v = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue
        out[key] = v if math.isfinite(v) else str(v)
    return out


def write_summary(folder, record: dict, metrics: dict, *, stage: str, seconds: float, checkpoint: str | None,
                  warnings: list[str] | None = None, extra: dict | None = None):
    """Write ``<folder>/summary.json`` (atomically; a local folder or an fsspec URL) and return its
    path: ``record`` (:func:`run_record`), ``stage`` (the split of the values), ``values`` (every
    scalar the run logged last, :func:`summary_values`), ``checkpoint``, ``wall_time_s``,
    ``finished_at``, ``warnings`` and ``extra``."""
    from tcx.safe_io import atomic_save, join_path

    data = {**record, "stage": stage, "values": summary_values(metrics), "checkpoint": checkpoint,
            "wall_time_s": round(float(seconds), 3), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "warnings": list(warnings or []), **(extra or {})}
    text = json.dumps(data, indent=1, sort_keys=False, default=str) + "\n"
    path = join_path(folder, SUMMARY_FILE)
    atomic_save(lambda f: f.write(text.encode()), path, advice="point the run elsewhere (--trainer.default_root_dir)")
    return path
