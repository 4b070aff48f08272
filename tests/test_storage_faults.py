"""Storage faults, as a user meets them through `tcx fit`: what tcx says it wrote is on disk.

A checkpoint folder that cannot be written is refused before training, or stops the run at the
first save that fails (Lightning's own save swallows a PermissionError); a full disk (a real
tmpfs, where the machine lets the tests mount one) leaves the previous checkpoint loadable and no
truncated file under a final name; with a URL as the root every file goes to that URL, `file://`
is a local folder and `memory://` is refused from the shell; the summary names only files that
exist."""

import errno
import json
import os
import re
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import fsspec
import lightning.pytorch as pl
import pytest
import torch
from fsspec.implementations.memory import MemoryFileSystem
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from tcx import safe_io
from tcx.callbacks import run_guard
from tcx.callbacks import Samples
from tcx.cli import main
from tcx.models import VAE
from tcx.cli.run_folder import RUN_DIR_ENV
from tcx.callbacks.run_summary import summary_table

TINY = ["--model", "VAE", "--model.network", "mlp", "--model.hidden_dims", "[16]", "--model.latent_dim", "3",
        "--model.input_entropy_samples", "0", "--data.batch_size", "16", "--data.epoch_size", "32",
        "--data.val_size", "16", "--trainer.limit_val_batches", "1", "--trainer.precision", "32-true",
        "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.max_epochs", "1"]
CHECKPOINTS = '[{"class_path": "ModelCheckpoint", "init_args": {"save_last": true}}]'

# callbacks of a user's module that bring the fault in the middle of a run
FAULTS = '''
import os, subprocess
import lightning.pytorch as pl


class ReadOnlyFrom(pl.Callback):
    """Makes `folder` read-only when the training epoch `epoch` starts (as root: chattr +i)."""

    def __init__(self, folder: str, epoch: int = 1):
        self.folder, self.epoch = folder, epoch

    def on_train_epoch_start(self, trainer, *args):
        if trainer.current_epoch == self.epoch:
            if os.geteuid() == 0:
                subprocess.run(["chattr", "+i", self.folder], check=True)
            else:
                os.chmod(self.folder, 0o555)


class FillDiskFrom(pl.Callback):
    """Fills the disk of `folder` when the training epoch `epoch` starts, leaving `room` bytes."""

    def __init__(self, folder: str, room: int, epoch: int = 1):
        self.folder, self.room, self.epoch = folder, room, epoch

    def on_train_epoch_start(self, trainer, *args):
        if trainer.current_epoch == self.epoch:
            fill(os.path.join(self.folder, "filler"), self.room)


def fill(path: str, room: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while os.write(fd, b"x" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    st = os.statvfs(os.path.dirname(path))
    os.truncate(path, max(0, os.path.getsize(path) - room + st.f_bavail * st.f_frsize))
'''


@pytest.fixture(autouse=True)
def _quiet(offline_wandb, monkeypatch, tmp_path):
    monkeypatch.delenv("TCX_DEBUG", raising=False)
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faults.py").write_text(FAULTS)
    monkeypatch.syspath_prepend(str(tmp_path))


def _exit_code(args) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code


