"""The ``tcx`` command's arguments before LightningCLI parses them (used by ``tcx.cli``).

The one list of classes a user may name (:func:`nameable_classes`: with ``--model``/``--data``,
in a ``-c`` file, or recorded in a checkpoint read without ``--trust``); the default model and
data named when the user names none; class names (flags and ``-c`` files) checked against that
list with a did-you-mean; an argument of another family named with the families that take it;
``--data.X`` before ``--data NAME`` explained; ``-c`` files checked for YAML errors with their
line; Trainer settings Lightning would refuse with a traceback refused in one line; and the
datamodule's ``input_shape`` handed to the model.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

import tcx.datamodules
import tcx.models
from tcx.errors import MissingFileError, TcxError
from tcx.cli.experiments import flag_values
from tcx.models.base import CorExVAE

__all__ = [
    "SUBCOMMANDS",
    "DEFAULT_CLASSES",
    "check_class_names",
    "check_class_arguments",
    "check_trainer_settings",
    "nameable_classes",
    "user_modules",
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


#: the class groups a user names: the package whose ``__all__`` lists them and their base class
GROUPS = {"--model": (tcx.models, CorExVAE), "--data": (tcx.datamodules, pl.LightningDataModule)}


def nameable_classes(group: str) -> dict[str, type]:
    """THE list of classes a user may name with ``group`` (``--model`` or ``--data``): every
    spelling to its class, the short name (``MNIST``), the public path (``tcx.datamodules.MNIST``)
    and the defining path (``tcx.datamodules.mnist.MNIST``). A class path recorded in a checkpoint
    is built without ``--trust`` only when it is one of these (or in a module the user names)."""
    module, base = GROUPS[group]
    out: dict[str, type] = {}
    for cls in registered(module, base):
        for name in (cls.__name__, f"{module.__name__}.{cls.__name__}", f"{cls.__module__}.{cls.__qualname__}"):
            out[name] = cls
    return out


def _closest(value: str, group: str) -> str:
    """`` Did you mean X?`` for a misspelt class name of ``group``, or ``""``."""
    import difflib

    names = nameable_classes(group)
    tail = value.rpartition(".")[2]
    short = [n for n in names if "." not in n]
    close = difflib.get_close_matches(tail, short, n=1, cutoff=0.75)
    if not close:
        return ""
    module = GROUPS[group][0].__name__
    return f" Did you mean {close[0] if '.' not in value else f'{module}.{close[0]}'}?"


def _names_tcx(value: str) -> bool:
    """Whether a dotted class path points into tcx's own packages, where only
    :func:`nameable_classes` exist: ``tcx.models.X``, or ``models.X``/``datamodules.X`` when no such
    top-level module exists or it is tcx's own source folder (a user's own ``models`` package is
    theirs). Only looks modules up; imports nothing."""
    import importlib.util

    module = value.rpartition(".")[0]
    top = module.split(".")[0]
    if module == "tcx" or module.startswith("tcx."):
        return True
    if top not in ("models", "datamodules"):
        return False
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return True
    own = Path(GROUPS["--model" if top == "models" else "--data"][0].__file__).resolve().parent
    return spec is None or any(Path(p).resolve() == own for p in (spec.submodule_search_locations or ()))


def import_class(class_path):
    import importlib

    module, _, name = str(class_path or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def check_class_names(argv: list[str]) -> None:
    """Refuse an unknown ``--model NAME`` or ``--data NAME``, and a ``class_path`` of a ``-c`` file
    that names no class of tcx, before anything is built, naming the value, the file and key, the
    closest class and what is allowed (jsonargparse's own message lists none of them)."""
    for _, flag, value in flag_values(argv, tuple(GROUPS)):
        if value.startswith(("{", "[")) or value.endswith((".yaml", ".yml", ".json")):
            continue
        _check_class_name(value, flag, f"{flag} {value!r}")
    for path, key, value in _config_classes(argv):
        _check_class_name(value, _group_of(key), f"config file {path!r}, key {key}: {value!r}")


def _check_class_name(value: str, group: str, where: str) -> None:
    known = nameable_classes(group)
    if value in known or ("." in value and not _names_tcx(value)):
        return  # one of tcx's, or the user's own import path (jsonargparse imports it)
    short = sorted(n for n in known if "." not in n)
    raise TcxError(
        f"{where} is not a known class.{_closest(value, group)} Choose one of {', '.join(short)}, or give a "
        "full import path such as 'my_package.MyClass' (a class importable from the current environment)."
    )


def _config_sections(argv: list[str]):
    """``(file, group, section)`` of the ``model`` and ``data`` sections of every ``-c`` file
    (top-level, or under the subcommand's key), as read from the YAML."""
    import yaml

    for _, _, path in flag_values(argv, ("-c", "--config")):
        try:
            content = yaml.safe_load(Path(path).read_text())
        except (OSError, ValueError, yaml.YAMLError):
            continue  # inline YAML, or a file check_config_files reports
        if not isinstance(content, dict):
            continue
        for scope, prefix in ((content, ""), (content.get(argv[0]) if argv else None, f"{argv[0]}.")):
            if not isinstance(scope, dict):
                continue
            for group in ("model", "data"):
                if group in scope:
                    yield path, prefix + group, scope[group]


def _config_classes(argv: list[str]):
    """``(file, key, class path)`` of every class a ``-c`` file's model or data section names."""
    for path, key, section in _config_sections(argv):
        if isinstance(section, str):
            yield path, key, section
        elif isinstance(section, dict) and isinstance(section.get("class_path"), str):
            yield path, f"{key}.class_path", section["class_path"]


def user_modules(argv: list[str]) -> set[str]:
    """The modules of the user's own classes named on the command line (``--model my_pkg.MyVAE``,
    ``--data``, or a ``-c`` file's ``class_path``): a checkpoint may name classes of these without
    ``--trust``, since the command imports them anyway."""
    values = [v for _, _, v in flag_values(argv, tuple(GROUPS))] + [v for _, _, v in _config_classes(argv)]
    return {v.rpartition(".")[0] for v in values
            if "." in v and not v.startswith(("{", "[")) and not _names_tcx(v)}


def check_class_arguments(argv: list[str]) -> None:
    """Refuse ``--model.X`` (or ``--data.X``, or ``X`` in a ``-c`` file's ``init_args``) that the
    chosen class of tcx does not take while other classes do, naming those classes: ``--model VAE
    --model.anchor_beta 0.1`` is an argument of AnchorVAE, not a typo (which jsonargparse's "did
    you mean" handles). Classes that are not tcx's are left to jsonargparse."""
    from tcx.cli.help import class_arguments

    files = {_group_of(key): value for _, key, value in _config_classes(argv)}
    for group in GROUPS:
        known = nameable_classes(group)
        chosen = files.get(group)
        for i, arg in enumerate(argv):
            flag = arg.partition("=")[0]
            if flag == group:
                value = arg.partition("=")[2] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
                chosen = value
            elif flag.startswith(group + ".") and chosen in known:
                name = flag[len(group) + 1:]
                name = name[len("init_args."):] if name.startswith("init_args.") else name
                _refuse_foreign_argument(known[chosen], name.split(".")[0], group, f"{flag}", class_arguments)
    for path, key, section in _config_sections(argv):
        group = _group_of(key)
        cls = nameable_classes(group).get(section.get("class_path")) if isinstance(section, dict) else None
        init = section.get("init_args") if isinstance(section, dict) else None
        if cls is not None and isinstance(init, dict):
            for name in init:
                _refuse_foreign_argument(cls, str(name), group, f"config file {path!r}, key {key}.init_args.{name}",
                                         class_arguments)


def _group_of(key: str) -> str:
    """The flag (``--model``, ``--data``) of a config key such as ``fit.model.class_path``."""
    return "--" + next(p for p in key.split(".") if p in ("model", "data"))


def _refuse_foreign_argument(cls, name: str, group: str, where: str, class_arguments) -> None:
    if name in ("help", "class_path", "init_args", "dict_kwargs") or name in dict(class_arguments(cls)):
        return
    takers = sorted({c.__name__ for c in nameable_classes(group).values() if name in dict(class_arguments(c))})
    if takers:
        names = " and ".join([", ".join(takers[:-1]), takers[-1]] if len(takers) > 1 else takers)
        raise TcxError(
            f"{where}: {cls.__name__} has no argument {name!r}; {names} {'takes' if len(takers) == 1 else 'take'} it. "
            f"Choose {'that class' if len(takers) == 1 else 'one of them'} ({group} {takers[0]}, before its "
            f"arguments), or drop {name}"
        )


def check_trainer_settings(config) -> None:
    """Refuse, in one line, Trainer settings of a parsed subcommand config that Lightning would
    refuse with a traceback: a negative ``max_epochs`` or ``max_steps`` other than -1 (its
    "no limit"), and a local ``default_root_dir`` that is a file or lies under one."""
    trainer = config.get("trainer") if hasattr(config, "get") else None
    if trainer is None:
        return
    for key, meaning in (("max_epochs", "epochs"), ("max_steps", "optimizer steps")):
        value = trainer.get(key)
        if isinstance(value, int) and value < -1:
            raise TcxError(f"--trainer.{key} {value} is not a number of {meaning}: give one >= 0, or -1 for no "
                           "limit (then set another, e.g. --trainer.max_time)")
    root = trainer.get("default_root_dir")
    if root is None or "://" in str(root):
        return
    folder = Path(root)
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == folder else f"lies under {str(part)!r}, which is a file"
                raise TcxError(f"--trainer.default_root_dir {str(root)!r} {where}; give a folder (it is created "
                               "if missing)")
            break


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

    from tcx.cli.experiments import flag_values, is_inline_config

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
