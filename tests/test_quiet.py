"""The quiet start (tcx/cli/quiet.py): the known unactionable warnings of Lightning and W&B are
dropped by their message, every other warning still reaches the user."""

from __future__ import annotations

import pytest


def test_the_quiet_start_drops_only_the_known_warnings():
    """The CLI's filters drop the known unactionable warnings by message and keep the others."""
    import logging
    import warnings

    import wandb

    from tcx.cli import quiet as cli

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli.quiet_known_warnings()
        cli.quiet_known_warnings()  # idempotent
        warnings.warn("LightningCLI's args parameter is intended to run from within Python like ...", UserWarning)
        warnings.warn("Precision bf16-mixed is not supported by the model summary.  Estimated ...", UserWarning)
        warnings.warn("The dataloader does not have many workers which may be a bottleneck.", UserWarning)
    assert [str(w.message) for w in caught] == ["The dataloader does not have many workers which may be a bottleneck."]

    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.INFO)
    try:
        log.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
        log.info("GPU available: False, used: False")
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    assert [r.getMessage() for r in records] == ["GPU available: False, used: False"]

    # W&B's warnings go to stderr: the two known ones are dropped, any other one is printed
    assert getattr(wandb.termwarn, "tcx_filtered", False)


WANDB_WARNINGS = """
import wandb
from tcx.cli import quiet
quiet.quiet_known_warnings()
wandb.termwarn("The anonymous setting has no effect and will be removed in a future version.")
wandb.termwarn("git root runs does not exist")
wandb.termwarn("a real W&B warning")
"""


def test_the_quiet_start_drops_only_the_known_wandb_warnings(tmp_path):
    """W&B prints its warnings to stderr: the two known ones are dropped, any other is printed.

    It runs in a fresh process: the test session sets WANDB_SILENT, and once any test has set W&B
    up, W&B keeps its warnings to itself for the rest of the process."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}
    env.update(HOME=str(tmp_path), WANDB_MODE="offline", WANDB_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", WANDB_WARNINGS], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "a real W&B warning" in done.stderr
    assert "anonymous" not in done.stderr and "git root" not in done.stderr


def test_wandb_footer_is_quiet_unless_the_user_chose():
    """tcx sets WANDB_QUIET (no closing run history) unless the user set WANDB_QUIET or WANDB_SILENT."""
    from tcx.cli.wandb_setup import quiet_wandb_footer

    environ = {}
    assert quiet_wandb_footer(environ) and environ == {"WANDB_QUIET": "true"}
    for chosen in ({"WANDB_QUIET": "false"}, {"WANDB_SILENT": "false"}, {"WANDB_SILENT": "true"}):
        environ = dict(chosen)
        assert not quiet_wandb_footer(environ) and environ == chosen


QUIET_FOOTER = """
import wandb
from tcx.cli.wandb_setup import quiet_wandb_footer
quiet_wandb_footer()
run = wandb.init(project="q", mode="offline")
for i in range(3):
    run.log({"loss": float(i)})
wandb.termwarn("a real W&B warning")
run.finish()
"""


@pytest.mark.slow
def test_wandb_closing_history_is_quiet_and_its_warnings_print(tmp_path):
    """Outside make (no WANDB_SILENT): no 'Run history' after the run, a real warning still printed;
    WANDB_QUIET=false brings the history back."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "WANDB_QUIET")}
    env.update(HOME=str(tmp_path), WANDB_MODE="offline", WANDB_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", QUIET_FOOTER], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "a real W&B warning" in done.stderr and "Run history" not in done.stdout + done.stderr
    env["WANDB_QUIET"] = "false"
    done = subprocess.run([sys.executable, "-c", QUIET_FOOTER], env=env, capture_output=True, text=True, timeout=120)
    assert "Run history" in done.stdout + done.stderr