def _error_paragraph(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("tcx: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _readable(path: Path) -> int:
    """The global step of the checkpoint at `path`, loaded as tcx loads it."""
    return safe_io.load_checkpoint(path)["global_step"]


def _can_write_in(folder: Path) -> bool:
    probe = folder / f"probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def _make_writable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    else:
        os.chmod(folder, 0o755)


@contextmanager
def read_only(folder: Path):
    """`folder` read-only for the block: chmod for a user, chattr +i for root (whom permissions do
    not stop); skipped where neither works (a filesystem without the immutable flag)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    else:
        os.chmod(folder, 0o555)
    try:
        if _can_write_in(folder):
            pytest.skip("no way to make a folder read-only here")
        yield folder
    finally:
        _make_writable(folder)


# --------------------------------------------------------------------------------------------
# a folder that cannot be written


@pytest.mark.parametrize("which, named", [
    ("checkpoints", "the checkpoint folder (ModelCheckpoint's dirpath)"),
    (".", "the run's folder"),
])
def test_a_folder_that_cannot_be_written_is_refused_before_training(tmp_path, capsys, which, named):
    root = tmp_path / "run"
    folder = (root / which).resolve()
    with read_only(folder):
        code = _exit_code(["fit", *TINY, "--trainer.default_root_dir", str(root), "--trainer.callbacks", CHECKPOINTS])
    line = _error_paragraph(capsys)
    assert code == 2, line
    assert f"{named} '{folder}' is not writable" in line, line
    assert "summary" not in capsys.readouterr().out  # no step was trained
    assert list(root.rglob("*.ckpt")) == []


def test_a_checkpoint_folder_that_turns_read_only_stops_the_run_at_the_first_failed_save(tmp_path, capsys):
    """Lightning's save swallowed this PermissionError: rc 0, every epoch trained, the summary
    naming a checkpoint that was not there. Now the first save that fails stops the run, exit 2."""
    root = tmp_path / "run"
    folder = root / "checkpoints"
    callbacks = CHECKPOINTS[:-1] + f', {{"class_path": "faults.ReadOnlyFrom", "init_args": {{"folder": "{folder}"}}}}]'
    try:
        code = _exit_code(["fit", *TINY, "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(root),
                           "--trainer.callbacks", callbacks])
        if _can_write_in(folder):
            pytest.skip("no way to make a folder read-only here")
    finally:
        _make_writable(folder)
    line = _error_paragraph(capsys)
    assert code == 2, line
    assert re.search(rf"checkpoint '{folder}/last.ckpt' was not written \(.+\); the run stops here at epoch 1, "
                     r"step 4 so that no more training goes unsaved", line), line
    assert f"Make '{folder}' writable" in line
    # the epoch before is there, whole, and nothing else
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    assert _readable(folder / "last.ckpt") == _readable(folder / "epoch=0-step=2.ckpt") == 2


@pytest.mark.slow
def test_under_ddp_a_failed_save_stops_every_process(tmp_path):
    """Only rank 0 writes: the process it launched waits for it in the save's barrier and was left
    running, orphaned, after rank 0 exited 2. Now rank 0 stops it (the launcher's kill)."""
    import signal
    import sys
    import time

    folder = tmp_path / "run" / "checkpoints"
    callbacks = CHECKPOINTS[:-1] + f', {{"class_path": "faults.ReadOnlyFrom", "init_args": {{"folder": "{folder}"}}}}]'
    env = dict(os.environ, PYTHONPATH=str(tmp_path), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    command = [str(Path(sys.executable).with_name("tcx")), "fit", *TINY, "--trainer.max_epochs", "3",
               "--data.epoch_size", "64", "--trainer.strategy", "ddp", "--trainer.devices", "2",
               "--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(tmp_path / "run"),
               "--trainer.callbacks", callbacks]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
        time.sleep(2)
        try:
            os.killpg(proc.pid, 0)
            left = True
        except ProcessLookupError:
            left = False
    finally:
        _make_writable(folder)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if _can_write_in(folder) and "was not written" not in err:
        pytest.skip("no way to make a folder read-only here")
    assert proc.returncode == 2, err[-3000:]
    assert f"checkpoint '{folder}/last.ckpt' was not written" in err
    assert not left, "a launched process was left running"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]


class FaultyStore(MemoryFileSystem):
    """An fsspec store whose writes fail with a PermissionError (a bucket without write access)."""

    protocol = "tcxfaulty"
    store: dict = {}
    pseudo_dirs = [""]

    @classmethod
    def _strip_protocol(cls, path):  # the implementer's hook of fsspec: this store's own prefix
        return super()._strip_protocol(str(path).removeprefix("tcxfaulty://"))

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode or "a" in mode:
            raise PermissionError(errno.EACCES, "Access Denied", path)
        return super()._open(path, mode, **kwargs)


def test_a_url_save_that_lightning_swallows_is_caught_by_reading_it_back():
    fsspec.register_implementation("tcxfaulty", FaultyStore, clobber=True)
    url = "tcxfaulty://bucket/checkpoints/last.ckpt"
    TorchCheckpointIO().save_checkpoint({"global_step": 3}, url)  # Lightning's: no error, no file
    assert not safe_io.checkpoint_exists(url)
    with pytest.raises(safe_io.WriteError, match=r"checkpoint 'tcxfaulty://bucket/checkpoints/last.ckpt' was not "
                       r"written \(the file is not there after the save\); the run stops here at epoch None, step 3"):
        run_guard.DiskFullMessageIO().save_checkpoint({"global_step": 3}, url)


def test_a_checkpoint_is_read_back_by_its_zip_directory(tmp_path):
    good = tmp_path / "good.ckpt"
    torch.save({"global_step": 1, "w": torch.zeros(1000)}, good)
    assert run_guard.checkpoint_file_problem(good) is None
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "does not read back as a checkpoint" in run_guard.checkpoint_file_problem(cut)
    assert run_guard.checkpoint_file_problem(tmp_path / "none.ckpt") == "the file is not there after the save"


# --------------------------------------------------------------------------------------------
# a full disk, a real one


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs at tmp_path/disk (the tests run as root here); skipped where mounting is refused."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (test_run_safety.py injects ENOSPC instead)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _final_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.ckpt"))


def test_a_full_disk_keeps_the_previous_checkpoint_loadable_and_nothing_truncated(small_disk, capsys):
    """The fsspec transaction wrote its temporary file in /tmp and its final move across
    filesystems stopped halfway: truncated epoch=0-step=N.ckpt and last.ckpt under their names."""
    root = small_disk / "run"
    folder = root / "checkpoints"
    # the disk fills when epoch 1 starts, leaving room for less than half a checkpoint
    callbacks = CHECKPOINTS[:-1] + (f', {{"class_path": "faults.FillDiskFrom", "init_args": {{"folder": '
                                    f'"{small_disk}", "room": 2000}}}}]')
    code = _exit_code(["fit", *TINY, "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(root),
                       "--trainer.callbacks", callbacks])
    line = _error_paragraph(capsys)
    assert code == 2, line
    assert f"no space left on the disk of '{folder}': last.ckpt was not written (the previous last.ckpt is intact)" in line
    assert _final_names(root) == ["epoch=0-step=2.ckpt", "last.ckpt"]  # no temporary file, no epoch 1
    assert _readable(folder / "last.ckpt") == _readable(folder / "epoch=0-step=2.ckpt") == 2
    assert (folder / "last.ckpt").stat().st_size > 2000

    # a disk full from the start: nothing under any final name
    (small_disk / "filler").unlink()
    import faults

    faults.fill(str(small_disk / "filler"), 2000)
    root = small_disk / "second"
    code = _exit_code(["fit", *TINY, "--trainer.default_root_dir", str(root), "--trainer.callbacks", CHECKPOINTS])
    line = _error_paragraph(capsys)
    assert code == 2 and "nothing partial was left" in line, line
    assert _final_names(root) == [] and not any(p.name.startswith(".") for p in root.rglob("*"))


# --------------------------------------------------------------------------------------------
# fsspec roots: all the way, or refused


class LastingStore(MemoryFileSystem):
    """An fsspec store of its own that outlives a command within this test process (as s3:// would)."""

    protocol = "tcxstore"
    store: dict = {}
    pseudo_dirs = [""]

    @classmethod
    def _strip_protocol(cls, path):  # the implementer's hook of fsspec: this store's own prefix
        return super()._strip_protocol(str(path).removeprefix("tcxstore://"))


def test_a_url_root_takes_every_file_and_the_summary_names_them(tmp_path, capsys):
    fsspec.register_implementation("tcxstore", LastingStore, clobber=True)
    fs = fsspec.filesystem("tcxstore")
    callbacks = CHECKPOINTS[:-1] + ', {"class_path": "tcx.callbacks.Samples", "init_args": {"num_samples": 4}}]'
    main(["fit", *TINY, "--trainer.default_root_dir", "tcxstore://runs/one", "--trainer.callbacks", callbacks])
    out = capsys.readouterr().out
    files = sorted(fs.find("/runs/one"))
    assert files == ["/runs/one/checkpoints/epoch=0-step=2.ckpt", "/runs/one/checkpoints/last.ckpt",
                     "/runs/one/config.yaml", "/runs/one/media/samples_step000002.png", "/runs/one/summary.json"], files
    assert "latent_dim: 3" in fs.cat("/runs/one/config.yaml").decode()
    assert re.search(r"checkpoint\s+tcxstore://runs/one/checkpoints/last.ckpt", out), out
    assert re.search(r"pictures\s+tcxstore://runs/one/media\n", out), out
    # the model's arguments given: Lightning applies a checkpoint's hyperparameters from local files only
    main(["predict", *TINY, "--ckpt_path", "tcxstore://runs/one/checkpoints/last.ckpt",
          "--trainer.default_root_dir", "tcxstore://runs/two", "--trainer.callbacks", "[PosteriorWriter]"])
    assert "predictions written to tcxstore://runs/two/predictions.npz" in capsys.readouterr().out
    assert fs.isfile("/runs/two/predictions.npz")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tcxstore")] == []  # no local look-alike
    fs.rm("/runs", recursive=True)


def test_a_file_url_root_is_the_local_folder(tmp_path, capsys):
    root = tmp_path / "local"
    main(["fit", *TINY, "--trainer.default_root_dir", f"file://{root}", "--trainer.callbacks", CHECKPOINTS])
    assert (root / "config.yaml").is_file() and _readable(root / "checkpoints" / "last.ckpt") == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("file")] == []
    assert f"{root}/checkpoints/last.ckpt" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--trainer.default_root_dir", "--trainer.callbacks.dirpath"])
