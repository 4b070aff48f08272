"""callbacks/predictions.py: `tcx predict` writes the posterior of every input to one .npz file."""

import numpy as np
import pytest
import lightning.pytorch as pl
import torch

from tcx.callbacks import PosteriorWriter
from tcx.cli import main
from tcx.datamodules import SyntheticCorEx
from tcx.models import VAE


def _fit(tmp_path):
    dm = SyntheticCorEx(num_points=400, val_size=120, batch_size=50)
    model = VAE(latent_dim=3, input_shape=dm.input_shape, network="mlp", hidden_dims=[16], input_entropy_samples=0)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, default_root_dir=tmp_path,
                         callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)])
    trainer.fit(model, datamodule=dm)
    return dm, model, tmp_path / "ck" / "last.ckpt"


def test_predict_writes_means_log_variances_and_factors_of_every_input(tmp_path, capsys):
    dm, model, _ = _fit(tmp_path)
    writer = PosteriorWriter(output_dir=str(tmp_path / "out"))
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[writer])
    trainer.predict(model, datamodule=dm, return_predictions=False)
    data = np.load(writer.written)
    assert writer.written == tmp_path / "out" / "predictions.npz"
    assert data["mean"].shape == (120, 3) and data["log_var"].shape == (120, 3) and data["y"].shape == (120, 5)
    x, y = next(iter(dm.predict_dataloader()))
    model.eval()
    with torch.no_grad():
        post = model.encode(x)
    assert np.allclose(data["mean"][:50], post.mean.numpy(), atol=1e-6)
    assert np.array_equal(data["y"][:50], y.numpy())
    assert f"predictions written to {writer.written}" in capsys.readouterr().out


def test_tcx_predict_prints_the_written_file(tmp_path, monkeypatch, capsys):
    _, _, ckpt = _fit(tmp_path)
    monkeypatch.chdir(tmp_path)
    main(["predict", "--model", "VAE", "--model.latent_dim", "3", "--model.network", "mlp",
          "--model.hidden_dims", "[16]", "--data", "SyntheticCorEx", "--data.num_points", "400",
          "--data.val_size", "120", "--data.batch_size", "50", "--ckpt_path", str(ckpt),
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
          "--trainer.default_root_dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    path = tmp_path / "run" / "predictions.npz"
    assert f"predictions written to {path}" in out
    assert np.load(path)["mean"].shape == (120, 3)


def test_an_output_folder_that_cannot_hold_the_file_is_refused_before_predicting(tmp_path):
    from tcx.errors import TcxError
    from tcx.safe_io import WriteError, atomic_save

    dm, model, _ = _fit(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    steps = []
    model.predict_step = lambda *a, **k: steps.append(1)  # noqa: ARG005  (counts the steps that ran)
    writer = PosteriorWriter(output_dir=str(tmp_path / "afile" / "out"))
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[writer])
    with pytest.raises(TcxError, match=r"PosteriorWriter's output folder \(output_dir\) '.*afile/out' lies under"):
        trainer.predict(model, datamodule=dm, return_predictions=False)
    assert steps == [] and writer.written is None
    # and any write that fails anyway is one line naming the file and why (atomic_save, for every writer)
    with pytest.raises(WriteError, match=r"'.*afile/x.npz' was not written \(.+\); give a folder"):
        atomic_save(lambda f: f.write(b"x"), tmp_path / "afile" / "x.npz", advice="write elsewhere")
