"""The picture and diagnostics callbacks, their loggers, and `tcx traverse`."""

import io
import json
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from PIL import Image, ImageSequence

from tcx import visualize as viz
from tcx.callbacks import InformationDiagnostics, LatentTraversal, Reconstructions, Samples, media_files
from tcx.callbacks.encoding import Encoded
from tcx.callbacks.media import MediaCallback
from tcx.callbacks.pictures import sample_media, traversal_media
from tcx.cli.traverse import traverse_main
from tcx.datamodules import DSprites
from tcx.distributions import DiagonalGaussian
from tcx.models import AnchorVAE, BetaVAE, VAE


pytestmark = pytest.mark.usefixtures("offline_wandb")


def tiny_model(cls=AnchorVAE, **kwargs):
    torch.manual_seed(0)
    return cls(latent_dim=4, network="mlp", input_shape=(1, 64, 64), hidden_dims=[32], input_entropy_samples=0, **kwargs)


def tiny_data():
    return DSprites(batch_size=16, epoch_size=64, val_size=64)


def all_callbacks():
    return [
        InformationDiagnostics(num_points=64, num_scored=None),
        LatentTraversal(num_points=64, steps=5),
        Reconstructions(),
        Samples(),
    ]


def tiny_fit(root, logger=False, callbacks=None, model=None, checkpoint=False, precision="bf16-mixed"):
    callbacks = all_callbacks() if callbacks is None else callbacks
    if checkpoint:
        callbacks = [ModelCheckpoint(dirpath=root / "ckpt", save_last=True), *callbacks]
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=2, logger=logger, callbacks=callbacks,
        default_root_dir=root, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=checkpoint, precision=precision, num_sanity_val_steps=0,
    )
    model = tiny_model() if model is None else model
    trainer.fit(model, tiny_data())
    return trainer, model


# --------------------------------------------------------------------------------------------
# a model whose pictures are known: latent j lights block j of the image


class BlockModel(torch.nn.Module):
    """Image 8 x 32: columns 8j .. 8j+7 have brightness sigmoid(z_j); z_2 is an anchor."""

    latent_dim = 4
    anchor_indices = (2,)

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.decoded: list[torch.Tensor] = []

    def encode(self, x):
        mean = x.flatten(1)[:, :4] * self.scale
        return DiagonalGaussian(mean, torch.zeros_like(mean))

    def decode(self, z):
        self.decoded.append(z.detach().clone())
        return torch.sigmoid(z).repeat_interleave(8, dim=1)[:, None, None, :].expand(-1, 1, 8, 32)


