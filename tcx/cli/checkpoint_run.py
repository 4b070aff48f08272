"""A checkpoint knows its run: what ``--ckpt_path`` brings to a ``tcx`` command.

Every checkpoint of a ``tcx`` run records its model family and its datamodule's class and
arguments. With ``--ckpt_path`` and no ``--model``/``--data``, :func:`with_checkpoint_classes`
names the checkpoint's own, after :func:`check_recorded_classes` has checked every class path it
records; what the user gives is reconciled with it by :func:`reconcile_model`. The README's
"After training" section has the rules with examples.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tcx.callbacks.run_guard import DATA_CONFIG_KEY, WANDB_GROUP_KEY, WANDB_ID_KEY
from tcx.errors import MissingFileError, TcxError

#: settings restored with the optimizer's state on resume: a change cannot be honoured
OPTIMIZER_KEYS = frozenset({"lr", "weight_decay", "discriminator_lr", "discriminator_betas", "optimizer",
                            "lr_scheduler"})


class CheckpointMismatch(TcxError):
    """A command's model or data cannot be used with its ``--ckpt_path``."""


class _NoPlainForm(Exception):
    pass


def plain_config(value: Any, other=None) -> Any:
    """A parsed config as plain dicts, lists, strings and numbers (loadable with ``weights_only=True``);
    an object with no plain form becomes ``other(object)``, or without ``other`` the whole is ``None``."""
    def plain(v):
        v = v.as_dict() if hasattr(v, "as_dict") else v
        if isinstance(v, dict):  # jsonargparse's bookkeeping (__path__) left out
            return {str(k): plain(x) for k, x in v.items() if not str(k).startswith("__")}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if other is None:
            raise _NoPlainForm
        return other(v)

    try:
        return plain(value)
    except _NoPlainForm:
        return None


def recorded_run(ckpt_path) -> dict:
    """What the checkpoint at ``ckpt_path`` (read as data) records of its run: :func:`run_of`."""
    from tcx.safe_io import load_checkpoint

    return run_of(load_checkpoint(ckpt_path), ckpt_path)


def run_of(checkpoint: dict, ckpt_path="the checkpoint") -> dict:
    """``model_class``, ``model_args`` (its hyperparameters), ``data`` (``{"class_path", "init_args"}``
    or ``None``), ``wandb_id``, ``wandb_group``, ``precision`` and ``classes`` (every class path in it)."""
    from tcx.models.checkpoints import CLASS_KEY, DATAMODULE_CLASS_KEY, PRECISION_KEY

    if "state_dict" not in checkpoint or "pytorch-lightning_version" not in checkpoint:
        raise CheckpointMismatch(
            f"checkpoint {str(ckpt_path)!r} is not a Lightning checkpoint (it has no "
            f"{'state_dict' if 'state_dict' not in checkpoint else 'pytorch-lightning_version'}); give a .ckpt "
            "written by `tcx fit` (runs/.../checkpoints/last.ckpt)")
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    model_class = hparams.pop("_class_path", None) or checkpoint.get(CLASS_KEY)
    # the rest of LightningCLI's bookkeeping (underscored keys) is no model argument
    hparams = {k: v for k, v in hparams.items() if not str(k).startswith("_")}
    data = checkpoint.get(DATA_CONFIG_KEY)
    if not data and checkpoint.get(DATAMODULE_CLASS_KEY):
        # a checkpoint written outside the CLI: the class, and Lightning's copy of the
        # datamodule's arguments when it saved its hyperparameters
        init = {k: v for k, v in dict(checkpoint.get("datamodule_hyper_parameters") or {}).items()
                if not str(k).startswith("_")}
        data = {"class_path": checkpoint[DATAMODULE_CLASS_KEY], "init_args": init}
    classes = [("--model", path) for path in (checkpoint.get(CLASS_KEY), model_class) if path is not None]
    classes += [("--data", path) for path in ((data or {}).get("class_path") if isinstance(data, dict) else data,
                                              checkpoint.get(DATAMODULE_CLASS_KEY)) if path is not None]
    classes += [(group, path) for group, value in (("--optimizer", hparams.get("optimizer")),
                                                   ("--lr_scheduler", hparams.get("lr_scheduler")))
                for path in _class_paths(value)]
    if not (isinstance(data, dict) and isinstance(data.get("class_path"), str)):
        data = None  # nothing usable (refused above unless --trust: then the default data)
    elif not isinstance(data.get("init_args") or {}, dict):
        data = {"class_path": data["class_path"], "init_args": {}}
    return {"model_class": model_class if isinstance(model_class, str) else None, "model_args": hparams,
            "data": data or None,
            "wandb_id": checkpoint.get(WANDB_ID_KEY), "wandb_group": checkpoint.get(WANDB_GROUP_KEY),
            "precision": checkpoint.get(PRECISION_KEY),
            "classes": classes}


