"""The ``tcx`` command's arguments before LightningCLI parses them (used by ``tcx.cli``).

The default model and data named when the user names none, short class names checked against
tcx's registered classes, ``--data.X`` before ``--data NAME`` explained, ``-c`` files checked for
YAML errors with their line, and the datamodule's ``input_shape`` handed to the model.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

import tcx.datamodules
import tcx.models
from tcx.errors import MissingFileError, TcxError
from tcx.experiments import flag_values
from tcx.models.base import CorExVAE

__all__ = [
    "SUBCOMMANDS",
    "DEFAULT_CLASSES",
    "check_class_names",
    "with_default_classes",
    "check_argument_order",
    "check_config_files",
    "all_config_keys",
    "known_classes",
    "registered",
    "import_class",
    "input_shape_of",
]

SUBCOMMANDS = ("fit", "validate", "test", "predict")


DEFAULT_CLASSES = {"--model": "tcx.models.AnchorVAE", "--data": "tcx.datamodules.DSprites"}


def input_shape_of(datamodule) -> tuple[int, ...]:
    shape = getattr(datamodule, "input_shape", None)
    if shape is None:
        raise TcxError(
            f"the datamodule {type(datamodule).__name__} does not declare `input_shape`; "
            "give it an attribute or property `input_shape` (e.g. (1, 64, 64) for [C, H, W] images, "
            "or (n,) for vectors): tcx builds the model's networks from it"
        )
    return tuple(int(s) for s in shape)


def known_classes(module, base) -> dict[str, str]:
    return {
        name: f"{module.__name__}.{name}"
        for name in getattr(module, "__all__", ())
        if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), base)
    }


def registered(module, base) -> list[type]:
    """The classes of ``module.__all__`` that subclass ``base``: what ``--model``/``--data`` name."""
    return [getattr(module, name) for name in known_classes(module, base)]


def import_class(class_path):
    import importlib

    module, _, name = str(class_path or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def check_class_names(argv: list[str]) -> None:
    """Refuse an unknown ``--model NAME`` or ``--data NAME`` before anything is built, naming the
    value and what is allowed (jsonargparse's own message lists neither)."""
    choices = {
        "--model": known_classes(tcx.models, CorExVAE),
        "--data": known_classes(tcx.datamodules, pl.LightningDataModule),
    }
    for _, flag, value in flag_values(argv, tuple(choices)):
        known = choices[flag]
        if "." in value or value.startswith(("{", "[")) or value in known or value.endswith((".yaml", ".yml", ".json")):
            continue
        raise TcxError(
            f"{flag} {value!r} is not a known class. Choose one of "
            f"{', '.join(sorted(known))}, or give a full import path such as "
            f"'my_package.MyClass' (a class importable from the current environment)."
        )


def _config_keys(path: str, subcommand: str) -> set[str]:
    import yaml

    try:
        content = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return set()  # LightningCLI reports an unreadable config itself
    if not isinstance(content, dict):
        return set()
    keys = set(content)
    nested = content.get(subcommand)
    if isinstance(nested, dict):
        keys |= set(nested)
    return keys


def all_config_keys(argv: list[str]) -> set[str]:
    """The top-level keys of every ``-c`` file of ``argv`` (and of its subcommand's section)."""
    keys: set[str] = set()
    for _, _, path in flag_values(argv, ("-c", "--config")):
        keys |= _config_keys(path, argv[0]) if path and argv else set()
    return keys


def with_default_classes(argv: list[str]) -> list[str]:
    """Name the default model (AnchorVAE) and datamodule (DSprites) on the command line when the
    user names none, neither by flag nor in a ``-c`` file.

    They are not in the default config on purpose: jsonargparse keeps the init_args of a class
    when ``--model`` or ``--data`` switches to another that shares their names, so defaults set
    there would leak (``--model BetaVAE`` would get AnchorVAE's ``beta``, ``--data MNIST``
    DSprites' ``val_size``). Inserted right after the subcommand, they come before the user's own
    ``--model.x`` flags, which then apply to them.
    """
    if not argv or argv[0] not in SUBCOMMANDS:
        return argv
    given = {flag for _, flag, _ in flag_values(argv, tuple(DEFAULT_CLASSES))}
    given |= {f"--{k}" for k in all_config_keys(argv) if f"--{k}" in DEFAULT_CLASSES}
    missing = [f"{flag}={cls}" for flag, cls in DEFAULT_CLASSES.items() if flag not in given]
    return [argv[0], *missing, *argv[1:]]


def check_argument_order(argv: list[str]) -> None:
    """Refuse ``--data.X ... --data Class`` (and ``--model``): a class flag starts that class's
    arguments afresh, so its own arguments must come after it; say so instead of jsonargparse's
    "Option 'X' is not accepted"."""
    for group in ("--model", "--data"):
        first_class = None
        for i, arg in enumerate(argv):
            flag = arg.partition("=")[0]
            if flag == group:
                first_class = i
                break
        if first_class is None:
            continue
        early = [a.partition("=")[0] for a in argv[:first_class] if a.startswith(group + ".")]
        if early:
            name = argv[first_class].partition("=")[2] or (argv[first_class + 1] if first_class + 1 < len(argv) else "")
            raise TcxError(
                f"{', '.join(early)} comes before {group} {name}: put the class first, then its "
                f"arguments ({group} {name} {early[0]} ...), since {group} NAME starts that class's "
                "arguments afresh"
            )


def check_config_files(argv: list[str]) -> None:
    """Every ``-c``/``--config`` file exists and is valid YAML; the error names the file, the line
    and the column (the parser's own message names none)."""
    import yaml

    from tcx.experiments import flag_values, is_inline_config

    for _, flag, path in flag_values(argv, ("-c", "--config")):
        if not path or is_inline_config(path):
            continue  # YAML given inline: jsonargparse parses (and reports) it
        p = Path(path)
        if not p.is_file():
            raise MissingFileError(f"config file {path!r} does not exist (given with {flag})")
        try:
            yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TcxError(f"config file {path!r} is not valid YAML{where}: {problem}; fix the file "
                             "(`tcx fit --print_config` shows a valid one)") from None
