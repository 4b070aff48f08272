"""Runs a researcher can compare (issue 28): picture files that sort and stay few, the quiet W&B
footer, the posterior-collapse warning, dSprites' val_size, the W&B record and summary.json,
``tcx compare`` and the sweep file."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

from tcx.callbacks.media_logging import Media, kept_steps, log_media, step_suffix, thin_files


def test_picture_names_sort_by_step_and_a_run_keeps_few():
    assert step_suffix(36) == "_step000036" and sorted([step_suffix(324), step_suffix(36)])[0] == step_suffix(36)
    assert kept_steps(range(1, 21), 4) == [1, 9, 17, 20]  # the first, the latest, evenly spaced between
    assert kept_steps([5, 1, 3], 6) == [1, 3, 5] and kept_steps(range(10), 0) == list(range(10))
    assert kept_steps(range(10), 1) == [9]


def test_log_media_thins_each_picture_to_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("TCX_KEEP_PICTURES", "3")
    trainer = types.SimpleNamespace(loggers=[], global_step=0, default_root_dir=str(tmp_path))
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    for step in range(0, 100, 10):
        log_media(trainer, [Media("media/samples", "image", image), Media("media/table", "table", (["a"], [[1]]))],
                  step=step)
    names = sorted(p.name for p in (tmp_path / "media").iterdir())
    # evenly spaced whatever the order they came in: the stride doubled as the files came
    assert names == ["samples_step000000.png", "samples_step000080.png", "samples_step000090.png",
                     "table_step000000.csv", "table_step000080.csv", "table_step000090.csv"]
    assert kept_steps(range(0, 200, 10), 6) == [0, 40, 80, 120, 160, 190]
    # another picture's files are never touched; 0 keeps all
    (tmp_path / "media" / "samples_z0_step000001.gif").write_bytes(b"gif")
    assert sorted(p.name for p in thin_files(tmp_path / "media", ["samples"], keep=1)) == [
        "samples_step000000.png", "samples_step000080.png"]
    assert sorted(p.name for p in (tmp_path / "media").glob("samples*")) == [
        "samples_step000090.png", "samples_z0_step000001.gif"]
    monkeypatch.setenv("TCX_KEEP_PICTURES", "many")
    with pytest.raises(ValueError, match="TCX_KEEP_PICTURES"):
        thin_files(tmp_path / "media", ["samples"])


def test_a_collapsed_posterior_is_said_with_what_to_try():
    from tcx.callbacks.run_summary import collapse_warning

    # anchorvae_mnist_full after one epoch: a total rate of 0.031 nats
    said = collapse_warning(0.031, [0.01] * 10, reconstruction=-200.0, input_entropy=210.0)
    assert said.startswith("the posterior has collapsed: the total rate is 0.031 nats") and "--trainer.max_epochs" in said
    # idle latents with a poor reconstruction: partly collapsed, the idle ones named
    said = collapse_warning(5.0, [4.97, 0.01, 0.02], reconstruction=-200.0, input_entropy=210.0)
    assert "2 of 3 latents" in said and "(z1, z2)" in said and "explains 5%" in said
    # a good reconstruction with a few idle latents (what a beta-VAE should do), or healthy rates: no word
    assert collapse_warning(20.0, [10.0, 10.0, 0.0], reconstruction=-30.0, input_entropy=210.0) is None
    assert collapse_warning(20.0, [10.0, 10.0], reconstruction=-200.0, input_entropy=210.0) is None
    assert collapse_warning(None) is None and collapse_warning(5.0, [0.0], reconstruction=-9.0) is None


def test_the_summary_ends_with_the_collapse_warning():
    import torch

    from tcx.callbacks.run_summary import summary_table

    def summary(rates, reconstruction):
        metrics = {"val/elbo": reconstruction - sum(rates), "val/reconstruction": reconstruction, "val/rate": sum(rates),
                   **{f"val/rate/z{j}": r for j, r in enumerate(rates)}}
        trainer = types.SimpleNamespace(callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
                                        checkpoint_callback=None, callbacks=[], loggers=[], precision="32-true",
                                        current_epoch=1, global_step=10)
        model = types.SimpleNamespace(latent_dim=len(rates), anchor_indices=(), input_entropy=torch.full((100,), 0.5))
        return summary_table(trainer, model, 1.0)

    assert summary([0.01, 0.02], -49.0).splitlines()[-1].startswith("warning: the posterior has collapsed: the total rate is 0.030")
    assert "warning" not in summary([10.0, 8.0], -20.0)


TINY_FIT = ["--model", "VAE", "--model.latent_dim", "3", "--model.network", "mlp", "--model.hidden_dims", "[16]",
            "--model.input_entropy_samples", "0", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
            "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--data.batch_size", "16", "--data.epoch_size", "32",
            "--data.val_size", "16", "--trainer.callbacks", "[]"]


def test_an_evaluation_of_a_checkpoint_is_grouped_with_its_training_run(tmp_path, monkeypatch, offline_wandb):
    from wandb_records import offline_run

    from tcx.cli import main

    monkeypatch.chdir(tmp_path)
    main(["fit", *TINY_FIT, "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.save_last=true",
          "--trainer.logger.init_args.tags", "[baseline, mine]", "--seed_everything", "7"])
    (ckpt,) = tmp_path.glob("runs/tcx/*/checkpoints/last.ckpt")
    main(["validate", "--ckpt_path", str(ckpt), "--trainer.callbacks", "[]", "--trainer.enable_progress_bar", "false"])
    fit, validate = sorted((offline_run(f) for f in tmp_path.glob("runs/wandb/offline-run-*")),
                           key=lambda r: r["job_type"])
    assert (fit["job_type"], validate["job_type"]) == ("fit", "validate")
    assert fit["group"] == fit["id"] == ckpt.parts[-3] and validate["group"] == fit["id"] != validate["id"]
    assert fit["tags"] == ["baseline", "mine"] and fit["config"]["seed_everything"] == 7
    assert validate["config"]["model_class"] == "tcx.models.VAE" and validate["config"]["ckpt_path"] == str(ckpt)
    summary = json.loads((tmp_path / "runs" / "tcx" / validate["id"] / "summary.json").read_text())
    assert summary["command"] == "validate" and summary["wandb"][0]["group"] == fit["id"]
    assert summary["checkpoint"] == str(ckpt) and summary["values"]["val/elbo"] < 0


def _summary(folder, model: str, seed: int, elbo: float, mig: float | None = None, beta: float = 1.0) -> None:
    """A summary.json as a run writes it, with known numbers."""
    values = {"val/elbo": elbo, **({"metrics/mig": mig} if mig is not None else {})}
    data = {"command": "fit", "model_class": f"tcx.models.{model}", "model_args": {"latent_dim": 4, "beta": beta},
            "data_class": "tcx.datamodules.DSprites", "data_args": {"val_size": 16, "seed": seed},
            "trainer": {"max_epochs": 1, "precision": "32-true", "default_root_dir": str(folder)},
            "seed_everything": seed, "precision": "32-true", "values": values}
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(data))


def test_compare_gives_mean_and_sd_over_seeds_per_group(tmp_path, capsys):
    from tcx.cli import main
    from tcx.compare import compare, load_summaries

    # two families x two seeds; the folders, seeds and data seeds differ within a family
    _summary(tmp_path / "a", "VAE", 0, -100.0, 0.1)
    _summary(tmp_path / "b", "VAE", 1, -110.0, 0.3)
    _summary(tmp_path / "c", "BetaVAE", 0, -120.0, 0.2, beta=4.0)
    _summary(tmp_path / "d", "BetaVAE", 1, -126.0, beta=4.0)
    rows = compare(load_summaries([tmp_path]))
    assert [r["setting"] for r in rows] == [{"model": "tcx.models.VAE", "model.beta": 1.0},
                                            {"model": "tcx.models.BetaVAE", "model.beta": 4.0}]
    assert [r["n"] for r in rows] == [2, 2] and rows[0]["seeds"] == [0, 1]
    mean, sd, n = rows[0]["values"]["val/elbo"]
    assert (mean, n) == (-105.0, 2) and sd == pytest.approx(50 ** 0.5)  # sample sd of -100, -110
    assert rows[1]["values"]["val/elbo"][:2] == (-123.0, pytest.approx(18 ** 0.5))
    assert rows[1]["values"]["metrics/mig"][2] == 1  # one of the two runs has it
    with pytest.raises(SystemExit) as done:
        main(["compare", str(tmp_path)])
    assert done.value.code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| model | model.beta | n | val/elbo | metrics/mig |"
    assert table[2] == "| VAE | 1.0 | 2 | -105 +- 7.1 | 0.2 +- 0.14 |"
    assert table[3] == "| BetaVAE | 4.0 | 2 | -123 +- 4.2 | 0.2 (1) |"
    with pytest.raises(SystemExit):
        main(["compare", str(tmp_path), "--format", "csv", "--values", "val/elbo"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "model,model.beta,n,seeds,val/elbo_mean,val/elbo_sd,val/elbo_n"
    assert lines[1].startswith("VAE,1.0,2,0 1,-105.0,7.07106781") and lines[1].endswith(",2")
    with pytest.raises(SystemExit) as done:
        main(["compare", str(tmp_path / "nothing")])
    assert done.value.code == 2 and "no summary.json there" in capsys.readouterr().err


def test_compare_gathers_two_tiny_real_runs(tmp_path, monkeypatch, capsys):
    from tcx.cli import main

    monkeypatch.chdir(tmp_path)
    elbos = []
    for seed in (0, 1):
        main(["fit", *TINY_FIT, "--trainer.logger", "false", "--seed_everything", str(seed),
              "--trainer.default_root_dir", f"runs/seed{seed}"])
        elbos.append(float(capsys.readouterr().out.split("\nELBO")[1].split("nats")[0]))
    with pytest.raises(SystemExit):
        main(["compare", "runs", "--format", "csv", "--values", "val/elbo"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "runs,n,seeds,val/elbo_mean,val/elbo_sd,val/elbo_n" and len(lines) == 2
    cells = lines[1].split(",")
    assert cells[1:3] == ["2", "0 1"]
    # the summary prints 3 decimals; summary.json keeps the full values
    assert float(cells[3]) == pytest.approx(sum(elbos) / 2, abs=2e-3)
    assert float(cells[4]) == pytest.approx(abs(elbos[0] - elbos[1]) / 2 ** 0.5, abs=2e-3)


def _sweep_commands(path):
    """The command lines a W&B agent runs for the grid sweep at ``path``: its ``command`` with
    ``${env}`` as /usr/bin/env, ``${program}`` and ``${interpreter}`` as the agent fills them, and
    ``${args}`` the ``--name=value`` flags of W&B's own create_sweep_command_args."""
    import itertools

    import yaml
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] == "grid"
    names = list(sweep["parameters"])
    commands = []
    for combo in itertools.product(*(sweep["parameters"][n]["values"] for n in names)):
        args = create_sweep_command_args({"args": {n: {"value": v} for n, v in zip(names, combo)}})["args"]
        fill = {"env": ["/usr/bin/env"], "interpreter": ["python"], "program": [sweep["program"]], "args": args}
        command = []
        for chunk in sweep["command"]:
            command += fill[chunk[2:-1]] if chunk.startswith("${") else [chunk]
        commands.append((dict(zip(names, combo)), command))
    return commands


