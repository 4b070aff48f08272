"""Runs a researcher can compare (issue 28): picture files that sort and stay few, the quiet W&B
footer, the posterior-collapse warning, dSprites' val_size, the W&B record and summary.json,
``tcx compare`` and the sweep file."""

from __future__ import annotations

import types

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
    from tcx.collapse import collapse_warning

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

    from tcx.summary import fit_summary

    def summary(rates, reconstruction):
        metrics = {"val/elbo": reconstruction - sum(rates), "val/reconstruction": reconstruction, "val/rate": sum(rates),
                   **{f"val/rate/z{j}": r for j, r in enumerate(rates)}}
        trainer = types.SimpleNamespace(callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
                                        checkpoint_callback=None, callbacks=[], loggers=[], precision="32-true",
                                        current_epoch=1, global_step=10)
        model = types.SimpleNamespace(latent_dim=len(rates), anchor_indices=(), input_entropy=torch.full((100,), 0.5))
        return fit_summary(trainer, model, 1.0)

    assert summary([0.01, 0.02], -49.0).splitlines()[-1].startswith("warning: the posterior has collapsed: the total rate is 0.030")
    assert "warning" not in summary([10.0, 8.0], -20.0)