def _varying_blocks(a: np.ndarray, b: np.ndarray, tile_x0: int) -> set[int]:
    """Blocks (0..3) of one 8 x 32 tile whose pixels differ between pictures a and b."""
    diff = (a != b).any(axis=(0, 2)) if a.ndim == 3 else (a != b).any(axis=0)
    cols = diff.nonzero()[0] - tile_x0
    return {int(c) // 8 for c in cols if 0 <= c < 32}


def test_traversal_moves_only_the_traversed_latent_and_rows_are_sorted():
    model = BlockModel()
    inputs = torch.randn(2, 1, 2, 2)
    # latent j has posterior means of spread j + 1, so the rates grow with j
    encoded = Encoded(torch.randn(500, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.zeros(500, 4), None)
    items = traversal_media(model, inputs, encoded, steps=5)
    assert [i.key for i in items] == ["media/traversal"] + [f"media/traversal_z{j}" for j in (2, 3, 1, 0)]

    # the decoder's input: one batch [L, B, K, D] in row order 2 (anchor), 3, 1, 0
    codes = model.decoded[0].reshape(4, 3, 5, 4)
    base = torch.cat([inputs.flatten(1)[:, :4], torch.zeros(1, 4)])
    for row, j in enumerate((2, 3, 1, 0)):
        others = [i for i in range(4) if i != j]
        assert torch.equal(codes[row][:, :, others], base[:, None, others].expand(-1, 5, -1))
        assert (codes[row][:, 1:, j] > codes[row][:, :-1, j]).all()  # ascending quantiles

    # the grid: in row r only block order[r] changes across the columns of a block
    grid = items[0].data
    header = 11 + 8
    label_width = grid.shape[1] - viz.grid_shape(4, 15, (8, 32), groups=3)[1]
    for row, j in enumerate((2, 3, 1, 0)):
        y = header + 2 + row * 10
        tiles = grid[y : y + 8]
        x_first = label_width + 2
        x_last = label_width + 2 + 4 * 34
        moved = _varying_blocks(tiles[:, x_first : x_first + 32], tiles[:, x_last : x_last + 32], 0)
        assert moved == {j}, (row, j, moved)
    # the anchor's row is marked
    assert np.all(grid[header + 2 : header + 10, :label_width] == viz.ANCHOR_COLOR, axis=-1).any()
    assert not np.all(grid[header + 22 :, :label_width] == viz.ANCHOR_COLOR, axis=-1).any()  # rows 2, 3

    # the GIF of latent j: only block j of each tile changes from frame to frame
    for item in items[1:]:
        j = int(item.key.rsplit("z", 1)[1])
        frames = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(Image.open(io.BytesIO(item.data)))]
        assert len(frames) == 2 * 5 - 2
        assert frames[0].shape == (viz.grid_shape(1, 3, (8, 32))[0] + 4, viz.grid_shape(1, 3, (8, 32))[1])
        for b in range(3):
            x0 = 2 + b * 34
            assert _varying_blocks(frames[0][2:10], frames[4][2:10], x0) == {j}


@pytest.mark.parametrize("resample", ["posterior", "prior"])
def test_anchor_held_samples_keep_what_the_anchors_encode(resample):
    model = BlockModel()
    inputs = torch.rand(3, 1, 8, 32)
    encoded = Encoded(torch.randn(50, 4), torch.zeros(50, 4), None)
    items = {i.key: i for i in sample_media(model, inputs, encoded, num_resampled=5, resample=resample)}
    assert set(items) == {"media/samples", "media/anchor_samples_held", "media/others_held"}
    header, tile_w, gap = 11 + 8, 32, 8

    def tile(pic, r, c):  # column 0 is the input, then a gap, then the samples
        y = header + 2 + r * 10
        x = 2 + c * (tile_w + 2) + (gap if c > 0 else 0)
        return pic[y : y + 8, x : x + tile_w]

    for key, held in (("media/anchor_samples_held", {2}), ("media/others_held", {0, 1, 3})):
        pic = items[key].data
        assert pic.shape[:2] == viz.grid_shape(3, 6, (8, 32), groups=2, header_height=header)
        for r in range(3):  # along a row the held blocks stay, the others change
            changed = set().union(*(_varying_blocks(tile(pic, r, 1), tile(pic, r, c), 0) for c in range(2, 6)))
            assert changed and not changed & held, (key, r, changed)
        for c in range(1, 6):  # down a column only the held blocks change
            changed = set().union(*(_varying_blocks(tile(pic, 0, c), tile(pic, r, c), 0) for r in range(1, 3)))
            assert changed <= held and changed, (key, c, changed)
    assert "from q(z)" in items["media/others_held"].caption if resample == "posterior" else "from the prior" in items["media/others_held"].caption


def test_tiny_fit_without_logger_writes_files_and_logs_scalars(tmp_path):
    callbacks = all_callbacks()
    trainer, model = tiny_fit(tmp_path, callbacks=callbacks)
    media = tmp_path / "media"
    step = f"{trainer.global_step:06d}"  # zero-padded: names sort by step
    names = {p.name for p in media.iterdir()}
    expected = {
        f"traversal_step{step}.png", *{f"traversal_z{j}_step{step}.gif" for j in range(4)},
        f"reconstructions_step{step}.png", f"samples_step{step}.png", f"anchor_samples_held_step{step}.png",
        f"others_held_step{step}.png", f"information_step{step}.png", f"mi_matrix_step{step}.png",
        f"latent_table_step{step}.csv", f"information_history_step{step}.png",
    }
    assert expected <= names, expected - names
    files = media_files(trainer)
    assert set(files) == {
        "media/traversal", *{f"media/traversal_z{j}" for j in range(4)}, "media/reconstructions", "media/samples",
        "media/anchor_samples_held", "media/others_held", "diagnostics/information", "diagnostics/mi_matrix",
        "diagnostics/latent_table", "diagnostics/information_history",
    }
    assert all(p.is_file() for p in files.values())
    # the traversal grid: 4 latent rows of 64 x 64 tiles under a header, 3 blocks of 5 steps
    grid = np.asarray(Image.open(files["media/traversal"]))
    assert grid.shape[0] == 11 + 8 + 4 * (64 + 2) + 2
    gif = Image.open(files["media/traversal_z0"])
    assert gif.size == (viz.grid_shape(1, 3, (64, 64))[1], viz.grid_shape(1, 3, (64, 64))[0] + 4)
    table = (media / f"latent_table_step{step}.csv").read_text().splitlines()
    assert table[0].startswith("latent,anchor,rate_nats,info_nats,mi_color_nats,mi_shape_nats")
    assert table[1].startswith("z0,True,") and table[3].startswith("z2,False,")
    metrics = trainer.callback_metrics
    for key in ("diagnostics/total_correlation", "diagnostics/mutual_info", *(f"diagnostics/info/z{j}" for j in range(4))):
        assert key in metrics and torch.isfinite(metrics[key])
    assert float(metrics["diagnostics/mutual_info"]) <= np.log(64) + 1e-6
    assert model.training  # the callbacks restored the mode
    for cb in callbacks:
        assert cb.last_seconds is not None and cb.last_seconds < 30


def test_wandb_offline_run_holds_the_media(tmp_path):
    import wandb

    logger = WandbLogger(project="tcx-test", save_dir=str(tmp_path), offline=True)
    try:
        trainer, _ = tiny_fit(tmp_path, logger=logger, checkpoint=True)
        run_dir = tmp_path / "wandb"
        found = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("files/media/**/*") if p.is_file()}
        for stem, folder in (
            ("traversal_", "images/media"), ("traversal_z0_", "videos/media"), ("reconstructions_", "images/media"),
            ("samples_", "images/media"), ("anchor_samples_held_", "images/media"), ("others_held_", "images/media"),
            ("information_", "images/diagnostics"), ("mi_matrix_", "images/diagnostics"),
            ("latent_table_", "table/diagnostics"),
        ):
            assert any(f"/files/media/{folder}/{stem}" in f"/{p}" for p in found), (stem, sorted(found))
        chart = [p for p in run_dir.rglob("*information_over_training*") if p.is_file()]
        assert chart, sorted(found)  # the line chart of I(Z_j;X) per latent over the epochs
        gifs = [p for p in run_dir.rglob("files/media/videos/media/traversal_z*.gif")]
        assert len(gifs) == 4 and Image.open(gifs[0]).n_frames >= 1
        table = next(run_dir.rglob("files/media/table/diagnostics/latent_table_*.table.json"))
        assert json.loads(table.read_text())["columns"][:4] == ["latent", "anchor", "rate_nats", "info_nats"]
        # after fit the latest pictures are also files beside the checkpoints' run folder
        files = media_files(trainer)
        media = tmp_path / "tcx-test" / logger.version / "media"
        assert files["media/traversal"].parent == media and files["media/traversal"].is_file()
        assert files["media/traversal_z3"].suffix == ".gif" and files["diagnostics/latent_table"].suffix == ".csv"
    finally:
        wandb.finish()


