"""One folder per run, whatever the logger: config.yaml, checkpoints and pictures of two runs are
never shared, and every epoch's pictures are kept."""

import pytest
import yaml

from tcx.cli import main
from tcx.run_folder import RUN_DIR_ENV, give_run_a_folder

TINY = ["--model.network", "mlp", "--model.input_entropy_samples", "0", "--trainer.max_epochs", "2",
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--data.batch_size", "16", "--data.epoch_size", "32", "--data.val_size", "16",
        "--trainer.callbacks", "[]", "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.save_last=true",
        "--trainer.callbacks+=tcx.callbacks.Samples"]


def _latent_dims(configs):
    return sorted(yaml.safe_load(c.read_text())["model"]["init_args"]["latent_dim"] for c in configs)


@pytest.mark.parametrize("logger", [
    pytest.param(["--trainer.logger", "false"], id="no-logger"),
    pytest.param([], id="wandb-offline"),
])
def test_two_runs_have_their_own_config_checkpoints_and_pictures(tmp_path, monkeypatch, offline_wandb, logger):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    for dim in ("3", "4"):
        main(["fit", *TINY, "--model.latent_dim", dim, *logger])
    configs = sorted(tmp_path.glob("runs/**/config.yaml"))
    assert len(configs) == 2 and _latent_dims(configs) == [3, 4]
    folders = [c.parent for c in configs]
    for folder in folders:
        assert (folder / "checkpoints" / "last.ckpt").is_file()
        # every validation epoch's pictures are kept, the step in the name
        assert sorted(p.name for p in (folder / "media").glob("samples_step*.png")) == [
            "samples_step000002.png", "samples_step000004.png"]
    assert not (tmp_path / "runs" / "config.yaml").exists() and not (tmp_path / "checkpoints").exists()


def test_a_chosen_root_or_a_logger_is_left_alone():
    given = {"logger": False, "default_root_dir": "mine"}
    assert give_run_a_folder(given, "fit", environ={}) is None and given["default_root_dir"] == "mine"
    assert give_run_a_folder({"logger": {"class_path": "CSVLogger"}}, "fit", environ={}) is None


def test_launched_processes_join_their_rank_zeros_folder():
    environ = {}
    first = give_run_a_folder({"logger": False}, "fit", environ=environ)
    assert first.startswith("runs/fit-") and environ[RUN_DIR_ENV] == first
    child = {"logger": False}
    assert give_run_a_folder(child, "fit", environ={**environ, "LOCAL_RANK": "1"}) == first
    # a new run in the same process (rank 0) gets a new folder even with the variable set
    config = {"logger": False}
    give_run_a_folder(config, "validate", environ=dict(environ))
    assert config["default_root_dir"] != first
