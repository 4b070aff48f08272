"""What a run records of itself: its W&B labels (``job_type``, ``group``) and config, and
``summary.json`` in its folder (what the end-of-run table prints, and more)."""

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

from tcx.cli.checkpoint_run import plain_config
from tcx.callbacks import wandb_loggers
from tcx.cli.wandb_setup import wandb_logger_args


def label_wandb_run(config, subcommand: str, recorded: dict | None) -> str | None:
    """Give each W&B logger of a parsed subcommand config absolute folders, and ``job_type`` (the
    command) and ``group`` unless the user set them: a fit's group is its own run id, a command
    with a checkpoint (``recorded``) joins the group of the run that wrote it. Returns the group."""
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
    """A fresh W&B run id of W&B's own form: 8 characters of ``[a-z0-9]``."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def git_commit(folder: str | os.PathLike | None = None) -> str | None:
    """The commit of tcx's own git checkout (``-dirty`` with uncommitted changes), else ``None``."""
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


def _class_and_args(spec) -> tuple[str | None, dict]:
    spec = spec or {}
    if not isinstance(spec, dict):
        return None, {}
    args = dict(spec.get("init_args") or {})
    args.update(spec.get("dict_kwargs") or {})
    return spec.get("class_path"), args


def run_record(config, subcommand: str, trainer=None) -> dict:
    """What a run is, as plain values for W&B's config and summary.json: the command, the classes
    and arguments, the Trainer's settings, the seed, tcx's version and commit, precision, device."""
    from importlib.metadata import PackageNotFoundError, version

    plain = plain_config(config, other=str)
    model_class, model_args = _class_and_args(plain.get("model"))
    data_class, data_args = _class_and_args(plain.get("data"))
    try:
        tcx_version = version("tcx")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        tcx_version = None
    return {
        "command": subcommand, "model_class": model_class, "model_args": model_args, "data_class": data_class,
        "data_args": data_args, "trainer": plain.get("trainer") or {}, "seed_everything": plain.get("seed_everything"),
        "optimizer": plain.get("optimizer"), "lr_scheduler": plain.get("lr_scheduler"),
        "ckpt_path": plain.get("ckpt_path"), "tcx_version": tcx_version, "git_commit": git_commit(),
        "precision": str(trainer.precision) if trainer is not None else None, "device": device_kind(trainer),
    }


def record_wandb_run(trainer, record: dict, config_file=None) -> None:
    """Put ``record`` into every W&B run's config and, when given, save ``config_file`` among the
    run's files as ``tcx/config.yaml`` (W&B's own ``config.yaml`` keeps its name). Rank 0 only."""
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
    """The scalars of ``metrics`` as floats; those not finite as strings (``"nan"``), as JSON needs."""
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
    """Write ``<folder>/summary.json`` atomically (a local folder or an fsspec URL); returns its path."""
    from tcx.safe_io import atomic_save, join_path

    data = {**record, "stage": stage, "values": summary_values(metrics), "checkpoint": checkpoint,
            "wall_time_s": round(float(seconds), 3), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "warnings": list(warnings or []), **(extra or {})}
    text = json.dumps(data, indent=1, sort_keys=False, default=str) + "\n"
    path = join_path(folder, "summary.json")
    atomic_save(lambda f: f.write(text.encode()), path, advice="point the run elsewhere (--trainer.default_root_dir)")
    return path
