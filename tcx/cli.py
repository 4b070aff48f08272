"""The ``tcx`` command: LightningCLI over tcx's models, datamodules and callbacks.

This module is the composition root (docs/design.md#dependency-direction): it alone imports models,
datamodules and callbacks together, and nothing imports it.

    tcx fit                                  # the default: AnchorVAE on procedural dSprites
    tcx fit -c configs/anchorvae_dsprites.yaml   # a YAML file, or a packaged experiment by name:
    tcx fit -c anchorvae_dsprites
    tcx configs                              # list the packaged experiments
    tcx fit --model BetaVAE --model.beta 4 --data DSprites
    tcx fit --model tcx.models.VAE --trainer.max_epochs 3
    tcx fit --print_config                   # the full configuration, ready to edit
    tcx traverse --ckpt_path CKPT --out DIR  # traversals, samples, information chart of a checkpoint

Every subcommand starts from the packaged default configuration (``tcx/default_config.yaml``);
``-c`` files and flags override it. The model's ``input_shape`` is taken from the datamodule's
``input_shape``. W&B runs offline unless the user has set it up (an API key in the environment or
in ``~/.netrc``, or ``WANDB_MODE`` set), so a run never fails for want of a W&B server.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from tcx.errors import TcxError

# OpenMP reads its wait policy once, when torch loads it: set before torch is imported. PASSIVE
# threads sleep between parallel regions instead of spinning, which protects shared cores and
# costs nothing measurable on a dedicated machine (benchmarks/results/train_throughput.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.cli import LightningCLI, LRSchedulerTypeTuple

import tcx.callbacks  # noqa: F401  (registers callback classes for short names in configs)
import tcx.datamodules  # noqa: F401  (registers datamodule classes for `--data NAME`)
import tcx.models  # noqa: F401  (registers model classes for `--model NAME`)
from tcx import checkpoint_run, runtime
from tcx.run_folder import RunConfig, give_run_a_folder
from tcx.traverse import traverse_main
from tcx.callbacks import media_files
from tcx.hardware import default_precision
from tcx.experiments import describe_experiments, flag_values, resolve_config_args
from tcx.models.base import CorExVAE

DEFAULT_CONFIG = Path(__file__).with_name("default_config.yaml")
SUBCOMMANDS = ("fit", "validate", "test", "predict")

__all__ = ["TcxCLI", "main", "DEFAULT_CONFIG", "configure_wandb_mode"]


def configure_wandb_mode(environ=os.environ) -> str:
    """Choose W&B's mode: the user's ``WANDB_MODE`` if set; online if an API key is configured
    (``WANDB_API_KEY`` or an ``api.wandb.ai`` entry in ``~/.netrc``); offline otherwise."""
    if environ.get("WANDB_MODE"):
        return environ["WANDB_MODE"]
    netrc = Path(environ.get("NETRC", Path.home() / ".netrc"))
    has_key = bool(environ.get("WANDB_API_KEY"))
    if not has_key and netrc.is_file():
        try:
            has_key = "api.wandb.ai" in netrc.read_text(errors="ignore")
        except OSError:
            has_key = False
    mode = "online" if has_key else "offline"
    environ["WANDB_MODE"] = mode
    return mode


def _input_shape_of(datamodule) -> tuple[int, ...]:
    shape = getattr(datamodule, "input_shape", None)
    if shape is None:
        raise TcxError(
            f"the datamodule {type(datamodule).__name__} does not declare `input_shape`; "
            "give it an attribute or property `input_shape` (e.g. (1, 64, 64) for [C, H, W] images, "
            "or (n,) for vectors): tcx builds the model's networks from it"
        )
    return tuple(int(s) for s in shape)


def _fmt(value, unit: str = "nats") -> str:
    if value is None:
        return "n/a"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    return f"{v:10.3f} {unit}".rstrip()


class TcxCLI(LightningCLI):
    """LightningCLI with tcx's wiring: the model's ``input_shape`` comes from the datamodule, a
    ``--ckpt_path`` is reconciled with what the user gave (tcx/checkpoint_run.py), and ``fit``,
    ``validate`` and ``test`` end with a summary of the objective's terms and the metrics."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data", "model.init_args.input_shape", compute_fn=_input_shape_of, apply_on="instantiate")
        # --optimizer / --lr_scheduler go to the model (CorExVAE's `optimizer`, `lr_scheduler`),
        # which every family, FactorVAE's two optimizers included, builds its own way
        parser.add_optimizer_args((torch.optim.Optimizer,), link_to="model.init_args.optimizer")
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple, link_to="model.init_args.lr_scheduler")

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # the model config as the user's arguments give it, before Lightning applies a
        # checkpoint's hyperparameters over it (reconciled in before_instantiate_classes)
        self.config_as_given = self.config.clone()
        argv = list(args or [])
        files = [path for _, _, path in flag_values(argv, ("-c", "--config"))]
        self.explicit_model = checkpoint_run.explicit_model_keys(argv, files)

    def before_instantiate_classes(self) -> None:
        # no precision given (the default config has none): the hardware's choice (tcx.hardware)
        config = self.config[self.subcommand] if self.subcommand else self.config
        self.precision_note = resolve_precision(config)
        give_run_a_folder(config.get("trainer"), self.subcommand or "run")
        self.recorded = None
        if self.subcommand and config.get("ckpt_path") and Path(config["ckpt_path"]).is_file():
            self.recorded = checkpoint_run.recorded_run(config["ckpt_path"])
            given = self.config_as_given[self.subcommand].get("model")
            model_cls = _import_class(config["model"].get("class_path"))
            config["model"], notes = checkpoint_run.reconcile_model(
                self.subcommand, given, config["model"], self.recorded, self.explicit_model, model_cls)
            _say(notes)
        if self.subcommand == "fit":
            runtime.resume_wandb_run(config)  # a resumed fit continues its checkpoint's W&B run
        self.data_record = checkpoint_run.plain_config(config.get("data"))

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        recorded = getattr(self, "recorded", None)
        saved = (recorded or {}).get("model_args", {}).get("input_shape")
        model = getattr(self, "model", None)
        if saved is not None and model is not None and tuple(model.input_shape) != tuple(saved):
            raise checkpoint_run.CheckpointMismatch(
                f"--ckpt_path holds a model of inputs {tuple(saved)}, and the data "
                f"{type(self.datamodule).__name__} gives inputs {tuple(model.input_shape)}: use the data the "
                "checkpoint was trained on (drop --data to use the one it records)")

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        runtime.prepare_trainer(trainer, data_config=getattr(self, "data_record", None))
        return trainer

    def before_fit(self) -> None:
        self._fit_started = time.perf_counter()
        runtime.check_loggers_writable(self.trainer)
        _TERMINATION.in_fit = True

    def after_fit(self) -> None:
        _TERMINATION.in_fit = False
        self._summary("fit", "val", getattr(self, "_fit_started", None))

    def before_validate(self) -> None:
        self._eval_started = time.perf_counter()

    def after_validate(self) -> None:
        self._summary("validate", "val", getattr(self, "_eval_started", None))

    def before_test(self) -> None:
        _check_loader(self.datamodule, "test")
        self._eval_started = time.perf_counter()

    def before_predict(self) -> None:
        _check_loader(self.datamodule, "predict")

    def after_test(self) -> None:
        self._summary("test", "test", getattr(self, "_eval_started", None))

    def _summary(self, command: str, stage: str, started: float | None) -> None:
        if not self.trainer.is_global_zero:
            return
        seconds = time.perf_counter() - started if started is not None else 0.0
        ckpt_path = self.config[self.subcommand].get("ckpt_path") if command != "fit" else None
        print(fit_summary(self.trainer, self.model, seconds, precision_note=getattr(self, "precision_note", None),
                          command=command, stage=stage, ckpt_path=ckpt_path))


