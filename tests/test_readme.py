"""The README's examples run as written: its Python blocks (fast) and its "After training" shell
block (slow: a real fit, validate, test, predict, resume and traverse through the `tcx` command)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_every_python_block_of_the_readme_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = _blocks("python")[index]
    exec(compile(source, f"README.md python block {index}", "exec"), {"__name__": "readme_block"})


def test_the_after_training_block_names_one_checkpoint_and_every_command():
    (block,) = _blocks("bash", _section("After training"))
    commands = [line.split()[1] for line in block.splitlines() if line.startswith("tcx ")]
    assert commands == ["fit", "validate", "test", "predict", "fit", "traverse"]


@pytest.mark.slow
def test_the_after_training_block_runs_as_written(tmp_path):
    (block,) = _blocks("bash", _section("After training"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "WANDB_MODE": "offline", "OMP_WAIT_POLICY": "PASSIVE"}
    outputs = []
    for line in block.splitlines():
        if not line.startswith("tcx "):
            continue
        run = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, f"{line}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        outputs.append(run.stdout)
    fit, validate, test, predict, resume, traverse = outputs
    assert "tcx fit summary: VAE" in fit
    assert validate.startswith("tcx validate: model VAE (from the checkpoint), data DSprites (from the checkpoint)")
    assert "tcx validate summary: VAE (val set)" in validate and "metrics/mig" in validate
    assert "tcx test summary: VAE (test set)" in test
    # the path it prints
    (written,) = re.findall(r"(\S+predictions\.npz)", predict)
    with np.load(tmp_path / written) as saved:
        assert saved["mean"].shape[1] == 10 and saved["y"].shape[1] == 6
    assert "epochs / steps                     4 / 64" in resume or re.search(r"epochs / steps\s+4 / 64", resume)
    assert (tmp_path / "pictures" / "traversal.png").is_file()
