"""Run safety: checkpoints never run code, nothing is lost on an interrupt or a full disk, W&B is
never fatal, exact resume, one-paragraph errors, data errors named as data."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from tcx import safe_io
from tcx.callbacks import run_guard
from tcx.callbacks import settle_wandb_mode
from tcx.cli import shell_errors
from tcx.errors import TcxError
from tcx.cli.traverse import traverse_main
from tcx.datamodules import load_datamodule
from tcx.cli import main
from tcx.datamodules import DSprites
from tcx.models import VAE, load_model
from tcx.models.base import DATAMODULE_CLASS_KEY

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--trainer.max_epochs", "1",
    "--trainer.max_steps", "2",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.precision", "32-true",
    "--data.batch_size", "16",
    "--data.epoch_size", "32",
    "--data.val_size", "32",
    "--model.input_entropy_samples", "0",
    "--model.network", "mlp",
    "--model.hidden_dims", "[16]",
    "--model.latent_dim", "3",
    "--model.anchors", "1",
]
NO_LOGGER = ["--trainer.logger", "false", "--trainer.callbacks", "[]"]


@pytest.fixture(autouse=True)
def _offline(offline_wandb, monkeypatch):
    monkeypatch.delenv("TCX_DEBUG", raising=False)


def _tcx() -> str:
    return str(Path(sys.executable).with_name("tcx"))


class Vectors(pl.LightningDataModule):
    """8-dimensional binary vectors, 64 points: tiny fits."""

    input_shape = (8,)

    def __init__(self, n: int = 64, batch_size: int = 16, nan: bool = False, val: bool = True):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = (torch.rand(n, 8, generator=g) > 0.5).float()
        if nan:
            self.x[n - 3, 2] = float("nan")  # not in the first batch
        self.batch_size = batch_size
        self.has_val = val

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, torch.zeros(len(self.x), 0)), batch_size=self.batch_size, shuffle=len(self.x) > 0)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x[:32], torch.zeros(32, 0)), batch_size=self.batch_size)


def tiny_vae(**kw):
    torch.manual_seed(0)
    return VAE(latent_dim=2, network="mlp", hidden_dims=[8], input_shape=(8,), input_entropy_samples=0, **kw)


def trainer_for(root, **kw):
    args = dict(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                default_root_dir=root, num_sanity_val_steps=0, precision="32-true")
    args.update(kw)
    trainer = pl.Trainer(**args)
    run_guard.guard_trainer(trainer)
    return trainer


@pytest.fixture
def genuine_ckpt(tmp_path):
    """A real checkpoint of a tiny AnchorVAE on DSprites, written by `tcx fit`'s machinery."""
    from tcx.models import AnchorVAE

    torch.manual_seed(0)
    model = AnchorVAE(latent_dim=3, anchors=1, network="mlp", hidden_dims=[8], input_shape=(1, 64, 64),
                      input_entropy_samples=0)
    trainer = trainer_for(tmp_path, max_steps=1, enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(model, DSprites(batch_size=8, epoch_size=16, val_size=16))
    path = tmp_path / "genuine.ckpt"
    trainer.save_checkpoint(path)
    return path


# --------------------------------------------------------------------------------------------
# checkpoints never run code


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_in_a_checkpoint_is_refused_not_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "tcx_model_class": "tcx.models.VAE", "payload": _Evil(str(marker))}, path)
    with pytest.raises(safe_io.CheckpointRefused, match="pickled Python objects"):
        load_model(path)
    assert not marker.exists()
    assert traverse_main(["--ckpt_path", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "pickled Python objects" in capsys.readouterr().err
    assert not marker.exists(), "the checkpoint's code ran"


def test_a_checkpoint_naming_a_foreign_class_is_refused(genuine_ckpt, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = torch.load(genuine_ckpt, weights_only=True)
    assert ckpt[DATAMODULE_CLASS_KEY] == "tcx.datamodules.dsprites.DSprites"
    ckpt[DATAMODULE_CLASS_KEY] = "subprocess.Popen"
    ckpt["datamodule_hyper_parameters"] = {"args": ["touch", str(marker)]}
    evil = tmp_path / "edited.ckpt"
    torch.save(ckpt, evil)
    with pytest.raises(safe_io.CheckpointRefused, match=r"'subprocess.Popen', which is not one of tcx's.*--trust"):
        load_datamodule(evil)
    with pytest.raises(SystemExit) as info:
        main(["traverse", "--ckpt_path", str(evil), "--out", str(tmp_path / "pics"), "--num_points", "8", "--steps", "2"])
    assert info.value.code == 0
    assert "subprocess.Popen" in capsys.readouterr().out
    time.sleep(0.2)
    assert not marker.exists(), "the checkpoint's command ran"
    # even --trust refuses a class that is not a LightningDataModule
    with pytest.raises(safe_io.CheckpointRefused, match="not a subclass of lightning.pytorch"):
        load_datamodule(evil, trust=True, checkpoint=ckpt)
    # the model family is checked the same way
    ckpt["tcx_model_class"] = "os.system"
    torch.save(ckpt, evil)
    with pytest.raises(safe_io.CheckpointRefused, match="'os.system', which is not one of tcx's"):
        load_model(evil)
    # and the genuine checkpoint still loads, its datamodule rebuilt
    assert load_model(genuine_ckpt).latent_dim == 3
    assert type(load_datamodule(genuine_ckpt)).__name__ == "DSprites"


# --------------------------------------------------------------------------------------------
# a user's errors are one paragraph, exit 2, no traceback


def _cli_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Traceback" not in err and "Namespace(" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("tcx: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.latent_dim", "0"], "latent_dim must be an integer >= 1, got 0"),
        (["--model.anchors", "[20]"], r"anchors\[0\] must be an integer in \[0, 9\], got 20"),
        (["--model.anchor_beta", "1.5"], r"anchor_beta must be a number in \[0.0, 1.0\), got 1.5"),
        (["--model.beta", "0.1"], r"anchor_beta=0.2 >= beta=0.1 is not allowed"),
        (["--data.batch_size", "0"], "batch_size must be an integer >= 1, got 0"),
        (["--model.lr", "0"], r"lr must be a number in \(0.0, inf\), got 0"),
        (["--model.network", "bogus"], "network must be one of .*got 'bogus'"),
    ],
)
def test_bad_arguments_are_one_paragraph_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    import re

    monkeypatch.chdir(tmp_path)
    line = _cli_error(capsys, ["fit", *NO_LOGGER, *args])
    assert re.search(message, line), line


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1"):
        main(["fit", *NO_LOGGER, "--model.latent_dim", "0", "--debug"])
    monkeypatch.setenv("TCX_DEBUG", "1")
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1"):
        main(["fit", *NO_LOGGER, "--model.latent_dim", "0"])


def test_a_yaml_syntax_error_names_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "broken.yaml"
    bad.write_text("trainer:\n  max_epochs: [1\n")
    line = _cli_error(capsys, ["fit", "-c", str(bad)])
    assert str(bad) in line and "not valid YAML at line 3" in line
    line = _cli_error(capsys, ["fit", "--config", str(tmp_path / "missing.yaml")])
    assert "missing.yaml" in line and "no config file" in line


def test_class_arguments_before_the_class_are_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _cli_error(capsys, ["fit", "--data.epoch_size", "100", "--data", "MNIST"])
    assert "--data.epoch_size comes before --data MNIST: put the class first" in line
    line = _cli_error(capsys, ["fit", "--model.beta=3", "--model=BetaVAE"])
    assert "--model.beta comes before --model BetaVAE" in line


def test_divergence_advice_follows_the_precision_and_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _cli_error(capsys, ["fit", *TINY, *NO_LOGGER, "--model.lr", "1e12", "--trainer.max_steps", "6"])
    assert "the loss is nan" in line and "precision ('32-true') is already full" in line
    assert "train in precision='32-true'" not in line
    # in half precision the advice is to go to full precision
    for precision, expected in (("bf16-mixed", "train in precision='32-true' (now 'bf16-mixed')"),
                                ("32-true", "clip the gradients")):
        model = tiny_vae()
        with torch.no_grad():
            model.encoder.net[-1].bias.fill_(float("nan"))
        with pytest.raises(FloatingPointError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            trainer_for(tmp_path, max_steps=1, precision=precision, enable_checkpointing=False).fit(model, Vectors())


def test_nan_in_the_data_is_blamed_on_the_data_on_any_batch(tmp_path):
    with pytest.raises(FloatingPointError, match="the data batch at global step [0-9]+ holds 1 NaN or inf values") as info:
        trainer_for(tmp_path, max_epochs=1, enable_checkpointing=False, limit_val_batches=0).fit(
            tiny_vae(), Vectors(nan=True))
    assert "learning rate" not in str(info.value)


def test_an_empty_training_loader_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="the training loader of Vectors yields no batches"):
        trainer_for(tmp_path, enable_checkpointing=False).fit(tiny_vae(), Vectors(n=0))
    assert shell_errors.describe_error(TcxError("a\n  b")) == "a b"
    assert shell_errors.describe_error(ValueError("a library's error")) is None  # keeps its traceback


# --------------------------------------------------------------------------------------------
# the README's own datamodule, verbatim; without val data every callback skips with a reason


def _readme_datamodule_source() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own datamodule"):]
    return section[section.index("```python\n") + len("```python\n"):section.index("\n```", section.index("```python"))]


def _fit_user_module(tmp_path, monkeypatch, source, capsys):
    (tmp_path / "my_module.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_module", None)
    main(["fit", "--data", "my_module.MyDataModule", "--model", "VAE", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
          "--trainer.limit_val_batches", "2", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false"])
    return capsys.readouterr()


def test_readme_datamodule_runs_as_written_with_the_default_callbacks(tmp_path, monkeypatch, capsys):
    from tcx.datamodules import check_datamodule

    source = _readme_datamodule_source()
    assert "def val_dataloader" in source
    out = _fit_user_module(tmp_path, monkeypatch, source, capsys).out
    assert "tcx fit summary: VAE (val set)" in out
    assert "estimated mutual info" in out  # InformationDiagnostics ran on the validation data
    import my_module

    assert not any("val_dataloader" in n for n in check_datamodule(my_module.MyDataModule()).notes)

    # the same without val_dataloader: every callback skips, with its reason, and the fit finishes
    lines = source.splitlines()
    cut = next(i for i, ln in enumerate(lines) if "def val_dataloader" in ln)
    with pytest.warns(RuntimeWarning, match="InformationDiagnostics found no validation data"):
        captured = _fit_user_module(tmp_path, monkeypatch, "\n".join(lines[:cut]) + "\n", capsys)
    assert "tcx fit summary: VAE (train set)" in captured.out
    assert "Traceback" not in captured.err
    import my_module

    notes = check_datamodule(my_module.MyDataModule()).notes
    assert any(n.startswith("no val_dataloader()") for n in notes), notes


# --------------------------------------------------------------------------------------------
# nothing lost on SIGINT, SIGTERM or a full disk

KILLER = '''
import os, signal
import lightning.pytorch as pl


class SignalAt(pl.Callback):
    """Sends this process (its main thread) a real signal at a given global step, or during the end-of-epoch
    evaluation (where the metrics callbacks spend minutes)."""

    def __init__(self, signum: int = 15, step: int = 2, in_eval: bool = False):
        self.signum, self.step, self.in_eval = signum, step, in_eval
        self.last_ckpt_before_eval = None

    def on_train_batch_end(self, trainer, *args):
        if not self.in_eval and trainer.global_step == self.step:
            signal.raise_signal(self.signum)

    def on_validation_epoch_end(self, trainer, *args):
        if self.in_eval and not trainer.sanity_checking:
            ckpt = trainer.checkpoint_callback
            path = os.path.join(ckpt.dirpath, "last.ckpt")
            self.last_ckpt_before_eval = os.path.exists(path)
            open(os.path.join(trainer.default_root_dir, "last-before-eval" if self.last_ckpt_before_eval else "none"), "w").close()
            # raise(): delivered to this (the main) thread, so Python's handler runs right here;
            # os.kill to the process may land on a torch or logger thread and be handled later
            signal.raise_signal(self.signum)
'''


@pytest.fixture
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    # Python's own Ctrl-C handler, as in a foreground run: a shell starts a background job
    # (`make test &`) with SIGINT ignored, and the signal these tests send would never arrive
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def _fit_with_signal(tmp_path, monkeypatch, signum, **kw):
    (tmp_path / "killer.py").write_text(KILLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    init = ", ".join(f'"{k}": {str(v).lower()}' for k, v in kw.items())
    callbacks = ('[{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": true}}, '
                 f'{{"class_path": "killer.SignalAt", "init_args": {{"signum": {int(signum)}{", " + init if init else ""}}}}}]')
    args = [a for a in TINY]
    i = args.index("--trainer.max_steps")
    args[i + 1] = "6"
    with pytest.raises(SystemExit) as info:
        main(["fit", *args, "--data.epoch_size", "96", "--trainer.logger", "false",
              "--trainer.default_root_dir", str(tmp_path), "--trainer.callbacks", callbacks])
    return info.value.code


def test_sigterm_leaves_a_resumable_checkpoint_and_exits_143(tmp_path, monkeypatch, capsys, restore_signals):
    code = _fit_with_signal(tmp_path, monkeypatch, signal.SIGTERM, step=2)
    err = capsys.readouterr().err
    assert code == 143, err
    ckpts = list(tmp_path.rglob("interrupted.ckpt"))
    assert len(ckpts) == 1, err
    assert f"resume with --ckpt_path {ckpts[0]}" in err
    assert torch.load(ckpts[0], weights_only=True)["global_step"] == 2


def test_sigint_during_the_end_of_epoch_evaluation_keeps_the_epoch_and_exits_130(tmp_path, monkeypatch, capsys, restore_signals):
    code = _fit_with_signal(tmp_path, monkeypatch, signal.SIGINT, in_eval=True)
    err = capsys.readouterr().err
    assert code == 130, err  # SIGINT's own status (Lightning itself exits 1)
    # last.ckpt was written before the evaluation started, and interrupted.ckpt on the interrupt
    assert (tmp_path / "last-before-eval").exists()
    ckpts = list(tmp_path.rglob("interrupted.ckpt"))
    assert len(ckpts) == 1, err
    assert torch.load(ckpts[0], weights_only=True)["global_step"] == 6  # the whole epoch
    assert "stopped by SIGINT" in err


def test_torchs_zip_writer_failing_on_a_full_disk_is_the_same_one_line(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError ("file write failed"), not an OSError:
    the checkpoint writer and the atomic writer both recognise it (one detector, tcx/safe_io.py)."""
    def zip_writer_fails(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing "
                           "file data/0: file write failed")

    monkeypatch.setattr(torch, "save", zip_writer_fails)
    target = tmp_path / "last.ckpt"
    with pytest.raises(safe_io.DiskFullError, match="last.ckpt was not written .nothing partial was left.; "
                       "free space there or point the checkpoints elsewhere"):
        run_guard.DiskFullMessageIO().save_checkpoint({"a": 1}, str(target))
    with pytest.raises(safe_io.DiskFullError, match="last.ckpt was not written .nothing partial was left.; "
                       "free space there or write elsewhere"):
        safe_io.atomic_save(lambda f: torch.save({"a": 1}, f), target, advice="write elsewhere")
    assert list(tmp_path.iterdir()) == []
    assert not safe_io.is_disk_full(RuntimeError("some other failure"))


def test_checkpoints_are_atomic_and_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    target = tmp_path / "ck" / "last.ckpt"
    safe_io.atomic_save(lambda f: f.write(b"old"), target, advice="write elsewhere")

    def full_disk(obj, f, *a, **k):
        f.write(b"partial" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    # Lightning's CheckpointIO (through tcx's one-line message): the old file intact, nothing partial
    with pytest.raises(safe_io.DiskFullError, match="no space left on the disk of .*last.ckpt was not written"):
        run_guard.DiskFullMessageIO().save_checkpoint({"a": 1}, str(target))
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"], "a partial file was left"

    # through `tcx fit`: one line, exit 2, no partial checkpoint under any name
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    line = _cli_error(capsys, ["fit", *TINY, "--trainer.logger", "false", "--trainer.default_root_dir", str(run),
                               "--trainer.callbacks", '[{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint"}]'])
    assert "no space left on the disk of" in line and ".ckpt was not written" in line
    assert [p for p in run.rglob("*") if p.is_file() and "ckpt" in p.name] == []


# --------------------------------------------------------------------------------------------
# exact resume; W&B never fatal, resume continues the run


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_one_epoch_and_a_resumed_one_equal_two_epochs_bit_for_bit(tmp_path):
    def trainer(root, epochs):
        return trainer_for(root, max_epochs=epochs, limit_val_batches=1,
                           callbacks=[ModelCheckpoint(dirpath=root / "ck", save_last=True)])

    pl.seed_everything(0)
    whole = tiny_vae()
    trainer(tmp_path / "a", 2).fit(whole, Vectors())

    pl.seed_everything(0)
    first = tiny_vae()
    trainer(tmp_path / "b", 1).fit(first, Vectors())
    ckpt = tmp_path / "b" / "ck" / "last.ckpt"
    assert run_guard.RNG_KEY in torch.load(ckpt, weights_only=True)
    pl.seed_everything(123)  # whatever the state of the new process, the checkpoint's RNG wins
    resumed = tiny_vae()
    trainer(tmp_path / "c", 2).fit(resumed, Vectors(), ckpt_path=ckpt)
    a, b = _params(whole), _params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_unreachable_wandb_server_goes_offline_with_a_notice(capsys):
    env = {"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9"}  # a closed loopback port
    start = time.perf_counter()
    assert settle_wandb_mode(env, timeout=2.0) == "offline"
    assert time.perf_counter() - start < 3.0
    assert env["WANDB_MODE"] == "offline"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not reachable" in err[0] and "wandb sync" in err[0]
    assert settle_wandb_mode({"WANDB_MODE": "offline"}) == "offline"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("url", ["http://[::1", "http://host:99999", "http://h:port", "not a url"])
def test_a_malformed_wandb_server_url_goes_offline_with_a_notice(url, capsys):
    env = {"WANDB_MODE": "online", "WANDB_BASE_URL": url}
    assert settle_wandb_mode(env, timeout=2.0) == "offline" and env["WANDB_MODE"] == "offline"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"W&B server {url!r} is not a server URL (WANDB_BASE_URL)" in err[0], err


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan"])
def test_a_bad_wandb_init_timeout_is_one_line_before_any_run_starts(value, tmp_path, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger

    from tcx.callbacks import start_wandb_runs

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", value)
    trainer = pl.Trainer(logger=WandbLogger(save_dir=str(tmp_path), project="p"), enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(TcxError, match=rf"WANDB_INIT_TIMEOUT='{value}' is not a number of seconds > 0"):
        start_wandb_runs(trainer)
    assert not list(tmp_path.rglob("offline-run-*"))


def test_guard_trainer_starts_a_python_runs_wandb_offline_when_the_server_does_not_answer(tmp_path, monkeypatch,
                                                                                          capsys):
    # the same bound as the tcx command's, for a Trainer built in Python
    from lightning.pytorch.loggers import WandbLogger

    for key, value in {"WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9",
                       "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    trainer = pl.Trainer(logger=WandbLogger(save_dir=str(tmp_path), project="p"), enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    start = time.perf_counter()
    run_guard.guard_trainer(trainer)
    try:
        assert time.perf_counter() - start < 20 and os.environ["WANDB_MODE"] == "offline"
        assert trainer.logger.experiment.settings.mode in ("offline", "dryrun")  # W&B's two names for it
        assert "not reachable within 5 s" in capsys.readouterr().err
    finally:
        import wandb

        wandb.finish()


def test_unwritable_logger_folder_is_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    save_dir = blocker / "runs"
    line = _cli_error(capsys, ["fit", *TINY, "--trainer.callbacks", "[]",
                               "--trainer.logger.init_args.save_dir", str(save_dir)])
    assert f"save_dir (--trainer.logger.init_args.save_dir) '{save_dir}' lies under '{blocker}', which is a file" in line
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_a_fit_with_online_wandb_unreachable_runs_offline_and_resume_continues_the_run(tmp_path):
    """Through the console script: WANDB_MODE=online with an unreachable server (a closed loopback
    port) runs offline; resuming from its checkpoint logs to the same W&B run id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), WANDB_SILENT="true", WANDB_MODE="online", WANDB_API_KEY="x" * 40,
               WANDB_BASE_URL="http://127.0.0.1:9", OMP_NUM_THREADS="1")
    cbs = '[{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": true}}]'
    cmd = [_tcx(), "fit", *TINY, "--trainer.callbacks", cbs]
    first = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "not reachable" in first.stderr and "W&B run (offline)" in first.stdout
    ckpt = next(tmp_path.glob("runs/tcx/*/checkpoints/last.ckpt"))
    run_id = torch.load(ckpt, weights_only=True)[run_guard.WANDB_ID_KEY]
    cmd = [_tcx(), "fit", *TINY, "--trainer.callbacks", cbs, "--trainer.max_steps", "4", "--ckpt_path", str(ckpt)]
    second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    runs = sorted(p.name for p in tmp_path.glob("runs/wandb/offline-run-*"))
    assert len(runs) == 2 and all(r.endswith(f"-{run_id}") for r in runs), runs


# --------------------------------------------------------------------------------------------
# DDP gives the one-process metrics


@pytest.mark.slow
def test_two_process_ddp_metrics_equal_one_process_on_the_same_checkpoint(tmp_path):
    """A real 2-process CPU (gloo) fit logs every metrics/* and diagnostics/* value; the same
    checkpoint in one process gives the same values (tests/ddp_equal_metrics.py)."""
    import json

    script = str(ROOT / "tests" / "ddp_equal_metrics.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    for mode in ("fit", "one"):
        proc = subprocess.run([sys.executable, script, mode, str(tmp_path)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=540)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    one = json.loads((tmp_path / "one.json").read_text())
    assert sorted(ddp) == sorted(one)
    assert any(k.startswith("diagnostics/") for k in ddp) and "metrics/dci_disentanglement" in ddp
    for key in sorted(ddp):
        print(f"{key:48s} ddp {ddp[key]: .6f}   one process {one[key]: .6f}")
        assert ddp[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), key


def test_an_interrupted_end_of_fit_evaluation_is_redone_on_resume(tmp_path, monkeypatch, capsys, restore_signals):
    _fit_with_signal(tmp_path, monkeypatch, signal.SIGINT, in_eval=True)
    (last,) = tmp_path.rglob("last.ckpt")
    capsys.readouterr()
    args = [a for a in TINY]
    args[args.index("--trainer.max_steps") + 1] = "6"
    main(["fit", "--ckpt_path", str(last), *args, "--trainer.logger", "false", "--trainer.callbacks", "[]",
          "--trainer.default_root_dir", str(tmp_path / "resumed")])
    out = capsys.readouterr().out
    summary = out[out.index("tcx fit summary"):]
    elbo = next(line for line in summary.splitlines() if line.startswith("ELBO"))
    assert "(val set)" in summary and "nats" in elbo and "n/a" not in elbo, summary


def test_the_checkpoint_before_the_evaluation_is_overwritten_after_it(tmp_path, monkeypatch):
    """RunGuard's last.ckpt before each evaluation is the ModelCheckpoint's own: after two epochs
    there is one last.ckpt, of the last step, and no last-v1.ckpt beside it."""
    monkeypatch.chdir(tmp_path)
    args = [a for a in TINY]
    args[args.index("--trainer.max_epochs") + 1], args[args.index("--trainer.max_steps") + 1] = "2", "-1"
    callbacks = '[{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": true}}]'
    main(["fit", *args, "--data.epoch_size", "64", "--trainer.logger", "false",
          "--trainer.default_root_dir", str(tmp_path), "--trainer.callbacks", callbacks])
    names = sorted(p.name for p in tmp_path.rglob("last*.ckpt"))
    assert names == ["last.ckpt"], names
    last = next(tmp_path.rglob("last.ckpt"))
    assert torch.load(last, weights_only=True)["epoch"] == 1


def test_a_checkpoint_path_that_is_no_file_is_said_the_same_way_everywhere(tmp_path, capsys):
    """load_model, the commands and tcx traverse share one check: a folder, a missing file."""
    from tcx.errors import MissingFileError

    with pytest.raises(TcxError, match=r"checkpoint '.*' is a directory; give the path of a .ckpt file inside"):
        load_model(tmp_path)
    with pytest.raises(MissingFileError, match=r"checkpoint 'memory://none.ckpt' does not exist; give the URL"):
        load_model("memory://none.ckpt")
    with pytest.raises(SystemExit) as info:
        main(["validate", "--ckpt_path", str(tmp_path)])
    assert info.value.code == 2 and f"--ckpt_path '{tmp_path}' is a directory" in capsys.readouterr().err
    assert traverse_main(["--ckpt_path", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert f"--ckpt_path '{tmp_path}' is a directory" in capsys.readouterr().err


def test_a_folder_that_is_a_file_or_lies_under_one_is_refused_naming_the_file(tmp_path):
    # the one check of a folder a run writes to, for the tcx command and a Trainer built in Python
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder\n")
    with pytest.raises(TcxError, match=r"the checkpoint folder '.*afile' is a file; give a folder"):
        run_guard.check_writable(blocker, "the checkpoint folder")
    with pytest.raises(TcxError, match=r"'.*afile/a/b' lies under '.*afile', which is a file"):
        run_guard.check_writable(blocker / "a" / "b", "the checkpoint folder")
    run_guard.check_writable(tmp_path / "new" / "folder", "the checkpoint folder")  # created, and writable
    assert (tmp_path / "new" / "folder").is_dir() and not list((tmp_path / "new" / "folder").iterdir())



def test_a_folder_under_one_that_cannot_be_looked_into_is_refused_in_one_line(tmp_path, monkeypatch):
    # as a user other than root meets it: stat of a path under a folder without search permission
    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", denied)
    with pytest.raises(TcxError, match=r"the run's folder '.*/locked/run' is not writable \(Permission denied\)"):
        run_guard.check_writable(tmp_path / "locked" / "run", "the run's folder")
