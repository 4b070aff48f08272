"""A checkpoint knows its run: what ``--ckpt_path`` brings to a ``tcx`` command.

Every checkpoint of a ``tcx`` run records its model family and its datamodule's class and
arguments. With ``--ckpt_path`` and no ``--model``/``--data``, :func:`with_checkpoint_classes`
names the checkpoint's own, after :func:`check_recorded_classes` has checked every class path it
records; what the user gives is reconciled with it by :func:`reconcile_model`. The README's
"After training" section has the rules with examples.
"""

from __future__ import annotations

import json
from typing import Any

from tcx.checkpoint_record import CheckpointMismatch, plain_config, recorded_run

#: settings restored with the optimizer's state on resume: a change cannot be honoured
OPTIMIZER_KEYS = frozenset({"lr", "weight_decay", "discriminator_lr", "discriminator_betas", "optimizer",
                            "lr_scheduler"})


def read_recorded_run(ckpt_path) -> dict:
    """What the checkpoint at ``ckpt_path`` (read as data) records of its run (``tcx.checkpoint_record``)."""
    from tcx.safe_io import load_checkpoint

    return recorded_run(load_checkpoint(ckpt_path), ckpt_path)


def _allowed(group: str) -> dict:
    """The class paths a user could name for ``group``: tcx's, and torch's optimizers and schedulers."""
    if group in ("--model", "--data"):
        from tcx.cli.arguments import nameable_classes

        return nameable_classes(group)
    import torch

    from tcx.safe_io import class_spellings

    module = torch.optim if group == "--optimizer" else torch.optim.lr_scheduler
    found = (getattr(module, n, None) for n in getattr(module, "__all__", ()))
    return class_spellings(c for c in found if isinstance(c, type))


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

    from tcx.safe_io import check_checkpoint_path, resolve_class, shown

    ckpt = given.ckpt_path if given.command else None
    if ckpt is None or ckpt in ("last", "best", "hpc", "registry"):
        return []  # no checkpoint, or one of Lightning's named ones (it finds those itself)
    check_checkpoint_path(ckpt, "--ckpt_path")
    run = given.recorded = read_recorded_run(ckpt)  # the command's one read of it
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