def _check_loader(datamodule, stage: str) -> None:
    """Refuse ``tcx test``/``tcx predict`` on a datamodule without that split's loader, in one line
    (Lightning's own message does not name the datamodule)."""
    from lightning.pytorch.utilities.model_helpers import is_overridden

    if datamodule is not None and not is_overridden(f"{stage}_dataloader", datamodule, pl.LightningDataModule):
        raise runtime.TcxError(
            f"the datamodule {type(datamodule).__name__} has no {stage}_dataloader(): `tcx {stage}` runs on "
            f"what it yields; give the class a {stage}_dataloader() (e.g. returning the validation loader) "
            "or run `tcx validate`")


def _import_class(class_path):
    import importlib

    module, _, name = str(class_path or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _rank_zero() -> bool:
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def _say(notes) -> None:
    if notes and _rank_zero():
        for note in notes:
            print(f"tcx: {note}", flush=True)


def resolve_precision(config) -> str:
    """Set ``trainer.precision`` in a parsed config when it is unset (``null``, the default) to
    the hardware's choice (:func:`tcx.hardware.default_precision`), print the choice and why on
    rank 0, and return it in words. An explicit precision is kept and said to be the user's."""
    trainer = config.get("trainer") if hasattr(config, "get") else None
    if trainer is None:
        return ""
    given = trainer.get("precision")
    if given is not None:
        note = f"{given} (given explicitly)"
    else:
        precision, reason = default_precision(trainer.get("accelerator", "auto"))
        trainer["precision"] = precision
        note = f"{precision} (chosen by the hardware: {reason})"
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        print(f"tcx: precision {note}", flush=True)
    return note


def fit_summary(trainer: pl.Trainer, model: CorExVAE, seconds: float, precision_note: str | None = None,
                command: str = "fit", stage: str = "val", ckpt_path: str | None = None) -> str:
    """The table that ends ``fit``, ``validate`` and ``test``: ELBO, reconstruction, rates (anchors
    against the others) in nats from the ``stage`` split (``val``, or ``test``; a fit with no
    validation falls back to its training values), the metrics that ran, and the run's files."""
    metrics = {k: v for k, v in trainer.callback_metrics.items()}
    if not any(k.startswith(f"{stage}/") for k in metrics) and any(k.startswith("train/") for k in metrics):
        stage = "train"

    def get(name):
        value = metrics.get(f"{stage}/{name}")
        return None if value is None else float(value)

    latent_dim = getattr(model, "latent_dim", 0)
    rates = [get(f"rate/z{j}") for j in range(latent_dim)]
    anchors = tuple(getattr(model, "anchor_indices", ()))
    rows = [
        ("ELBO", _fmt(get("elbo"))),
        ("reconstruction E log q(x|z)", _fmt(get("reconstruction"))),
        ("total rate sum_j KL_j", _fmt(get("rate"))),
    ]
    if get("corex_bound") is not None:
        rows.append(("CorEx bound sum_i H(X_i) + ELBO", _fmt(get("corex_bound"))))
    if anchors and all(r is not None for r in rates):
        others = [j for j in range(latent_dim) if j not in anchors]
        a_sum = sum(rates[j] for j in anchors)
        o_sum = sum(rates[j] for j in others)
        rows.append((f"anchors' rate ({len(anchors)} latents {list(anchors)})", _fmt(a_sum)))
        rows.append((f"other latents' rate ({len(others)} latents)", _fmt(o_sum)))
        rows.append(("mean rate per anchor / per other", f"{a_sum / len(anchors):.3f} / "
                     f"{(o_sum / len(others)) if others else float('nan'):.3f} nats"))
    if all(r is not None for r in rates) and rates:
        rows.append(("rate per latent", " ".join(f"{r:.2f}" for r in rates)))
    for key in ("diagnostics/mutual_info", "diagnostics/total_correlation"):
        if key in metrics:
            rows.append((key.replace("diagnostics/", "estimated ").replace("_", " ") + " (nats)",
                         f"{float(metrics[key]):.3f}"))
    for key in sorted(metrics):
        if key.startswith("metrics/"):
            rows.append((key, f"{float(metrics[key]):.4f}"))
    if command == "fit":
        rows.append(("epochs / steps", f"{trainer.current_epoch} / {trainer.global_step}"))
    rows.append(("precision", precision_note or str(trainer.precision)))
    rows.append(("wall time", f"{seconds:.1f} s"))

    ckpt = trainer.checkpoint_callback
    if ckpt is not None:
        path = ckpt_path or ckpt.last_model_path or ckpt.best_model_path
        if path:
            rows.append(("checkpoint", str(path)))
    pictures = media_files(trainer)
    if pictures:
        rows.append(("pictures", str(Path(next(iter(pictures.values()))).parent)))
        for key in ("media/traversal", "diagnostics/information", "media/anchor_samples_held"):
            if key in pictures:
                rows.append((f"  {key}", Path(pictures[key]).name))
    for logger in trainer.loggers:
        name = type(logger).__name__
        if name == "WandbLogger":
            run = logger.experiment
            run_dir = Path(getattr(run, "dir", "") or "").parent
            mode = os.environ.get("WANDB_MODE", "online")
            rows.append((f"W&B run ({mode})", str(run_dir)))
            if mode == "offline":
                rows.append(("upload it with", f"wandb sync {run_dir}"))
        elif getattr(logger, "log_dir", None):
            rows.append((name, str(logger.log_dir)))
    width = max(len(k) for k, _ in rows)
    title = f"tcx {command} summary: {type(model).__name__} ({stage} set)"
    lines = ["", title, "-" * max(len(title), width + 30)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def _known_classes(module, base) -> dict[str, str]:
    return {
        name: f"{module.__name__}.{name}"
        for name in getattr(module, "__all__", ())
        if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), base)
    }


