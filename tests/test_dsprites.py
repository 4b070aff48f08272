"""Tests of the procedural dSprites renderer and datamodule (tcx.datamodules.dsprites)."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

from tcx.datamodules import DSprites, render_dsprites
from tcx.datamodules.dsprites import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    NUM_IMAGES,
    DSpritesDataset,
    EpochSubsetSampler,
    RenderedBatch,
    _render_full,
    collate_rendered,
    factor_values,
    factors_to_index,
    index_to_factors,
)
from tcx.groundtruth import GroundTruth, is_ground_truth

SQUARE, ELLIPSE, HEART = 0, 1, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def f(shape=0, scale=5, orient=0, x=15, y=15) -> torch.Tensor:
    return torch.tensor([[0, shape, scale, orient, x, y]])


def grid(**ranges) -> torch.Tensor:
    """All combinations of the given factor values (others at defaults), as [N, 6] factors."""
    default = {"shape": [0], "scale": [5], "orient": [0], "x": [15], "y": [15]}
    default.update({k: list(v) for k, v in ranges.items()})
    cols = [torch.tensor(default[k]) for k in ("shape", "scale", "orient", "x", "y")]
    mesh = torch.cartesian_prod(torch.zeros(1, dtype=torch.long), *cols)
    return mesh.reshape(-1, 6)


def centre_of_mass(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(column, row) centre of mass of [N, 1, H, W] binary images."""
    img = images[:, 0]
    rows = torch.arange(img.shape[1], dtype=torch.float32)
    cols = torch.arange(img.shape[2], dtype=torch.float32)
    mass = img.sum(dim=(1, 2))
    return (img.sum(1) * cols).sum(1) / mass, (img.sum(2) * rows).sum(1) / mass


def principal_angle(images: torch.Tensor) -> torch.Tensor:
    """Angle (radians, in [0, pi), counter-clockwise with y up) of the long axis of each image."""
    img = images[:, 0]
    n, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    up = -ys
    m = img.double().sum(dim=(1, 2))
    mx, my = (img * xs).sum((1, 2)) / m, (img * up).sum((1, 2)) / m
    cxx = (img * (xs - mx[:, None, None]) ** 2).sum((1, 2)) / m
    cyy = (img * (up - my[:, None, None]) ** 2).sum((1, 2)) / m
    cxy = (img * (xs - mx[:, None, None]) * (up - my[:, None, None])).sum((1, 2)) / m
    return (0.5 * torch.atan2(2 * cxy, cxx - cyy)) % math.pi


# ---------------------------------------------------------------------------------------------
# The grid


def test_grid_size_and_names():
    assert FACTOR_NAMES == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert FACTOR_SIZES == (1, 3, 6, 40, 32, 32)
    assert math.prod(FACTOR_SIZES) == NUM_IMAGES == 737_280


def test_index_round_trip_and_official_order():
    g = torch.Generator().manual_seed(1)
    idx = torch.cat([torch.tensor([0, NUM_IMAGES - 1]), torch.randint(0, NUM_IMAGES, (5000,), generator=g)])
    factors = index_to_factors(idx)
    assert factors.dtype == torch.long and factors.shape == (idx.numel(), 6)
    assert torch.equal(factors_to_index(factors), idx)
    assert factors[0].tolist() == [0, 0, 0, 0, 0, 0]
    assert factors[1].tolist() == [0, 2, 5, 39, 31, 31]
    # Official layout: posY varies fastest, then posX, orientation, scale, shape.
    assert index_to_factors(torch.tensor([1, 32, 32 * 32, 40 * 32 * 32, 6 * 40 * 32 * 32])).tolist() == [
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
    ]
    shape, scale, orient, x, y = 2, 3, 17, 9, 30
    assert factors_to_index(f(shape, scale, orient, x, y)).item() == (
        (((shape * 6 + scale) * 40 + orient) * 32 + x) * 32 + y
    )


def test_factor_values():
    v = factor_values(torch.tensor([[0, 1, 0, 0, 0, 0], [0, 2, 5, 10, 31, 31], [0, 0, 2, 39, 15, 1]]))
    torch.testing.assert_close(v["scale"], torch.tensor([0.5, 1.0, 0.7]))
    torch.testing.assert_close(v["orientation"], torch.tensor([0.0, math.pi / 2, 2 * math.pi * 39 / 40]))
    torch.testing.assert_close(v["posX"], torch.tensor([0.0, 1.0, 15 / 31]))
    torch.testing.assert_close(v["posY"], torch.tensor([0.0, 1.0, 1 / 31]))