def _class_paths(value) -> list:
    """Every ``class_path`` inside a recorded setting (a class spec, or a bare class path)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        found = [value["class_path"]] if "class_path" in value else []
        return found + [p for k, v in value.items() if k != "class_path" for p in _class_paths(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _class_paths(v)]
    return []


def _allowed(group: str) -> dict:
    """The class paths a user could name for ``group``: tcx's, and torch's optimizers and schedulers."""
    if group in ("--model", "--data"):
        from tcx.cli.arguments import nameable_classes

        return nameable_classes(group)
    import torch

    module = torch.optim if group == "--optimizer" else torch.optim.lr_scheduler
    names = [n for n in getattr(module, "__all__", ()) if isinstance(getattr(module, n, None), type)]
    return {**{f"{module.__name__}.{n}": getattr(module, n) for n in names}, **{n: getattr(module, n) for n in names}}


def check_recorded_classes(run: dict, source: str, user_modules=(), trust: bool = False, unused=()) -> None:
    """Refuse (:class:`tcx.safe_io.CheckpointRefused`), before anything imports it, a class path
    recorded in ``run`` that a user could not have named: not :func:`_allowed`, nor in a module the
    command line names (``user_modules``), unless ``trust``. ``unused``: groups the command replaces."""
    from tcx.safe_io import CheckpointRefused, shown

    if trust:
        return
    for group, path in run.get("classes", ()):
        if group in unused:
            continue
        if isinstance(path, str) and (path in _allowed(group) or path.rpartition(".")[0] in set(user_modules)):
            continue
        what = {"--model": "model family", "--data": "datamodule"}.get(group, group[2:].replace("_", " "))
        short = sorted(n for n in _allowed(group) if "." not in n) if group in ("--model", "--data") else []
        raise CheckpointRefused(
            f"{source} names the {what} {shown(path, quote=True)}, which is not one of "
            + (f"tcx's ({', '.join(short)})" if short else "torch.optim's")
            + "; tcx imports only classes a user could name on the command line. If the checkpoint is yours "
            f"and the class your own, pass --trust, or name your module on the command line "
            f"({group} my_module.MyClass)"
        )


def with_checkpoint_classes(given) -> list[str]:
    """Name the checkpoint's own model and data on ``given``'s command line where it names none;
    returns the notes that say where the model and the data come from."""
    from lightning.pytorch import LightningDataModule

    from tcx.safe_io import checkpoint_exists, resolve_class, shown

    ckpt = given.ckpt_path if given.command else None
    if not ckpt or ckpt in ("last", "best", "hpc", "registry"):
        return []  # no checkpoint, or one of Lightning's named ones (it finds those itself)
    if not checkpoint_exists(ckpt):
        raise MissingFileError(f"--ckpt_path {ckpt!r} does not exist; give the path of a .ckpt file written by "
                               "`tcx fit` (e.g. runs/tcx/<run>/checkpoints/last.ckpt)")
    run = given.recorded = recorded_run(ckpt)  # the command's one read of it
    named = {g for g in ("--model", "--data") if given.names(g)}
    # the recorded model class is checked even when --model is given: Lightning reads the
    # checkpoint's hyperparameters, class included, into the model's config
    check_recorded_classes(run, f"checkpoint {ckpt!r}", given.user_modules(), given.trust, unused=named & {"--data"})
    inserted, notes = [], []

    def as_given(group: str, recorded_class) -> str:
        values = given.values(group)
        name = values[-1].rpartition(".")[2] if values else f"of the -c file's {group[2:]} section"
        held = shown(str(recorded_class or "").rpartition(".")[2])
        differs = f"; the checkpoint's is {held}" if held and held != name else ""
        return f"{group[2:]} {name} (given with {group}{differs})"

    if "--model" in named:
        notes.append(as_given("--model", run["model_class"]))
    elif run["model_class"]:
        inserted.append(f"--model={run['model_class']}")
        notes.append(f"model {shown(run['model_class'].rpartition('.')[2])} (from the checkpoint)")
    if "--data" in named:
        notes.append(as_given("--data", (run["data"] or {}).get("class_path")))
    elif run["data"]:
        # a LightningDataModule (checked here, before anything of it is built); imported only
        # when it passed check_recorded_classes above
        resolve_class(run["data"]["class_path"], _allowed("--data"), LightningDataModule, what="datamodule",
                      source=f"checkpoint {ckpt!r}", trust=True)
        inserted.append("--data=" + json.dumps(run["data"]))
        notes.append(f"data {shown(run['data']['class_path'].rpartition('.')[2])} (from the checkpoint)")
    else:
        notes.append("data: the default (the checkpoint names no datamodule; give --data)")
    notes.append(f"checkpoint {shown(ckpt, 300)}")
    given.argv[1:1] = inserted
    given.flags[:0] = [tuple(a.split("=", 1)) for a in inserted]
    return notes


def _same(a, b) -> bool:
    return json.dumps(plain_config(a), sort_keys=True, default=str) == json.dumps(plain_config(b), sort_keys=True,
                                                                                 default=str)


def _short(value) -> str:
    """A setting in a message: a class spec by its class name, anything else as its repr."""
    value = plain_config(value)
    from tcx.safe_io import shown

    if isinstance(value, dict) and isinstance(value.get("class_path"), str):
        return shown(value["class_path"].rpartition(".")[2])
    return shown(value, quote=True)


def reconcile_model(subcommand: str, user_model, merged_model, recorded: dict, explicit: set[str],
                    model_cls) -> tuple[Any, list[str]]:
    """The model config to build with ``--ckpt_path``, and the notes to print: ``user_model`` as the
    arguments gave it, ``merged_model`` with the checkpoint's hyperparameters applied. A change the
    weights or the optimizer state cannot follow is a :class:`CheckpointMismatch` naming the keys."""
    ckpt_class = recorded.get("model_class")
    user_class = user_model.get("class_path") if hasattr(user_model, "get") else None
    from tcx.safe_io import shown

    ckpt_name = shown(str(ckpt_class).rpartition(".")[2])
    if ckpt_class and user_class and user_class != ckpt_class:
        if subcommand == "fit":
            raise CheckpointMismatch(
                f"--ckpt_path holds a {ckpt_name} and --model asks for {user_class.rpartition('.')[2]}: a fit "
                f"resumes the model it checkpointed; drop --model to resume the {ckpt_name}, or start a new fit "
                "without --ckpt_path")
        # evaluation with another family, as the user asked (the first line says so): their
        # config, not the checkpoint's; Lightning refuses weights that do not fit it
        return user_model, []
    saved = recorded.get("model_args") or {}
    user_args = user_model.get("init_args") if hasattr(user_model, "get") else None
    merged_args = merged_model.get("init_args") if hasattr(merged_model, "get") else None
    if user_args is None or merged_args is None:
        return merged_model, []
    changed = sorted(k for k in explicit if k in saved and k in user_args and not _same(user_args[k], saved[k]))
    # the arguments that shape a family's weights: ARCHITECTURE over its MRO
    arch = {k for klass in getattr(model_cls, "__mro__", ()) for k in getattr(klass, "ARCHITECTURE", ())}
    refused = [k for k in changed if k in arch]
    if subcommand == "fit":
        refused += [k for k in changed if k in OPTIMIZER_KEYS and k not in refused]
    if refused:
        what = ", ".join(f"{k} (checkpoint {_short(saved[k])}, given {_short(user_args[k])})" for k in refused)
        why = ("a resumed fit restores the checkpoint's weights and optimizer state" if subcommand == "fit"
               else "the checkpoint's weights have that shape")
        raise CheckpointMismatch(
            f"--ckpt_path does not fit the given model settings: {what}; {why}. Drop those settings, "
            + ("or start a new fit without --ckpt_path" if subcommand == "fit" else "or use a checkpoint trained with them"))
    notes = []
    for k in changed:
        merged_args[k] = user_args[k]
        notes.append(f"model.{k}: {_short(user_args[k])} as given (the checkpoint was trained with {_short(saved[k])})")
    return merged_model, notes
