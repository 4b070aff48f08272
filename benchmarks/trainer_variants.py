"""Per-step time of the Trainer path and its parts: the bare loop against the Trainer with and
without its progress bar and W&B logger, and with a plain step (no tcx logging or guard),
interleaved, the median step of each run.

What benchmarks/train_throughput.py's Trainer/bare ratio leaves open: whether a gap comes from
the Trainer's own per-step work, from one part of it (the bar, the logger) or from tcx's step.
Each run times every step (the interval between consecutive batch starts, after ``--warmup``
steps); a run's figure is its median step, robust to a stray slow step on shared cores, and the
result is the median over ``--repeats`` interleaved rounds. Minor page faults per step beside it.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/trainer_variants.py [--precision bf16-mixed]
        [--steps 40] [--repeats 5] [--out benchmarks/results/trainer_variants.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import types
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from results_io import add_record, recorded_args  # noqa: E402  (benchmarks/results_io.py, beside this script)
from train_throughput import BATCH, Clock, bare_loop, make_model, median_step  # noqa: E402

from tcx.datamodules import DSprites  # noqa: E402

VARIANTS = {  # name: (progress bar, W&B logger, tcx's training step)
    "Trainer, bar and W&B (as tcx fit)": (True, True, True),
    "Trainer, W&B, no bar": (False, True, True),
    "Trainer, bar, no logger": (True, False, True),
    "Trainer, no bar, no logger": (False, False, True),
    "Trainer, no bar, no logger, plain step": (False, False, False),
}


def _ms_and_faults(ticks, warmup: int) -> tuple[float, tuple[float, float]]:
    rate, faults, cpu_ms = median_step(ticks, warmup)
    return 1000 * BATCH / rate, (faults, cpu_ms)


def _plain_step(self, batch, batch_idx):
    # the loss alone, as the bare loop computes it: no data check, no non-finite guard, no logging
    return self.step_terms(batch[0]).loss


def bare(precision: str, steps: int, warmup: int) -> tuple[float, float]:
    ticks: list = []
    bare_loop(precision, steps, warmup, False, ticks=ticks)
    return _ms_and_faults(ticks, warmup)


def trainer(precision: str, steps: int, warmup: int, root: str, bar: bool, wandb_logger: bool,
            tcx_step: bool, extra_callbacks: tuple = ()) -> tuple[float, float]:
    dm = DSprites(batch_size=BATCH, epoch_size=BATCH * (steps + warmup))
    clock = Clock(warmup)
    logger = pl.loggers.WandbLogger(project="tcx-bench", save_dir=root) if wandb_logger else False
    fit = pl.Trainer(
        max_epochs=1, precision=precision, log_every_n_steps=25, num_sanity_val_steps=0,
        limit_val_batches=0, logger=logger, callbacks=[pl.callbacks.ModelCheckpoint(save_last=True), clock, *extra_callbacks],
        default_root_dir=root, enable_progress_bar=bar, enable_model_summary=False,
    )
    model = make_model(False)
    if not tcx_step:
        model.training_step = types.MethodType(_plain_step, model)
    fit.fit(model, datamodule=dm)
    if wandb_logger:
        logger.experiment.finish()
    return _ms_and_faults(clock.ticks, warmup)


def main() -> None:
    from tcx.hardware import cpu_flags

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="bf16-mixed", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trainer_variants.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    runs: dict[str, list[float]] = {"bare loop": []}
    runs.update({name: [] for name in VARIANTS})
    faults: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as root:
        for rep in range(args.repeats):
            ms, f = bare(args.precision, args.steps, args.warmup)
            runs["bare loop"].append(ms), faults["bare loop"].append(f)
            for name, variant in VARIANTS.items():
                ms, f = trainer(args.precision, args.steps, args.warmup, root, *variant)
                runs[name].append(ms), faults[name].append(f)
            print(f"round {rep + 1}: " + ", ".join(f"{k} {v[-1]:.1f} ms" for k, v in runs.items()), flush=True)

    base = statistics.median(runs["bare loop"])
    base_cpu = statistics.median(f[1] for f in faults["bare loop"])
    malloc = " ".join(f"{k}={os.environ[k]}" for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
                      if k in os.environ)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    lines = [
        f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {args.precision}, "
        f"{args.steps} steps x {args.repeats} rounds",
        "",
        f"- CPU flags: {' '.join(flags) or 'n/a'}; torch {torch.__version__}, lightning {pl.__version__}, "
        f"{args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average "
        f"{os.getloadavg()[0]:.2f}",
        f"- command: `{malloc + ' ' if malloc else ''}OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} "
        ".venv/bin/python "
        f"{' '.join(['benchmarks/trainer_variants.py', *recorded_args(sys.argv[1:])])}`",
        "",
        "| path | median step ms (median of rounds) | each round | bare / this | page faults per step "
        "| CPU ms per step (training thread) | bare / this, by CPU ms |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, values in runs.items():
        med = statistics.median(values)
        cpu = statistics.median(f[1] for f in faults[name])
        lines.append(f"| {name} | {med:.1f} | {' '.join(f'{v:.1f}' for v in values)} | {base / med:.3f} "
                     f"| {statistics.median(f[0] for f in faults[name]):.0f} | {cpu:.1f} | {base_cpu / cpu:.3f} |")
    add_record(args.out, "# The Trainer path's per-step time, part by part (benchmarks/trainer_variants.py)\n\n"
               "Median step of the bare loop and of the Trainer with and without its bar and W&B logger; "
               "each run appends a section.", lines, newest_first=False)


if __name__ == "__main__":
    main()
