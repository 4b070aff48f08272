"""The datasets through `tcx fit`: every dataset config, a user's own datamodule from a module
outside the package, and the messages for a datamodule tcx cannot use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tcx.cli import main
from fakes import write_celeba, write_dsprites_npz, write_embedded_csv, write_shapes3d

ROOT = Path(__file__).resolve().parents[1]
USER_MODULE_DIR = Path(__file__).resolve().parent / "user_datamodule_example"
QUICK = [
    "--trainer.max_epochs", "1",
    "--trainer.max_steps", "2",
    "--trainer.limit_val_batches", "1",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.logger", "false",
    "--trainer.precision", "32-true",
    "--model.input_entropy_samples", "64",
]
CONFIGS = ["anchorvae_mnist", "vae_mnist", "anchorvae_celeba", "betavae_dsprites_file", "betavae_shapes3d", "vae_synthetic"]


pytestmark = pytest.mark.usefixtures("one_thread")


# the default callbacks on small samples (their default sizes take minutes on these tiny fits)
SMALL_CALLBACKS = ["-c", str(Path(__file__).resolve().parent / "small_callbacks.yaml")]


def _fit(tmp_path, monkeypatch, capsys, args) -> str:
    monkeypatch.chdir(tmp_path)
    main(["fit", *args, *SMALL_CALLBACKS, *QUICK])
    out = capsys.readouterr().out
    assert "tcx fit summary" in out, out[-2000:]
    assert list(tmp_path.rglob("last.ckpt")), "no checkpoint written"
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_every_dataset_config_parses(name, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "-c", str(ROOT / "configs" / f"{name}.yaml"), "--print_config"])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    data = out[out.index("\ndata:"):]
    assert "epoch_size: 73728" not in data or "dsprites_file" in name or "shapes3d" in name, \
        "the default config's dSprites epoch size must not leak into other datasets"


def test_mnist_and_synthetic_configs_train_offline(tmp_path, monkeypatch, capsys):
    path = tmp_path / "mnist_5k.csv.gz"
    write_embedded_csv(path, n=40)
    out = _fit(tmp_path, monkeypatch, capsys, ["-c", str(ROOT / "configs/anchorvae_mnist.yaml"),
                                               "--data.embedded_path", str(path), "--data.val_size", "8",
                                               "--data.batch_size", "16"])
    assert "tcx fit summary: AnchorVAE" in out and "CorEx bound" in out
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    out = _fit(synthetic, monkeypatch, capsys, ["-c", str(ROOT / "configs/vae_synthetic.yaml"),
                                                "--data.num_points", "200", "--data.val_size", "50",
                                                "--data.batch_size", "32"])
    assert "tcx fit summary: VAE" in out and "CorEx bound" in out


# slow: the three file configs' fits (and every other command on them) are cells of the matrix's
# slow suite (tests/test_matrix.py); the fast suite keeps embedded MNIST and synthetic above
@pytest.mark.slow
def test_file_dataset_configs_train_on_small_files(tmp_path, monkeypatch, capsys):
    npz, h5 = tmp_path / "dsprites.npz", tmp_path / "3dshapes.h5"
    write_dsprites_npz(npz)
    write_shapes3d(h5)
    write_celeba(tmp_path)
    runs = {
        "betavae_dsprites_file": ["--data.path", str(npz), "--data.val_size", "8", "--data.epoch_size", "32"],
        "betavae_shapes3d": ["--data.path", str(h5), "--data.val_size", "8", "--data.epoch_size", "32",
                             "--data.num_workers", "0"],
        "anchorvae_celeba": ["--data.root", str(tmp_path), "--data.verify_md5", "false", "--data.num_workers", "0"],
    }
    for name, args in runs.items():
        run_dir = tmp_path / name
        run_dir.mkdir()
        out = _fit(run_dir, monkeypatch, capsys, ["-c", str(ROOT / "configs" / f"{name}.yaml"), *args,
                                                  "--data.batch_size", "4"])
        assert "tcx fit summary" in out


def test_user_datamodule_outside_the_package_trains(tmp_path, monkeypatch, capsys):
    """`tcx fit --data my_module.MyDataModule` with the module on the import path (in this process:
    tests/test_cli.py runs the console script itself): it trains, prints the summary and writes a
    checkpoint that names the class."""
    monkeypatch.syspath_prepend(str(USER_MODULE_DIR))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    main(["fit", *SMALL_CALLBACKS, "--data", "my_module.MyDataModule", "--data.batch_size", "32",
          "--model", "VAE", "--model.network", "mlp", "--model.latent_dim", "2", *QUICK[:-2]])
    out = capsys.readouterr().out
    assert "tcx fit summary: VAE" in out
    assert re.search(r"epochs / steps\s+\d+ / 2", out), out[-1500:]
    ckpts = list(tmp_path.rglob("last.ckpt"))
    assert len(ckpts) == 1
    checkpoint = torch.load(ckpts[0], map_location="cpu", weights_only=False)
    assert checkpoint["tcx_datamodule_class"] == "my_module.MyDataModule"
    assert tuple(checkpoint["hyper_parameters"]["input_shape"]) == (16,)


def test_user_datamodule_without_input_shape_is_told_what_to_add(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(USER_MODULE_DIR))
    monkeypatch.chdir(tmp_path)
    with pytest.raises((SystemExit, ValueError)) as info:
        main(["fit", "--data", "my_module.NoShapeDataModule", "--model.network", "mlp", *QUICK])
    text = str(info.value) + capsys.readouterr().err
    assert "does not declare `input_shape`" in text and "(n,) for vectors" in text, text[-2000:]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_bad_data_for_the_chosen_model_is_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(USER_MODULE_DIR))
    monkeypatch.chdir(tmp_path)
    # x in 0..255 for a Bernoulli likelihood
    # (tcx prints a user's error as one paragraph and exits 2)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--data", "my_module.ByteDataModule", "--model", "VAE", "--model.network", "mlp", *QUICK])
    assert info.value.code == 2
    assert re.search(r"Bernoulli likelihood needs x in \[0, 1\], got values in \[0, 255\]: divide by 255", capsys.readouterr().err)
    # 28 x 28 MNIST for the convolutional network
    path = tmp_path / "mnist.csv.gz"
    write_embedded_csv(path, n=20)
    with pytest.raises((SystemExit, ValueError)) as info:
        main(["fit", "-c", str(ROOT / "configs/vae_mnist.yaml"), "--data.embedded_path", str(path),
              "--data.pad_to_32", "false", *QUICK])
    text = str(info.value) + capsys.readouterr().err
    assert "multiples of 16" in text and "input_shape=(1, 28, 28)" in text and "32x32 for padded MNIST" in text
    # a wrong root for the full MNIST
    with pytest.raises((SystemExit, FileNotFoundError, ValueError)) as info:  # jsonargparse may wrap it
        main(["fit", "-c", str(ROOT / "configs/vae_mnist.yaml"), "--data.source", "torchvision",
              "--data.root", str(tmp_path / "nowhere"), *QUICK])
    text = str(info.value) + capsys.readouterr().err
    assert "does not exist" in text and "source='embedded'" in text
    assert not list(tmp_path.rglob("*.ckpt"))
