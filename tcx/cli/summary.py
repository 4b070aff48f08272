"""The table that ends ``tcx fit``, ``validate`` and ``test``: the objective's terms in nats, the
metrics, the precision, a collapse warning, and the run's files that exist when it is printed."""

from __future__ import annotations

import math
import os
from pathlib import Path

import lightning.pytorch as pl

from tcx.callbacks import media_files, wandb_loggers
from tcx.cli.collapse import collapse_warning
from tcx.models import CorExVAE
from tcx.safe_io import checkpoint_exists, path_exists

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
    if not math.isfinite(v):
        return str(v)
    return f"{v:10.3f} {unit}".rstrip()


def fit_summary(trainer: pl.Trainer, model: CorExVAE, seconds: float, precision_note: str | None = None,
                command: str = "fit", stage: str = "val", ckpt_path: str | None = None) -> str:
    """The summary of the ``stage`` split (``val`` or ``test``; training values when it has none)."""
    metrics = dict(trainer.callback_metrics)
    if not any(k.startswith(f"{stage}/") for k in metrics) and any(k.startswith("train/") for k in metrics):
        stage = "train"

    def get(name):
        value = metrics.get(f"{stage}/{name}")
        return None if value is None else float(value)

    latent_dim = getattr(model, "latent_dim", 0)
    rates = [get(f"rate/z{j}") for j in range(latent_dim)]
    anchors = tuple(getattr(model, "anchor_indices", ()))
    rows = [
        ("ELBO", _fmt(get("elbo"))),
        ("reconstruction E log q(x|z)", _fmt(get("reconstruction"))),
        ("total rate sum_j KL_j", _fmt(get("rate"))),
    ]
    if get("corex_bound") is not None:
        rows.append(("CorEx bound sum_i H(X_i) + ELBO", _fmt(get("corex_bound"))))
    if anchors and all(r is not None for r in rates):
        others = [j for j in range(latent_dim) if j not in anchors]
        a_sum = sum(rates[j] for j in anchors)
        o_sum = sum(rates[j] for j in others)
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
    for key in sorted(metrics):
        if key.startswith("metrics/"):
            rows.append((key, f"{float(metrics[key]):.4f}"))
    if command == "fit":
        rows.append(("epochs / steps", f"{trainer.current_epoch} / {trainer.global_step}"))
    rows.append(("precision", precision_note or str(trainer.precision)))
    rows.append(("wall time", f"{seconds:.1f} s"))

    if written_checkpoint(trainer, ckpt_path):
        rows.append(("checkpoint", written_checkpoint(trainer, ckpt_path)))
    pictures = {key: str(path) for key, path in media_files(trainer).items() if path_exists(path)}
    if pictures:
        rows.append(("pictures", next(iter(pictures.values())).rpartition("/")[0]))
        for key in ("media/traversal", "diagnostics/information", "media/anchor_samples_held"):
            if key in pictures:
                rows.append((f"  {key}", pictures[key].rpartition("/")[2]))
    for logger in trainer.loggers:
        if logger in wandb_loggers(trainer):
            run_dir = Path(getattr(logger.experiment, "dir", "") or "").parent
            if not run_dir.is_dir():
                continue
            mode = os.environ.get("WANDB_MODE", "online")
            rows.append((f"W&B run ({mode})", str(run_dir)))
            if mode == "offline":
                rows.append(("upload it with", f"wandb sync {run_dir}"))
        elif getattr(logger, "log_dir", None) and path_exists(logger.log_dir):
            rows.append((type(logger).__name__, str(logger.log_dir)))
    width = max(len(k) for k, _ in rows)
    title = f"tcx {command} summary: {type(model).__name__} ({stage} set)"
    lines = ["", title, "-" * max(len(title), width + 30)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    entropy = getattr(model, "input_entropy", None)
    collapsed = collapse_warning(get("rate"), rates, get("reconstruction"),
                                 float(entropy.sum()) if entropy is not None else None)
    if collapsed:
        lines.append(f"warning: {collapsed}")
    return "\n".join(lines)
