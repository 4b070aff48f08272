"""Training batches made on the training device: the loader sends row indices, the device builds.

A procedural or in-memory datamodule can make its training images on the device that trains
(``render_on="device"``): its training loader then yields a :class:`DeferredBatch` of row indices
(a few bytes an image), Lightning moves it to the device, and the datamodule's
``on_after_batch_transfer`` hook turns it into ``(x, y)`` there with the same function the CPU
loader uses, so the images are the same for the same rows. ``render_on="auto"`` (the default)
chooses the device path when the Trainer trains on an accelerator other than the CPU, and the
loader path on the CPU. Validation, test and prediction loaders always build their batches in the
loader, since callbacks also read them outside the Trainer's transfer hooks. Why and how fast:
benchmarks/results/render_throughput.md.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from tcx.validation import check_choice

__all__ = ["RENDER_ON", "DeferredBatch", "DeferredDataset", "DeviceBatchMixin", "collate_deferred"]

RENDER_ON = ("auto", "loader", "device")


class DeferredBatch(NamedTuple):
    """A training batch not yet made: ``rows [B]`` (long) of the datamodule's source."""

    rows: Tensor


class DeferredDataset(Dataset):
    """The rows ``indices`` of a source, handed out unmade: item ``i`` is ``indices[i]``."""

    def __init__(self, indices: Tensor):
        self.indices = indices.reshape(-1).long()

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.indices[int(i)]

    def __getitems__(self, positions: Sequence[int]) -> DeferredBatch:
        return DeferredBatch(self.indices[torch.as_tensor(positions, dtype=torch.long)])


def collate_deferred(batch) -> DeferredBatch:
    """DataLoader ``collate_fn`` of a :class:`DeferredDataset`: one :class:`DeferredBatch`."""
    if isinstance(batch, DeferredBatch):
        return batch
    return DeferredBatch(torch.stack(list(batch)))


class DeviceBatchMixin:
    """``render_on`` for a datamodule whose training rows can be made on the device.

    The datamodule defines ``make_rows(rows: Tensor) -> (x, y)``, which builds the batch of the
    given rows on ``rows``' device, exactly as its CPU dataset would, and has ``train_dataset``
    with an ``indices`` attribute and ``batch_size``; the training order is ``LoaderMixin``'s
    ``train_sampler``, so both paths see the same rows in the same order. Put this mixin before
    ``LoaderMixin``.
    """

    render_on: str = "auto"

    def make_rows(self, rows: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - each datamodule defines it
        raise NotImplementedError

    def _check_render_on(self, render_on: str) -> str:
        return check_choice("render_on", render_on, RENDER_ON)

    def renders_on_device(self) -> bool:
        """Whether the training batches are made on the training device: ``render_on="device"``,
        or ``"auto"`` with a Trainer whose root device is not the CPU."""
        if self.render_on == "device":
            return True
        if self.render_on == "loader":
            return False
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return False
        return trainer.strategy.root_device.type != "cpu"

    def train_dataloader(self) -> DataLoader:
        if not self.renders_on_device():
            return super().train_dataloader()
        self.setup("fit")
        deferred = DeferredDataset(self.train_dataset.indices)
        sampler = self.train_sampler(len(deferred))
        # the rows are a few bytes an image: no worker process would pay for itself
        return DataLoader(deferred, batch_size=self.batch_size, sampler=sampler, shuffle=False,
                          collate_fn=collate_deferred, num_workers=0)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, DeferredBatch):
            return self.make_rows(batch.rows)
        return batch
