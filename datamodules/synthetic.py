"""Synthetic CorEx data: vectors drawn from a known latent structure, with its exact TC(X).

``SyntheticCorEx`` draws the data of the synthetic experiments of Ver Steeg and Galstyan (NeurIPS
2014, sec. 4): ``m`` independent uniform factors on ``{0, .., c - 1}``, each observed through
``r`` copies by a symmetric channel with error ``noise``, plus ``d`` pure-noise columns;
``x [m r + d]`` in [0, 1], ``y`` the factors ``[m]`` (long). Its information quantities are exact:
``true_tc`` (``TC(X)``), ``group_entropy`` and ``channel_entropy``.

Details (the structure, what a model should find, the formulas):
docs/datamodules.md#datamodulessyntheticpy-syntheticcorex
"""

from __future__ import annotations

import math
from typing import Iterator

import lightning.pytorch as pl
import torch
from torch import Tensor

from tcx.datamodules.device_batches import DeviceBatchMixin
from tcx.datamodules.grids import sample_grid_factors, validate_grid_factors
from tcx.datamodules.loading import LoaderMixin
from tcx.datamodules.splits import HoldoutMixin
from tcx.validation import check_int, check_probability
from tcx.errors import TcxError

__all__ = ["SyntheticCorEx", "group_entropy", "channel_entropy"]


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first,) + rest


def channel_entropy(cardinality: int, noise: float) -> float:
    """``H(copy | factor)`` in nats of the symmetric channel: ``-(1-e) log(1-e) - e log(e/(c-1))``."""
    e, c = float(noise), int(cardinality)
    return -(math.fsum([(1 - e) * math.log(1 - e) if e < 1 else 0.0, e * math.log(e / (c - 1)) if e > 0 else 0.0]))


def group_entropy(copies: int, cardinality: int, noise: float) -> float:
    """Exact joint entropy ``H(X_group)`` in nats of ``copies`` noisy copies of one uniform factor
    with ``cardinality`` values (see docs/datamodules.md#datamodulessyntheticpy-syntheticcorex)."""
    r, c, e = int(copies), int(cardinality), float(noise)
    if math.comb(r + c - 1, c - 1) > 2_000_000:
        raise TcxError(f"group_entropy: {math.comb(r + c - 1, c - 1)} count vectors are too many to sum exactly")
    keep, other = 1.0 - e, e / (c - 1)
    terms = []
    for counts in _compositions(r, c):
        mult = math.factorial(r)
        for n in counts:
            mult //= math.factorial(n)
        p = math.fsum(keep**n * other ** (r - n) for n in counts) / c
        if p > 0:
            terms.append(-mult * p * math.log(p))
    return math.fsum(terms)