SWEEP = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "anchor_beta.yaml"
TINY_ANCHOR = ["--model.latent_dim", "3", "--model.network", "mlp", "--model.hidden_dims", "[16]",
               "--model.input_entropy_samples", "0", *TINY_FIT[10:]]


def test_the_sweep_files_commands_parse_and_run(tmp_path, monkeypatch, offline_wandb, capsys):
    """One of the sweep's nine runs, as the agent starts it (its run id in WANDB_RUN_ID), made tiny
    (all nine: the slow test below)."""
    from tcx.cli import main

    commands = _sweep_commands(SWEEP)
    assert len(commands) == 9 and commands[4][1] == [
        "/usr/bin/env", "tcx", "fit", "--model", "AnchorVAE", "--data", "DSprites", "--model.anchor_beta=0.1",
        "--seed_everything=1"]
    monkeypatch.chdir(tmp_path)
    for n, (params, command) in enumerate(commands[4:5]):
        monkeypatch.setenv("WANDB_RUN_ID", f"sweeprun{n}")
        main([*command[2:], *TINY_ANCHOR])
        summary = json.loads((tmp_path / "runs" / "tcx" / f"sweeprun{n}" / "summary.json").read_text())
        assert summary["model_args"]["anchor_beta"] == params["model.anchor_beta"]
        assert summary["seed_everything"] == params["seed_everything"] and summary["wandb"][0]["id"] == f"sweeprun{n}"