def test_a_memory_root_is_refused_from_the_shell_before_training(capsys, flag):
    args = ["fit", *TINY, "--trainer.callbacks", CHECKPOINTS, flag, "memory://tcx-gone"]
    code = _exit_code(args)
    line = _error_paragraph(capsys)
    assert code == 2, line
    assert "'memory://tcx-gone' is an in-memory folder: it and the run's checkpoints would vanish when this command ends" in line
    assert not fsspec.filesystem("memory").exists("/tcx-gone")


# --------------------------------------------------------------------------------------------
# the summary names what is there


def test_the_summary_names_only_files_that_exist(tmp_path):
    trainer = pl.Trainer(logger=False, default_root_dir=tmp_path, enable_progress_bar=False,
                         callbacks=[pl.callbacks.ModelCheckpoint(save_last=True), Samples()])
    there = tmp_path / "best.ckpt"
    torch.save({"global_step": 1}, there)
    trainer.checkpoint_callback.last_model_path = str(tmp_path / "gone.ckpt")
    trainer.checkpoint_callback.best_model_path = str(there)
    samples = next(cb for cb in trainer.callbacks if isinstance(cb, Samples))
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "traversal_step1.png").write_bytes(b"png")
    samples.files = {"media/samples": tmp_path / "media" / "samples_step1.png",
                     "media/traversal": tmp_path / "media" / "traversal_step1.png"}
    text = summary_table(trainer, VAE(latent_dim=2, network="mlp", hidden_dims=[4], input_shape=(4,)), 1.0)
    assert "gone.ckpt" not in text and re.search(rf"checkpoint\s+{there}\n", text), text
    assert re.search(r"media/traversal\s+traversal_step1.png", text) and "samples_step1" not in text, text
    samples.files = {"media/samples": tmp_path / "media" / "samples_step1.png"}
    trainer.checkpoint_callback.best_model_path = ""
    text = summary_table(trainer, VAE(latent_dim=2, network="mlp", hidden_dims=[4], input_shape=(4,)), 1.0)
    assert "checkpoint " not in text and "pictures" not in text, text


