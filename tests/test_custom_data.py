"""Custom data without ceremony (issue 29 item 6): factor_names alone names y's columns in the
pictures and CSVs, and check_datamodule names every optional piece a datamodule lacks, what it
unlocks and how to give it."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tcx.callbacks.diagnostics import factor_names_of, information_media
from tcx.callbacks.encoding import Encoded
from tcx.datamodules import DataModuleError, check_datamodule
from tcx.datamodules.protocol import OPTIONAL_PIECES


class Named(pl.LightningDataModule):
    """Vectors with two factors in y, named by factor_names and nothing else of the ground truth."""

    input_shape = (6,)
    factor_names = ("colour", "size")

    def __init__(self, k: int = 2):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.data = TensorDataset(torch.rand(32, 6, generator=g).round(), torch.randint(0, 3, (32, k), generator=g))

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=8)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=8)


class Bare(pl.LightningDataModule):
    input_shape = (4,)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.rand(8, 4)), batch_size=4)


def test_factor_names_alone_name_the_factor_heatmap_and_the_table():
    dm = Named()
    report = check_datamodule(dm)
    assert report.factor_names == ("colour", "size") and report.kind == "plain"
    y = dm.data.tensors[1]
    names = factor_names_of(dm, y)
    assert names == ["colour", "size"]
    mean, log_var = torch.randn(32, 2), torch.zeros(32, 2) - 2

    class Model:
        anchor_indices = ()

    items, _ = information_media(Model(), Encoded(mean, log_var, y), names)
    columns = next(i for i in items if i.key == "diagnostics/latent_table").data[0]
    assert columns[-2:] == ["mi_colour_nats", "mi_size_nats"]
    assert any(i.key == "diagnostics/mi_matrix" for i in items)
    with pytest.raises(DataModuleError, match=r"factor_names names 2 columns of y, but y has shape \(8, 3\)"):
        check_datamodule(Named(k=3))


def test_check_datamodule_names_each_missing_piece_what_it_unlocks_and_how():
    report = check_datamodule(Named())
    assert set(report.missing) == {"dataset_size", "pixel_entropy", "test_dataloader", "input_names"}
    text = str(report)
    assert "BetaTCVAE" in text and "binary_pixel_entropy" in text and "the CorEx bound" in text
    assert "tcx test" in text and "input_information.csv" in text
    for piece in report.missing:
        assert f"no `{piece}`: it unlocks {OPTIONAL_PIECES[piece][0]}; give it as {OPTIONAL_PIECES[piece][1]}" in report.notes
    bare = check_datamodule(Bare())
    assert {"labels", "val_dataloader", "dataset_size", "pixel_entropy"} <= set(bare.missing)
    assert "factor_names" not in bare.missing  # no factors in y to name