def test_tensorboard_event_files_hold_the_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(save_dir=str(tmp_path), name="tb")
    trainer, _ = tiny_fit(tmp_path, logger=logger)
    acc = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    images = set(acc.Tags()["images"])
    assert {"media/traversal", "media/reconstructions", "media/samples", "media/anchor_samples_held",
            "media/others_held", "diagnostics/information", "diagnostics/mi_matrix"} <= images
    event = acc.Images("media/traversal")[-1]
    assert event.height == 11 + 8 + 4 * (64 + 2) + 2 and event.step == trainer.global_step
    assert "diagnostics/total_correlation" in acc.Tags()["scalars"]
    # TensorBoard shows no GIFs: they are files in the run folder, as are the pictures after fit
    files = media_files(trainer)
    assert files["media/traversal_z0"].suffix == ".gif" and files["media/traversal_z0"].is_file()
    assert files["media/traversal"].parent == Path(logger.log_dir) / "media"


def test_a_failing_figure_is_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no heatmap today")

    monkeypatch.setattr(viz, "mi_heatmap", broken)
    with pytest.warns(RuntimeWarning, match="could not render diagnostics/mi_matrix: RuntimeError: no heatmap today"):
        trainer, _ = tiny_fit(tmp_path)
    files = media_files(trainer)
    assert "diagnostics/mi_matrix" not in files
    assert files["diagnostics/information"].is_file() and files["media/traversal"].is_file()
    assert trainer.state.finished


