"""The ``tcx`` command's arguments as the user gave them, read once, and what is wrong with them.

:func:`read_arguments` is the one pass over argv before LightningCLI parses it (each ``-c`` file
read once): a class must be known before its arguments can parse, so the checkpoint's or the
default model and data are named on the command line there. :func:`nameable_classes` is the one
list of classes a user may name; :func:`check_given` and :func:`explain_parse_error` turn a
mistake into one line, naming where it was given (flag, or file and key) and the closest name.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl

import tcx.datamodules
import tcx.models
from tcx.errors import MissingFileError, TcxError
from tcx.safe_io import shown

SUBCOMMANDS = ("fit", "validate", "test", "predict")
DEFAULT_CLASSES = {"--model": "tcx.models.AnchorVAE", "--data": "tcx.datamodules.DSprites"}


#: the class groups a user names: the package that exports them and the function that lists them
#: (the model families are the list load_model checks a checkpoint against)
GROUPS = {"--model": (tcx.models, tcx.models.tcx_families), "--data": (tcx.datamodules, tcx.datamodules.tcx_datamodules)}
#: top-level groups that are model arguments (linked to CorExVAE's ``optimizer``, ``lr_scheduler``)
LINKED_GROUPS = ("optimizer", "lr_scheduler")
TRUST_FLAG = "--trust"


def nameable_classes(group: str) -> dict[str, type]:
    """THE classes a user may name with ``group`` (``--model``, ``--data``), by each spelling
    (``tcx.safe_io.class_spellings``). A checkpoint may name only these without ``--trust``."""
    from tcx.safe_io import class_spellings

    return class_spellings(GROUPS[group][1]())


def short_names(group: str) -> list[str]:
    return sorted(n for n in nameable_classes(group) if "." not in n)


def import_class(class_path):
    module, _, name = str(class_path or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _parameters(cls) -> dict[str, tuple[object, object]]:
    """``name: (default, type)`` of every ``__init__`` argument of ``cls``, following ``**kwargs`` up
    the MRO (tcx's families pass them to their base)."""
    seen: dict[str, tuple[object, object]] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            break
        hints = _hints(init)
        for name, p in params.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                seen.setdefault(name, (p.default, hints.get(name)))
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return seen


def class_arguments(cls) -> list[tuple[str, str]]:
    """``(name, default as YAML)`` of every ``__init__`` argument of ``cls``."""
    return [(k, "(required)" if d is inspect.Parameter.empty else _yaml(d)) for k, (d, _) in _parameters(cls).items()]


def _yaml(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(list(value) if isinstance(value, tuple) else value)


@dataclass
class Given:
    """What the user gave: ``argv`` (to parse), every ``(flag, value)`` in order, every ``-c`` file's
    content, and what the checkpoint of ``ckpt_path`` records (``tcx.checkpoint_record.recorded_run``)."""

    command: str | None
    argv: list[str]
    flags: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, dict]] = field(default_factory=list)
    trust: bool = False
    recorded: dict | None = None

    def values(self, flag: str) -> list[str]:
        return [v for f, v in self.flags if f == flag]

    def scopes(self):
        """``(file, key prefix, mapping)``: each file's top level and its subcommand's section."""
        for path, content in self.files:
            yield path, "", content
            if isinstance(content.get(self.command), dict):
                yield path, f"{self.command}.", content[self.command]

    def file_classes(self):
        """``(file, key, class path)`` of every class a file's model or data section names."""
        for path, key, section in ((path, prefix + g, scope[g]) for path, prefix, scope in self.scopes()
                                   for g in ("model", "data") if g in scope):
            if isinstance(section, str):
                yield path, key, section
            elif isinstance(section, dict) and isinstance(section.get("class_path"), str):
                yield path, f"{key}.class_path", section["class_path"]

    def names(self, group: str) -> bool:
        """Whether the user names ``group``'s class (by flag, or a file's section)."""
        return bool(self.values(group)) or any(group[2:] in scope for _, _, scope in self.scopes())

    def chosen(self, group: str) -> str:
        """The class ``group`` runs with as named: the last flag, else a file's, else the default."""
        named = [_class_of(v) for v in self.values(group) if _class_of(v)]
        named = named or [v for _, key, v in self.file_classes() if _group_of(key) == group]
        return named[-1] if named else DEFAULT_CLASSES[group]

    def chosen_class(self, group: str):
        """The class :meth:`chosen` names (one of tcx's, or imported), or ``None``."""
        return nameable_classes(group).get(self.chosen(group)) or import_class(self.chosen(group))

    @property
    def ckpt_path(self):
        found = self.values("--ckpt_path") or [s["ckpt_path"] for _, _, s in self.scopes()
                                               if isinstance(s.get("ckpt_path"), str)]
        return found[-1] if found else None

    def model_keys(self) -> set[str]:
        """The model arguments set explicitly, by flag (``--optimizer`` included) or in a file."""
        keys = {f[2:].split(".")[0] for f, _ in self.flags if f[2:].split(".")[0] in LINKED_GROUPS}
        keys |= {_argument(f[len("--model."):]) for f, _ in self.flags if f.startswith("--model.")}
        for _, _, scope in self.scopes():
            keys |= {g for g in LINKED_GROUPS if scope.get(g)}
            model = scope.get("model")
            if isinstance(model, dict):
                init = model.get("init_args", model if "class_path" not in model else {})
                keys |= {k for k in (init or {}) if k not in ("class_path", "init_args")}
        return keys

    def user_modules(self) -> set[str]:
        """The modules of the user's own classes named here (imported anyway: no ``--trust`` needed)."""
        values = [v for g in GROUPS for v in self.values(g)] + [v for _, _, v in self.file_classes()]
        return {v.rpartition(".")[0] for v in values if "." in v and not v.startswith(("{", "[")) and not _names_tcx(v)}