@pytest.mark.parametrize(
    "bad, words",
    [
        (torch.tensor([[0, 0, 0, 40, 0, 0]]), ["orientation", "40", "0 .. 39"]),
        (torch.tensor([[0, 3, 0, 0, 0, 0]]), ["shape", "3", "0 .. 2"]),
        (torch.tensor([[0, 0, 0, 0, 0, -1]]), ["posY", "-1", "0 .. 31"]),
        (torch.tensor([[1, 0, 0, 0, 0, 0]]), ["color", "1", "0 .. 0"]),
        (torch.tensor([[0, 0, 6, 0, 0, 0]]), ["scale", "6", "0 .. 5"]),
        (torch.zeros(2, 5, dtype=torch.long), ["factors must be [N, 6]", "(2, 5)"]),
        (torch.zeros(6, dtype=torch.long), ["factors must be [N, 6]", "(6,)"]),
        (torch.zeros(2, 6), ["integer", "float32"]),
    ],
)
def test_invalid_factors_raise(bad, words):
    for fn in (render_dsprites, factors_to_index, factor_values):
        with pytest.raises(ValueError) as err:
            fn(bad)
        for w in words:
            assert w in str(err.value)


def test_invalid_index_raises():
    with pytest.raises(ValueError, match=r"737280.*0 \.\. 737279"):
        index_to_factors(torch.tensor([3, NUM_IMAGES]))
    with pytest.raises(ValueError, match="-1"):
        index_to_factors(torch.tensor([-1]))
    with pytest.raises(ValueError, match="integer"):
        index_to_factors(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"index must be \[N\], got shape \(2, 2\)"):
        index_to_factors(torch.zeros(2, 2, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# The renderer


def test_output_binary_shape_dtype():
    factors = index_to_factors(torch.randint(0, NUM_IMAGES, (300,), generator=torch.Generator().manual_seed(2)))
    x = render_dsprites(factors)
    assert x.shape == (300, 1, 64, 64) and x.dtype == torch.float32
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert (x.sum(dim=(1, 2, 3)) > 0).all()
    assert render_dsprites(torch.zeros(0, 6, dtype=torch.long)).shape == (0, 1, 64, 64)
    # int32 factors are accepted and give the same images
    assert torch.equal(render_dsprites(factors[:5].int()), x[:5])


def test_deterministic_and_batch_independent():
    g = torch.Generator().manual_seed(3)
    factors = index_to_factors(torch.randint(0, NUM_IMAGES, (200,), generator=g))
    a, b = render_dsprites(factors), render_dsprites(factors)
    assert torch.equal(a, b)
    # the same rows inside other batches: alone, reversed, mixed with other factors
    assert torch.equal(render_dsprites(factors[7:8])[0], a[7])
    assert torch.equal(render_dsprites(factors.flip(0)), a.flip(0))
    other = index_to_factors(torch.randint(0, NUM_IMAGES, (57,), generator=g))
    mixed = render_dsprites(torch.cat([other, factors[:50], other]))
    assert torch.equal(mixed[57:107], a[:50])


def test_window_matches_full_image_evaluation():
    g = torch.Generator().manual_seed(4)
    factors = index_to_factors(torch.randint(0, NUM_IMAGES, (200,), generator=g))
    # plus every shape and orientation at scale 1 at the four extreme corners
    factors = torch.cat([factors, grid(shape=range(3), orient=range(40), x=[0, 31], y=[0, 31])])
    assert torch.equal(render_dsprites(factors), _render_full(factors))


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, HEART])
def test_position_moves_centre_of_mass(shape):
    for orient in (0, 7):
        imgs = render_dsprites(grid(shape=[shape], orient=[orient], x=range(32), y=[10]))
        col, row = centre_of_mass(imgs)
        assert (col.diff() > 0).all()  # larger posX: further right
        assert torch.allclose(row, row[0], atol=0.3)
        # the centroid is placed at 12 + 39 posX (documented mapping), within rasterisation error
        expect = 12 + 39 * torch.arange(32) / 31
        assert (col - expect).abs().max() < 0.5
        imgs = render_dsprites(grid(shape=[shape], orient=[orient], x=[20], y=range(32)))
        col, row = centre_of_mass(imgs)
        assert (row.diff() > 0).all()  # larger posY: lower in the image (larger row)
        assert (row - expect).abs().max() < 0.5


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, HEART])
def test_scale_grows_area_about_quadratically(shape):
    orients = [0, 3, 5, 13]
    areas = render_dsprites(grid(shape=[shape], scale=range(6), orient=orients, x=[9, 22])).sum(dim=(1, 2, 3))
    areas = areas.view(6, len(orients) * 2)
    assert (areas.diff(dim=0) > 0).all()  # monotone in scale at every orientation and position
    ratio = areas[5].mean() / areas[0].mean()
    assert abs(ratio - 4.0) < 0.15 * 4.0
    expected = {SQUARE: 256.0, ELLIPSE: math.pi * 50, HEART: 3.662 * 7.5**2}[shape]
    assert abs(areas[5].mean() - expected) < 0.05 * expected  # documented size at scale 1