def test_a_run_folder_that_turns_read_only_keeps_the_table_and_the_last_summary_json(tmp_path, capsys):
    """RunSummary after a validate whose run folder cannot be written: the table is printed, the
    error names summary.json and what to do, and the fit's summary.json is left whole."""
    from tcx.callbacks import guard_trainer
    from tcx.datamodules import SyntheticCorEx
    from tcx.safe_io import WriteError

    dm = SyntheticCorEx(num_points=100, val_size=50, batch_size=50)
    model = VAE(latent_dim=2, input_shape=dm.input_shape, network="mlp", hidden_dims=[4], input_entropy_samples=0)
    folder = tmp_path / "run"
    trainer = pl.Trainer(max_epochs=1, limit_val_batches=1, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, default_root_dir=folder,
                         precision="32-true")
    guard_trainer(trainer)
    trainer.fit(model, datamodule=dm)
    fit = (folder / "summary.json").read_text()
    capsys.readouterr()
    with read_only(folder), pytest.raises(WriteError, match=r"summary.json.*point the run elsewhere"):
        trainer.validate(model, datamodule=dm, verbose=False)
    assert "tcx validate summary: VAE (val set)" in capsys.readouterr().out
    assert (folder / "summary.json").read_text() == fit and json.loads(fit)["command"] == "fit"