@pytest.mark.slow
def test_every_command_of_the_sweep_file_runs_as_the_agent_starts_it(tmp_path):
    """All nine, as processes: /usr/bin/env tcx fit ... with the tiny flags after the sweep's."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "HOME": str(tmp_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for _, command in _sweep_commands(SWEEP):
        done = subprocess.run([*command, *TINY_ANCHOR], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    rows = {r["setting"]["model.anchor_beta"]: r for r in compare_rows(tmp_path / "runs" / "tcx")}
    assert sorted(rows) == [0.0, 0.1, 0.2]
    assert all(r["n"] == 3 and sorted(r["seeds"]) == [0, 1, 2] for r in rows.values())


def compare_rows(folder):
    from tcx.compare import compare, load_summaries

    return compare(load_summaries([folder]))


@pytest.mark.slow
def test_the_seed_loop_example_runs_and_compare_gathers_it(tmp_path):
    """examples/seeds.sh, 2 settings x 2 seeds made tiny: one row per anchor_beta with n = 2."""
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "examples" / "seeds.sh"
    env = {**os.environ, "SEEDS": "0 1", "ROOT": str(tmp_path / "seeds"), "TCX": str(Path(sys.executable).parent / "tcx")}
    done = subprocess.run(["bash", str(script), *TINY_ANCHOR], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| model.anchor_beta | n | val/elbo |")
    assert [line.split(" | ")[:2] for line in lines[1:]] == [["| 0.1", "2"], ["| 0.2", "2"]]
    table = (tmp_path / "seeds" / "table.csv").read_text().splitlines()
    assert table[0].startswith("model.anchor_beta,n,seeds,val/elbo_mean") and table[1].startswith("0.1,2,0 1,")


def test_the_git_commit_is_tcxs_own_or_none(tmp_path):
    import subprocess

    from tcx.callbacks.run_summary import git_commit

    # another project's checkout, with a commit: not tcx's
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q",
                    "--allow-empty", "-m", "theirs"], check=True)
    assert git_commit(tmp_path) is None
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert git_commit().removesuffix("-dirty") == head.strip()


def test_a_plain_trainer_gets_the_summary_and_summary_json_from_guard_trainer(tmp_path, capsys):
    """RunSummary for a Trainer built in Python: the table after fit and after validate, and a
    summary.json whose record is the model's and datamodule's classes and hyperparameters."""
    import lightning.pytorch as pl

    from tcx.callbacks import RunSummary, guard_trainer
    from tcx.datamodules import SyntheticCorEx
    from tcx.models import VAE

    dm = SyntheticCorEx(num_points=200, val_size=50, batch_size=50)
    model = VAE(latent_dim=2, input_shape=dm.input_shape, network="mlp", hidden_dims=[8], input_entropy_samples=0)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                         enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                         default_root_dir=tmp_path, precision="32-true", callbacks=[])
    summary = guard_trainer(trainer)
    assert isinstance(summary, RunSummary) and guard_trainer(trainer) is summary  # added once
    trainer.fit(model, datamodule=dm)
    out = capsys.readouterr().out
    assert "tcx fit summary: VAE (val set)" in out and f"summary.json  {tmp_path / 'summary.json'}" in out
    fit = json.loads((tmp_path / "summary.json").read_text())
    assert (fit["command"], fit["stage"], fit["steps"]) == ("fit", "val", 2)
    assert fit["model_class"] == "tcx.models.vae.VAE" and fit["model_args"]["latent_dim"] == 2
    assert fit["data_class"] == "tcx.datamodules.synthetic.SyntheticCorEx" and fit["data_args"]["num_points"] == 200
    assert fit["precision"] == "32-true" and fit["values"]["val/elbo"] == pytest.approx(
        float(trainer.callback_metrics["val/elbo"]))
    trainer.validate(model, datamodule=dm, verbose=False)
    assert "tcx validate summary: VAE (val set)" in capsys.readouterr().out
    assert json.loads((tmp_path / "summary.json").read_text())["command"] == "validate"
    # a fit stopped within its epoch has no validation terms: its training values, said as such
    short = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                       enable_model_summary=False, default_root_dir=tmp_path / "short", precision="32-true")
    guard_trainer(short)
    short.fit(model, datamodule=dm)
    assert "tcx fit summary: VAE (train set)" in capsys.readouterr().out
    assert json.loads((tmp_path / "short" / "summary.json").read_text())["steps"] == 1
