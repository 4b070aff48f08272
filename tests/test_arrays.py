"""tcx.datamodules.Arrays: a user's arrays from .npy, .npz, .csv and .pt files (docs/datamodules.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tcx.datamodules import Arrays, check_datamodule
from tcx.errors import TcxError
from tcx.networks import choose_network


def test_a_binary_matrix_from_npy(tmp_path):
    x = np.zeros((40, 3), dtype=np.uint8)
    x[:20, 0] = 1  # column 0: half ones; column 1: all zeros; column 2: a quarter ones
    x[::4, 2] = 1
    np.save(tmp_path / "my.npy", x)
    dm = Arrays(path=str(tmp_path / "my.npy"), val_size=0.1, test_size=4, seed=1)
    assert dm.input_shape == (3,) and dm.value_kind == "binary"
    assert (dm.val_size, dm.test_size, dm.dataset_size) == (4, 4, 32)
    rows = torch.cat([dm.train_rows, dm.val_rows, dm.test_rows])
    assert sorted(rows.tolist()) == list(range(40))  # disjoint and complete
    assert dm.val_rows.tolist() == Arrays(path=str(tmp_path / "my.npy"), val_size=0.1, test_size=4, seed=1).val_rows.tolist()
    # H(X_i) of the training rows, by plug-in: recomputed here from their frequencies
    p = torch.as_tensor(x, dtype=torch.float64)[dm.train_rows].mean(0)
    expected = [0.0 if q in (0, 1) else -(q * math.log(q) + (1 - q) * math.log(1 - q)) for q in p.tolist()]
    assert dm.pixel_entropy().tolist() == pytest.approx(expected)
    dm.setup("fit")
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.dtype == torch.float32 and set(xb.unique().tolist()) <= {0.0, 1.0} and yb.shape == (len(xb), 0)
    assert choose_network(dm.input_shape) == "mlp"
    report = check_datamodule(dm)  # raises DataModuleError on a problem
    assert report.kind == "plain" and report.has_pixel_entropy and report.input_shape == (3,)


def test_images_labels_and_factor_names(tmp_path):
    images = np.arange(12 * 16 * 16 * 3, dtype=np.int64).reshape(12, 16, 16, 3) % 256
    np.savez(tmp_path / "img.npz", images=images.astype(np.uint8), labels=np.arange(12) % 3)
    dm = Arrays(path=str(tmp_path / "img.npz"), val_size=2, test_size=2)
    assert dm.input_shape == (3, 16, 16) and choose_network(dm.input_shape) == "conv"
    assert float(dm.x.max()) == pytest.approx(255 / 255) and float(dm.x.min()) == 0.0
    assert dm.num_classes == 3 and dm.y.tolist() == [i % 3 for i in range(12)]
    factors = torch.stack([torch.arange(10) % 2, torch.arange(10) % 5], 1)
    named = Arrays(x=torch.rand(10, 4), y=factors, factor_names=["parity", "fives"], val_size=2, test_size=2)
    assert named.factor_names == ("parity", "fives") and named.y.shape == (10, 2)


def test_csv_with_a_header_and_a_label_column(tmp_path):
    (tmp_path / "d.csv").write_text("height,weight,group\n1.0,10,0\n2.0,30,1\n3.0,20,1\n4.0,40,0\n5.0,50,1\n")
    dm = Arrays(path=str(tmp_path / "d.csv"), label_column="group", val_size=1, test_size=1)
    assert dm.input_names == ["height", "weight"] and dm.y.tolist() == [0, 1, 1, 0, 1]
    # columns outside [0, 1] are scaled to it, min to 0 and max to 1
    assert dm.x[:, 0].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert dm.x[:, 1].tolist() == pytest.approx([0.0, 0.5, 0.25, 0.75, 1.0])


def test_bad_files_name_the_file_and_the_fix(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    with pytest.raises(TcxError, match=r"bad\.npy.*numpy\.save"):
        Arrays(path=str(tmp_path / "bad.npy"))
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan]] * 5))
    with pytest.raises(TcxError, match=r"nan\.npy.*NaN"):
        Arrays(path=str(tmp_path / "nan.npy"))
    np.savez(tmp_path / "two.npz", a=np.zeros((5, 2)), b=np.zeros((5, 2)))
    with pytest.raises(TcxError, match=r"two\.npz.*--data\.x_key"):
        Arrays(path=str(tmp_path / "two.npz"))
    with pytest.raises(FileNotFoundError, match=r"missing\.npy"):
        Arrays(path=str(tmp_path / "missing.npy"))


def test_the_network_follows_the_input_shape():
    from tcx.models import VAE

    assert type(VAE(input_shape=(24,)).encoder).__name__ == "MLPEncoder"
    assert type(VAE(input_shape=(1, 32, 32), latent_dim=2).encoder).__name__ == "ConvEncoder"
    assert type(VAE(input_shape=(1, 28, 28), latent_dim=2).encoder).__name__ == "MLPEncoder"  # not multiples of 16
    assert type(VAE(input_shape=(1, 32, 32), hidden_dims=[8]).encoder).__name__ == "MLPEncoder"
