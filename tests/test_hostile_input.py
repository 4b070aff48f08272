"""Hostile and mistaken input, as a user meets it through the `tcx` command: a checkpoint's class
paths are checked against tcx's one list of nameable classes before anything is imported, in every
command (traverse included, which reads its fit's own checkpoint and URLs); values read from a
checkpoint are data (W&B run ids validated, recorded strings printed escaped); a resumed or
evaluated run keeps the checkpoint's precision; and every user mistake of issue 26 is one paragraph,
exit 2, tcx's message first."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from jsonargparse import Namespace

from tcx.cli import checkpoint_run, shell_errors, wandb_setup
from tcx.cli import main
from tcx.errors import TcxError
from tcx.cli.precision import resolve_precision
from tcx.hardware import default_precision
from tcx.models.base import PRECISION_KEY
from tcx.safe_io import CheckpointRefused, shown
from tcx.cli.traverse import traverse_main

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--trainer.logger", "false"]
TINY_MODEL = ["--model", "VAE", "--model.network", "mlp", "--model.hidden_dims", "[16]", "--model.latent_dim", "2",
              "--model.input_entropy_samples", "0"]
TINY = [*TINY_MODEL, "--data.epoch_size", "32", "--data.batch_size", "16", "--data.val_size", "32"]
#: the precision the hardware would not choose: a resume that kept it proves the checkpoint's won
OTHER_PRECISION = "32-true" if default_precision()[0] == "bf16-mixed" else "bf16-mixed"


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch, tmp_path):
    monkeypatch.delenv("TCX_DEBUG", raising=False)
    monkeypatch.delenv("TCX_WANDB_RESUME", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def fit_ckpt(tmp_path_factory):
    """The last.ckpt of a tiny `tcx fit` (VAE on DSprites, 2 steps) in the precision the hardware
    would not choose, without a logger."""
    root = tmp_path_factory.mktemp("fit")
    main(["fit", *TINY, *QUIET, "--trainer.max_steps", "2", "--trainer.precision", OTHER_PRECISION,
          "--trainer.callbacks", "[]", "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.save_last=true",
          "--trainer.default_root_dir", str(root / "run")])
    return root / "run" / "checkpoints" / "last.ckpt"


def _edited(ckpt: Path, where: Path, **changes) -> Path:
    """A copy of ``ckpt`` with top-level entries changed (a value of None removes the entry);
    ``hyper_parameters`` and ``tcx_data_config`` are merged."""
    checkpoint = torch.load(ckpt, weights_only=True)
    for key, value in changes.items():
        if value is None:
            checkpoint.pop(key, None)
        elif key in ("hyper_parameters", "tcx_data_config"):
            checkpoint[key] = {**checkpoint[key], **value}
        else:
            checkpoint[key] = value
    path = where / "edited.ckpt"
    torch.save(checkpoint, path)
    return path


def _one_paragraph(capsys, argv) -> str:
    """Run ``tcx argv``: it must exit 2 with one paragraph and no traceback; returns the paragraph."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Traceback" not in err and "in your code" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("tcx: error:")]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------------------
# item 5: nothing imported that the allow-list has not passed


