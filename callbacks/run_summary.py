"""The end of a run, in words and on disk, for any Trainer (the ``tcx`` command adds
:class:`RunSummary` to every run; a script with ``guard_trainer``): after fit, validate and test a
table of the objective's terms in nats, the metrics, the precision, a posterior-collapse warning
and the run's files; after every command ``summary.json`` in the run's folder (what ``tcx compare``
reads) and the same record in each W&B run's config.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Sequence

import lightning.pytorch as pl

from tcx.callbacks.media import media_files
from tcx.callbacks.media_logging import run_dir
from tcx.callbacks.wandb_runs import wandb_loggers
from tcx.checkpoint_record import plain_config
from tcx.safe_io import WriteError, atomic_save, checkpoint_exists, join_path, path_exists

#: a total rate below this (nats) is a collapsed posterior whatever the reconstruction
TOTAL_RATE_NATS = 0.1
#: a latent whose rate is below this (nats) carries nothing
LATENT_RATE_NATS = 0.05
#: the reconstruction is poor when ``-E log q(x|z)`` is above this fraction of ``sum_i H(X_i)``
POOR_RECONSTRUCTION = 0.9

TRY = ("Try: train longer (--trainer.max_epochs), a smaller weight on the rate (--model.beta, or "
       "--model.anchor_beta for AnchorVAE's anchors, where the family has one), capacity annealing "
       "(--model AnnealedVAE), or another learning rate (--model.lr).")
#: the split a command's table reads, by the Trainer stage
SPLIT = {"fit": "val", "validate": "val", "test": "test", "predict": "predict"}


def collapse_warning(rate: float | None, rates: Sequence[float | None] = (), reconstruction: float | None = None,
                     input_entropy: float | None = None) -> str | None:
    """The warning for a collapsed posterior (all in nats), or ``None``: a total ``rate`` under
    :data:`TOTAL_RATE_NATS`, or idle latents while the reconstruction explains little of
    ``input_entropy`` (the data's ``sum_i H(X_i)``)."""
    if rate is None or not math.isfinite(rate):
        return None
    if rate < TOTAL_RATE_NATS:
        return (f"the posterior has collapsed: the total rate is {rate:.3f} nats, so the latents carry almost "
                f"nothing about the inputs and the decoder ignores them. {TRY}")
    known = [r for r in rates if r is not None]
    idle = [j for j, r in enumerate(rates) if r is not None and r < LATENT_RATE_NATS]
    if not idle or reconstruction is None or not input_entropy or input_entropy <= 0:
        return None
    explained = 1.0 - (-reconstruction) / input_entropy
    if explained >= 1.0 - POOR_RECONSTRUCTION:
        return None
    return (f"the posterior has partly collapsed: {len(idle)} of {len(known)} latents carry under "
            f"{LATENT_RATE_NATS} nats each (z{', z'.join(str(j) for j in idle)}) while the reconstruction explains "
            f"{max(explained, 0.0):.0%} of the inputs' entropy sum_i H(X_i) = {input_entropy:.1f} nats. {TRY}")


def written_checkpoint(trainer, ckpt_path=None) -> str | None:
    """The checkpoint a command names: the one it ran from, else the last or best it wrote, if it exists."""
    ckpt = trainer.checkpoint_callback
    found = [p for p in (ckpt_path, getattr(ckpt, "last_model_path", None), getattr(ckpt, "best_model_path", None))
             if p and checkpoint_exists(p)]
    return str(found[0]) if found else None


def _fmt(value, unit: str = "nats") -> str:
    if value is None:
        return "n/a"
    v = float(value)
    return str(v) if not math.isfinite(v) else f"{v:10.3f} {unit}".rstrip()


def summary_table(trainer: pl.Trainer, model, seconds: float, precision_note: str | None = None,
                  command: str = "fit", stage: str = "val", ckpt_path: str | None = None) -> str:
    """The table of the ``stage`` split (``val`` or ``test``; training values when it has none)."""
    metrics = dict(trainer.callback_metrics)
    if not any(k.startswith(f"{stage}/") for k in metrics) and any(k.startswith("train/") for k in metrics):
        stage = "train"

    def get(name):
        value = metrics.get(f"{stage}/{name}")
        return None if value is None else float(value)

    latent_dim = getattr(model, "latent_dim", 0)
    rates = [get(f"rate/z{j}") for j in range(latent_dim)]
    anchors = tuple(getattr(model, "anchor_indices", ()))
    rows = [("ELBO", _fmt(get("elbo"))), ("reconstruction E log q(x|z)", _fmt(get("reconstruction"))),
            ("total rate sum_j KL_j", _fmt(get("rate")))]
    if get("corex_bound") is not None:
        rows.append(("CorEx bound sum_i H(X_i) + ELBO", _fmt(get("corex_bound"))))
    if anchors and all(r is not None for r in rates):
        others = [j for j in range(latent_dim) if j not in anchors]
        a_sum, o_sum = sum(rates[j] for j in anchors), sum(rates[j] for j in others)
        rows.append((f"anchors' rate ({len(anchors)} latents {list(anchors)})", _fmt(a_sum)))
        rows.append((f"other latents' rate ({len(others)} latents)", _fmt(o_sum)))
        rows.append(("mean rate per anchor / per other", f"{a_sum / len(anchors):.3f} / "
                     f"{(o_sum / len(others)) if others else float('nan'):.3f} nats"))
    if all(r is not None for r in rates) and rates:
        rows.append(("rate per latent", " ".join(f"{r:.2f}" for r in rates)))
    for key in ("diagnostics/mutual_info", "diagnostics/total_correlation"):
        if key in metrics:
            rows.append((key.replace("diagnostics/", "estimated ").replace("_", " ") + " (nats)",
                         f"{float(metrics[key]):.3f}"))
    rows += [(key, f"{float(metrics[key]):.4f}") for key in sorted(metrics) if key.startswith("metrics/")]
    if command == "fit":
        rows.append(("epochs / steps", f"{trainer.current_epoch} / {trainer.global_step}"))
    rows += [("precision", precision_note or str(trainer.precision)), ("wall time", f"{seconds:.1f} s")]
    if written_checkpoint(trainer, ckpt_path):
        rows.append(("checkpoint", written_checkpoint(trainer, ckpt_path)))
    pictures = {key: str(path) for key, path in media_files(trainer).items() if path_exists(path)}
    if pictures:
        rows.append(("pictures", next(iter(pictures.values())).rpartition("/")[0]))
        rows += [(f"  {key}", pictures[key].rpartition("/")[2])
                 for key in ("media/traversal", "diagnostics/information", "media/anchor_samples_held") if key in pictures]
    for logger in trainer.loggers:
        if logger in wandb_loggers(trainer):
            folder = Path(getattr(logger.experiment, "dir", "") or "").parent
            if folder.is_dir():
                mode = os.environ.get("WANDB_MODE", "online")
                rows.append((f"W&B run ({mode})", str(folder)))
                rows += [("upload it with", f"wandb sync {folder}")] if mode == "offline" else []
        elif getattr(logger, "log_dir", None) and path_exists(logger.log_dir):
            rows.append((type(logger).__name__, str(logger.log_dir)))
    width = max(len(k) for k, _ in rows)
    title = f"tcx {command} summary: {type(model).__name__} ({stage} set)"
    lines = ["", title, "-" * max(len(title), width + 30)] + [f"{k.ljust(width)}  {v}" for k, v in rows]
    entropy = getattr(model, "input_entropy", None)
    collapsed = collapse_warning(get("rate"), rates, get("reconstruction"),
                                 float(entropy.sum()) if entropy is not None else None)
    return "\n".join(lines + ([f"warning: {collapsed}"] if collapsed else []))


def git_commit(folder: str | os.PathLike | None = None) -> str | None:
    """The commit of tcx's own git checkout (``-dirty`` with uncommitted changes), else ``None``."""
    here = Path(__file__).resolve()
    try:
        head = subprocess.run(["git", "-C", str(folder or here.parent), "rev-parse", "HEAD", "--show-toplevel"],
                              capture_output=True, text=True, timeout=10)
        commit, top = (head.stdout.split() + ["", ""])[:2]
        if head.returncode != 0 or (Path(top) / here.parent.name / here.name).resolve() != here:
            return None  # not a checkout, or tcx installed inside another project's checkout
        dirty = subprocess.run(["git", "-C", top, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def device_kind(trainer=None) -> str:
    """The processor the run trained on: the GPU's name on CUDA, else the CPU's model name."""
    import torch

    if "CUDA" in type(getattr(trainer, "accelerator", None)).__name__ and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="ignore").splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


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


def evaluation_missing(trainer) -> bool:
    """Whether a fit that trained, with validation data, ends without its validation terms (it
    resumed from a checkpoint written before its last epoch's evaluation)."""
    from lightning.pytorch.utilities.model_helpers import is_overridden

    datamodule = getattr(trainer, "datamodule", None)
    if trainer.global_step == 0 or trainer.limit_val_batches == 0:
        return False
    if datamodule is None or not is_overridden("val_dataloader", datamodule, pl.LightningDataModule):
        return False
    return not any(k.startswith("val/") for k in trainer.callback_metrics)


class RunSummary(pl.Callback):
    """At the end of ``trainer.fit``, ``validate``, ``test`` and ``predict``, on the first process:
    the table (not after predict), ``summary.json`` in :func:`run_dir`, and ``record`` in each W&B
    run's config (with ``config.yaml`` of the run's folder among its files). ``record``: what the run
    is (the ``tcx`` command passes its parsed config); by default the model's and the datamodule's
    classes and hyperparameters; ``show=False`` writes without printing. A fit that ends without
    its validation terms (stopped by ``max_steps`` within an epoch, or resumed after its last
    epoch's evaluation began) shows its training values; with ``wait_for_validate`` it sets
    ``pending`` instead, and the table comes after the ``trainer.validate`` the caller runs then
    (as the ``tcx`` command does)."""

    def __init__(self, record: dict | None = None, precision_note: str | None = None, show: bool = True,
                 wait_for_validate: bool = False) -> None:
        self.record, self.precision_note, self.show = record, precision_note, show
        self.wait_for_validate = wait_for_validate
        self.pending = False
        self.path = None  # where summary.json was written last
        self._started = time.perf_counter()
        self._machine: dict | None = None  # version, commit and device: the same for every stage

    def _record(self, trainer, pl_module, stage: str) -> dict:
        from importlib.metadata import PackageNotFoundError, version

        record = dict(self.record or {})
        if self.record is None:
            datamodule = getattr(trainer, "datamodule", None)
            for key, obj in (("model", pl_module), ("data", datamodule)):
                record[f"{key}_class"] = f"{type(obj).__module__}.{type(obj).__qualname__}" if obj is not None else None
                record[f"{key}_args"] = plain_config(dict(getattr(obj, "hparams", {}) or {}), other=str)
        if self._machine is None:
            try:
                tcx_version = version("tcx")
            except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
                tcx_version = None
            self._machine = {"tcx_version": tcx_version, "git_commit": git_commit(), "device": device_kind(trainer)}
        return {**record, **self._machine, "precision": str(trainer.precision),
                "precision_note": self.precision_note or str(trainer.precision)}

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.pending or stage != "validate":
            self._started = time.perf_counter()
        if trainer.is_global_zero:
            self._run = self._record(trainer, pl_module, str(getattr(stage, "value", stage)))
            for logger in wandb_loggers(trainer):
                logger.experiment.config.update(self._run, allow_val_change=True)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))  # Lightning passes its TrainerFn
        if stage == "fit" and self.wait_for_validate and evaluation_missing(trainer):
            self.pending = True  # the validation that follows gives the fit its terms
            return
        command = "fit" if self.pending and stage == "validate" else stage
        self.pending = False
        if trainer.is_global_zero:
            self.summarize(trainer, pl_module, command)

    def summarize(self, trainer, pl_module, command: str) -> None:
        """Print the table and write ``summary.json``; save ``config.yaml`` among the W&B files."""
        seconds, split = time.perf_counter() - self._started, SPLIT[command]
        ckpt_path = trainer.ckpt_path if command != "fit" else None
        text = "" if command == "predict" else summary_table(
            trainer, pl_module, seconds, precision_note=self._run["precision_note"], command=command, stage=split,
            ckpt_path=ckpt_path)
        folder = run_dir(trainer)
        config = folder / "config.yaml" if isinstance(folder, Path) else None
        runs = []
        for logger in wandb_loggers(trainer):
            run = logger.experiment
            if config is not None and config.is_file() and getattr(run, "dir", None):
                target = Path(run.dir) / "tcx" / "config.yaml"  # W&B's own config.yaml keeps its name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(config.read_bytes())
                run.save(str(target), base_path=run.dir, policy="now")
            runs.append({"id": run.id, "group": run.group, "job_type": run.job_type, "tags": list(run.tags or ()),
                         "dir": str(Path(run.dir).parent) if getattr(run, "dir", None) else None})
        data = {**self._run, "command": self._run.get("command") or command, "stage": split,
                "values": summary_values(trainer.callback_metrics),
                "checkpoint": written_checkpoint(trainer, ckpt_path), "wall_time_s": round(float(seconds), 3),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "warnings": [ln.removeprefix("warning: ") for ln in text.splitlines() if ln.startswith("warning: ")],
                "run_dir": str(folder), "epochs": trainer.current_epoch, "steps": trainer.global_step, "wandb": runs}
        body = json.dumps(data, indent=1, default=str) + "\n"
        if text and self.show:
            print(text, flush=True)  # first: a summary.json that cannot be written does not take the table
        path = join_path(folder, "summary.json")
        advice = "point the run elsewhere (--trainer.default_root_dir)"
        try:
            atomic_save(lambda f: f.write(body.encode()), path, advice=advice)
        except WriteError as exc:
            raise WriteError(exc.errno or errno.EIO, f"{path} was not written ({exc.reason}); the run's checkpoints "
                             f"and pictures are kept. Make {str(folder)!r} writable, or {advice}", exc.reason) from None
        self.path = path
        if text and self.show:
            print(f"summary.json  {path}", flush=True)