def _registered(module, base) -> list[type]:
    """The classes of ``module.__all__`` that subclass ``base``: what ``--model``/``--data`` name."""
    return [getattr(module, name) for name in _known_classes(module, base)]


def check_class_names(argv: list[str]) -> None:
    """Refuse an unknown ``--model NAME`` or ``--data NAME`` before anything is built, naming the
    value and what is allowed (jsonargparse's own message lists neither)."""
    choices = {
        "--model": _known_classes(tcx.models, CorExVAE),
        "--data": _known_classes(tcx.datamodules, pl.LightningDataModule),
    }
    for _, flag, value in flag_values(argv, tuple(choices)):
        known = choices[flag]
        if "." in value or value.startswith(("{", "[")) or value in known or value.endswith((".yaml", ".yml", ".json")):
            continue
        raise SystemExit(
            f"tcx: error: {flag} {value!r} is not a known class. Choose one of "
            f"{', '.join(sorted(known))}, or give a full import path such as "
            f"'my_package.MyClass' (a class importable from the current environment)."
        )


DEFAULT_CLASSES = {"--model": "tcx.models.AnchorVAE", "--data": "tcx.datamodules.DSprites"}


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


def _all_config_keys(argv: list[str]) -> set[str]:
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
    given |= {f"--{k}" for k in _all_config_keys(argv) if f"--{k}" in DEFAULT_CLASSES}
    missing = [f"{flag}={cls}" for flag, cls in DEFAULT_CLASSES.items() if flag not in given]
    return [argv[0], *missing, *argv[1:]]