def test_traverse_reads_its_fits_own_checkpoint_with_data_and_by_url(fit_ckpt, tmp_path, capsys):
    checkpoint = torch.load(fit_ckpt, weights_only=True)
    # the fit records tcx's public path, which traverse must accept
    assert checkpoint["tcx_data_config"]["class_path"] == "tcx.datamodules.DSprites"
    out = tmp_path / "pics"
    assert traverse_main(["--ckpt_path", str(fit_ckpt), "--out", str(out), "--steps", "2", "--num_points", "16",
                          "--num_inputs", "1"]) == 0
    text = capsys.readouterr().out
    assert "no data" not in text
    assert {"reconstructions.png", "information.png", "mi_matrix.png"} <= {p.name for p in out.iterdir()}
    url = f"file://{fit_ckpt}"
    assert traverse_main(["--ckpt_path", url, "--out", str(tmp_path / "url"), "--steps", "2", "--num_points", "16",
                          "--num_inputs", "0"]) == 0, capsys.readouterr().err
    assert (tmp_path / "url" / "traversal.png").is_file()
    assert traverse_main(["--ckpt_path", url + ".missing", "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "predict", "fit"])
@pytest.mark.parametrize("where", ["model", "data"])
def test_a_recorded_class_is_refused_before_it_is_imported(fit_ckpt, tmp_path, capsys, command, where):
    sys.modules.pop("this", None)  # `import this` prints the Zen of Python: the proof of an import
    change = ({"hyper_parameters": {"_class_path": "this.Anything"}} if where == "model"
              else {"tcx_data_config": {"class_path": "this.Anything"}})
    edited = _edited(fit_ckpt, tmp_path, **change)
    line = _one_paragraph(capsys, [command, "--ckpt_path", str(edited), *QUIET])
    what = "model family" if where == "model" else "datamodule"
    assert f"names the {what} 'this.Anything', which is not one of tcx's" in line and "--trust" in line
    assert "this" not in sys.modules
    assert "Beautiful is better than ugly" not in capsys.readouterr().out


def test_a_recorded_foreign_datamodule_is_not_imported_without_trust(fit_ckpt, tmp_path, monkeypatch, capsys):
    # a module that leaves a mark when it is imported: the user's datamodule as a checkpoint records it
    marker = tmp_path / "imported"
    (tmp_path / "marked_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('yes')\n"
        "from tcx.datamodules import DSprites as Marked\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("marked_module", None)
    edited = _edited(fit_ckpt, tmp_path, tcx_data_config={"class_path": "marked_module.Marked"},
                     tcx_datamodule_class="marked_module.Marked")
    line = _one_paragraph(capsys, ["validate", "--ckpt_path", str(edited), *QUIET])
    assert "'marked_module.Marked', which is not one of tcx's" in line
    assert not marker.exists()
    # traverse leaves the data out, and says why
    assert traverse_main(["--ckpt_path", str(edited), "--out", str(tmp_path / "p"), "--steps", "2"]) == 0
    assert "no data (the checkpoint names the datamodule 'marked_module.Marked'" in capsys.readouterr().out
    assert not marker.exists()
    # the user opts in for their own checkpoint with --trust: then it is imported and built
    main(["validate", "--ckpt_path", str(edited), "--trust", *QUIET, "--trainer.limit_val_batches", "1",
          "--trainer.callbacks", "[]"])
    assert marker.exists() and "data Marked (from the checkpoint)" in capsys.readouterr().out
    sys.modules.pop("marked_module", None)


def test_traverse_refuses_a_foreign_model_family_before_importing_it(fit_ckpt, tmp_path, capsys):
    sys.modules.pop("this", None)
    edited = _edited(fit_ckpt, tmp_path, tcx_model_class="this.Anything")
    assert traverse_main(["--ckpt_path", str(edited), "--out", str(tmp_path / "p")]) == 2
    assert "names the model family 'this.Anything', which is not one of tcx's" in capsys.readouterr().err
    assert "this" not in sys.modules


def test_recorded_strings_are_printed_escaped(fit_ckpt, tmp_path, capsys):
    hostile = "evil\x1b[2J\x1b[31m.Data\u202e\n"
    edited = _edited(fit_ckpt, tmp_path, tcx_data_config={"class_path": hostile})
    line = _one_paragraph(capsys, ["test", "--ckpt_path", str(edited), *QUIET])
    assert "\x1b" not in line and "\u202e" not in line
    assert r"'evil\x1b[2J\x1b[31m.Data\u202e\n'" in line
    assert shown("x" * 300, 20) == "x" * 17 + "..." and shown("tcx.models.VAE") == "tcx.models.VAE"


# ------------------------------------------------------------------------------------------------
# item 6: a recorded W&B run id is data


def _wandb_config(ckpt, **logger_args):
    return {"ckpt_path": str(ckpt), "trainer": {"logger": {"class_path": "lightning.pytorch.loggers.WandbLogger",
                                                           "init_args": {"id": None, "version": None, **logger_args}}}}


@pytest.mark.parametrize("run_id", ["../../x", "x" * 300, "a/b c", "\x1b[31mred\x1b[0m", "", 12345])
def test_a_bad_recorded_wandb_id_is_one_line_and_a_new_run(fit_ckpt, tmp_path, capsys, monkeypatch, run_id):
    edited = _edited(fit_ckpt, tmp_path, tcx_wandb_run_id=run_id)
    config = _wandb_config(edited)
    assert wandb_setup.resume_wandb_run(config) is None
    assert config["trainer"]["logger"]["init_args"]["id"] is None  # W&B makes a new run
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not a valid W&B run id" in err and "new W&B run" in err, err
    assert "\x1b" not in err and len(err) < 400
    monkeypatch.setenv("TCX_WANDB_RESUME", "must")
    with pytest.raises(TcxError, match="TCX_WANDB_RESUME=must"):
        wandb_setup.resume_wandb_run(_wandb_config(edited))


def test_a_valid_recorded_wandb_id_is_continued_and_agrees_with_wandb(fit_ckpt, tmp_path, monkeypatch):
    import wandb

    edited = _edited(fit_ckpt, tmp_path, tcx_wandb_run_id="run-1.b_X2")
    config = _wandb_config(edited)
    assert wandb_setup.resume_wandb_run(config) == "run-1.b_X2"
    assert config["trainer"]["logger"]["init_args"]["id"] == "run-1.b_X2"
    # an id the user gives wins, and TCX_WANDB_RESUME=never starts a new run
    given = _wandb_config(edited, id="mine")
    assert wandb_setup.resume_wandb_run(given) is None and given["trainer"]["logger"]["init_args"]["id"] == "mine"
    monkeypatch.setenv("TCX_WANDB_RESUME", "never")
    assert wandb_setup.resume_wandb_run(_wandb_config(edited)) is None
    # tcx's rule is narrower than the installed W&B's: what tcx passes on, W&B accepts; what W&B
    # refuses, tcx refuses
    for good in ("abc123", "run-1.b_X2", "a" * 64):
        assert wandb_setup.valid_run_id(good)
        wandb.Settings(run_id=good)
    for bad in ("a/b c", "x:y", " lead", "a#b", "../../x"):
        assert not wandb_setup.valid_run_id(bad)
    for bad in ("a/b c", "x:y", "a#b", "../../x"):
        with pytest.raises(wandb.errors.UsageError):
            wandb.Settings(run_id=bad)
    assert not wandb_setup.valid_run_id("a" * 65) and not wandb_setup.valid_run_id(".hidden")


# ------------------------------------------------------------------------------------------------
# item 8: a resumed or evaluated run keeps the checkpoint's precision


def test_a_resumed_fit_keeps_the_precision_it_was_trained_in(fit_ckpt, tmp_path, capsys):
    assert torch.load(fit_ckpt, weights_only=True)[PRECISION_KEY] == OTHER_PRECISION
    capsys.readouterr()
    main(["fit", "--ckpt_path", str(fit_ckpt), *QUIET, "--trainer.max_epochs", "3",
          "--trainer.callbacks", "[]",
          "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.save_last=true",
          "--trainer.default_root_dir", str(tmp_path / "resumed")])
    out = capsys.readouterr().out
    assert f"tcx: precision {OTHER_PRECISION} (the checkpoint's: its run trained in it" in out
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed[PRECISION_KEY] == OTHER_PRECISION and resumed["global_step"] > 2


def test_a_checkpoint_without_a_recorded_precision_gets_the_hardwares_with_a_note(capsys):
    config = Namespace(trainer=Namespace(precision=None, accelerator="cpu"))
    note = resolve_precision(config, {"precision": None})
    assert config.trainer.precision == default_precision("cpu")[0]
    assert "chosen by the hardware" in note and "the checkpoint does not record its precision" in note
    config = Namespace(trainer=Namespace(precision=None, accelerator="cpu"))
    assert "records the unknown precision '\\x1b'" in resolve_precision(config, {"precision": "\x1b"})
    config = Namespace(trainer=Namespace(precision="16-mixed", accelerator="cpu"))
    assert resolve_precision(config, {"precision": "32-true"}) == "16-mixed (given explicitly)"
    assert "\x1b" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# item 8: one line for every user mistake


def test_a_corrupt_shapes3d_file_is_tcxs_message_first(tmp_path, capsys):
    bad = tmp_path / "3dshapes.h5"
    bad.write_bytes(os.urandom(4096))
    line = _one_paragraph(capsys, ["fit", "--data", "Shapes3D", "--data.path", str(bad), *QUIET])
    assert line.startswith(f"tcx: error: {str(bad)!r} could not be read as HDF5")
    assert "download 3dshapes.h5 again" in line


def test_a_compiled_librarys_frame_is_never_the_users_code(tmp_path):
    # a Cython frame carries a relative name such as h5py/h5f.pyx, even where such a file exists
    (tmp_path / "h5py").mkdir()
    (tmp_path / "h5py" / "h5f.pyx").write_text("raise ValueError('x')\n")
    (tmp_path / "mine.py").write_text("raise ValueError('x')\n")
    found = {}
    for name in ("h5py/h5f.pyx", str(tmp_path / "mine.py")):
        try:
            exec(compile("raise ValueError('x')", name, "exec"))
        except ValueError as exc:
            found[name] = shell_errors.user_code_frame(exc)
    assert found[str(tmp_path / "mine.py")] == (str(tmp_path / "mine.py"), 1, "<module>")
    # the library's frame is passed over (the innermost user frame left is this test's own)
    assert found["h5py/h5f.pyx"] is None or found["h5py/h5f.pyx"][0] == __file__


def test_a_worker_error_is_its_own_message():
    quoted = ("Caught TcxError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
              '  File "x.py", line 1, in f\n    g()\ntcx.errors.TcxError: the file is corrupt: download it again\n')
    assert shell_errors.describe_error(TcxError(quoted)) == (
        "the file is corrupt: download it again (in DataLoader worker process 0)")


@pytest.mark.parametrize("yaml, message", [
    ("- 1\n- 2\n", "config file 'my.yaml' holds a list, not a mapping of options"),
    ("model: 3\n", "config file 'my.yaml', key model: expects a class (a name such as AnchorVAE"),
    ("fit:\n  data: [1]\n", "config file 'my.yaml', key fit.data: expects a class"),
    # jsonargparse would take these as the whole trainer and run with Lightning's defaults
    ("trainer: [1]\n", "config file 'my.yaml', key trainer: expects Trainer arguments (a mapping such as "
                        "max_epochs: 10), got [1]"),
    ("trainer: 5\n", "key trainer: expects Trainer arguments"),
])
def test_a_config_file_of_the_wrong_shape_is_one_paragraph_naming_the_key(tmp_path, monkeypatch, capsys, yaml,
                                                                           message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.yaml").write_text(yaml)
    assert message in _one_paragraph(capsys, ["fit", "-c", "my.yaml", *QUIET])


@pytest.mark.parametrize("yaml, message", [
    ("model:\n  class_path: tcx.models.AnchorVAEE\n",
     "key model.class_path: 'tcx.models.AnchorVAEE' is not a known class. Did you mean tcx.models.AnchorVAE?"),
    ("data:\n  class_path: datamodules.DSprite\n",
     "key data.class_path: 'datamodules.DSprite' is not a known class. Did you mean tcx.datamodules.DSprites?"),
    ("model:\n  class_path: VAE\n  init_args:\n    anchor_beta: 0.1\n",
     "key model.init_args.anchor_beta: VAE has no argument 'anchor_beta'; AnchorVAE"),
])
def test_a_misspelt_class_in_a_config_file_names_the_file_key_and_the_closest_class(tmp_path, capsys, yaml, message):
    (tmp_path / "my.yaml").write_text(yaml)
    line = _one_paragraph(capsys, ["fit", "-c", "my.yaml", *QUIET])
    assert "config file 'my.yaml', " + message in line


@pytest.mark.parametrize("argv, message", [
    (["--model", "AnchorVAEE"], "--model 'AnchorVAEE' is not a known class. Did you mean AnchorVAE?"),
    (["--model", "VAE", "--model.anchor_beta", "0.1"],
     "--model.anchor_beta: VAE has no argument 'anchor_beta'; AnchorVAE"),
    (["--data", "MNIST", "--data.render_on", "device"], "--data.render_on: MNIST has no argument 'render_on'; DSprites"),
    (["--data.epoch_size", "32", "--data.val_size", "32", "--data.batch_size", "16", "--trainer.max_epochs", "-5"],
     "--trainer.max_epochs -5 is not a number of epochs: give one >= 0, or -1"),
    (["--trainer.max_steps", "-2"], "--trainer.max_steps -2 is not a number of optimizer steps"),
    (["--trainer.default_root_dir", "afile"], "the run's folder 'afile' is a file; give a folder"),
    (["--trainer.default_root_dir", "afile/run"], "'afile/run' lies under 'afile', which is a file"),
    (["-c", "."], "config file '.' is a folder, not a YAML file (given with -c)"),
    (["--data", "[1]"], "--data '[1]' is not a known class. Choose one of Arrays,"),
    (["--ckpt_path", ""], "--ckpt_path is empty; give the path of a .ckpt file"),
    # Lightning's refusals of Trainer settings (a ValueError, a MisconfigurationException), as one line
    (["--trainer.accelerator", "cpu", "--trainer.strategy", "fsdp"],
     "the Trainer settings cannot run here: The strategy `fsdp` requires a GPU accelerator"),
    (["--trainer.accelerator", "cpu", "--trainer.devices", "0"], "the Trainer settings cannot run here: `Trainer(devices="),
    (["-c", "/dev/null"], "config file '/dev/null' is not a regular file (given with -c)"),
])
def test_user_mistakes_are_one_paragraph(tmp_path, capsys, argv, message):
    (tmp_path / "afile").write_text("not a folder\n")
    line = _one_paragraph(capsys, ["fit", *TINY_MODEL, *QUIET, *argv])
    assert message in line


def test_out_of_memory_building_the_model_names_the_size_and_what_to_lower(monkeypatch, capsys):
    import tcx.models.base

    def allocate(*args, **kwargs):  # what torch's CPU allocator raises for a tensor that does not fit
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 204800000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(tcx.models.base, "build_networks", allocate)
    line = _one_paragraph(capsys, ["fit", *TINY, *QUIET, "--model.latent_dim", "100000000"])
    assert "out of memory building the model VAE with 100000000 latents: it asked for 190.7 GiB" in line
    assert "lower --model.latent_dim" in line


def test_out_of_memory_on_a_batch_names_the_batch_and_what_to_lower(monkeypatch, capsys):
    import tcx.models.base

    def bound(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.1 GiB total)")

    monkeypatch.setattr(tcx.models.base.CorExVAE, "bound", bound)
    line = _one_paragraph(capsys, ["fit", *TINY, *QUIET, "--trainer.callbacks", "[]", "--trainer.max_steps", "1",
                                   "--trainer.num_sanity_val_steps", "0"])
    assert "out of memory on a batch of 16 inputs (1, 64, 64): it asked for 20.00 GiB" in line
    assert "lower --data.batch_size" in line


def _out_of_memory_elsewhere():
    raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes")


def _a_bug():
    raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (16x4 and 5x2)")


@pytest.mark.parametrize("error", [_out_of_memory_elsewhere, _a_bug])
def test_memory_errors_elsewhere_and_other_runtime_errors_keep_their_traceback(error):
    with pytest.raises(RuntimeError) as info:
        error()
    assert shell_errors.describe_error(info.value) is None


@pytest.mark.slow
def test_a_real_out_of_memory_at_model_build_from_the_shell(tmp_path):
    # the address space capped, so the allocation fails at once whatever the kernel's overcommit
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    tcx = str(Path(sys.executable).with_name("tcx"))
    result = subprocess.run([tcx, "fit", *TINY, *QUIET, "--model.latent_dim", "100000000"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, preexec_fn=cap,
                            env={**os.environ, "WANDB_MODE": "offline"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert re.search(r"out of memory building the model VAE with 100000000 latents: it asked for [\d.]+ GiB",
                     result.stderr), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_resumed_fit_with_a_bad_wandb_id_logs_to_a_new_run(fit_ckpt, tmp_path, capsys, offline_wandb):
    edited = _edited(fit_ckpt, tmp_path, tcx_wandb_run_id="../../\x1b[31mx")
    main(["fit", "--ckpt_path", str(edited), "--trainer.enable_progress_bar", "false", "--trainer.max_steps", "3",
          "--trainer.callbacks", "[]", "--trainer.logger", "lightning.pytorch.loggers.WandbLogger",
          "--trainer.logger.save_dir", str(tmp_path / "wb")])
    captured = capsys.readouterr()
    assert "not a valid W&B run id" in captured.err and "\x1b[31m" not in captured.err + captured.out
    runs = [p.name for p in tmp_path.rglob("offline-run-*") if p.is_dir()]
    assert len(runs) == 1 and re.fullmatch(r"offline-run-\d{8}_\d{6}-[a-z0-9]{8}", runs[0]), runs


def test_the_recorded_classes_of_a_checkpoint_are_every_class_path_it_holds(fit_ckpt, tmp_path):
    edited = _edited(fit_ckpt, tmp_path, hyper_parameters={"optimizer": {"class_path": "os.system"}})
    run = checkpoint_run.read_recorded_run(edited)
    assert ("--optimizer", "os.system") in run["classes"] and ("--model", "tcx.models.VAE") in run["classes"]
    with pytest.raises(CheckpointRefused, match="'os.system', which is not one of torch"):
        checkpoint_run.check_recorded_classes(run, "checkpoint x")
    checkpoint_run.check_recorded_classes(run, "checkpoint x", trust=True)  # the user's own, trusted


def test_a_users_own_models_package_is_theirs_not_a_slip_for_tcxs(tmp_path, monkeypatch):
    from tcx.cli.arguments import class_name_problem, read_arguments

    def check_class_names(argv):
        problem = class_name_problem(read_arguments(argv))
        if problem:
            raise TcxError(problem)

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("models", None)
    check_class_names(["fit", "--model", "models.MyVAE"])  # the user's own: jsonargparse imports it
    assert "models" not in sys.modules  # looked up, not imported
    with pytest.raises(TcxError, match="Did you mean tcx.datamodules.DSprites"):
        check_class_names(["fit", "--data", "datamodules.DSprite"])  # no such module: tcx's, misspelt
    with pytest.raises(TcxError, match="Did you mean tcx.models.AnchorVAE"):
        check_class_names(["fit", "--model", "tcx.models.AnchorVAEE"])
