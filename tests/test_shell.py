"""The run shell: a bug in the user's code keeps its traceback and names their file and line first;
parse errors are one line with "did you mean"; W&B that accepts and never answers falls back
offline; checkpoints to and from an fsspec URL; the data's dtype and range checks lead somewhere;
no private Lightning or W&B attribute is read outside the one marked place."""

import re
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from tcx.cli import main
from tcx.distributions import make_likelihood
from tcx.errors import TcxError
from tcx.cli.arguments import explain_parse_error, read_arguments

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--trainer.logger", "false", "--trainer.callbacks", "[]", "--trainer.max_steps", "2",
         "--model.network", "mlp", "--model.input_entropy_samples", "0"]

USER_MODULE = '''
import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


class Reshape(pl.LightningDataModule):
    input_shape = (1, 30, 30)

    def setup(self, stage=None):
        self.x = np.zeros(1024).reshape(1, 30, 30)  # the user's bug

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(4, 1, 30, 30)))


class Broken(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.zeros(16).view(3, 5)  # the user's bug, in a worker


class InWorker(pl.LightningDataModule):
    input_shape = (16,)

    def train_dataloader(self):
        return DataLoader(Broken(), batch_size=4, num_workers=2)
'''


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    (tmp_path / "user_bugs.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    yield tmp_path / "user_bugs.py"
    import sys

    sys.modules.pop("user_bugs", None)


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_bug_in_the_users_datamodule_keeps_its_traceback_and_names_their_line(user_code, capsys):
    with pytest.raises(ValueError, match="cannot reshape"):
        main(["fit", "--data", "user_bugs.Reshape", *QUIET])
    err = capsys.readouterr().err
    line = _line_of(user_code, "np.zeros(1024).reshape")
    assert err.startswith(f"tcx: ValueError in your code, {user_code}:{line} (in setup): cannot reshape"), err
    assert "tcx: error:" not in err  # not presented as bad input


def test_a_bug_in_a_loader_worker_names_the_users_line(user_code, capsys):
    with pytest.raises(RuntimeError):
        main(["fit", "--data", "user_bugs.InWorker", *QUIET])
    err = capsys.readouterr().err
    line = _line_of(user_code, "torch.zeros(16).view(3, 5)")
    assert f"in your code, {user_code}:{line} (in __getitem__)" in err.splitlines()[0], err
    # the failed loader's workers live until its iterator is collected, whose shutdown then waits
    # 10 s for them in a later test; the command's own exit ends them (daemons), so end them here
    import multiprocessing

    for worker in multiprocessing.active_children():
        worker.terminate()
        worker.join()


@pytest.mark.parametrize("args, expected", [
    (["--model.anchor_bta", "0.1"], "unknown option --model.anchor_bta; did you mean --model.anchor_beta"),
    (["--model.latent_dim", "ten"], "--model.latent_dim expects int, got 'ten'"),
    (["--trainer.max_epoch", "3"], "unknown option --trainer.max_epoch; did you mean --trainer.max_epochs"),
    # a type with classes in it, by their short names
    (["--trainer.callbacks", "5"], "--trainer.callbacks expects list[Callback] | Callback | None, got '5'"),
])
def test_parse_errors_are_one_line_with_the_closest_keys_and_exit_2(args, expected, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", *args, "--trainer.logger", "false"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.splitlines()[0].startswith(f"tcx: error: {expected}"), err
    assert "usage:" not in err and len(err.splitlines()) == 2


def test_a_typo_in_a_config_file_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("model:\n  init_args:\n    anchor_bta: 0.1\n")
    with pytest.raises(SystemExit) as info:
        main(["fit", "-c", str(cfg), "--trainer.logger", "false"])
    assert info.value.code == 2
    assert "did you mean --model.anchor_beta" in capsys.readouterr().err


def test_a_parse_error_tcx_cannot_place_keeps_jsonargparses_first_line():
    given = read_arguments(["fit", "--model", "VAE"])
    assert explain_parse_error(given, "something else went wrong\n  detail") == "something else went wrong"


@pytest.mark.parametrize("yaml, flag", [
    ("model:\n  class_path: tcx.models.AnchrVAE\n", ["--model", "tcx.models.AnchrVAE"]),
    ("fit:\n  data:\n    class_path: DSprite\n", ["--data", "DSprite"]),
    ("trainer:\n  callbacks:\n    - class_path: tcx.callbacks.LatentTravrsal\n",
     ["--trainer.callbacks+=tcx.callbacks.LatentTravrsal"]),
])
def test_a_misspelt_class_path_in_a_config_file_gets_the_flags_did_you_mean(yaml, flag, tmp_path, capsys):
    (tmp_path / "typo.yaml").write_text(yaml)
    lines = []
    for args in (["-c", str(tmp_path / "typo.yaml")], flag):
        with pytest.raises(SystemExit) as info:
            main(["fit", *args, "--trainer.logger", "false"])
        assert info.value.code == 2
        lines.append(capsys.readouterr().err.splitlines()[0])
    hint = lines[1].partition(" is not a known class.")[2]
    assert "Did you mean" in hint and lines[0].endswith(hint), lines
    assert "typo.yaml" in lines[0] and "class_path" in lines[0]


def test_a_value_of_the_wrong_type_in_a_config_file_is_one_line_naming_file_and_key(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("trainer:\n  precision: bf17\n")
    with pytest.raises(SystemExit) as info:
        main(["fit", "-c", str(tmp_path / "p.yaml"), "--trainer.logger", "false"])
    err = capsys.readouterr().err.splitlines()[0]
    assert info.value.code == 2
    assert "key trainer.precision, expects one of" in err and "bf16-mixed" in err and "got 'bf17'" in err, err


def test_a_missing_ckpt_path_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["validate", "--ckpt_path", str(tmp_path / "none.ckpt")])
    assert info.value.code == 2 and "none.ckpt' does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# W&B that accepts the connection and never answers


@pytest.fixture
def silent_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # accepted, never read, never answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_wandb_server_falls_back_offline_and_training_goes_on(silent_server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for key, value in {"WANDB_MODE": "online", "WANDB_BASE_URL": silent_server, "WANDB_API_KEY": "x" * 40,
                       "WANDB_INIT_TIMEOUT": "3", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
                       "WANDB_CONFIG_DIR": str(tmp_path / "cfg"), "WANDB_CACHE_DIR": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(key, value)
    import wandb

    wandb.teardown()  # W&B keeps its process-wide settings from an earlier test's (offline) run
    started = time.monotonic()
    main(["fit", *QUIET, "--trainer.logger", "WandbLogger", "--trainer.logger.save_dir", str(tmp_path / "runs"),
          "--data.batch_size", "16", "--data.epoch_size", "32", "--data.val_size", "16"])
    captured = capsys.readouterr()
    assert time.monotonic() - started < 120
    assert "could not start an online run" in captured.err and "logging offline" in captured.err
    assert "tcx fit summary" in captured.out
    assert list((tmp_path / "runs").rglob("*.ckpt")), "training did not go on to its checkpoint"


# --------------------------------------------------------------------------------------------
# checkpoints through Lightning's CheckpointIO: an fsspec URL


def test_a_checkpoint_to_and_from_an_fsspec_url(tmp_path, monkeypatch, capsys):
    """Fit and resume with an fsspec URL as the root. `memory://` is refused from the shell (the
    store dies with the command): a store of the test's own, which lives as long as the test
    process (as s3:// outlives a command), stands for lasting storage."""
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class LastingStore(MemoryFileSystem):
        protocol = "tcxshell"
        store: dict = {}
        pseudo_dirs = [""]

        @classmethod
        def _strip_protocol(cls, path):  # fsspec's implementer hook: this store's own prefix
            return super()._strip_protocol(str(path).removeprefix("tcxshell://"))

    fsspec.register_implementation("tcxshell", LastingStore, clobber=True)
    monkeypatch.chdir(tmp_path)
    base = [*QUIET, "--data.batch_size", "16", "--data.epoch_size", "32", "--data.val_size", "16",
            "--trainer.callbacks", '[{"class_path": "ModelCheckpoint", "init_args": {"save_last": true}}]',
            "--trainer.max_steps", "-1"]
    with pytest.raises(SystemExit) as refused:
        main(["fit", *base, "--trainer.default_root_dir", "memory://tcx-test-run", "--trainer.max_epochs", "1"])
    assert refused.value.code == 2 and "is an in-memory folder" in capsys.readouterr().err
    root = "tcxshell://tcx-test-run"
    main(["fit", *base, "--trainer.default_root_dir", root, "--trainer.max_epochs", "1"])
    fs = fsspec.filesystem("tcxshell")
    assert fs.isfile("/tcx-test-run/checkpoints/last.ckpt") and fs.isfile("/tcx-test-run/config.yaml")
    main(["fit", *base, "--trainer.default_root_dir", root, "--trainer.max_epochs", "2",
          "--ckpt_path", f"{root}/checkpoints/last.ckpt"])
    out = capsys.readouterr().out
    assert re.search(r"epochs / steps\s+2 / 4", out), out
    assert "data DSprites (from the checkpoint)" in out
    assert not list(tmp_path.glob("tcxshell*"))  # nothing went to a local look-alike folder
    fs.rm("/tcx-test-run", recursive=True)


# --------------------------------------------------------------------------------------------
# the data's dtype and range


def test_integer_images_are_told_to_divide_by_255_under_either_likelihood():
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    x[0, 0, 0, :2] = torch.tensor([0, 255])  # the full range whatever the (unseeded) draw, which misses 0 or 255 often
    for name in ("bernoulli", "gaussian"):
        with pytest.raises(TcxError, match=r"dtype uint8.*x.float\(\) / 255"):
            make_likelihood(name).check_data(x)
    with pytest.raises(TcxError, match=r"values in \[0, 255\]: divide by 255"):
        make_likelihood("bernoulli").check_data(x.float())


def test_float_images_far_outside_the_unit_range_warn_under_the_gaussian():
    with pytest.warns(UserWarning, match=r"sees x in \[0, 255\].*divide by 255"):
        make_likelihood("gaussian").check_data(torch.tensor([0.0, 255.0]))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_likelihood("gaussian").check_data(torch.tensor([-3.0, 4.0]))  # standardized data: fine


# --------------------------------------------------------------------------------------------
# no private attribute of Lightning or W&B outside the one marked place

def test_the_shell_reads_no_private_attribute_of_another_library():
    found = []
    for path in [*sorted((ROOT / "tcx" / "cli").glob("*.py")), ROOT / "tcx" / "hardware.py"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            for match in re.finditer(r"\b([A-Za-z_][A-Za-z0-9_]*)\.(_[a-z][A-Za-z0-9_]*)", code):
                if match.group(1) in ("self", "cls"):
                    continue  # tcx's own classes' attributes
                found.append(f"{path.name}:{number}: {match.group(0)}")
    assert found == [], found
    # the one place that changes W&B's function is marked and says why
    text = (ROOT / "tcx" / "cli" / "wandb_setup.py").read_text()
    assert "THE ONE PLACE tcx changes another library's function" in text


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint at all", "could not be read"),
    (None, "holds pickled Python objects"),
    ("plain", "is not a Lightning checkpoint"),
])
def test_fit_from_a_truncated_or_crafted_checkpoint_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.ckpt"
    if content == "plain":
        torch.save({"weights": torch.zeros(2)}, path)  # data, but not what Lightning writes
    elif content is None:
        torch.save({"state_dict": {}, "x": Path("a")}, path)  # a pickled object, not plain data
    else:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--ckpt_path", str(path), "--trainer.logger", "false"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the line and the --debug hint


def test_loading_a_checkpoint_of_another_folder_shows_no_dirpath_warning(tmp_path, monkeypatch, capsys):
    import warnings

    monkeypatch.chdir(tmp_path)
    base = [*QUIET, "--data.batch_size", "16", "--data.epoch_size", "32", "--data.val_size", "16",
            "--trainer.callbacks", '[{"class_path": "ModelCheckpoint", "init_args": {"save_last": true}}]']
    main(["fit", *base, "--trainer.default_root_dir", str(tmp_path / "a")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["validate", "--ckpt_path", str(tmp_path / "a" / "checkpoints" / "last.ckpt"), *base,
              "--trainer.default_root_dir", str(tmp_path / "b")])
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
