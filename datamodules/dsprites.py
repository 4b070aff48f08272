"""Procedural dSprites: the exact dSprites factor grid, rendered on demand (no download).

dSprites (Matthey, Higgins, Hassabis and Lerchner, 2017) is the standard disentanglement
benchmark: 737,280 binary 64x64 images of one white sprite, one for every combination of six
factors (color 1, shape 3, scale 6, orientation 40, posX 32, posY 32; ``FACTOR_NAMES``,
``FACTOR_SIZES``), indexed row-major as in the official file (``factors_to_index``). This module
draws the grid procedurally to look like the official images (not bit-identical): exactly binary
pixels, each lit when its centre falls inside the shape's implicit region, the same factors
giving the same image bit for bit in any batch. The factor values, the geometry of each shape and
the renderer's exact rules are in docs/dsprites.md.
"""

from __future__ import annotations

import math
from typing import Sequence

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tcx.distributions import bernoulli_entropy
from tcx.datamodules.device_batches import DeviceBatchMixin
from tcx.datamodules.datasets import collate_rendered, EpochSubsetSampler, RenderedBatch
from tcx.datamodules.grids import check_integer_tensor, grid_factors, grid_index, validate_grid_factors
from tcx.datamodules.loading import LoaderMixin
from tcx.datamodules.splits import HoldoutMixin, seeded_split
from tcx.validation import check_int as _check_int, check_shape
from tcx.errors import TcxError

__all__ = [
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "NUM_IMAGES",
    "IMAGE_SIZE",
    "SHAPE_NAMES",
    "HEART_CENTROID_V",
    "DSprites",
    "DSpritesDataset",
    "EpochSubsetSampler",
    "RenderedBatch",
    "collate_rendered",
    "render_dsprites",
    "index_to_factors",
    "factors_to_index",
    "factor_values",
    "validate_factors",
]

FACTOR_NAMES: tuple[str, ...] = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES: tuple[int, ...] = (1, 3, 6, 40, 32, 32)
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
NUM_IMAGES: int = math.prod(FACTOR_SIZES)  # 737,280
IMAGE_SIZE: int = 64

# Geometry, in pixels at scale 1 (see docs/dsprites.md).
_POS_MIN, _POS_SPAN = 12.0, 39.0
_SQUARE_HALF_SIDE = 8.0
_ELLIPSE_SEMI_AXES = (10.0, 5.0)
_HEART_UNIT = 7.5
# Centroid of the region (x^2 + y^2 - 1)^3 <= x^2 y^3 is (0, 0.29348) (numerical integration on a
# 4001^2 grid over [-1.5, 1.5]^2); the heart is drawn about that point so that posX/posY place its
# centre of mass, as they do for the square and the ellipse.
HEART_CENTROID_V = 0.29348
# Largest distance of any sprite point from its centre at scale 1: the square's half-diagonal
# (ellipse 10 px, heart 1.2932 * 7.5 = 9.70 px).
_MAX_RADIUS = _SQUARE_HALF_SIDE * math.sqrt(2.0)
_WINDOW = 24  # covers every pixel centre within _MAX_RADIUS of the sprite centre



def _tables() -> dict[str, Tensor]:
    """Per-index factor values and window origins, computed once in float64 then rounded."""
    k = torch.arange(40, dtype=torch.float64)
    angle = 2.0 * math.pi * k / 40.0
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Exact zeros at multiples of pi/2, so a square turned by 90 degrees is the same image.
    cos[cos.abs() < 1e-12] = 0.0
    sin[sin.abs() < 1e-12] = 0.0
    scale = 0.5 + 0.1 * torch.arange(6, dtype=torch.float64)
    pos = torch.arange(32, dtype=torch.float64) / 31.0
    centre = _POS_MIN + _POS_SPAN * pos
    origin = torch.ceil(centre - _MAX_RADIUS - 1e-3).long()
    return {
        "cos": cos.float(),
        "sin": sin.float(),
        "scale": scale.float(),
        "pos": pos.float(),
        "centre": centre.float(),
        "origin": origin,
        "angle": angle.float(),
    }


