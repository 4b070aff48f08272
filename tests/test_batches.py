"""tcx/batches.py: split_batch is the one reader of every batch shape a Lightning user writes."""

import sys

import pytest
import torch

from tcx.batches import split_batch
from tcx.cli import main
from tcx.errors import TcxError

X = torch.rand(4, 3)
Y = torch.arange(4)


@pytest.mark.parametrize("batch, has_y", [
    (X, False),
    ((X,), False),
    ([X], False),
    ((X, Y), True),
    ([X, Y, torch.zeros(4)], True),
    ({"x": X}, False),
    ({"image": X, "label": Y}, True),
    ({"x": X, "factors": Y, "other": 1}, True),
], ids=["tensor", "1-tuple", "1-list", "pair", "triple", "dict-x", "dict-image-label", "dict-x-factors"])
def test_every_documented_batch_shape_gives_x_and_its_labels(batch, has_y):
    x, y = split_batch(batch)
    assert x is X
    assert (y is Y) if has_y else (y is None)


@pytest.mark.parametrize("batch, found", [
    ({"pixels": X}, "a dict with keys ['pixels']"),
    ((), "a tuple of 0"),
    ("abc", "a str"),
    ([[X]], "a list of 1 (a list of 1"),
])
def test_an_unreadable_batch_gets_one_line_naming_what_it_found(batch, found):
    with pytest.raises(TcxError) as info:
        split_batch(batch)
    message = str(info.value)
    assert found in message and "\n" not in message and "'x'" in message


IMAGES_ONLY = '''
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class Bars(pl.LightningDataModule):
    """1x16x16 images of a horizontal and a vertical bar (2 factors of 4 positions), with ground
    truth, whose loaders yield {BATCH}."""

    input_shape = (1, 16, 16)
    factor_names = ("row", "col")
    factor_sizes = (4, 4)

    def sample_factors(self, num, generator=None):
        return torch.randint(0, 4, (num, 2), generator=generator)

    def render(self, factors):
        x = torch.zeros(len(factors), 1, 16, 16)
        for i, (r, c) in enumerate(factors.tolist()):
            x[i, 0, 4 * r:4 * r + 2, :] = 1.0
            x[i, 0, :, 4 * c:4 * c + 2] = 1.0
        return x

    def _loader(self, n, seed):
        f = self.sample_factors(n, torch.Generator().manual_seed(seed))
        x = self.render(f)
        return DataLoader({DATASET}, batch_size=32{COLLATE})

    def train_dataloader(self):
        return self._loader(256, 0)

    def val_dataloader(self):
        return self._loader(128, 1)
'''

SHAPES = {
    "images-only-TensorDataset": ("1-element lists", "TensorDataset(x)", ""),
    "dicts": ("dicts", "[{'image': xi, 'label': fi} for xi, fi in zip(x, f)]", ""),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_datamodule_of_images_alone_or_dicts_trains_with_the_default_callbacks(shape, tmp_path, monkeypatch, capsys):
    words, dataset, collate = SHAPES[shape]
    source = IMAGES_ONLY.replace("{BATCH}", words).replace("{DATASET}", dataset).replace("{COLLATE}", collate)
    (tmp_path / "bars_module.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("bars_module", None)
    from pathlib import Path

    small = Path(__file__).resolve().parent / "small_callbacks.yaml"
    main(["fit", "-c", str(small), "--data", "bars_module.Bars", "--model", "VAE", "--model.network", "mlp",
          "--model.latent_dim", "3", "--trainer.max_epochs", "1", "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    out = capsys.readouterr().out
    assert "tcx fit summary: VAE (val set)" in out
    assert "metrics" in out.lower() and "mig" in out.lower()
