"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import sys

import pytest

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