_TABLES = _tables()


def validate_factors(factors: Tensor) -> Tensor:
    """Check a ``[N, 6]`` tensor of dSprites factor indices and return it as ``torch.long``.

    Raises ``ValueError`` for a wrong type, dtype or shape, and for an index outside its factor's
    range, naming the factor, the offending value (and row) and the allowed range.
    """
    return validate_grid_factors(factors, FACTOR_NAMES, FACTOR_SIZES)


def index_to_factors(index: Tensor) -> Tensor:
    """Factor indices ``[N, 6]`` (long) of grid indices ``[N]`` (row-major, official order).

    Inverse of ``factors_to_index``; ``index`` must lie in ``0 .. 737279``.
    """
    check_integer_tensor(index, "index")
    check_shape("index", index, ("N",))
    index = index.long()
    if index.numel():
        bad = (index < 0) | (index >= NUM_IMAGES)
        if bool(bad.any()):
            pos = int(bad.nonzero()[0, 0])
            raise TcxError(
                f"index has value {int(index[pos])} at position {pos}; allowed range is "
                f"0 .. {NUM_IMAGES - 1}"
            )
    return grid_factors(index, FACTOR_SIZES)


def factors_to_index(factors: Tensor) -> Tensor:
    """Grid indices ``[N]`` (long) of factor indices ``[N, 6]``.

    ``index = ((((shape * 6 + scale) * 40 + orientation) * 32 + posX) * 32 + posY)`` (color is 0),
    the order of the official ``dsprites_ndarray`` file.
    """
    return grid_index(validate_factors(factors), FACTOR_SIZES)


def factor_values(factors: Tensor) -> dict[str, Tensor]:
    """Physical values of factor indices ``[N, 6]``: a dict of float32 ``[N]`` tensors.

    ``"scale"`` in ``[0.5, 1]`` (relative size), ``"orientation"`` in radians in ``[0, 2 pi)``
    (``2 pi k / 40``, counter-clockwise on screen), ``"posX"`` and ``"posY"`` in ``[0, 1]``
    (``k / 31``). Shape and color are categorical; use their indices.
    """
    factors = validate_factors(factors)
    t = {k: v.to(factors.device) for k, v in _TABLES.items()}
    return {
        "scale": t["scale"][factors[:, 2]],
        "orientation": t["angle"][factors[:, 3]],
        "posX": t["pos"][factors[:, 4]],
        "posY": t["pos"][factors[:, 5]],
    }


def _shape_coefficients(shape: int, scale: Tensor, cos: Tensor, sin: Tensor):
    """Linear maps from pixel offsets (dx right, dy_up up) to the shape's unit frame (u, v)."""
    if shape == 0:
        lu = lv = _SQUARE_HALF_SIDE * scale
    elif shape == 1:
        lu, lv = _ELLIPSE_SEMI_AXES[0] * scale, _ELLIPSE_SEMI_AXES[1] * scale
    else:
        lu = lv = _HEART_UNIT * scale
    # Inverse rotation: u = cos dx + sin dy_up, v = -sin dx + cos dy_up, then divide by the unit.
    return cos / lu, sin / lu, -sin / lv, cos / lv


def _inside(shape: int, u: Tensor, v: Tensor) -> Tensor:
    """Boolean mask of points (u, v) in the shape's unit frame that lie inside the shape."""
    if shape == 0:
        return torch.maximum(u.abs(), v.abs()) <= 1.0
    if shape == 1:
        return u * u + v * v <= 1.0
    # Heart: (u^2 + w^2 - 1)^3 <= u^2 w^3, where v already includes the centroid shift (w = v).
    u2 = u * u
    v2 = v * v
    s = u2 + v2 - 1.0
    return s * s * s <= u2 * (v2 * v)