#: warnings a default run would show that no user can act on, matched precisely by message
KNOWN_UNACTIONABLE_WARNINGS = (
    # main() passes argv to LightningCLI itself (to add the default classes)
    r"LightningCLI's args parameter is intended to run from within Python",
    # Lightning's notice about torch's pytree API
    r".*isinstance\(treespec, LeafSpec\)",
    # the model summary counts parameters only; the precision is the hardware's choice
    r"Precision (bf16|16)-mixed is not supported by the model summary",
    # ModelCheckpoint, loading a checkpoint of another run folder: tcx gives every run its own
    # folder, so the previous run's top-k bookkeeping is rightly not carried over
    r"The dirpath has changed from",
)
#: Lightning's info-level advertisements (litlogger, litmodels), by their opening words
KNOWN_UNACTIONABLE_LOG_LINES = ("💡 Tip: For seamless cloud",)
#: W&B console warnings with nothing to act on: Lightning's WandbLogger always passes
#: ``anonymous``, and the git lookup of the run folder reports a folder W&B has not made yet
KNOWN_UNACTIONABLE_WANDB = (r"The anonymous setting has no effect", r"git root .* does not exist")


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(KNOWN_UNACTIONABLE_LOG_LINES)


def quiet_known_warnings() -> None:
    """Silence the known warnings a user cannot act on (KNOWN_UNACTIONABLE_*), by message;
    every other warning stays visible."""
    import re

    for message in KNOWN_UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in log.filters):
            log.addFilter(_DropLines())
    try:
        import wandb
    except ImportError:  # pragma: no cover
        return
    termwarn = wandb.termwarn
    if getattr(termwarn, "_tcx_filtered", False):
        return
    pattern = re.compile("|".join(KNOWN_UNACTIONABLE_WANDB))

    def filtered_termwarn(string, *args, **kwargs):
        if not pattern.match(str(string)):
            return termwarn(string, *args, **kwargs)

    filtered_termwarn._tcx_filtered = True
    wandb.termwarn = filtered_termwarn


_TERMINATION = runtime.TerminationWatch()


