"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import sys

# idle OpenMP threads sleep instead of spinning (as `tcx` itself sets for its runs): on a shared
# 2-core machine spinning threads of one process make another's many times slower. Set before
# torch starts its thread pool; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

# user modules that tests import from a temporary folder or tests/user_datamodule_example
_USER_MODULES = ("my_module",)


@pytest.fixture(autouse=True)
def _forget_user_modules():
    """Each test imports its own copy of a user's module: a copy imported by an earlier test
    (from another folder) must not shadow it."""
    for name in _USER_MODULES:
        sys.modules.pop(name, None)
    yield
    for name in _USER_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def one_thread():
    """Run single-threaded: these tests use small tensors, and on a shared 2-core machine
    intra-op threads that spin-wait for each other make them many times slower. Modules opt in
    with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path):
    """W&B offline and silent, with its run, config and cache folders in the test's tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
