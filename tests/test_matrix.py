"""Every shipped config through every command, in one process and under 2-process CPU DDP.

Rows: the default experiment, each ``configs/*.yaml`` (file-backed data on small files in the
official formats, tests/fakes.py; full MNIST also on the real files where they exist), and a
user's datamodule with labels and one with images only. Columns: fit, validate, test, predict,
resume (fit --ckpt_path last.ckpt with one more epoch) and ``tcx traverse`` of the fit's own
checkpoint without --trust, each for the one-process fit and the DDP fit. One process runs
in-process (``tcx.cli.main``); DDP runs the ``tcx`` console script. Each cell checks values: the
files the output names exist and load, the step count, shapes, and under DDP every metrics/* and
diagnostics/* value against one process on the same checkpoint. ``make test`` runs the cells
marked fast (embedded MNIST, the first case issue 26 names); the rest are ``slow``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fakes import write_celeba, write_dsprites_npz, write_mnist, write_shapes3d
from tcx.cli import main

ROOT = Path(__file__).resolve().parents[1]
USER_DIR = Path(__file__).resolve().parent / "user_datamodule_example"
TCX = Path(sys.executable).with_name("tcx")
REAL_MNIST = ROOT / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"

TRAINER = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.precision", "32-true",
           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
DDP = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
DSPRITES = ["--data.batch_size", "8", "--data.epoch_size", "16", "--data.val_size", "24"]
USER = ["--data.num_points", "64", "--data.batch_size", "8"]

# every callback of the shipped configs at the smallest sizes that still exercise it; the metric
# sample (60) is larger than the labelled validation splits, as in the MNIST-under-DDP crash
SMALL = {
    "tcx.callbacks.InformationDiagnostics": dict(num_points=32, num_scored=16),
    "tcx.callbacks.LatentTraversal": dict(num_points=32, steps=3, num_inputs=1),
    "tcx.callbacks.Reconstructions": dict(num_images=4),
    "tcx.callbacks.Samples": dict(num_samples=8, num_held=2, num_resampled=4, num_points=32, density_components=2),
    "tcx.callbacks.DisentanglementMetrics": dict(num_samples=60, batch_size=16, intervention_train=8,
                                                 intervention_eval=4, intervention_variance=64, intervention_batch=4),
    "tcx.callbacks.QualityMetrics": dict(every_n_epochs=1, num_points=16, num_fit=32, num_samples=16,
                                         density_components=2, iwae_k=2, iwae_points=4, classifier_epochs=1,
                                         classifier_train=64),
}


@dataclass
class Row:
    """One experiment: its command-line arguments (``{files}``: the folder of the fake files),
    the predict split's size, the labels' shape per point, and what the data allow."""

    args: list
    predict: int
    y: tuple | None  # () for a class label, (K,) for factors, None for no labels
    labels: bool = True  # the code metrics against labels (MIG, DCI, ...)
    user: bool = False  # a user's module: named again after fit (--data), traverse refuses it without --trust
    needs: Path | None = None  # a real file without which the row is skipped
    extra: dict = field(default_factory=dict)


def _config(name: str, *args: str) -> list:
    return ["-c", str(ROOT / "configs" / f"{name}.yaml"), *args]


ROWS = {
    "default": Row([*DSPRITES], 24, (6,)),
    **{name: Row(_config(name, *DSPRITES), 24, (6,)) for name in (
        "anchorvae_dsprites", "annealedvae_dsprites", "betatcvae_dsprites", "betavae_dsprites",
        "dipvae1_dsprites", "dipvae2_dsprites", "factorvae_dsprites", "hierarchicalvae_dsprites",
        "vae_dsprites")},
    # the embedded holdout of 45 is halved: 23 validation points, fewer than the metric sample
    **{name: Row(_config(name, "--data.val_size", "45", "--data.batch_size", "8", "--data.epoch_size", "16"), 45, ())
       for name in ("anchorvae_mnist", "vae_mnist")},
    "anchorvae_mnist_full": Row(_config("anchorvae_mnist_full", "--data.root", "{files}", "--data.val_size", "21",
                                        "--data.batch_size", "8", "--data.epoch_size", "16", "--data.num_workers",
                                        "0"), 21, ()),
    "anchorvae_mnist_full_real": Row(_config("anchorvae_mnist_full", "--data.root", str(ROOT / "data"),
                                             "--data.val_size", "21", "--data.batch_size", "8", "--data.epoch_size",
                                             "16", "--data.num_workers", "0"), 21, (), needs=REAL_MNIST),
    "vae_synthetic": Row(_config("vae_synthetic", "--data.num_points", "300", "--data.val_size", "40",
                                 "--data.batch_size", "8", "--data.epoch_size", "16"), 40, (5,)),
    "betavae_dsprites_file": Row(_config("betavae_dsprites_file", "--data.path", "{files}/dsprites.npz",
                                         "--data.val_size", "10", "--data.batch_size", "8", "--data.epoch_size", "16"),
                                 10, (6,)),
    "betavae_shapes3d": Row(_config("betavae_shapes3d", "--data.path", "{files}/3dshapes.h5", "--data.val_size", "10",
                                    "--data.batch_size", "8", "--data.epoch_size", "16", "--data.num_workers", "0"),
                            10, (6,)),
    "anchorvae_celeba": Row(_config("anchorvae_celeba", "--data.root", "{files}", "--data.verify_md5", "false",
                                    "--data.num_workers", "0", "--data.batch_size", "8"), 60, (40,)),
    "user_labelled": Row(["--data", "my_module.LabelledDataModule", *USER], 16, (), user=True),
    "user_images": Row(["--data", "my_module.ImageDataModule", *USER], 16, None, labels=False, user=True),
}
COMMANDS = ("fit", "validate", "test", "predict", "resume", "traverse")
# the fast suite's slice: embedded MNIST under DDP (the crash issue 26 names first) and the
# traverse of that fit's own checkpoint (the refusal it names second)
FAST = {("anchorvae_mnist", "ddp", "fit"), ("anchorvae_mnist", "ddp", "traverse")}


# Under DDP every row fits and is traversed; validate, test and predict run for each datamodule
# (and the hierarchical VAE, which syncs its own validation diagnostics), resume for those and the
# families with their own training state (FactorVAE's two optimizers, AnnealedVAE's schedule).
# The other families on dSprites share those cells' code path with the "default" row, and the
# whole slow matrix stays within CI's budget (tests/test_matrix.py timings in the note).
DDP_EVAL = {"default", "hierarchicalvae_dsprites", "anchorvae_mnist", "anchorvae_mnist_full",
            "anchorvae_mnist_full_real", "vae_synthetic", "betavae_dsprites_file", "betavae_shapes3d",
            "anchorvae_celeba", "user_labelled", "user_images"}
DDP_RESUME = DDP_EVAL | {"factorvae_dsprites", "annealedvae_dsprites"}


def _cells():
    for row in ROWS:
        for strategy in ("one", "ddp"):
            for command in COMMANDS:
                marks = [] if (row, strategy, command) in FAST else [pytest.mark.slow]
                if strategy == "ddp" and (command in ("validate", "test", "predict") and row not in DDP_EVAL
                                          or command == "resume" and row not in DDP_RESUME):
                    marks.append(pytest.mark.skip(reason=f"DDP {command} of another family on dSprites: the same "
                                                  "data and callbacks as the 'default' row's cell"))
                yield pytest.param(row, strategy, command, id=f"{row}-{strategy}-{command}", marks=marks)


# ------------------------------------------------------------------------------------ running
@dataclass
class Run:
    code: int
    out: str
    err: str
    failures: list = field(default_factory=list)  # what a callback reported failed while the run went on


# tcx.callbacks.media_logging.report: a picture or log that failed while the run went on
FAILED = re.compile(r"tcx: .*(?:failed at step|could not (?:write|render|log|prepare|get)).*")


def _env() -> dict:
    path = os.pathsep.join([str(USER_DIR), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", WANDB_MODE="offline")


def _run(argv: list, ddp: bool, cwd: Path) -> Run:
    """``tcx ARGV``: the console script in a subprocess under DDP (Lightning starts the second
    process by running the same command), ``tcx.cli.main`` in this process otherwise."""
    cwd.mkdir(parents=True, exist_ok=True)
    if ddp:
        proc = subprocess.run([str(TCX), *argv], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
        return Run(proc.returncode, proc.stdout, proc.stderr, FAILED.findall(proc.stderr))
    out, err, code = io.StringIO(), io.StringIO(), 0
    here, threads = os.getcwd(), torch.get_num_threads()
    sys.path.insert(0, str(USER_DIR))
    os.chdir(cwd)
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", RuntimeWarning)
            main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(here)
        sys.path.remove(str(USER_DIR))
        sys.modules.pop("my_module", None)
        torch.set_num_threads(threads)
    failures = [m for w in seen for m in FAILED.findall(str(w.message))]
    return Run(code, out.getvalue(), err.getvalue(), failures)


def _ok(run: Run, what: str) -> str:
    assert run.code == 0, f"{what} exited {run.code}\n{run.out[-2000:]}\n{run.err[-4000:]}"
    assert not run.failures, f"{what}: {run.failures}"
    return run.out


def _callbacks_yaml(config: list, path: Path, cache: Path, only: tuple = ()) -> Path:
    """The row's own callbacks (its config's, else the default's), at the sizes of ``SMALL``;
    ``only``: just the classes named."""
    source = ROOT / "tcx" / "default_config.yaml"
    if config and config[0] == "-c":
        own = yaml.safe_load(Path(config[1]).read_text())
        if "callbacks" in own.get("trainer", {}):
            source = Path(config[1])
    callbacks = yaml.safe_load(source.read_text())["trainer"]["callbacks"]
    if only:
        callbacks = [cb for cb in callbacks if cb["class_path"].rsplit(".", 1)[-1] in only]
    for cb in callbacks:
        small = dict(SMALL.get(cb["class_path"], {}))
        if cb["class_path"].endswith("QualityMetrics"):
            small["cache_dir"] = str(cache)
        if small:
            cb["init_args"] = {**(cb.get("init_args") or {}), **small}
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
    return path


def _logger(folder: Path) -> list:
    return ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(folder)]


def _csv_metrics(folder: Path) -> dict:
    """The last value of every column of the CSV logger's metrics.csv under ``folder``."""
    (path,) = folder.rglob("metrics.csv")
    values: dict = {}
    with open(path) as f:
        for line in csv.DictReader(f):
            values.update({k: float(v) for k, v in line.items() if v not in ("", None)})
    return values


