"""``tcx fit --help`` (and validate, test, predict): one screen a person can read, the command's
model and data with an argument per line, the default callbacks, the options most runs change.
LightningCLI's own help (every Trainer argument as one blob) stays available as ``--help-all``."""

from __future__ import annotations

import inspect
from pathlib import Path

from tcx.cli.arguments import DEFAULT_CLASSES, _yaml, class_arguments, import_class, short_names

#: model arguments the CLI fills itself (from the data, --optimizer and --lr_scheduler)
LINKED = ("input_shape", "optimizer", "lr_scheduler")

WHAT = {
    "fit": "Train a model (AnchorVAE on procedural dSprites unless --model/--data say otherwise).",
    "validate": "Evaluate a checkpoint on the validation split; ends with the summary of the terms and metrics.",
    "test": "Evaluate a checkpoint on the test split; ends with the summary of the terms and metrics.",
    "predict": "Write the posterior (mean, log_var, and labels or factors) of the predict split to <run>/predictions.npz.",
}

COMMON = (
    ("-c, --config FILE|NAME", "a YAML config, or a packaged experiment by name (`tcx configs` lists them)"),
    ("--ckpt_path CKPT", "a checkpoint: resume (fit) or evaluate; its own model and data unless given"),
    ("--trust", "build the classes a checkpoint records even when they are not tcx's (your own datamodule)"),
    ("--trainer.max_epochs N", "epochs to train (default 1)"),
    ("--trainer.precision P", "32-true, bf16-mixed, 16-mixed (default: chosen by the hardware)"),
    ("--trainer.accelerator A", "cpu, gpu, auto; --trainer.devices N, --trainer.num_nodes N"),
    ("--trainer.strategy S", "ddp, fsdp, ... for several devices"),
    ("--trainer.logger L", "WandbLogger (default, offline without a key), CSVLogger, TensorBoardLogger, false"),
    ("--trainer.default_root_dir DIR", "where a run without a logger writes (default runs/<command>-<time>-<pid>)"),
    ("--trainer.callbacks '[]'", "no callbacks; --trainer.callbacks+=CLASS adds one"),
    ("--optimizer CLASS", "the optimizer instead of Adam(lr) (e.g. SGD, --optimizer.lr 0.1)"),
    ("--lr_scheduler CLASS", "a learning-rate scheduler (e.g. CosineAnnealingLR --lr_scheduler.T_max 10)"),
    ("--seed_everything N", "the seed (default 0)"),
)

MORE = (
    ("tcx {cmd} --model.help CLASS", "every argument of a model family, with its documentation"),
    ("tcx {cmd} --data.help CLASS", "every argument of a datamodule"),
    ("tcx {cmd} --trainer.callbacks.help CLASS", "every argument of a callback"),
    ("tcx {cmd} --print_config", "the whole configuration of this command, ready to edit and pass with -c"),
    ("tcx {cmd} --help-all", "LightningCLI's full list of options"),
)


def _first_line(cls) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.split("\n\n")[0].replace("\n", " ").replace("``", "").strip()


def _section(title: str, rows, width: int = 34) -> list[str]:
    lines = [title]
    for key, text in rows:
        key = f"  {key}"
        lines.append(f"{key.ljust(width)}{text}" if len(key) < width else f"{key}\n{' ' * width}{text}")
    return lines + [""]


def _default_callbacks(default_config: Path) -> list[tuple[str, str]]:
    import yaml

    config = yaml.safe_load(default_config.read_text()) or {}
    rows = []
    for cb in (config.get("trainer") or {}).get("callbacks") or []:
        args = ", ".join(f"{k} {_yaml(v)}" for k, v in (cb.get("init_args") or {}).items())
        rows.append((str(cb.get("class_path", "")).rpartition(".")[2], args or "(its defaults)"))
    return rows


def command_help(given, default_config: Path) -> str:
    """The help text of ``tcx COMMAND`` for the model family and the datamodule ``given`` names
    (the defaults otherwise), listing the other families and datamodules by name."""
    command = given.command
    model_cls, data_cls = (given.chosen_class(g) or import_class(DEFAULT_CLASSES[g]) for g in ("--model", "--data"))
    models, datamodules = short_names("--model"), short_names("--data")
    lines = [
        f"usage: tcx {command} [-c CONFIG] [--model CLASS] [--model.ARG VALUE ...] [--data CLASS]",
        f"       {' ' * len(command)}     [--data.ARG VALUE ...] [--trainer.ARG VALUE ...] [--ckpt_path CKPT] ...",
        "",
        WHAT.get(command, ""),
        "",
    ]
    lines += _section(f"--model {model_cls.__name__}: {_first_line(model_cls)}",
                      [(f"--model.{k}", v) for k, v in class_arguments(model_cls) if k not in LINKED])
    others = [n for n in models if n not in (model_cls.__name__, "CorExVAE")]
    lines += [f"  other families (--model NAME): {', '.join(others)}", ""]
    lines += _section(f"--data {data_cls.__name__}: {_first_line(data_cls)}",
                      [(f"--data.{k}", v) for k, v in class_arguments(data_cls)])
    lines += [f"  other datamodules (--data NAME): {', '.join(n for n in datamodules if n != data_cls.__name__)}",
              "  or your own: --data my_package.MyDataModule (README, 'Your own data')", ""]
    lines += _section("callbacks of the default config (--trainer.callbacks):", _default_callbacks(default_config))
    lines += _section("options most runs change:", COMMON)
    lines += _section("more:", [(k.format(cmd=command), v) for k, v in MORE], width=44)
    return "\n".join(lines).rstrip() + "\n"
