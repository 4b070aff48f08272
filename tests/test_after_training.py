"""After training: a checkpoint rebuilds its own model and data for validate/test/predict and a
resumed fit; what the user changes is honoured and announced, or refused naming the keys; the
evaluation commands end with a summary whatever the logger."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tcx.cli.arguments import read_arguments
from tcx.checkpoint_record import DATA_CONFIG_KEY
from tcx.checkpoint_record import plain_config
from tcx.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--trainer.logger", "false"]
NO_CALLBACKS = ["--trainer.callbacks", "[]"]
USER_DATA = ["--data", "my_module.MyDataModule", "--data.num_points", "128"]
#: a checkpoint that records the user's own datamodule is rebuilt from it only with --trust
TRUST = ["--trust"]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """The example user datamodule importable from the current folder, as a user runs tcx."""
    shutil.copy(ROOT / "tests" / "user_datamodule_example" / "my_module.py", tmp_path / "my_module.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    return tmp_path


def _fit(tmp_path, *args) -> Path:
    main(["fit", *args, "--trainer.max_epochs", "1", *QUIET, "--trainer.default_root_dir", str(tmp_path / "run")])
    return tmp_path / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture
def vae_ckpt(user_module, capsys):
    """A 3-latent MLP VAE trained for one epoch on the user's datamodule (with the PosteriorWriter)."""
    callbacks = ["--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.save_last=true",
                 "--trainer.callbacks+=tcx.callbacks.PosteriorWriter"]
    ckpt = _fit(user_module, "--model", "VAE", "--model.network", "mlp", "--model.latent_dim", "3", *USER_DATA,
                *NO_CALLBACKS, *callbacks)
    capsys.readouterr()
    return ckpt


def _exit_code(argv) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_the_checkpoint_records_the_data_config_as_plain_values(vae_ckpt):
    ckpt = torch.load(vae_ckpt, weights_only=True)
    assert ckpt[DATA_CONFIG_KEY] == {"class_path": "my_module.MyDataModule",
                                     "init_args": {"batch_size": 32, "num_points": 128, "seed": 0}}


def test_validate_with_only_ckpt_path_rebuilds_the_users_data_and_prints_a_summary(vae_ckpt, capsys):
    main(["validate", "--ckpt_path", str(vae_ckpt), *TRUST, *QUIET])
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("tcx validate: model VAE (from the checkpoint), data MyDataModule (from the checkpoint)")
    assert "tcx validate summary: VAE (val set)" in out
    elbo = float(out.split("\nELBO")[1].split("nats")[0])
    # the user's 16-bit data: an ELBO of a few nats per point (on dSprites it would be thousands)
    assert -16 < elbo < 0


def _elbo(out: str) -> float:
    return float(out.split("\nELBO")[1].split("nats")[0])


def test_a_url_checkpoint_rebuilds_its_model_as_a_local_path_does(vae_ckpt, capsys):
    """Lightning applies a checkpoint's hyperparameters for a local file only; by URL (file://,
    s3://) tcx applies its record the same way, so the 3-latent MLP VAE is rebuilt, not the
    default conv net (a 30-line load_state_dict traceback before), and gives the same ELBO."""
    main(["validate", "--ckpt_path", str(vae_ckpt), *TRUST, *QUIET])
    local = _elbo(capsys.readouterr().out)
    main(["validate", "--ckpt_path", vae_ckpt.resolve().as_uri(), *TRUST, *QUIET])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("tcx validate: model VAE (from the checkpoint)")
    assert _elbo(out) == pytest.approx(local, abs=1e-6)


def _metric_rows(out: str) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.startswith("metrics/")}


def test_test_prints_its_summary_of_the_test_split(vae_ckpt, capsys):
    main(["validate", "--ckpt_path", str(vae_ckpt), *TRUST, *QUIET])
    validated = _metric_rows(capsys.readouterr().out)
    main(["test", "--ckpt_path", str(vae_ckpt), *TRUST, *QUIET])
    out = capsys.readouterr().out
    assert "tcx test summary: VAE (test set)" in out and "\nELBO" in out
    # the disentanglement metrics validate prints, from the same sample, the same values
    tested = _metric_rows(out)
    assert {"metrics/mig", "metrics/dci_disentanglement"} <= set(validated), validated
    assert set(tested) == set(validated)
    assert all(tested[k] == pytest.approx(validated[k], abs=1e-4) for k in validated if k != "metrics/seconds")


def test_predict_writes_the_posterior_of_the_predict_split(vae_ckpt, user_module, capsys):
    out_dir = user_module / "pred"
    main(["predict", "--ckpt_path", str(vae_ckpt), *TRUST, *QUIET, "--trainer.default_root_dir", str(out_dir)])
    files = list(out_dir.rglob("predictions.npz"))
    assert len(files) == 1, capsys.readouterr()
    with np.load(files[0]) as saved:
        # 128 points, the last quarter held out and predicted; 3 latents; the two factors
        assert saved["mean"].shape == (32, 3) and saved["log_var"].shape == (32, 3) and saved["y"].shape == (32, 2)


