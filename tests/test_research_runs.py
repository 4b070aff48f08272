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