def _class_of(value: str) -> str | None:
    """The class a ``--model``/``--data`` value names: a class path, or a JSON spec's ``class_path``."""
    if not value.lstrip().startswith("{"):
        return value
    try:
        return json.loads(value).get("class_path")
    except (ValueError, AttributeError):
        return None


def _argument(name: str) -> str:
    return (name[len("init_args."):] if name.startswith("init_args.") else name).split(".")[0]


def _group_of(key: str) -> str:
    """The flag (``--model``, ``--data``) of a config key such as ``fit.model.class_path``."""
    return "--" + next(p for p in key.split(".") if p in ("model", "data"))


def read_arguments(argv: list[str]) -> Given:
    """THE pass over argv before parsing: ``-c NAME`` of a packaged experiment becomes its path,
    every ``-c`` file is read once (a YAML error is one line with its place), ``--trust`` taken out."""
    import yaml

    from tcx.cli.experiments import experiment_path

    argv = list(argv)
    given = Given(argv[0] if argv and argv[0] in SUBCOMMANDS else None, argv, trust=TRUST_FLAG in argv)
    argv[:] = [a for a in argv if a != TRUST_FLAG]
    for i, arg in enumerate(argv):
        flag, sep, value = arg.partition("=")
        if not flag.startswith("-") or (not sep and i + 1 >= len(argv)):
            continue
        value = value if sep else argv[i + 1]
        if flag not in ("-c", "--config"):
            given.flags.append((flag, value))
            continue
        inline = not Path(value).exists() and (value.lstrip().startswith(("{", "[")) or ":" in value)
        if not inline and not Path(value).exists():
            value = str(experiment_path(value))  # a packaged experiment, or one line naming the choices
            argv[i if sep else i + 1] = f"{flag}={value}" if sep else value
        if not inline and not Path(value).is_file():
            what = "is a folder, not a YAML file" if Path(value).is_dir() else "is not a regular file"
            raise MissingFileError(f"config file {value!r} {what if Path(value).exists() else 'does not exist'} "
                                   f"(given with {flag})")
        try:
            content = yaml.safe_load(value if inline else Path(value).read_text())
        except yaml.YAMLError as exc:
            if inline:
                continue  # jsonargparse parses (and reports) YAML given inline
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TcxError(f"config file {value!r} is not valid YAML{where}: {problem}; fix the file "
                           "(`tcx fit --print_config` shows a valid one)") from None
        if isinstance(content, dict):
            given.files.append((value, content))
        elif content is not None and not inline:
            raise TcxError(f"config file {value!r} holds a {type(content).__name__}, not a mapping of options "
                           "(model:, data:, trainer:, ...); `tcx fit --print_config` shows one")
    for path, prefix, scope in given.scopes():  # a section jsonargparse would take as a whole value
        for key, kinds, wanted in SECTIONS:
            if scope.get(key) is not None and not isinstance(scope[key], kinds):
                raise TcxError(f"config file {path!r}, key {prefix}{key}: expects {wanted}, got {shown(scope[key], 80)}")
    return given


#: the sections of a config file, what each may hold, and how a message says it
SECTIONS = (("model", (dict, str), "a class (a name such as AnchorVAE, or class_path and init_args)"),
            ("data", (dict, str), "a class (a name such as DSprites, or class_path and init_args)"),
            ("trainer", dict, "Trainer arguments (a mapping such as max_epochs: 10)"))


