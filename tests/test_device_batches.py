"""Training batches made on the device (datamodules/device_batches.py) equal the loader's."""

import lightning.pytorch as pl
import pytest
import torch

from tcx.datamodules import DSprites, SyntheticCorEx, render_dsprites
from tcx.datamodules.device_batches import DeferredBatch
from tcx.datamodules.dsprites import index_to_factors


def _batches(dm, n):
    out = []
    for i, batch in enumerate(dm.train_dataloader()):
        if i == n:
            break
        out.append(dm.on_after_batch_transfer(batch, 0))
    return out


@pytest.mark.parametrize("make", [
    lambda mode: DSprites(batch_size=64, epoch_size=256, val_size=100, seed=3, render_on=mode),
    lambda mode: DSprites(batch_size=50, epoch_size=None, val_size=736900, test_size=100, seed=1, render_on=mode),
    lambda mode: SyntheticCorEx(num_points=600, val_size=100, batch_size=64, seed=2, noise=0.2, render_on=mode),
], ids=["dsprites-epoch-subset", "dsprites-full-pass", "synthetic"])
def test_device_path_yields_the_loaders_batches_image_for_image(make):
    torch.manual_seed(0)
    loader = _batches(make("loader"), 4)
    torch.manual_seed(0)
    dm = make("device")
    raw = next(iter(dm.train_dataloader()))
    assert isinstance(raw, DeferredBatch) and raw.rows.dtype == torch.long and raw.rows.dim() == 1
    torch.manual_seed(0)
    device = _batches(make("device"), 4)
    assert len(loader) == len(device) == 4
    for (x1, y1), (x2, y2) in zip(loader, device):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
        assert x1.dtype == x2.dtype and y1.dtype == y2.dtype


def test_dsprites_device_rendering_equals_the_checked_renderer_on_the_same_indices():
    dm = DSprites(render_on="device")
    rows = torch.randint(0, 737280, (500,), generator=torch.Generator().manual_seed(5))
    x, y = dm.make_rows(rows)
    factors = index_to_factors(rows)
    assert torch.equal(y, factors)
    assert torch.equal(x, render_dsprites(factors))


def test_auto_renders_on_the_device_only_off_the_cpu():
    dm = DSprites()
    assert dm.render_on == "auto" and not dm.renders_on_device()  # no trainer: the loader
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False)
    dm.trainer = trainer
    assert not dm.renders_on_device()
    assert DSprites(render_on="device").renders_on_device()


def test_a_bad_render_on_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="render_on must be one of 'auto', 'loader', 'device'"):
        DSprites(render_on="gpu")


def test_a_fit_on_device_made_batches_trains_on_the_made_batches(tmp_path):
    from tcx.models import VAE

    seen = []

    class Spy(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch)

    dm = SyntheticCorEx(num_points=600, val_size=100, batch_size=64, render_on="device")
    model = VAE(latent_dim=3, input_shape=dm.input_shape, network="mlp", hidden_dims=[16], input_entropy_samples=0)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path,
                         callbacks=[Spy()])
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3 and len(seen) == 3
    for x, y in seen:
        assert x.shape == (64, 20) and y.shape == (64, 5) and y.dtype == torch.long