def test_callback_arguments_are_checked():
    with pytest.raises(ValueError, match="steps must be an integer >= 2, got 1"):
        LatentTraversal(steps=1)
    with pytest.raises(ValueError, match=r"quantile must be a number in \[0.0, 0.5\), got 0.5"):
        LatentTraversal(quantile=0.5)
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 0"):
        Samples(every_n_epochs=-1)
    with pytest.raises(ValueError, match="num_points must be an integer >= 2"):
        InformationDiagnostics(num_points=1)
    assert all(isinstance(cb, MediaCallback) for cb in all_callbacks())


# --------------------------------------------------------------------------------------------
# tcx traverse


@pytest.mark.parametrize("family", [AnchorVAE, VAE, BetaVAE])
def test_tcx_traverse_writes_the_pictures_of_a_checkpoint(tmp_path, capsys, family):
    trainer, _ = tiny_fit(tmp_path, model=tiny_model(family), callbacks=[], checkpoint=True)
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    out = tmp_path / "pictures"
    code = traverse_main(["--ckpt_path", str(ckpt), "--out", str(out), "--steps", "4", "--num_points", "64"])
    assert code == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    expected = {"traversal.png", *{f"traversal_z{j}.gif" for j in range(4)}, "samples.png", "reconstructions.png",
                "information.png", "mi_matrix.png", "latent_table.csv"}
    if family is AnchorVAE:
        expected |= {"anchor_samples_held.png", "others_held.png"}
    assert names == expected
    stdout = capsys.readouterr().out
    assert f"wrote {len(expected)} files to {out}" in stdout and str(out / "traversal.png") in stdout
    gif = Image.open(out / "traversal_z0.gif")
    assert gif.size[0] == viz.grid_shape(1, 3, (64, 64))[1]  # 2 inputs and the prior


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_tcx_traverse_without_data_uses_the_prior(tmp_path, capsys):
    model = tiny_model()
    trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, limit_val_batches=0)
    dm = tiny_data()
    trainer.fit(model, train_dataloaders=dm.train_dataloader())
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    out = tmp_path / "out"
    assert traverse_main(["--ckpt_path", str(ckpt), "--out", str(out), "--steps", "3"]) == 0
    text = capsys.readouterr().out
    assert "no data (the checkpoint names no datamodule): traversals start from the prior only" in text
    assert {"traversal.png", "samples.png", "anchor_samples_held.png", "others_held.png"} <= {p.name for p in out.iterdir()}
    gif = Image.open(out / "traversal_z1.gif")
    assert gif.size[0] == viz.grid_shape(1, 1, (64, 64))[1]  # the prior alone


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: ["--ckpt_path", str(d / "missing.ckpt"), "--out", str(d / "o")], "missing.ckpt' does not exist"),
        (lambda d: ["--ckpt_path", str(d / "notes.txt"), "--out", str(d / "o")], "could not be read"),
        (lambda d: ["--ckpt_path", str(d / "notes.txt"), "--out", str(d / "notes.txt")], "is a file; give a folder"),
        (lambda d: ["--ckpt_path", str(d / "notes.txt"), "--out", str(d / "o"), "--steps", "1"], "--steps must be an integer >= 2, got 1"),
        (lambda d: ["--out", str(d / "o")], "the following arguments are required: --ckpt"),
    ],
)
def test_tcx_traverse_bad_input_exits_2_without_traceback(tmp_path, capsys, make, message):
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    assert traverse_main(make(tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_traverse_accepts_the_hyphenated_spellings_as_aliases(tmp_path):
    # one documented spelling (--ckpt_path, --num_inputs, as the callbacks' arguments); the old
    # ones still reach the same options
    from tcx.cli.traverse import ALIASES, build_parser

    args = build_parser().parse_args([ALIASES.get(a, a) for a in ["--ckpt", "c", "--out", "o", "--num-inputs", "3"]])
    assert (args.ckpt_path, args.num_inputs) == ("c", 3)
    assert "--num-inputs" not in build_parser().format_help() and "--num_inputs" in build_parser().format_help()
