"""Packaged experiments: `tcx fit -c NAME` and `tcx configs` (tcx.cli.experiments)."""

from pathlib import Path

import pytest
import yaml

from tcx.cli import main
from tcx.cli.arguments import read_arguments
from tcx.cli.experiments import available_experiments, describe_experiments, experiment_path

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_of_the_source_tree_is_packaged():
    source = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
    assert list(available_experiments()) == source
    assert len(source) >= 15


@pytest.mark.parametrize("name", ["betavae_dsprites", "betavae_dsprites.yaml", "configs/betavae_dsprites.yaml"])
def test_a_name_resolves_to_the_packaged_file(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty directory: only the packaged file can match
    path = experiment_path(name)
    assert path.name == "betavae_dsprites.yaml"
    assert yaml.safe_load(path.read_text())["model"]["init_args"]["beta"] == 4.0
    assert read_arguments(["fit", "-c", name, "--x", "1"]).argv == ["fit", "-c", str(path), "--x", "1"]
    assert read_arguments(["fit", f"--config={name}"]).argv == ["fit", f"--config={path}"]


def test_an_existing_file_wins_over_a_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("betavae_dsprites.yaml").write_text("trainer:\n  max_epochs: 1\n")
    argv = ["fit", "-c", "betavae_dsprites.yaml"]
    assert read_arguments(argv).argv == argv


def test_an_unknown_name_lists_the_choices(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="vae_dsprites.*tcx configs"):
        experiment_path("nope")
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "-c", "nope"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "anchorvae_dsprites" in err


def test_tcx_configs_lists_every_experiment_with_its_title(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["configs"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in available_experiments():
        assert name in out
    assert "beta-VAE (Higgins et al. 2017, beta = 4) on procedural dSprites" in out
    assert out.strip() == describe_experiments().strip()


def test_a_packaged_experiment_configures_the_run_from_an_empty_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(SystemExit):
        main(["fit", "-c", "betavae_dsprites", "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"] == "tcx.models.BetaVAE"
    assert config["model"]["init_args"]["beta"] == 4.0
    assert config["data"]["class_path"] == "tcx.datamodules.DSprites"


def test_tcx_configs_into_a_closed_pipe_is_quiet():
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("tcx"))
    # the reader goes away before tcx writes (as `tcx configs | head -1` can): no traceback, status 0
    proc = subprocess.Popen([exe, "configs"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_tcx_configs_answers_without_loading_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom tcx.cli import main\ntry:\n    main(['configs'])\nexcept SystemExit as e:\n"
            "    print('exit', e.code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "tcx fit -c NAME" in out and "anchorvae_dsprites" in out
    assert out.strip().endswith("exit 0 False"), out


def test_inline_yaml_given_to_c_is_passed_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(SystemExit):
        main(["fit", "-c", "{trainer: {max_epochs: 7}}", "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out)["trainer"]["max_epochs"] == 7
