"""The GPU path of `tcx fit`, checked: the default run on CUDA, in the precision the default picks
there, with the training images/s beside the end-of-fit summary (metric values included).

    .venv/bin/python benchmarks/gpu_check.py [any tcx fit flags]

It is `tcx fit` itself (`python -m tcx.cli fit`, a process of its own: benchmarks import the core,
not the shell) with one extra callback, this file's TrainClock, that times the training steps after
a warm-up; benchmarks/gpu_check.sh runs it on one device and under DDP on all devices present.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

WARMUP_STEPS = 20


class TrainClock(pl.Callback):
    """Training images/s over all ranks, from step WARMUP_STEPS to the last, validation excluded."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.images = 0
        self._batch_start = None
        self.flop_per_image = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= WARMUP_STEPS:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._batch_start is None:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self.seconds += time.perf_counter() - self._batch_start
        self.images += len(batch[0]) * trainer.world_size
        self._batch_start = None

    def on_fit_end(self, trainer, pl_module):
        if trainer.is_global_zero and self.seconds > 0:
            rate = self.images / self.seconds
            peak = matmul_tflops(pl_module.device, "bf16" in str(trainer.precision))
            flop = self.flop_per_image
            share = f"{rate * flop / (peak * 1e12 * trainer.world_size):.2%}" if peak and flop else "n/a"
            print(f"gpu_check: {trainer.world_size} process(es) on {trainer.strategy.root_device}, precision "
                  f"{trainer.precision}, compiled {pl_module.compiled}, batches made on the device "
                  f"{getattr(trainer.datamodule, 'renders_on_device', lambda: False)()}: {rate:.0f} training img/s "
                  f"over all ranks ({self.images} images after {WARMUP_STEPS} warm-up steps; the training steps "
                  f"timed, the loader excluded); {flop / 1e6:.1f} MFLOP/image (3x the forward, counted) against "
                  f"a measured matmul peak of {peak:.0f} TFLOP/s per device: {share} of the device's peak", flush=True)

    def on_train_start(self, trainer, pl_module):
        from torch.utils.flop_counter import FlopCounterMode

        x = torch.rand(8, *pl_module.input_shape, device=pl_module.device).round()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            pl_module.step_terms(x)
        self.flop_per_image = 3 * counter.get_total_flops() / 8  # backward ~ 2x forward


def matmul_tflops(device, bf16: bool, n: int = 8192, reps: int = 20) -> float:
    """The TFLOP/s of an n^3 matmul on ``device`` in bf16 or fp32 (TF32 off): the device's
    achievable dense peak for that dtype, the yardstick of the training's share."""
    if device.type != "cuda":
        return 0.0
    dtype = torch.bfloat16 if bf16 else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def main() -> int:
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    # the clock last, so that a --trainer.callbacks "[]" among the arguments keeps it
    command = [sys.executable, "-m", "tcx.cli", "fit", *sys.argv[1:], "--trainer.callbacks+=gpu_check.TrainClock"]
    return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "offline")
    raise SystemExit(main())