def _sprite_frame(
    shape: int, factors: Tensor, xs: Tensor, ys: Tensor
) -> tuple[Tensor, Tensor]:
    """(u, v) of pixel centres ``xs`` [N, W] (columns) and ``ys`` [N, H] (rows), as [N, H, W]."""
    t = {k: v.to(factors.device) for k, v in _TABLES.items()}
    scale = t["scale"][factors[:, 2]]
    cos, sin = t["cos"][factors[:, 3]], t["sin"][factors[:, 3]]
    cx, cy = t["centre"][factors[:, 4]], t["centre"][factors[:, 5]]
    au, bu, av, bv = _shape_coefficients(shape, scale, cos, sin)
    dx = xs.float() - cx[:, None]  # [N, W]
    dy_up = cy[:, None] - ys.float()  # [N, H]
    # The map is affine and separable: u[n, i, j] = au dx[n, j] + bu dy_up[n, i].
    u = (au[:, None] * dx)[:, None, :] + (bu[:, None] * dy_up)[:, :, None]
    v_row = bv[:, None] * dy_up
    if shape == 2:
        v_row = v_row + HEART_CENTROID_V
    v = (av[:, None] * dx)[:, None, :] + v_row[:, :, None]
    return u, v


def render_dsprites(factors: Tensor) -> Tensor:
    """Render dSprites images ``[N, 1, 64, 64]`` (float32, exactly 0. or 1.) from factor indices.

    ``factors`` is a ``[N, 6]`` integer tensor of indices in the order of ``FACTOR_NAMES``; images
    are produced on its device. The mapping from factors to pixels is given in the module
    docstring. Deterministic: the same factor row always gives the same image.
    """
    return _render(validate_factors(factors))


def _render(factors: Tensor) -> Tensor:
    """``render_dsprites`` of factors already known to be valid (long, in range): no check, so no
    host synchronisation when the factors are on a GPU."""
    n, device = factors.shape[0], factors.device
    out = torch.zeros(n, IMAGE_SIZE * IMAGE_SIZE, device=device)
    if n == 0:
        return out.view(0, 1, IMAGE_SIZE, IMAGE_SIZE)
    origin = _TABLES["origin"].to(device)
    ramp = torch.arange(_WINDOW, device=device)
    for shape in range(len(SHAPE_NAMES)):
        rows = (factors[:, 1] == shape).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        f = factors[rows]
        xs = origin[f[:, 4]][:, None] + ramp  # [M, W] absolute columns
        ys = origin[f[:, 5]][:, None] + ramp  # [M, W] absolute rows
        u, v = _sprite_frame(shape, f, xs, ys)
        mask = _inside(shape, u, v)  # [M, W, W]
        flat = (ys[:, :, None] * IMAGE_SIZE + xs[:, None, :]).view(rows.numel(), -1)
        block = torch.zeros(rows.numel(), IMAGE_SIZE * IMAGE_SIZE, device=device)
        block.scatter_(1, flat, mask.view(rows.numel(), -1).float())
        out[rows] = block
    return out.view(n, 1, IMAGE_SIZE, IMAGE_SIZE)


def _render_full(factors: Tensor) -> Tensor:
    """Reference renderer evaluating all 64 x 64 pixels (no window); for tests only."""
    factors = validate_factors(factors)
    n = factors.shape[0]
    grid = torch.arange(IMAGE_SIZE, device=factors.device).expand(n, IMAGE_SIZE)
    out = torch.zeros(n, 1, IMAGE_SIZE, IMAGE_SIZE, device=factors.device)
    for shape in range(len(SHAPE_NAMES)):
        rows = (factors[:, 1] == shape).nonzero().squeeze(1)
        if rows.numel():
            u, v = _sprite_frame(shape, factors[rows], grid[: rows.numel()], grid[: rows.numel()])
            out[rows, 0] = _inside(shape, u, v).float()
    return out


# --------------------------------------------------------------------------------------------
# Data loading