class _Source:
    def __init__(self, x: Tensor, y: Tensor):
        self.x, self.y = x, y

    def __call__(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[rows], self.y[rows]


class SyntheticCorEx(DeviceBatchMixin, HoldoutMixin, LoaderMixin, pl.LightningDataModule):
    """Synthetic CorEx data (module docstring): batches ``(x [B, n] float in [0, 1], y [B, m] long)``
    with ``n = num_factors * copies_per_factor + num_noise_dims``.

    ``num_points`` points are drawn once, seeded by ``seed``; a seeded random holdout of
    ``val_size`` of them is the validation (and test) set.

    Args:
        num_factors: hidden factors ``m``.
        copies_per_factor: noisy copies ``r`` of each factor.
        factor_cardinality: values ``c`` of each factor (2: binary data).
        noise: the channel's probability ``e`` that a copy differs from its factor, in [0, 1].
        num_noise_dims: pure-noise columns ``d`` appended (or shuffled in).
        num_points: points drawn, the whole dataset (training and held out). val_size: held-out points.
        shuffle_columns: permute the columns (seeded), so that groups are not contiguous.
        batch_size, num_workers, pin_memory, epoch_size: as for the other datamodules (the data
            is in memory: 0 workers).
        seed: seed of the data, the column permutation and the split.
        render_on: ``"device"`` keeps a copy of the points on the training device and gathers
            each training batch there from the row indices the loader sends; ``"loader"`` gathers
            in the DataLoader; ``"auto"``: the device on a GPU or other accelerator, else the
            loader (datamodules/device_batches.py). The batches are the same either way.

    Satisfies ``tcx.groundtruth.GroundTruth``; ``render`` draws the channel noise (seeded).
    """

    def __init__(
        self,
        num_factors: int = 5,
        copies_per_factor: int = 4,
        factor_cardinality: int = 2,
        noise: float = 0.1,
        num_noise_dims: int = 0,
        num_points: int = 10000,
        val_size: int = 1000,
        shuffle_columns: bool = False,
        batch_size: int = 256,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        epoch_size: int | None = None,
        seed: int = 0,
        render_on: str = "auto",
    ):
        super().__init__()
        self.render_on = self._check_render_on(render_on)
        self._on_device: dict[torch.device, tuple[Tensor, Tensor]] = {}
        check_int("num_factors", num_factors, 1)
        check_int("copies_per_factor", copies_per_factor, 1)
        check_int("factor_cardinality", factor_cardinality, 2, 255)
        check_probability("noise", noise)
        check_int("num_noise_dims", num_noise_dims, 0)
        check_int("num_points", num_points, 2)
        check_int("val_size", val_size, 1, num_points - 1)
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("epoch_size", epoch_size, 1, allow_none=True)
        check_int("seed", seed, -(2**62), 2**62)
        self.save_hyperparameters()
        self.num_factors, self.copies_per_factor = num_factors, copies_per_factor
        self.factor_cardinality, self.noise = factor_cardinality, float(noise)
        self.num_noise_dims, self.num_points, self.val_size = num_noise_dims, num_points, val_size
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.epoch_size, self.seed = epoch_size, seed
        n = num_factors * copies_per_factor + num_noise_dims
        self.input_shape: tuple[int] = (n,)
        column_factor = torch.cat(
            [torch.arange(num_factors).repeat_interleave(copies_per_factor), torch.full((num_noise_dims,), -1)]
        )
        g = torch.Generator().manual_seed(int(seed))
        if shuffle_columns:
            column_factor = column_factor[torch.randperm(n, generator=g)]
        self.column_factor: Tensor = column_factor
        self._render_generator = torch.Generator().manual_seed(int(seed) + 1)
        factors = self.sample_factors(num_points, g)
        self._source = _Source(self._observe(factors, g), factors)

    # -- declared ground truth ------------------------------------------------------------

    @property
    def factor_names(self) -> tuple[str, ...]:
        """``("f0", .., "f{m-1}")``."""
        return tuple(f"f{k}" for k in range(self.num_factors))

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (self.factor_cardinality,) * self.num_factors

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """For each factor, the columns of ``x`` that copy it."""
        return tuple(tuple((self.column_factor == k).nonzero().squeeze(1).tolist()) for k in range(self.num_factors))

    @property
    def noise_columns(self) -> tuple[int, ...]:
        """The pure-noise columns of ``x``."""
        return tuple((self.column_factor < 0).nonzero().squeeze(1).tolist())

    @property
    def data(self) -> tuple[Tensor, Tensor]:
        """All ``num_points`` points: ``(x [N, n], factors [N, m])``."""
        return self._source.x, self._source.y

    def sample_factors(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``[num, m]`` long factor indices, each uniform on ``0 .. c - 1`` and independent."""
        return sample_grid_factors(num, self.factor_sizes, generator)

    def _observe(self, factors: Tensor, generator: torch.Generator | None) -> Tensor:
        c, n = self.factor_cardinality, self.input_shape[0]
        num = factors.shape[0]
        col = self.column_factor.to(factors.device)
        copy = col >= 0
        values = torch.zeros(num, n, dtype=torch.long, device=factors.device)
        values[:, copy] = factors[:, col[copy]]
        flip = torch.rand(num, n, generator=generator) < self.noise
        shift = torch.randint(1, c, (num, n), generator=generator)
        values = torch.where(flip.to(values.device), (values + shift.to(values.device)) % c, values)
        uniform = torch.randint(0, c, (num, n), generator=generator).to(values.device)
        values = torch.where(copy, values, uniform)
        return values.float() / (c - 1)

    def make_rows(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of the stored points ``rows``, gathered on ``rows``' device from a copy of
        the points kept there (made on first use)."""
        if rows.device not in self._on_device:
            self._on_device[rows.device] = (self._source.x.to(rows.device), self._source.y.to(rows.device))
        x, y = self._on_device[rows.device]
        return x[rows], y[rows]

    def render(self, factors: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Observations ``[num, n]`` (float in [0, 1]) of factor indices ``[num, m]``, with fresh
        channel noise drawn from ``generator`` (default: this datamodule's own generator, seeded
        by ``seed + 1``, so a sequence of calls is reproducible). Noiseless (``noise=0`` and no
        noise columns) data renders deterministically."""
        factors = validate_grid_factors(factors, self.factor_names, self.factor_sizes)
        return self._observe(factors, generator if generator is not None else self._render_generator)

    # -- exact information quantities (nats) ----------------------------------------------

    @property
    def column_entropy(self) -> Tensor:
        """``H(X_i) = log c`` for every column, ``[n]`` float64."""
        return torch.full(self.input_shape, math.log(self.factor_cardinality), dtype=torch.float64)

    @property
    def column_information(self) -> Tensor:
        """``I(X_i; f_k)`` of each column with its factor, ``[n]`` float64 (0 for noise columns)."""
        mi = math.log(self.factor_cardinality) - channel_entropy(self.factor_cardinality, self.noise)
        return torch.where(self.column_factor >= 0, mi, 0.0).double()

    @property
    def true_tc(self) -> float:
        """``TC(X) = sum_i H(X_i) - H(X)`` in nats, exactly
        (docs/datamodules.md#datamodulessyntheticpy-syntheticcorex)."""
        r, c = self.copies_per_factor, self.factor_cardinality
        return self.num_factors * (r * math.log(c) - group_entropy(r, c, self.noise))

    def pixel_entropy(self, num_samples: int = 20000, seed: int = 0) -> Tensor:
        """``H(X_i)`` in nats as the Bernoulli likelihood's CorEx bound uses it, ``[n]``: ``log 2``
        for every column, exactly (every column has mean 1/2 by symmetry). For ``c = 2`` it is the
        column's entropy; for ``c > 2`` (grey levels) the cross-entropy of the best constant
        Bernoulli decoder. ``num_samples`` and ``seed`` are accepted for the common signature."""
        check_int("num_samples", num_samples, 1)
        return torch.full(self.input_shape, math.log(2.0))

    # -- split and loaders -----------------------------------------------------------------

    def _num_stored(self) -> int:
        return self.num_points

    def setup(self, stage: str | None = None) -> None:
        self._build_datasets()
