"""`tcx fit` end to end: the default experiment, configs, short names, bad input."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tcx.cli import main
from tcx.cli.wandb_setup import configure_wandb_mode
from tcx.models import AnchorVAE

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--trainer.max_epochs", "1",
    "--trainer.max_steps", "3",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--data.batch_size", "32",
    "--data.epoch_size", "96",
    "--data.val_size", "64",
    "--model.input_entropy_samples", "2000",
]
# in-process fits without the picture and metric callbacks (the subprocess test runs them all)
NO_LOGGER = ["--trainer.logger", "false", "--trainer.callbacks", "[]"]


def _tcx_executable() -> str:
    exe = Path(sys.executable).with_name("tcx")
    assert exe.exists(), f"the console script {exe} is not installed: run `make test`"
    return str(exe)


SMALL_CALLBACKS = ["-c", str(ROOT / "tests" / "small_callbacks.yaml")]


@pytest.mark.parametrize("callbacks", [
    pytest.param(SMALL_CALLBACKS, id="small-callbacks"),
    pytest.param([], id="default-callbacks", marks=pytest.mark.slow),  # their default sizes: minutes
])
def test_tcx_fit_default_with_wandb_offline(tmp_path, callbacks):
    """The default experiment, shrunk, through the real console script: W&B goes offline by itself
    (no key, no WANDB_MODE), a checkpoint and the W&B run directory are written, and the summary
    is printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), WANDB_SILENT="true")
    proc = subprocess.run(
        [_tcx_executable(), "fit", *callbacks, *TINY],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "tcx fit summary: AnchorVAE" in out
    # the precision is the hardware's choice, said on the first line and in the summary
    first = out.splitlines()[:3]
    assert any(line.startswith("tcx: precision ") and "chosen by the hardware" in line for line in first), first
    assert re.search(r"^precision\s+(bf16-mixed|32-true) \(chosen by the hardware: ", out, re.M), out[-2000:]
    # a quiet start: none of the known unactionable warnings reaches the console
    for noise in ("args parameter", "litlogger", "litmodels", "anonymous setting", "git root",
                  "not supported by the model summary", "LeafSpec", "`weights_only` was not set"):
        assert noise not in proc.stderr + out, noise
    for row in ("ELBO", "reconstruction", "total rate", "anchors' rate (2 latents [0, 1])", "W&B run (offline)"):
        assert row in out
    ckpts = list(tmp_path.glob("runs/tcx/*/checkpoints/last.ckpt"))
    assert len(ckpts) == 1
    runs = list(tmp_path.glob("runs/wandb/offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb")), "no offline W&B run file"

    model = AnchorVAE.load_from_checkpoint(ckpts[0])
    assert model.anchor_indices == (0, 1) and model.latent_dim == 10
    x = (torch.rand(4, 1, 64, 64) > 0.5).float()
    model.eval()
    assert model.encode(x).mean.shape == (4, 10)


def test_config_file_and_short_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["fit", "-c", str(ROOT / "configs/betavae_dsprites.yaml"), *TINY, *NO_LOGGER])
    out = capsys.readouterr().out
    assert "tcx fit summary: BetaVAE" in out
    assert "anchors' rate" not in out

    main(["fit", "--model", "VAE", "--data", "DSprites", *TINY, *NO_LOGGER])
    assert "tcx fit summary: VAE" in capsys.readouterr().out

    main(["fit", "--model", "tcx.models.AnchorVAE", "--model.anchors", "[3, 7]", *TINY, *NO_LOGGER])
    out = capsys.readouterr().out
    assert "anchors' rate (2 latents [3, 7])" in out


def test_print_config_shows_the_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--print_config"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "class_path: tcx.models.AnchorVAE" in out
    assert "class_path: tcx.datamodules.DSprites" in out
    # no precision: the CLI resolves it from the hardware (tcx.hardware) when the run starts
    assert "WandbLogger" in out and "precision: null" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "NoSuchVAE"], r"--model 'NoSuchVAE' is not a known class. Choose one of AnchorVAE, .*BetaVAE"),
        (["--data=Nope"], r"--data 'Nope' is not a known class. Choose one of .*DSprites, .*MNIST"),
    ],
)
def test_unknown_class_names_are_refused(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", *args])
    assert info.value.code == 2  # a user's error, as every other
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.anchors", "12"], r"anchors \(a count\) must be an integer in \[1, 10\], got 12"),
        (["--model.anchors", "[0, 10]"], r"anchors\[1\] must be an integer in \[0, 9\], got 10"),
        (["--model.anchor_beta", "1.0"], r"anchor_beta must be a number in \[0.0, 1.0\), got 1.0"),
        (["--model.network", "resnet"], "network must be one of .*got 'resnet'"),
    ],
)
def test_bad_model_arguments_fail_before_training(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    # jsonargparse reports it as a parse error (SystemExit) or the model's ValueError propagates
    # from instantiation; either way it names the argument and stops before any training
    with pytest.raises((SystemExit, ValueError)) as info:
        main(["fit", *TINY, *NO_LOGGER, *args])
    text = capsys.readouterr().err + str(info.value)
    assert re.search(message, text), text[-2000:]
    assert not list(tmp_path.rglob("*.ckpt")), "nothing may be trained or written"


def test_switching_class_does_not_inherit_the_default_class_arguments(capsys):
    """`--model BetaVAE` gets BetaVAE's own beta (4), not AnchorVAE's (1); `--data X` likewise."""
    with pytest.raises(SystemExit):
        main(["fit", "--model", "BetaVAE", "--print_config"])
    out = capsys.readouterr().out
    assert "class_path: tcx.models.BetaVAE" in out and "beta: 4.0" in out and "anchor" not in out
    with pytest.raises(SystemExit):
        main(["fit", "--model.anchors", "3", "--print_config"])
    out = capsys.readouterr().out
    assert "class_path: tcx.models.AnchorVAE" in out and "anchors: 3" in out


def test_wandb_mode_is_offline_without_a_key(tmp_path):
    env = {"NETRC": str(tmp_path / "netrc")}
    assert configure_wandb_mode(env) == "offline" and env["WANDB_MODE"] == "offline"
    env = {"WANDB_API_KEY": "x" * 40}
    assert configure_wandb_mode(env) == "online"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    assert configure_wandb_mode({"NETRC": str(tmp_path / "netrc")}) == "online"
    assert configure_wandb_mode({"WANDB_MODE": "disabled"}) == "disabled"


def test_tcx_help_names_its_own_commands_beside_lightnings(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "predict"):
        assert f"    {command} " in out
    assert "\n  configs " in out and "\n  traverse " in out


def test_fit_help_is_one_readable_screen_with_a_line_per_argument_and_callback(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and len(out.splitlines()) < 90
    assert "Namespace(" not in out and max(len(line) for line in out.splitlines()) < 160
    assert re.search(r"^  --model\.anchor_beta +0\.2$", out, re.M)
    assert re.search(r"^  DisentanglementMetrics +every_n_epochs 1, num_samples 5000", out, re.M)
    assert re.search(r"^  LatentTraversal ", out, re.M) and "--help-all" in out
    assert re.search(r"^  --trust +build the classes a checkpoint records", out, re.M)
    # the family asked for, with its own defaults
    with pytest.raises(SystemExit):
        main(["fit", "--model", "BetaVAE", "--help"])
    assert re.search(r"^  --model\.beta +4\.0$", capsys.readouterr().out, re.M)


def test_help_all_is_lightnings_full_list(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help-all"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "--trainer.accumulate_grad_batches" in out