def test_shapes_differ_pairwise():
    for orient in (0, 11):
        for scale in (0, 5):
            a = render_dsprites(grid(shape=range(3), scale=[scale], orient=[orient]))
            for i in range(3):
                for j in range(i + 1, 3):
                    assert (a[i] != a[j]).sum() >= 10


def test_square_rotation_symmetry():
    imgs = render_dsprites(grid(shape=[SQUARE], orient=[0, 5, 10, 20, 30], x=[4, 17], y=[13]))
    zero, r45, r90, r180, r270 = imgs.view(5, 2, 1, 64, 64)
    assert (zero != r45).sum() > 50
    assert (zero != r90).sum() <= 2 and (zero != r180).sum() <= 2 and (zero != r270).sum() <= 2


def test_ellipse_axis_follows_orientation():
    orients = torch.arange(40)
    imgs = render_dsprites(grid(shape=[ELLIPSE], orient=orients.tolist(), x=[16], y=[14]))
    angle = principal_angle(imgs)
    expect = (2 * math.pi * orients / 40) % math.pi
    err = (angle - expect.double()).abs()
    err = torch.minimum(err, math.pi - err)
    assert err.max() < math.radians(3)
    # the ellipse is symmetric under a half turn
    assert torch.equal(imgs[0], imgs[20])


def test_rotation_is_counter_clockwise_on_screen():
    # the ellipse's right end goes up (smaller row) for a small positive angle
    img = render_dsprites(f(ELLIPSE, 5, 2))[0, 0]
    rows, cols = img.nonzero(as_tuple=True)
    assert rows[cols == cols.max()].float().mean() < rows[cols == cols.min()].float().mean()
    # the heart at orientation 0 is upright: its point (the lowest lit pixel) is below the lobes,
    # and turning it a half turn puts the point on top
    for orient, point_down in ((0, True), (20, False)):
        img = render_dsprites(f(HEART, 5, orient))[0, 0]
        rows, cols = img.nonzero(as_tuple=True)
        width_top = (rows == rows.min()).sum()
        width_bottom = (rows == rows.max()).sum()
        assert (width_top > width_bottom) == point_down


def test_sprite_never_touches_border():
    imgs = render_dsprites(grid(shape=range(3), orient=range(40), x=[0, 31], y=[0, 31]))
    border = imgs[..., 0, :].sum() + imgs[..., -1, :].sum() + imgs[..., :, 0].sum() + imgs[..., :, -1].sum()
    assert border == 0
    # but the sprites do reach close to it (centres span the image with a small margin)
    assert imgs[..., 1, :].sum() > 0 and imgs[..., :, 62].sum() > 0


# ---------------------------------------------------------------------------------------------
# Datasets, collate, sampler


def test_dataset_getitem_and_getitems_agree():
    ds = DSpritesDataset(torch.tensor([5, 100_000, 737_279, 42]))
    batch = ds.__getitems__([2, 0, 3])
    assert isinstance(batch, RenderedBatch)
    x, y = collate_rendered(batch)
    x2, y2 = collate_rendered([ds[2], ds[0], ds[3]])
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(factors_to_index(y), torch.tensor([737_279, 5, 42]))