def _named(values: dict) -> dict:
    return {k: v for k, v in values.items() if k.startswith(("metrics/", "diagnostics/")) and k != "metrics/seconds"}


def _summary_path(out: str, label: str) -> Path:
    match = re.search(rf"^{label}\s+(\S+)$", out, re.M)
    assert match, f"the summary names no {label}:\n{out[-2000:]}"
    return Path(match.group(1))


def _load(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------ the fits
@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """The work folder, the fake files, and each row's fit per strategy, made once on demand."""
    base = tmp_path_factory.mktemp("matrix")
    files = base / "files"
    files.mkdir()
    write_dsprites_npz(files / "dsprites.npz")
    write_shapes3d(files / "3dshapes.h5")
    # 24 training, 60 validation and 10 test images in CelebA's layout (a third of the metric
    # sample is its test split: 20 points, so that no random attribute is constant there)
    write_celeba(files, rows=[(f"{i + 1:06d}.jpg", 0 if i < 24 else 1 if i < 84 else 2) for i in range(94)])
    write_mnist(files, n_train=60, n_test=20)
    return {"base": base, "files": files, "fits": {}}


@dataclass
class Fit:
    """A row's fit. The commands after it get ``--ckpt_path`` (the model and data are rebuilt from
    the checkpoint, as a user runs them) and the row's small callbacks; the comparisons with one
    process only the two scoring callbacks (``scores``)."""

    row: Row
    callbacks: list
    folder: Path
    scores: list
    run: Run | None = None
    ckpt: Path | None = None

    @property
    def again(self) -> list:
        """What a command after fit gives besides ``--ckpt_path``: the small callbacks, and for a
        user's module the module itself (tcx imports a recorded class only when named)."""
        return [*(self.row.args if self.row.user else []), *self.callbacks]

    def has(self, callback: str) -> bool:
        return f"tcx.callbacks.{callback}" in Path(self.callbacks[1]).read_text()


def _fit(matrix, name: str, strategy: str) -> Fit:
    key = (name, strategy)
    if key in matrix["fits"]:
        fit = matrix["fits"][key]
        if fit.ckpt is None:
            pytest.fail(f"the {strategy} fit of {name} failed (see its fit cell)")
        return fit
    row = ROWS[name]
    if row.needs is not None and not row.needs.exists():
        pytest.skip(f"needs {row.needs} (`make mnist` downloads the full MNIST); the same config runs on small "
                    "files in the official format in the anchorvae_mnist_full row")
    folder = matrix["base"] / f"{name}-{strategy}"
    args = [a.replace("{files}", str(matrix["files"])) for a in row.args]
    cbs = _callbacks_yaml(args, folder.with_suffix(".callbacks.yaml"), matrix["base"] / "classifiers")
    scores = _callbacks_yaml(args, folder.with_suffix(".scores.yaml"), matrix["base"] / "classifiers",
                             only=("DisentanglementMetrics", "InformationDiagnostics"))
    fit = matrix["fits"][key] = Fit(row, ["-c", str(cbs)], folder, ["-c", str(scores)])
    fit.run = _run(["fit", *args, "--model.input_entropy_samples", "64", *fit.callbacks, *TRAINER, *(DDP if strategy == "ddp" else []), *_logger(folder / "fit")],
                   strategy == "ddp", folder)
    _ok(fit.run, f"tcx fit ({name}, {strategy})")
    fit.ckpt = _summary_path(fit.run.out, "checkpoint")
    return fit


def _one_process_validate(matrix, fit: Fit, tag: str) -> dict:
    """Every metrics/* and diagnostics/* value of ``tcx validate`` of the fit's checkpoint, in one process."""
    folder = fit.folder / f"one-{tag}"
    user = fit.row.args if fit.row.user else []
    _ok(_run(["validate", "--ckpt_path", str(fit.ckpt), *user, *fit.scores, *TRAINER, *_logger(folder)], False, folder),
        "one-process validate")
    return _named(_csv_metrics(folder))


# HierarchicalVAE's per-layer I(X;Z^l) is the mean of an estimate on each validation batch, and
# under DDP each process's batches are other points (a shard): its value depends on the batches.
PER_BATCH = re.compile(r"diagnostics/layer\d+/mutual_info")


def _same(ddp: dict, one: dict, keys) -> None:
    keys = [k for k in keys if not PER_BATCH.fullmatch(k)]
    assert keys, "nothing to compare"
    for key in sorted(keys):
        assert ddp[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), (key, ddp[key], one[key])


# ------------------------------------------------------------------------------------ the cells
@pytest.mark.parametrize("name, strategy, command", list(_cells()))
def test_cell(matrix, name, strategy, command):
    fit = _fit(matrix, name, strategy)
    ddp = strategy == "ddp"
    CHECKS[command](matrix, fit, ddp)


def _check_fit(matrix, fit: Fit, ddp: bool) -> None:
    out, row = fit.run.out, fit.row
    assert "tcx fit summary" in out
    ckpt = _load(fit.ckpt)
    steps = ckpt["global_step"]
    assert steps >= 1 and ckpt["epoch"] == 0
    assert re.search(rf"^epochs / steps\s+1 / {steps}$", out, re.M), out[-1500:]
    config = yaml.safe_load((fit.ckpt.parent.parent / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 1
    # every picture the summary names is in the media folder it names, and opens
    media = _summary_path(out, "pictures")
    named = re.findall(r"^  (?:media|diagnostics)/\S+\s+(\S+\.(?:png|gif))$", out, re.M)
    assert named, out[-1500:]
    for file in named:
        with Image.open(media / file) as img:
            img.load()
    values = _csv_metrics(fit.folder / "fit")
    assert math.isfinite(values["val/elbo"]) and "diagnostics/mutual_info" in values
    if fit.has("DisentanglementMetrics"):  # MIG where the data have labels, else the unsupervised scores
        assert ("metrics/mig" in values) == row.labels
        assert row.labels or "metrics/gaussian_total_correlation" in values
    if fit.has("QualityMetrics"):
        assert values["quality/iwae"] >= values["quality/elbo"] - 1e-3
    values = _named(values)
    assert all(math.isfinite(v) for v in values.values())
    if ddp:  # the end-of-fit values of the DDP run against one process on its own last.ckpt
        one = _one_process_validate(matrix, fit, "fit")
        _same(values, one, set(one) & set(values))


def _check_validate(matrix, fit: Fit, ddp: bool) -> None:
    folder = fit.folder / "validate"
    out = _ok(_run(["validate", "--ckpt_path", str(fit.ckpt), *fit.again, *TRAINER, *(DDP if ddp else []),
                    *_logger(folder)], ddp, folder), "tcx validate")
    assert "tcx validate summary" in out and "(val set)" in out
    elbo = float(re.search(r"^ELBO\s+(\S+) nats$", out, re.M).group(1))
    assert math.isfinite(elbo) and elbo < 0
    values = _named(_csv_metrics(folder))
    assert "diagnostics/total_correlation" in values
    assert ("metrics/mig" in values) == (fit.row.labels and fit.has("DisentanglementMetrics"))
    if ddp:
        one = _one_process_validate(matrix, fit, "validate")
        assert set(values) == set(one)
        _same(values, one, one)


def _check_test(matrix, fit: Fit, ddp: bool) -> None:
    folder = fit.folder / "test"
    out = _ok(_run(["test", "--ckpt_path", str(fit.ckpt), *fit.again, *TRAINER, *(DDP if ddp else []),
                    *_logger(folder)], ddp, folder), "tcx test")
    assert "tcx test summary" in out and "(test set)" in out
    elbo = float(re.search(r"^ELBO\s+(\S+) nats$", out, re.M).group(1))
    assert math.isfinite(elbo) and elbo < 0
    values = _csv_metrics(folder)
    assert math.isfinite(values["test/elbo"])
    if fit.has("QualityMetrics"):
        assert math.isfinite(values["quality/iwae"]) and values["quality/iwae"] >= values["quality/elbo"] - 1e-3


def _predictions(out: str) -> dict:
    paths = re.findall(r"predictions written to (\S+) \(", out)
    assert paths, out[-2000:]
    arrays = [dict(np.load(p)) for p in paths]
    if len(arrays) == 1:
        return arrays[0]
    # one file per rank under DDP, with each point's index in the predict split
    index = np.concatenate([a["index"] for a in arrays])
    merged = {k: np.concatenate([a[k] for a in arrays]) for k in arrays[0] if k != "index"}
    first = np.unique(index, return_index=True)[1]  # the sampler repeats points to even the ranks
    order = index[first].argsort()
    assert np.array_equal(index[first][order], np.arange(len(first)))
    return {k: v[first][order] for k, v in merged.items()}


def _check_predict(matrix, fit: Fit, ddp: bool) -> None:
    folder = fit.folder / "predict"
    out = _ok(_run(["predict", "--ckpt_path", str(fit.ckpt), *fit.again, *TRAINER, *(DDP if ddp else []),
                    *_logger(folder)], ddp, folder), "tcx predict")
    got = _predictions(out)
    latent = _load(fit.ckpt)["hyper_parameters"]
    dim = latent.get("layer_sizes", [None])[-1] if latent.get("layer_sizes") else latent["latent_dim"]
    n, row = fit.row.predict, fit.row
    assert got["mean"].shape == got["log_var"].shape == (n, dim), {k: v.shape for k, v in got.items()}
    assert np.isfinite(got["mean"]).all() and np.isfinite(got["log_var"]).all()
    if row.y is None:
        assert "y" not in got
    else:
        assert got["y"].shape == (n, *row.y) and got["y"].min() >= 0
    if ddp:  # the same points' posteriors as one process
        one_dir = fit.folder / "predict-one"
        one = _predictions(_ok(_run(["predict", "--ckpt_path", str(fit.ckpt), *fit.again, *TRAINER,
                                     *_logger(one_dir)], False, one_dir), "one-process predict"))
        assert set(one) == set(got)
        for key in one:
            np.testing.assert_allclose(got[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


def _check_resume(matrix, fit: Fit, ddp: bool) -> None:
    folder = fit.folder / "resume"
    before = _load(fit.ckpt)
    trainer = [a if a != "1" or TRAINER[i - 1] != "--trainer.max_epochs" else "2" for i, a in enumerate(TRAINER)]
    out = _ok(_run(["fit", "--ckpt_path", str(fit.ckpt), *fit.again, *trainer, *(DDP if ddp else []),
                    *_logger(folder)], ddp, folder), "tcx fit --ckpt_path (resume)")
    after = _load(_summary_path(out, "checkpoint"))
    # one more epoch of the same number of batches: the step count continues from the checkpoint's
    assert after["epoch"] == 1 and after["global_step"] == 2 * before["global_step"]
    assert re.search(rf"^epochs / steps\s+2 / {after['global_step']}$", out, re.M), out[-1500:]
    moved = [k for k in before["state_dict"] if not torch.equal(before["state_dict"][k], after["state_dict"][k])]
    assert moved, "resuming trained nothing"


def _check_traverse(matrix, fit: Fit, ddp: bool) -> None:
    folder = fit.folder / "traverse"
    run = _run(["traverse", "--ckpt_path", str(fit.ckpt), "--out", str(folder / "pictures"), "--steps", "3",
                "--num_points", "32"], False, folder)
    out = _ok(run, "tcx traverse")
    names = {p.name for p in (folder / "pictures").iterdir()}
    assert f"wrote {len(names)} files" in out
    for name in names:
        if name.endswith((".png", ".gif")):
            with Image.open(folder / "pictures" / name) as img:
                img.load()
    assert {"traversal.png", "samples.png"} <= names
    if fit.row.user:  # a user's class is not built from a file without --trust; the line says how
        assert "no data" in out and "--trust" in out + run.err, out
        return
    assert "no data" not in out, out
    assert {"reconstructions.png", "information.png", "latent_table.csv"} <= names, names
    if fit.row.y is not None:
        assert "mi_matrix.png" in names


CHECKS = {"fit": _check_fit, "validate": _check_validate, "test": _check_test, "predict": _check_predict,
          "resume": _check_resume, "traverse": _check_traverse}


# ------------------------------------------------------------------ the same through the Python API
@pytest.mark.slow
@pytest.mark.parametrize("data", ["mnist", "synthetic", "labelled", "images"])
def test_two_process_ddp_metrics_equal_one_process(tmp_path, data):
    """A plain Lightning Trainer, 2 CPU processes (tests/ddp_equal_metrics.py, dSprites in
    tests/test_run_safety.py): every metrics/* and diagnostics/* value, the intervention scores
    included where the data render, equals one process on the same checkpoint, for labels without
    a renderer (embedded MNIST, a user's int64 labels), images only and the synthetic ground truth;
    each validation set is smaller than the metric sample (the MNIST-under-DDP crash)."""
    import json

    script = str(ROOT / "tests" / "ddp_equal_metrics.py")
    for mode in ("fit", "one"):
        proc = subprocess.run([sys.executable, script, mode, str(tmp_path), data], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    one = json.loads((tmp_path / "one.json").read_text())
    assert sorted(ddp) == sorted(one) and "diagnostics/mutual_info" in ddp
    assert ("metrics/mig" in ddp) == (data != "images") and "metrics/gaussian_total_correlation" in ddp
    assert ("metrics/factor_vae_eval_accuracy" in ddp) == (data == "synthetic")
    for key in sorted(ddp):
        assert ddp[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), key