def with_default_classes(given: Given) -> None:
    """Name the default model and data right after the subcommand when the user names none. Not in
    the default config: jsonargparse keeps a class's init_args when ``--model`` switches to another
    that shares their names (``--model BetaVAE`` would get AnchorVAE's ``beta``)."""
    if given.command:
        missing = [(flag, cls) for flag, cls in DEFAULT_CLASSES.items() if not given.names(flag)]
        given.argv[1:1] = [f"{flag}={cls}" for flag, cls in missing]
        given.flags[:0] = missing


def _names_tcx(value: str) -> bool:
    """Whether a class path points into tcx's own packages: ``tcx.X``, or ``models.X``/``datamodules.X``
    when no such top-level module exists or it is tcx's own source folder. Imports nothing."""
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


def class_name_problem(given: Given) -> str | None:
    """The line for the first class named (flag or file) that does not exist, with the closest name."""
    named = [(v, g, f"{g} {v!r}") for g in GROUPS for v in given.values(g)
             if not v.lstrip().startswith("{") and not v.endswith((".yaml", ".yml", ".json"))]
    named += [(v, _group_of(key), f"config file {path!r}, key {key}: {v!r}") for path, key, v in given.file_classes()]
    named += [(v, None, f"{f.rstrip('+')} {v!r}") for f, v in given.flags if f not in GROUPS and _is_class_path(v)]
    named += [(v, None, f"config file {path!r}, key {key}: {v!r}") for path, content in given.files
              for key, v in _class_paths(content) if key.split(".")[-2:-1] not in (["model"], ["data"])]
    for value, group, where in named:
        if group not in GROUPS:  # any other class path given (a callback, a logger, an optimizer)
            module, _, name = value.rpartition(".")
            try:
                names = [n for n, c in vars(importlib.import_module(module)).items() if isinstance(c, type)]
            except ImportError:
                continue  # left to the parser's message
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.75) if name not in names else []
            if close:
                return f"{where} is not a known class. Did you mean {module}.{close[0]}?"
            continue
        if value in nameable_classes(group) or ("." in value and not _names_tcx(value)):
            continue  # one of tcx's, or the user's own import path (jsonargparse imports it)
        close = difflib.get_close_matches(value.rpartition(".")[2], short_names(group), n=1, cutoff=0.75)
        module = GROUPS[group][0].__name__
        hint = f" Did you mean {close[0] if '.' not in value else f'{module}.{close[0]}'}?" if close else ""
        return (f"{where} is not a known class.{hint} Choose one of {', '.join(short_names(group))}, or give a full "
                "import path such as 'my_package.MyClass' (a class importable from the current environment).")
    return None


def _is_class_path(value) -> bool:
    parts = str(value).split(".")
    return len(parts) > 1 and all(p.isidentifier() for p in parts) and parts[-1][:1].isupper()


def _class_paths(node, key=""):
    """``(key, class path)`` of every ``class_path`` inside ``node`` (a file's content)."""
    for k, v in node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ():
        where = f"{key}.{k}" if isinstance(k, str) else f"{key}[{k}]"
        if k == "class_path" and _is_class_path(v):
            yield where.lstrip("."), v
        else:
            yield from _class_paths(v, where)


def _foreign_argument(cls, name: str, group: str, where: str) -> str | None:
    """The line for an argument of another class (``--model VAE --model.anchor_beta 0.1``), or ``None``."""
    takers = sorted({c.__name__ for c in nameable_classes(group).values() if name in dict(class_arguments(c))})
    if not takers or cls is None:
        return None
    names = " and ".join([", ".join(takers[:-1]), takers[-1]] if len(takers) > 1 else takers)
    return (f"{where}: {cls.__name__} has no argument {name!r}; {names} {'takes' if len(takers) == 1 else 'take'} it. "
            f"Choose {'that class' if len(takers) == 1 else 'one of them'} ({group} {takers[0]}, before its "
            f"arguments), or drop {name}")


def check_given(given: Given) -> None:
    """Refuse ``--data.X ... --data NAME``: jsonargparse would drop the arguments without a word."""
    for group in GROUPS:
        flags = [f for f, _ in given.flags if f == group or f.startswith(group + ".")]
        if group in flags and flags.index(group) > 0:
            early = flags[:flags.index(group)]
            name = given.values(group)[0]
            raise TcxError(f"{', '.join(early)} comes before {group} {name}: put the class first, then its "
                           f"arguments ({group} {name} {early[0]} ...), since {group} NAME starts that class's "
                           "arguments afresh")


