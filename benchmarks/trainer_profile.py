"""Where the Trainer path's time goes beyond the bare loop: Lightning's SimpleProfiler on the fit
that benchmarks/train_throughput.py times, against the same steps in a bare loop, and
torch.profiler's ops of both, per step.

Prints (and appends to ``--out``) the profiler's per-action totals for the fit of ``--steps``
training steps of the default AnchorVAE on the default DSprites (batch 256), the bare loop's
seconds for the same steps and the difference per step; then, from torch.profiler on
``--op-steps`` steps of each path, every op whose count per step differs (what the Trainer path
adds, independent of the load) and the ops with the most self CPU time per step.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/trainer_profile.py [--steps 40]
        [--precision 32-true] [--op-steps 10] [--threads 2] [--out benchmarks/results/trainer_profile.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.profilers import SimpleProfiler  # noqa: E402

from results_io import add_record, recorded_args  # noqa: E402
from train_throughput import BATCH, bare_loop, make_model  # noqa: E402
from trainer_variants import VARIANTS, trainer  # noqa: E402

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


class _ProfiledTicks(list):
    """The ``ticks`` list of ``bare_loop``: starts torch.profiler at the tick that starts step ``start``."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start, self.profiler = start, None

    def append(self, item) -> None:
        super().append(item)
        if len(self) == self.start + 1:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.__enter__()


class _ProfiledSteps(pl.Callback):
    def __init__(self, start: int) -> None:
        self.start, self.profiler = start, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.start:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.__enter__()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.profiler.__exit__(None, None, None)


def _ops(profiler, steps: int) -> dict[str, tuple[float, float]]:
    """op name: (calls per step, self CPU ms per step)."""
    return {e.key: (e.count / steps, e.self_cpu_time_total / 1e3 / steps) for e in profiler.key_averages()}


def op_profiles(precision: str, steps: int, warmup: int, root: str) -> tuple[dict, dict]:
    """torch.profiler's ops per step: the bare loop and the Trainer as `tcx fit` runs it."""
    ticks = _ProfiledTicks(warmup)
    bare_loop(precision, steps, warmup, False, ticks=ticks)
    ticks.profiler.__exit__(None, None, None)
    bare_ops = _ops(ticks.profiler, steps)
    callback = _ProfiledSteps(warmup)
    trainer(precision, steps, warmup, root, *VARIANTS["Trainer, bar and W&B (as tcx fit)"], extra_callbacks=[callback])
    return bare_ops, _ops(callback.profiler, steps)


def main() -> None:
    from tcx.hardware import cpu_flags

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--top", type=int, default=18)
    parser.add_argument("--op-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trainer_profile.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        bare_rate, _, bare_warm = bare_loop(args.precision, args.steps - 1, 1, False)
        bare_s = time.perf_counter() - start
        epoch_s, rows = profiled_fit(args.precision, args.steps, root)
        bare_ops, trainer_ops = op_profiles(args.precision, args.op_steps, 3, root)
    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags())
    step_actions = ("run_training_batch", "optimizer_step", "training_step", "backward")
    lines = [
        "",
        f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {args.precision}, {args.steps} steps",
        "",
        f"- CPU flags: {flags or 'none of avx2/avx512f/avx512_bf16/amx_bf16'}; torch {torch.__version__}, "
        f"lightning {pl.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()[0]:.2f}",
        f"- command: `OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} .venv/bin/python "
        f"{' '.join(['benchmarks/trainer_profile.py', *recorded_args(sys.argv[1:])])}`",
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
    lines += [
        "",
        f"torch.profiler, {args.op_steps} steps of each path after 3 warm-up steps (the Trainer as `tcx fit` runs "
        "it: bar, W&B, checkpoint), per step. The ops whose count differs, i.e. what the Trainer path adds "
        "or drops:",
        "",
        "| op | calls bare | calls Trainer | self ms bare | self ms Trainer |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in sorted(set(bare_ops) | set(trainer_ops)):
        (cb, sb), (ct, st) = bare_ops.get(name, (0, 0)), trainer_ops.get(name, (0, 0))
        if abs(cb - ct) > 1e-9:
            lines.append(f"| `{name[:70]}` | {cb:g} | {ct:g} | {sb:.3f} | {st:.3f} |")
    lines += ["", "The ops with the most self CPU time per step (load-dependent; the counts above are not):", "",
              "| op | calls | self ms bare | self ms Trainer |", "|---|---:|---:|---:|"]
    for name in sorted(set(bare_ops) | set(trainer_ops), key=lambda n: -bare_ops.get(n, (0, 0))[1])[: args.top]:
        (cb, sb), (ct, st) = bare_ops.get(name, (0, 0)), trainer_ops.get(name, (0, 0))
        lines.append(f"| `{name[:70]}` | {cb:g} | {sb:.1f} | {st:.1f} |")
    add_record(args.out, "# The Trainer path profiled (benchmarks/trainer_profile.py)\n\n"
               "Lightning's SimpleProfiler on the fit that benchmarks/train_throughput.py times; each run "
               "appends a section.", lines, newest_first=False)


if __name__ == "__main__":
    main()
