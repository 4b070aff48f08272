"""Where the Trainer path's time goes beyond the bare loop: Lightning's SimpleProfiler on the fit
that benchmarks/train_throughput.py times, against the same steps in a bare loop.

Prints (and appends to ``--out``) the profiler's per-action totals for the fit of ``--steps``
training steps of the default AnchorVAE on the default DSprites (batch 256), the bare loop's
seconds for the same steps, and the difference per step, split into the actions that are not the
model's forward, backward and optimizer step.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/trainer_profile.py [--steps 40]
        [--precision 32-true] [--out benchmarks/results/trainer_profile.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.profilers import SimpleProfiler  # noqa: E402

from results_io import add_record  # noqa: E402
from train_throughput import BATCH, bare_loop, make_model  # noqa: E402

from tcx.datamodules import DSprites  # noqa: E402


def profiled_fit(precision: str, steps: int, root: str) -> tuple[float, list[tuple[str, float, int]]]:
    """Seconds of the whole training epoch and the profiler's (action, total s, calls) rows."""
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * steps)
    model = make_model(False)
    profiler = SimpleProfiler(dirpath=root, filename="profile")
    trainer = pl.Trainer(
        max_epochs=1, precision=precision, log_every_n_steps=25, num_sanity_val_steps=0,
        limit_val_batches=0, logger=pl.loggers.WandbLogger(project="tcx-bench", save_dir=root),
        callbacks=[pl.callbacks.ModelCheckpoint(save_last=True)], default_root_dir=root,
        enable_progress_bar=True, profiler=profiler,
    )
    trainer.fit(model, datamodule=dm)
    trainer.logger.experiment.finish()
    rows = [(action, sum(d), len(d)) for action, d in profiler.recorded_durations.items()]
    epoch = sum(t for a, t, _ in rows if a == "run_training_epoch")
    return epoch, sorted(rows, key=lambda r: -r[1])


def main() -> None:
    from tcx.hardware import cpu_flags

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--top", type=int, default=18)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trainer_profile.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        bare_rate, _, bare_warm = bare_loop(args.precision, args.steps - 1, 1, False)
        bare_s = time.perf_counter() - start
        epoch_s, rows = profiled_fit(args.precision, args.steps, root)
    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags())
    step_actions = ("run_training_batch", "optimizer_step", "training_step", "backward")
    lines = [
        "",
        f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {args.precision}, {args.steps} steps",
        "",
        f"- CPU flags: {flags or 'none of avx2/avx512f/avx512_bf16/amx_bf16'}; torch {torch.__version__}, "
        f"lightning {pl.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()[0]:.2f}",
        f"- bare loop: {bare_s:.2f} s for {args.steps} steps ({bare_rate:.0f} img/s after its first step)",
        f"- Trainer epoch (profiler's run_training_epoch): {epoch_s:.2f} s; difference "
        f"{(epoch_s - bare_s) / args.steps * 1e3:+.1f} ms per step",
        "",
        "| action | total s | calls | ms per call |",
        "|---|---:|---:|---:|",
    ]
    for action, total, calls in rows[: args.top]:
        mark = " (the step itself)" if any(a in action for a in step_actions) else ""
        lines.append(f"| `{action}`{mark} | {total:.3f} | {calls} | {total / calls * 1e3:.2f} |")
    add_record(args.out, "# The Trainer path profiled (benchmarks/trainer_profile.py)\n\n"
               "Lightning's SimpleProfiler on the fit that benchmarks/train_throughput.py times; each run "
               "appends a section.", lines, newest_first=False)


if __name__ == "__main__":
    main()
