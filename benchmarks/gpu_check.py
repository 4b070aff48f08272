"""The GPU path of `tcx fit`, checked: the default run on CUDA, in the precision the default picks
there, with the training images/s beside the end-of-fit summary (metric values included).

    .venv/bin/python benchmarks/gpu_check.py [any tcx fit flags]

It is `tcx fit` itself (tcx.cli.main) with one extra callback that times the training steps after
a warm-up; benchmarks/gpu_check.sh runs it on one device and under DDP on all devices present.
Under DDP, Lightning starts the other ranks by running this file again with the same arguments.
"""

from __future__ import annotations

import os
import sys
import time

import lightning.pytorch as pl

from tcx import cli

WARMUP_STEPS = 20


class TrainClock(pl.Callback):
    """Training images/s over all ranks, from step WARMUP_STEPS to the last, validation excluded."""

    def __init__(self) -> None:
        self.start = None
        self.seconds = 0.0
        self.images = 0
        self._batch_start = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= WARMUP_STEPS:
            if pl_module.device.type == "cuda":
                import torch

                torch.cuda.synchronize(pl_module.device)
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._batch_start is None:
            return
        if pl_module.device.type == "cuda":
            import torch

            torch.cuda.synchronize(pl_module.device)
        self.seconds += time.perf_counter() - self._batch_start
        self.images += len(batch[0]) * trainer.world_size
        self._batch_start = None

    def on_fit_end(self, trainer, pl_module):
        if trainer.is_global_zero and self.seconds > 0:
            print(f"gpu_check: {trainer.world_size} process(es) on {trainer.strategy.root_device}, precision "
                  f"{trainer.precision}: {self.images / self.seconds:.0f} training img/s over all ranks "
                  f"({self.images} images after {WARMUP_STEPS} warm-up steps; the training steps timed, the loader excluded)", flush=True)


def main() -> None:
    clock = TrainClock()
    instantiate_trainer = cli.TcxCLI.instantiate_trainer

    def with_clock(self, **kwargs):
        trainer = instantiate_trainer(self, **kwargs)
        trainer.callbacks.append(clock)
        return trainer

    cli.TcxCLI.instantiate_trainer = with_clock
    cli.main(["fit", *sys.argv[1:]])


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "offline")
    main()