def check_trainer_settings(config) -> None:
    """Refuse in one line ``max_epochs``/``max_steps`` below -1, which Lightning takes without a word."""
    trainer = config.get("trainer") if hasattr(config, "get") else None
    if trainer is None:
        return
    for key, meaning in (("max_epochs", "epochs"), ("max_steps", "optimizer steps")):
        value = trainer.get(key)
        if isinstance(value, int) and value < -1:
            raise TcxError(f"--trainer.{key} {value} is not a number of {meaning}: give one >= 0, or -1 for no "
                           "limit (then set another, e.g. --trainer.max_time)")


def _hints(function) -> dict:
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001  (an annotation that does not resolve: its type is unknown)
        return {}


def _option_keys(given: Given) -> dict[str, object]:
    """Every option key the parser takes for ``given``'s model, data and Trainer, to its type."""
    keys = {f"trainer.{k}": t for k, (_, t) in _parameters(pl.Trainer).items()}
    for group in GROUPS:
        cls = given.chosen_class(group)
        if cls is not None:
            keys.update({f"{group[2:]}.{k}": t for k, (_, t) in _parameters(cls).items()})
    return keys | dict.fromkeys(["ckpt_path", "seed_everything", "optimizer", "lr_scheduler", "config", "print_config"])


def _given_options(given: Given):
    """``(where, key, value)`` of every option set directly on the model, data or Trainer."""
    for flag, value in given.flags:
        group, _, rest = flag[2:].partition(".")
        rest = rest[len("init_args."):] if rest.startswith("init_args.") else rest
        if flag.startswith("--") and group in ("model", "data", "trainer") and rest and "." not in rest \
                and not rest.endswith(("help", "+")):
            yield flag, f"{group}.{rest}", value
    for path, prefix, scope in given.scopes():
        for group in ("model", "data", "trainer"):
            section = scope.get(group)
            args = section.get("init_args", section) if isinstance(section, dict) and group != "trainer" else section
            for name, value in (args if isinstance(args, dict) else {}).items():
                if name not in ("class_path", "init_args", "dict_kwargs"):
                    nested = ".init_args" if isinstance(section, dict) and "init_args" in section else ""
                    yield f"config file {path!r}, key {prefix}{group}{nested}.{name}", f"{group}.{name}", value


def _fits(annotation, value) -> bool:
    """Whether jsonargparse takes ``value`` (as written) for ``annotation``."""
    from jsonargparse import ArgumentParser

    if annotation in (None, inspect.Parameter.empty):
        return True
    try:
        parser = ArgumentParser(exit_on_error=False)
        parser.add_argument("--v", type=annotation)
        parser.parse_args(["--v", value if isinstance(value, str) else json.dumps(value)])
    except Exception:  # noqa: BLE001  (any refusal: the value does not fit)
        return False
    return True


def _type_words(annotation) -> str:
    """A type as a message says it: ``one of a, b`` for choices, else its classes by their short
    names (``list[Callback] | Callback | None``)."""
    literals = [a for a in typing.get_args(annotation) for a in (typing.get_args(a) or [a]) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Literal, typing.Union) and all(not isinstance(a, type) for a in literals):
        return "one of " + ", ".join(str(a) for a in literals)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_words(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return "None" if annotation is type(None) else annotation.__name__
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(annotation))  # list[lightning...Callback]: list[Callback]


def explain_parse_error(given: Given, message: str) -> str:
    """A parse error as one line: the first unknown option (with "did you mean"), else the first
    value its type refuses, else jsonargparse's own first line."""
    problem = class_name_problem(given)
    if problem:
        return problem
    keys = _option_keys(given)
    for where, key, _ in _given_options(given):
        if key in keys:
            continue
        group, _, name = key.partition(".")
        flag = f"--{group}"
        foreign = group != "trainer" and _foreign_argument(given.chosen_class(flag), name, flag, where)
        if foreign:
            return foreign
        close = difflib.get_close_matches(key, list(keys), n=2, cutoff=0.7)
        hint = f"; did you mean {' or '.join('--' + c for c in close)}?" if close else ""
        return f"unknown option {where if where.startswith('--') else f'--{key} ({where})'}{hint}"
    for where, key, value in _given_options(given):
        if isinstance(value, (str, int, float, bool)) and not _fits(keys[key], value):
            return f"{where if where.startswith('--') else where + ','} expects {_type_words(keys[key])}, got {value!r}"
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip() and not ln.startswith("usage:")]
    text = " ".join(lines[:2] if lines and lines[0].endswith(":") else lines[:1]) or str(message)
    return text if len(text) <= 300 else text[:297] + "..."