def test_epoch_subset_sampler():
    s = EpochSubsetSampler(1000, 300, seed=3)
    assert len(s) == 300
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(0)
    assert list(s) == e0  # same epoch, same draw
    assert len(set(e0)) == 300 and 0 <= min(e0) and max(e0) < 1000  # without replacement
    s.set_epoch(1)
    assert list(s) != e0
    # Lightning's DDP wrapper shards the (rank-independent) draw into disjoint parts
    shards = []
    for rank in range(2):
        inner = EpochSubsetSampler(1000, 300, seed=3)
        w = DistributedSamplerWrapper(inner, num_replicas=2, rank=rank, shuffle=False)
        w.set_epoch(0)
        shards.append(list(w))
    assert len(shards[0]) == len(shards[1]) == 150
    assert set(shards[0]).isdisjoint(shards[1]) and set(shards[0]) | set(shards[1]) == set(e0)
    # more samples than items: complete permutations back to back
    big = EpochSubsetSampler(10, 25)
    counts = torch.bincount(torch.tensor(list(big)), minlength=10)
    assert counts.min() >= 2 and counts.max() <= 3


# ---------------------------------------------------------------------------------------------
# The datamodule


def test_declarations_without_setup():
    dm = DSprites(val_size=1000)
    assert isinstance(dm, GroundTruth) and is_ground_truth(dm)
    assert tuple(dm.factor_names) == FACTOR_NAMES and tuple(dm.factor_sizes) == FACTOR_SIZES
    assert dm.input_shape == (1, 64, 64)
    assert dm.num_images == 737_280
    assert dm.dataset_size == 737_280 - 2000  # 1000 validation and 1000 test images held out
    assert DSprites(val_size=1000, test_size=10).dataset_size == 737_280 - 1010


def test_split_reproducible_and_disjoint():
    a_train, a_val = DSprites(val_size=3000, seed=5).split
    b_train, b_val = DSprites(val_size=3000, seed=5).split
    c_train, c_val = DSprites(val_size=3000, seed=6).split
    assert torch.equal(a_train, b_train) and torch.equal(a_val, b_val)
    assert not torch.equal(a_val.sort().values, c_val.sort().values)
    assert a_val.numel() == 3000 and a_train.numel() == NUM_IMAGES - 6000
    a = DSprites(val_size=3000, seed=5)
    assert a.test_rows.numel() == 3000 and torch.equal(a.test_rows, DSprites(val_size=3000, seed=5).test_rows)
    both = torch.cat([a_train, a_val, a.test_rows])
    assert torch.equal(both.sort().values, torch.arange(NUM_IMAGES))  # disjoint, covering
    # the validation images of a seed do not depend on the test split's size
    assert torch.equal(DSprites(val_size=3000, test_size=7, seed=5).split[1], a_val)


def test_train_batches_match_rendering_and_split():
    dm = DSprites(batch_size=64, val_size=2000, epoch_size=150, seed=1)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [64, 64, 22]  # epoch_size images per epoch
    train, val = dm.split
    in_train = torch.zeros(NUM_IMAGES, dtype=torch.bool)
    in_train[train] = True
    for x, y in batches:
        assert x.shape[1:] == (1, 64, 64) and x.dtype == torch.float32
        assert y.shape[1:] == (6,) and y.dtype == torch.long
        assert torch.equal(x, render_dsprites(y))
        assert torch.equal(index_to_factors(factors_to_index(y)), y)
        assert in_train[factors_to_index(y)].all()
    # a new epoch draws a new subset
    ys2 = torch.cat([y for _, y in loader])
    assert not torch.equal(ys2, torch.cat([y for _, y in batches]))


