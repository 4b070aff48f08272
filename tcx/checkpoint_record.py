"""What a tcx checkpoint records beside the weights, and :func:`recorded_run` that reads it back.

A tcx model writes its family's and its datamodule's class paths and the Trainer's precision into
every checkpoint (``models/checkpoint_keys.py``); ``RunGuard`` adds the RNG states, the run's data
config and its W&B run (``callbacks/run_guard.py``). The keys live here, in the core, so that the
models, the callbacks, ``tcx.datamodules.load_datamodule`` and the ``tcx`` command read one list;
:func:`plain_config` makes a config plain enough to record (and for ``summary.json``).
"""

from __future__ import annotations

import os
from typing import Any

from tcx.errors import TcxError

CLASS_KEY = "tcx_model_class"
DATAMODULE_CLASS_KEY = "tcx_datamodule_class"
#: the Trainer precision the checkpoint's run trained in (a resumed run keeps it unless told otherwise)
PRECISION_KEY = "tcx_precision"
#: the RNG states, the ``--data`` config (class_path and init_args), the W&B run the checkpoint
#: was logged to (a resumed fit continues it) and its group (an evaluation joins it)
RNG_KEY = "tcx_rng_states"
DATA_CONFIG_KEY = "tcx_data_config"
WANDB_ID_KEY = "tcx_wandb_run_id"
WANDB_GROUP_KEY = "tcx_wandb_group"


class _NoPlainForm(Exception):
    pass


def plain_config(value: Any, other=None) -> Any:
    """A config as plain dicts, lists, strings and numbers (loadable with ``weights_only=True``);
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


class CheckpointMismatch(TcxError):
    """A checkpoint that is not what is asked of it (not a Lightning checkpoint, another model)."""


def recorded_run(checkpoint: dict, ckpt_path="the checkpoint") -> dict:
    """``model_class``, ``model_args`` (its hyperparameters), ``data`` (``{"class_path", "init_args"}``
    or ``None``), ``wandb_id``, ``wandb_group``, ``precision`` and ``classes`` (every class path in it)."""
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