def main(args=None) -> None:
    """Entry point of the ``tcx`` console script.

    A user's error (a bad value, a missing file, a bad config, a diverged run, a full disk) is
    printed as one paragraph and exits with status 2; ``--debug`` or ``TCX_DEBUG=1`` shows the
    traceback instead. SIGTERM exits with 143 after writing ``interrupted.ckpt`` (``RunGuard``).
    """
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv or os.environ.get("TCX_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    _TERMINATION.received = False
    _TERMINATION.install()
    try:
        _main(argv)
    except runtime.SIGTERMException:
        raise SystemExit(143) from None
    except SystemExit:
        raise
    except BrokenPipeError:
        # whoever read the output went away (`tcx configs | head`): nothing failed; keep Python's
        # own flush at exit from raising again on the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print("tcx: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        message = None if debug else runtime.describe_error(exc)
        if message is None:
            raise
        print(f"tcx: error: {message}", file=sys.stderr)
        if os.environ.get("TCX_DEBUG") is None:
            print("(run with --debug or TCX_DEBUG=1 for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
    if _TERMINATION.received:
        raise SystemExit(143)


def _main(argv: list[str]) -> None:
    if argv and argv[0] == "traverse":
        # pictures from a checkpoint, without training (traverse_main below)
        raise SystemExit(traverse_main(argv[1:], datamodules=_registered(tcx.datamodules, pl.LightningDataModule)))
    if argv and argv[0] == "configs":
        print(describe_experiments())
        raise SystemExit(0)
    argv = resolve_config_args(argv)  # an unknown name: FileNotFoundError, one paragraph in main()
    configure_wandb_mode()
    runtime.settle_wandb_mode()
    quiet_known_warnings()
    check_class_names(argv)
    runtime.check_argument_order(argv)
    runtime.check_config_files(argv)
    argv, notes = checkpoint_run.with_checkpoint_classes(argv, _all_config_keys(argv))
    if notes and _rank_zero():  # the first line: which model and data run, and from where
        print(f"tcx {argv[0]}: " + ", ".join(notes), flush=True)
    argv = with_default_classes(argv)
    if argv and argv[0] in SUBCOMMANDS and ({"-h", "--help"} & set(argv)):
        print(_command_help(argv), end="")
        raise SystemExit(0)
    argv = ["--help" if a == "--help-all" else a for a in argv]
    if argv in (["-h"], ["--help"]):
        # LightningCLI lists its four subcommands; tcx's own two are named after them
        try:
            _run_cli(argv)
        finally:
            print(MORE_COMMANDS)
    _run_cli(argv)


MORE_COMMANDS = """
tcx's own commands (not LightningCLI's):
  configs             list the experiment configs shipped with tcx (select one by name: tcx fit -c NAME)
  traverse            pictures of a trained model from its checkpoint, without training
                      (tcx traverse --ckpt_path CKPT --out DIR; tcx traverse --help for its options)"""


def _command_help(argv: list[str]) -> str:
    """tcx's readable help of ``argv``'s subcommand, for the model and data its flags name."""
    from tcx.help import command_help

    models = _known_classes(tcx.models, CorExVAE)
    datamodules = _known_classes(tcx.datamodules, pl.LightningDataModule)
    chosen = {}
    for flag, known in (("--model", models), ("--data", datamodules)):
        values = [v for _, _, v in flag_values(argv, (flag,)) if not v.lstrip().startswith("{")]
        name = values[-1] if values else DEFAULT_CLASSES[flag]
        chosen[flag] = _import_class(known.get(name, name)) or _import_class(DEFAULT_CLASSES[flag])
    return command_help(argv[0], chosen["--model"], chosen["--data"], models, datamodules, DEFAULT_CONFIG)


def _finish_wandb(failed: bool) -> None:
    """End the command's W&B run (Lightning leaves it open for notebooks), so that the next
    command in the same process starts its own run and its own folder."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


def _run_cli(argv: list[str]) -> None:
    failed = True
    try:
        _build_cli(argv)
        failed = False
    finally:
        _finish_wandb(failed)


def _build_cli(argv: list[str]) -> None:
    TcxCLI(
        model_class=CorExVAE,
        datamodule_class=pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_kwargs={sub: {"default_config_files": [str(DEFAULT_CONFIG)]} for sub in SUBCOMMANDS},
        save_config_callback=RunConfig,
        save_config_kwargs={"overwrite": True, "save_to_log_dir": False},
        args=argv,
    )

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
