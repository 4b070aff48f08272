"""--optimizer and --lr_scheduler for every family: the model builds them (FactorVAE for its VAE's
optimizer, the discriminator keeping its own), and the logged train/lr shows the schedule."""

import csv
from pathlib import Path

import pytest
import torch

from tcx.cli import main
from tcx.errors import TcxError
from tcx.models import VAE, FactorVAE

SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}
STEP = {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 1, "gamma": 0.5}}
SMALL = dict(latent_dim=2, input_shape=(8,), network="mlp", hidden_dims=(8,))


def test_the_optimizer_argument_replaces_adam():
    opt = VAE(**SMALL, optimizer=SGD).configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == 0.1
    adam = VAE(**SMALL, lr=3e-4).configure_optimizers()
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == 3e-4


def test_a_scheduler_is_returned_in_lightnings_form():
    configured = VAE(**SMALL, lr_scheduler=STEP).configure_optimizers()
    assert isinstance(configured["optimizer"], torch.optim.Adam)
    assert isinstance(configured["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)


def test_factorvae_schedules_its_vaes_optimizer_and_keeps_the_discriminators():
    model = FactorVAE(**SMALL, discriminator_hidden_dims=(4,), optimizer=SGD, lr_scheduler=STEP)
    (opt_vae, opt_disc), (config,) = model.configure_optimizers()
    assert isinstance(opt_vae, torch.optim.SGD) and isinstance(opt_disc, torch.optim.Adam)
    vae_ids = {id(p) for g in opt_vae.param_groups for p in g["params"]}
    assert not vae_ids & {id(p) for p in model.discriminator.parameters()}
    assert config["scheduler"].optimizer is opt_vae


def test_a_malformed_optimizer_spec_is_one_line():
    with pytest.raises(TcxError, match="optimizer must be"):
        VAE(**SMALL, optimizer={"lr": 0.1}).configure_optimizers()


def _logged_lr(root: Path) -> list[float]:
    (metrics,) = root.rglob("metrics.csv")
    return [float(row["train/lr"]) for row in csv.DictReader(metrics.open()) if row.get("train/lr")]


@pytest.mark.parametrize("model", [
    pytest.param(["--model", "AnchorVAE"], id="anchorvae-scheduler-only"),
    pytest.param(["-c", "factorvae_dsprites", "--optimizer", "Adam"], id="factorvae-optimizer-and-scheduler"),
])
def test_the_cli_scheduler_is_at_work_in_the_logged_lr(tmp_path, monkeypatch, model):
    monkeypatch.setenv("WANDB_MODE", "offline")
    main(["fit", *model, "--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "1", "--lr_scheduler.gamma", "0.5",
          "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
          "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false", "--trainer.callbacks", "[]",
          "--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(tmp_path),
          "--data.batch_size", "16", "--data.epoch_size", "32", "--data.val_size", "16",
          "--model.input_entropy_samples", "0"])
    lrs = _logged_lr(tmp_path)
    # the lr each of the 4 steps used: halved after the first epoch of 2 steps
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4]), lrs