def test_resume_with_a_changed_latent_dim_is_refused_naming_the_key(vae_ckpt, capsys):
    assert _exit_code(["fit", "--ckpt_path", str(vae_ckpt), "--model.latent_dim", "5", *TRUST, *QUIET]) == 2
    err = capsys.readouterr().err
    assert "latent_dim (checkpoint 3, given 5)" in err and "restores the checkpoint's weights" in err


def test_resume_with_a_changed_learning_rate_is_refused(vae_ckpt, capsys):
    assert _exit_code(["fit", "--ckpt_path", str(vae_ckpt), "--model.lr", "0.01", *TRUST, *QUIET]) == 2
    assert "lr (checkpoint 0.001, given 0.01)" in capsys.readouterr().err


def test_resume_as_another_family_is_refused(vae_ckpt, capsys):
    assert _exit_code(["fit", "--ckpt_path", str(vae_ckpt), "--model", "BetaVAE", *TRUST, *QUIET]) == 2
    assert "holds a VAE and --model asks for BetaVAE" in capsys.readouterr().err


def test_evaluating_as_another_family_is_said_on_the_first_line(vae_ckpt, capsys):
    # BetaVAE has the VAE's networks: its weights fit, and the rate is weighted by beta 4
    main(["validate", "--ckpt_path", str(vae_ckpt), *TRUST, "--model", "BetaVAE", "--model.network", "mlp",
          "--model.latent_dim", "3", *QUIET])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("tcx validate: model BetaVAE (given with --model; the checkpoint's is VAE)")
    assert "tcx validate summary: BetaVAE" in out


def test_data_of_another_shape_is_refused_in_one_line(vae_ckpt, capsys):
    code = _exit_code(["validate", "--ckpt_path", str(vae_ckpt), "--data", "DSprites", "--data.val_size", "64", *QUIET])
    assert code == 2
    err = capsys.readouterr().err
    assert "holds a model of inputs (16,), and the data DSprites gives inputs (1, 64, 64)" in err


def test_resume_with_a_changed_rate_weight_is_honoured_and_announced(user_module, capsys):
    ckpt = _fit(user_module, "--model", "AnchorVAE", "--model.network", "mlp", "--model.latent_dim", "3",
                "--model.anchors", "1", *USER_DATA, *NO_CALLBACKS,
                "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.save_last=true")
    capsys.readouterr()
    seen = {}
    import tcx.models

    original = tcx.models.AnchorVAE.on_train_start

    def record(self):
        seen["anchor_beta"] = self.anchor_beta
        seen["weights"] = self.latent_weights().tolist()
        return original(self)

    tcx.models.AnchorVAE.on_train_start = record
    try:
        main(["fit", "--ckpt_path", str(ckpt), *TRUST, "--model.anchor_beta", "0.05", "--trainer.max_epochs", "2", *QUIET,
              "--trainer.default_root_dir", str(user_module / "resumed")])
    finally:
        tcx.models.AnchorVAE.on_train_start = original
    out = capsys.readouterr().out
    assert "model.anchor_beta: 0.05 as given (the checkpoint was trained with 0.2)" in out
    assert seen == {"anchor_beta": 0.05, "weights": pytest.approx([0.05, 1.0, 1.0])}
    # and the run's saved config says what was trained
    config = next((user_module / "resumed").rglob("config.yaml")).read_text()
    assert "anchor_beta: 0.05" in config


def test_explicit_model_keys_come_from_flags_and_config_files(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  class_path: tcx.models.VAE\n  init_args:\n    latent_dim: 4\n")
    keys = read_arguments(["fit", "--model.beta=2", "--model.init_args.network", "mlp", "-c", str(cfg)]).model_keys()
    assert keys == {"beta", "network", "latent_dim"}


def test_plain_config_refuses_objects_without_a_plain_form():
    assert plain_config({"a": (1, 2), "b": Path("x"), "c": None}) == {"a": [1, 2], "b": "x", "c": None}
    assert plain_config({"a": object()}) is None


def test_an_evaluation_without_a_checkpoint_says_first_that_the_model_is_untrained(tmp_path, capsys):
    main(["validate", "--model", "VAE", "--model.network", "mlp", "--model.hidden_dims", "[8]",
          "--model.input_entropy_samples", "0", "--data.epoch_size", "32", "--data.val_size", "32",
          "--data.batch_size", "32", *QUIET, *NO_CALLBACKS, "--trainer.default_root_dir", str(tmp_path)])
    first = capsys.readouterr().out.splitlines()[0]
    assert first == ("tcx validate: no --ckpt_path: the model as initialised, untrained (give --ckpt_path to "
                     "evaluate a fit's)")
