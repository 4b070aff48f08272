"""One folder per run, whatever the logger: config.yaml, checkpoints and pictures of two runs are
never shared, and every epoch's pictures are kept."""

import json
from pathlib import Path

import pytest
import yaml
from wandb_records import offline_run

from tcx.cli import main
from tcx.cli.run_folder import RUN_DIR_ENV, give_run_a_folder

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
    # the run folders (W&B keeps a copy of each config.yaml among its own files, runs/wandb/.../files/tcx)
    configs = sorted(c for c in tmp_path.glob("runs/**/config.yaml") if "wandb" not in c.parts)
    assert len(configs) == 2 and _latent_dims(configs) == [3, 4]
    folders = [c.parent for c in configs]
    for folder in folders:
        assert (folder / "checkpoints" / "last.ckpt").is_file()
        # every validation epoch's pictures are kept, the step in the name
        assert sorted(p.name for p in (folder / "media").glob("samples_step*.png")) == [
            "samples_step000002.png", "samples_step000004.png"]
    assert not (tmp_path / "runs" / "config.yaml").exists() and not (tmp_path / "checkpoints").exists()
    # every run leaves summary.json beside its config: the summary's values, the config, the checkpoint
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in folders]
    assert sorted(s["model_args"]["latent_dim"] for s in summaries) == [3, 4]
    for summary in summaries:
        assert summary["command"] == "fit" and summary["model_class"] == "tcx.models.AnchorVAE"
        assert summary["data_class"] == "tcx.datamodules.DSprites" and summary["data_args"]["val_size"] == 16
        assert summary["stage"] == "val" and summary["values"]["val/elbo"] < 0 and summary["steps"] == 4
        assert summary["checkpoint"].endswith("last.ckpt") and Path(summary["checkpoint"]).is_file()
        assert summary["seed_everything"] == 0 and summary["trainer"]["max_epochs"] == 2
        assert summary["precision"] == summary["trainer"]["precision"] and summary["wall_time_s"] > 0
        assert summary["device"].startswith(("CPU ", "GPU ")) and summary["tcx_version"]
    if logger:
        return
    # the W&B record (read from the offline run's own file): classes, arguments, Trainer, seed,
    # version, precision; job_type fit and the run's own id as its group; config.yaml among its files
    runs = [offline_run(folder) for folder in sorted(tmp_path.glob("runs/wandb/offline-run-*"))]
    assert sorted(r["config"]["model_args"]["latent_dim"] for r in runs) == [3, 4]
    for run in runs:
        config = run["config"]
        assert run["job_type"] == "fit" and run["group"] == run["id"] and "tcx/config.yaml" in run["files"]
        assert config["model_class"] == "tcx.models.AnchorVAE" and config["data_class"] == "tcx.datamodules.DSprites"
        assert config["seed_everything"] == 0 and config["trainer"]["max_epochs"] == 2 and config["tcx_version"]
        assert config["precision"] in ("32-true", "bf16-mixed") and "git_commit" in config


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