class DSpritesDataset(Dataset):
    """Map-style dataset over a subset of the dSprites grid, rendering on demand.

    ``indices`` ([N] long grid indices, default the whole grid) select the images; item ``i`` is
    ``(x [1, 64, 64] float in {0, 1}, y [6] long factor indices)`` of grid index ``indices[i]``.
    ``__getitems__`` renders a whole list of items in one vectorised call (torch's DataLoader uses
    it when present); pair it with ``collate_fn=collate_rendered``.
    """

    def __init__(self, indices: Tensor | None = None):
        if indices is None:
            indices = torch.arange(NUM_IMAGES)
        check_integer_tensor(indices, "indices")
        indices = indices.reshape(-1).long()
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= NUM_IMAGES):
            index_to_factors(indices)  # raises, naming the offending value
        self.indices = indices

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        y = index_to_factors(self.indices[i].reshape(1))
        return render_dsprites(y)[0], y[0]

    def __getitems__(self, indices: Sequence[int]) -> RenderedBatch:
        y = index_to_factors(self.indices[torch.as_tensor(indices, dtype=torch.long)])
        return RenderedBatch(render_dsprites(y), y)


class DSprites(DeviceBatchMixin, HoldoutMixin, LoaderMixin, pl.LightningDataModule):
    """The procedural dSprites datamodule: batches ``(x [B, 1, 64, 64] in {0, 1}, y [B, 6] long)``.

    Images are rendered on demand from the factor grid by ``render_dsprites`` (see the module
    docstring for the factor-to-pixel mapping); nothing is downloaded. A seeded random holdout of
    ``val_size + test_size`` grid indices (``torch.Generator`` seeded with ``seed``) is cut into the
    validation set, its first ``val_size`` (also ``predict_dataloader``'s), and the test set, the
    other ``test_size``; the other indices are the training set.

    Args:
        batch_size: images per batch, >= 1.
        num_workers: DataLoader worker processes, >= 0.
        val_size: number of validation images (grid indices held out of training), >= 1.
        test_size: number of test images, held out apart from validation, >= 1; None (the
            default) for as many as ``val_size``. ``val_size + test_size`` <= 737,279.
        epoch_size: training images drawn per epoch (a fresh seeded random subset each epoch), or
            None for one pass over all training indices in random order. The default, 73,728
            images (288 batches of 256), is the one epoch of the default `tcx fit` (within 5
            minutes in fp32 on 2 AVX2 cores, benchmarks/results/default_fit.md) and keeps epochs
            short enough for per-epoch validation, metrics and pictures on a CPU; one pass over
            the training split is 732,280 images.
        seed: seed of the train/validation split and of the per-epoch subsets.
        pin_memory: passed to the DataLoaders.
        render_on: where the training images are rendered: ``"loader"`` (in the DataLoader, on
            the CPU), ``"device"`` (the loader sends grid indices and ``on_after_batch_transfer``
            renders them on the training device, the same images bit for bit), or ``"auto"``
            (the device when the Trainer trains on a GPU or another accelerator, else the
            loader). Validation and test images are always rendered in the loader
            (datamodules/device_batches.py).

    Satisfies ``tcx.groundtruth.GroundTruth``: ``factor_names``, ``factor_sizes``,
    ``sample_factors``, ``render``.
    """

    def __init__(
        self,
        batch_size: int = 256,
        num_workers: int = 0,
        val_size: int = 5000,
        test_size: int | None = None,
        epoch_size: int | None = 73728,
        seed: int = 0,
        pin_memory: bool = False,
        render_on: str = "auto",
    ):
        super().__init__()
        self.render_on = self._check_render_on(render_on)
        _check_int("batch_size", batch_size, 1)
        _check_int("num_workers", num_workers, 0)
        _check_int("val_size", val_size, 1, NUM_IMAGES - 2, hint="a test split of at least one image is held out too")
        _check_int("test_size", test_size, 1, NUM_IMAGES - 1 - val_size, allow_none=True,
                   hint=f"val_size + test_size <= {NUM_IMAGES - 1}")
        _check_int("epoch_size", epoch_size, 1, allow_none=True)
        _check_int("seed", seed, -(2**62), 2**62)
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_size = val_size
        self.test_size = val_size if test_size is None else test_size
        self._test_rows: Tensor | None = None
        self.test_dataset: DSpritesDataset | None = None
        self.epoch_size = epoch_size
        self.seed = seed
        self.pin_memory = pin_memory
        self.input_shape: tuple[int, int, int] = (1, IMAGE_SIZE, IMAGE_SIZE)
        self.num_images: int = NUM_IMAGES
        self._entropy_cache: dict[tuple[int, int], Tensor] = {}
        self.train_dataset: DSpritesDataset | None = None
        self.val_dataset: DSpritesDataset | None = None

    # -- declared ground truth ------------------------------------------------------------

    @property
    def factor_names(self) -> tuple[str, ...]:
        """``("color", "shape", "scale", "orientation", "posX", "posY")``."""
        return FACTOR_NAMES

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        """``(1, 3, 6, 40, 32, 32)``."""
        return FACTOR_SIZES

    def sample_factors(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``[num, 6]`` long factor indices, each factor uniform and independent (over the full grid)."""
        _check_int("num", num, 0)
        return torch.stack(
            [torch.randint(0, s, (num,), generator=generator) for s in FACTOR_SIZES], dim=1
        )

    def render(self, factors: Tensor) -> Tensor:
        """Images ``[num, 1, 64, 64]`` (float, 0. or 1.) of ``[num, 6]`` factor indices."""
        return render_dsprites(factors)

    def make_rows(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, y)`` of grid indices ``rows`` (from the training split, so valid), rendered on
        ``rows``' device: what ``DSpritesDataset`` gives for the same indices."""
        factors = grid_factors(rows, FACTOR_SIZES)
        return _render(factors), factors

    def pixel_entropy(self, num_samples: int = 20000, seed: int = 0) -> Tensor:
        """Per-pixel marginal entropy ``H(X_i)`` in nats, ``[1, 64, 64]``, each in ``[0, log 2]``.

        Plug-in estimate: ``p_i`` is the frequency of pixel ``i`` being 1 among ``num_samples``
        images of factors drawn uniformly from the grid (``torch.Generator`` seeded with ``seed``),
        and ``H = -p log p - (1 - p) log(1 - p)`` with ``0 log 0 = 0``. It is biased low by about
        ``1 / (2 num_samples)`` nats. Cached per ``(num_samples, seed)``.
        """
        _check_int("num_samples", num_samples, 1)
        key = (num_samples, seed)
        if key not in self._entropy_cache:
            g = torch.Generator().manual_seed(seed)
            factors = self.sample_factors(num_samples, generator=g)
            counts = torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.float64)
            for chunk in factors.split(4096):
                counts += render_dsprites(chunk).sum(dim=0, dtype=torch.float64)
            p = counts / num_samples
            h = bernoulli_entropy(p)
            self._entropy_cache[key] = h.float()
        return self._entropy_cache[key].clone()

    # -- split and loaders -----------------------------------------------------------------

    def _num_stored(self) -> int:
        return NUM_IMAGES

    @property
    def dataset_size(self) -> int:
        """Number of training images: the grid less the ``val_size + test_size`` held out."""
        return NUM_IMAGES - self.val_size - self.test_size

    @property
    def split(self) -> tuple[Tensor, Tensor]:
        """``(train_rows, val_rows)``: a seeded random holdout of ``val_size + test_size`` grid
        indices (``seeded_split``), whose first ``val_size`` validate; disjoint, the same for the
        same seed (and the validation rows the same whatever ``test_size``)."""
        if self._split is None:
            train, holdout = seeded_split(NUM_IMAGES, self.val_size + self.test_size, self.seed)
            self._split = (train, holdout[: self.val_size])
            self._test_rows = holdout[self.val_size:]
        return self._split

    @property
    def test_rows(self) -> Tensor:
        """The ``test_size`` grid indices of the test split, disjoint from training and validation."""
        self.split  # noqa: B018  (made with the split)
        return self._test_rows

    def has_own_test_set(self) -> bool:
        """True: the test split has its own ``test_size`` images (the validation split is not halved)."""
        return True

    def setup(self, stage: str | None = None) -> None:
        train, val = self.split
        if self.train_dataset is None:
            self.train_dataset = DSpritesDataset(train)
        if self.val_dataset is None:
            self.val_dataset = DSpritesDataset(val)
        if self.test_dataset is None:
            self.test_dataset = DSpritesDataset(self.test_rows)