def test_val_size_is_the_number_of_validation_images_and_test_has_its_own():
    dm = DSprites(batch_size=128, val_size=300, test_size=120, seed=2)
    train, val = dm.split
    # --data.val_size 300 gives 300 validation images (before: the holdout was halved, 150),
    # the test split its own test_size; predict is the validation split
    got = [torch.cat([y for _, y in loader]) for loader in (dm.val_dataloader(), dm.test_dataloader())]
    assert len(got[0]) == 300 and len(got[1]) == 120
    assert torch.equal(factors_to_index(got[0]), val) and torch.equal(factors_to_index(got[1]), dm.test_rows)
    assert len(set(factors_to_index(got[1]).tolist()) & set(val.tolist())) == 0
    assert len(dm.split_data("val")[0]) == 300 and len(dm.split_data("test")[0]) == 120
    ys = torch.cat([y for _, y in dm.predict_dataloader()])
    assert torch.equal(factors_to_index(ys), val)
    with pytest.raises(ValueError, match="test_size"):
        DSprites(val_size=737_000, test_size=500)


def test_loader_with_worker_process():
    dm = DSprites(batch_size=32, num_workers=1, val_size=100, seed=0)
    loader = dm.val_dataloader()
    x, y = next(iter(loader))
    assert x.shape == (32, 1, 64, 64) and torch.equal(x, render_dsprites(y))
    del loader


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"num_workers": -1}, "num_workers"),
        ({"val_size": 0}, "val_size"),
        ({"val_size": NUM_IMAGES}, "val_size"),
        ({"epoch_size": 0}, "epoch_size"),
        ({"batch_size": 2.5}, "batch_size"),
    ],
)
def test_invalid_arguments_raise(kwargs, name):
    with pytest.raises(ValueError) as err:
        DSprites(**kwargs)
    msg = str(err.value)
    assert name in msg and repr(next(iter(kwargs.values()))) in msg


def test_sample_factors_and_render():
    dm = DSprites()
    a = dm.sample_factors(6000, generator=torch.Generator().manual_seed(0))
    b = dm.sample_factors(6000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (6000, 6) and a.dtype == torch.long
    for k, size in enumerate(FACTOR_SIZES):
        counts = torch.bincount(a[:, k], minlength=size).double()
        assert counts.numel() == size and (counts > 0).all()
        expect = 6000 / size
        assert ((counts - expect).abs() < 5 * math.sqrt(expect)).all()  # uniform
    assert torch.equal(dm.render(a[:10]), render_dsprites(a[:10]))


def test_pixel_entropy():
    dm = DSprites()
    h = dm.pixel_entropy(num_samples=3000, seed=1)
    assert h.shape == (1, 64, 64) and h.dtype == torch.float32
    assert (h >= 0).all() and (h <= math.log(2) + 1e-6).all()
    assert h[0, :3, :3].max() == 0 and h[0, -3:, -3:].max() == 0  # corners never lit
    assert h[0, 28:36, 28:36].min() > 0.15  # the centre is lit in ~7 % of the images
    # the image distribution is mirror-symmetric left-right, so is H up to sampling noise
    assert (h - h.flip(-1)).abs().mean() < 0.02
    # plug-in value at one pixel, from the frequencies of the same draws
    g = torch.Generator().manual_seed(1)
    x = render_dsprites(dm.sample_factors(3000, generator=g))
    p = x[:, 0, 31, 20].mean().double()
    expected = -(p * p.log() + (1 - p) * (1 - p).log())
    assert abs(h[0, 31, 20].item() - expected.item()) < 1e-5
    # cached per (num_samples, seed); callers get a copy
    h[:] = -1
    assert torch.equal(dm.pixel_entropy(num_samples=3000, seed=1), dm.pixel_entropy(3000, 1))
    assert dm.pixel_entropy(3000, 1).min() >= 0


class _Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64 * 64, 6)
        self.seen = 0

    def training_step(self, batch, _):
        x, y = batch
        self.seen += x.shape[0]
        return torch.nn.functional.mse_loss(self.lin(x.flatten(1)), y.float())

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.lin(x.flatten(1)), y.float()))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def test_lightning_fit_runs_an_epoch():
    model = _Tiny()
    dm = DSprites(batch_size=32, val_size=64, epoch_size=96)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, datamodule=dm)
    assert model.seen == 2 * 96
    assert trainer.num_training_batches == 3


def test_dataset_rejects_bad_indices():
    with pytest.raises(ValueError, match="737280"):
        DSpritesDataset(torch.tensor([0, NUM_IMAGES]))
    with pytest.raises(ValueError, match="indices"):
        DSpritesDataset(torch.tensor([0.0, 1.0]))
    assert len(DSpritesDataset()) == NUM_IMAGES
