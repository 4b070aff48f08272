"""Batched datasets: a dataset that fetches many rows in one call (``__getitems__``) and the
``collate_fn`` that passes such a batch through, and the sampler that draws a fixed number of
seeded rows per epoch (``epoch_size``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from tcx.validation import check_int

__all__ = [
    "RenderedBatch",
    "collate_rendered",
    "EpochSubsetSampler",
    "BatchDataset",
]


class RenderedBatch(NamedTuple):
    """A whole batch made at once by a dataset's ``__getitems__``: observations and targets."""

    x: Tensor
    y: Tensor


def collate_rendered(batch) -> tuple[Tensor, Tensor]:
    """DataLoader ``collate_fn`` for the batched datasets (``DSpritesDataset``, ``BatchDataset``): ``(x, y)``.

    Accepts a ``RenderedBatch`` (what ``__getitems__`` returns: passed through) or a list of
    ``(x, y)`` samples from ``__getitem__`` (stacked). Module-level, so it pickles for workers.
    """
    if isinstance(batch, RenderedBatch):
        return batch.x, batch.y
    xs, ys = zip(*batch)
    return torch.stack(xs), torch.stack(ys)


class EpochSubsetSampler(Sampler[int]):
    """Draws ``num_samples`` distinct positions of a dataset of size ``n`` each epoch, seeded.

    The draw of epoch ``e`` depends only on ``(seed, e)``: every process of a distributed run
    produces the same list, which Lightning's ``DistributedSamplerWrapper`` then shards, and
    ``set_epoch`` (called by Lightning every epoch) gives a fresh subset. Without ``set_epoch`` each
    new iteration moves on to the next epoch's draw. When ``num_samples > n`` the epoch is a
    concatenation of independent permutations.
    """

    def __init__(self, n: int, num_samples: int, seed: int = 0):
        check_int("n", n, 1)
        check_int("num_samples", num_samples, 1)
        self.n, self.num_samples, self.seed = n, num_samples, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def indices(self, epoch: int) -> Tensor:
        """Positions drawn for ``epoch`` (without advancing)."""
        g = torch.Generator().manual_seed((self.seed * 0x9E3779B1 + 0x5851F42D * (epoch + 1)) % 2**63)
        parts, have = [], 0
        while have < self.num_samples:
            parts.append(torch.randperm(self.n, generator=g))
            have += self.n
        return torch.cat(parts)[: self.num_samples]

    def __iter__(self):
        idx = self.indices(self.epoch)
        self.epoch += 1
        return iter(idx.tolist())


class BatchDataset(Dataset):
    """Map-style dataset whose items come from ``fetch(rows [n] long) -> (x [n, ...], y [n, ...])``.

    ``indices`` select the rows of the underlying source. ``__getitems__`` fetches a whole batch in
    one call (torch's DataLoader uses it when present); pair it with ``collate_rendered``. ``fetch``
    must pickle (a module-level object or a bound method of one) for worker processes.
    """

    def __init__(self, fetch: Callable[[Tensor], tuple[Tensor, Tensor]], indices: Tensor):
        self.fetch = fetch
        self.indices = indices.reshape(-1).long()

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.fetch(self.indices[int(i)].reshape(1))
        return x[0], y[0]

    def __getitems__(self, positions: Sequence[int]) -> RenderedBatch:
        x, y = self.fetch(self.indices[torch.as_tensor(positions, dtype=torch.long)])
        return RenderedBatch(x, y)
