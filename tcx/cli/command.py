"""The ``tcx`` command, the composition root (docs/design.md#dependency-direction): LightningCLI over
tcx's models, datamodules and callbacks, which it alone imports together. Every subcommand starts
from ``tcx/default_config.yaml``; ``-c`` files and flags override it. docs/running.md has more."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# read by OpenMP once, when torch loads it: idle threads sleep instead of spinning on shared
# cores, at no measurable cost on a dedicated machine (benchmarks/results/train_throughput.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from jsonargparse import ArgumentError  # noqa: E402
from lightning.pytorch.cli import LightningCLI, LRSchedulerTypeTuple  # noqa: E402
from lightning.pytorch.utilities.exceptions import MisconfigurationException  # noqa: E402
from lightning.pytorch.utilities.model_helpers import is_overridden  # noqa: E402

import tcx.callbacks  # noqa: E402  (registers the classes for short names in configs and --model/--data NAME)
import tcx.datamodules  # noqa: F401, E402
from tcx.callbacks.run_guard import LAST_INTERRUPT, SIGTERMException, guard_trainer  # noqa: E402
from tcx.callbacks.run_summary import RunSummary  # noqa: E402
from tcx.checkpoint_record import plain_config  # noqa: E402
from tcx.cli import checkpoint_run  # noqa: E402
from tcx.cli.arguments import (SUBCOMMANDS, check_given, check_trainer_settings, class_name_problem,  # noqa: E402
                               explain_parse_error, import_class, read_arguments, with_default_classes)
from tcx.cli.pipe import stdout_closed  # noqa: E402
from tcx.cli.precision import is_first_process, resolve_precision  # noqa: E402
from tcx.cli.quiet import quiet_known_warnings  # noqa: E402
from tcx.cli.run_folder import RunConfig, give_run_a_folder  # noqa: E402
from tcx.cli.shell_errors import describe_error, user_code_frame  # noqa: E402
from tcx.cli.traverse import traverse_main  # noqa: E402
from tcx.cli.wandb_setup import (configure_wandb_mode, finish_runs, label_wandb_run, quiet_wandb_footer,  # noqa: E402
                                 resume_wandb_run)
from tcx.datamodules.protocol import input_shape_of  # noqa: E402
from tcx.errors import TcxError, UserError  # noqa: E402
from tcx.hardware import keep_freed_memory  # noqa: E402
from tcx.models import CorExVAE  # noqa: E402
from tcx.safe_io import checkpoint_exists  # noqa: E402

DEFAULT_CONFIG = Path(__file__).parents[1] / "default_config.yaml"

class ParseError(Exception):
    """A parse error, as one line (``tcx.cli.arguments.explain_parse_error``)."""


class TcxCLI(LightningCLI):
    """LightningCLI with tcx's wiring: ``input_shape`` from the datamodule, a ``--ckpt_path``
    reconciled with what the user gave, and a summary at the end of every command."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data", "model.init_args.input_shape", compute_fn=input_shape_of, apply_on="instantiate")
        # --optimizer / --lr_scheduler go to the model (CorExVAE's `optimizer`, `lr_scheduler`),
        # which every family, FactorVAE's two optimizers included, builds its own way
        parser.add_optimizer_args((torch.optim.Optimizer,), link_to="model.init_args.optimizer")
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple, link_to="model.init_args.lr_scheduler")

    def __init__(self, given, **kwargs) -> None:
        self.given = given  # what the user gave (tcx/cli/arguments.py), read once before parsing
        super().__init__(**kwargs)

    def parse_arguments(self, parser, args) -> None:
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as exc:
            raise ParseError(explain_parse_error(self.given, str(exc))) from None
        # the config before Lightning applies a checkpoint's hyperparameters over it
        self.config_as_given = self.config.clone()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_trainer_settings(config)
        self.recorded = None
        ckpt = config.get("ckpt_path") if self.subcommand else None
        if ckpt and checkpoint_exists(ckpt):
            self.recorded = self.given.recorded if str(ckpt) == self.given.ckpt_path else None
            if self.recorded is None:  # a ckpt_path the pass over argv did not see: read and checked here
                self.recorded = checkpoint_run.read_recorded_run(ckpt)
                checkpoint_run.check_recorded_classes(self.recorded, f"checkpoint {str(ckpt)!r}",
                                                      self.given.user_modules(), self.given.trust)
            if not Path(str(config["ckpt_path"])).is_file():
                # Lightning applies a checkpoint's hyperparameters over the config for a local
                # file only; a URL's (s3://, file://) the same way, from the record read above
                config = self._with_recorded_model(self.recorded)
        self.precision_note = resolve_precision(config, self.recorded)
        give_run_a_folder(config.get("trainer"), self.subcommand or "run")
        if self.recorded is not None:
            given = self.config_as_given[self.subcommand].get("model")
            model_cls = import_class(config["model"].get("class_path"))
            config["model"], notes = checkpoint_run.reconcile_model(
                self.subcommand, given, config["model"], self.recorded, self.given.model_keys(), model_cls)
            _say(notes)
        if self.subcommand == "fit":
            resume_wandb_run(config, self.recorded)  # a resumed fit continues its checkpoint's W&B run
        label_wandb_run(config, self.subcommand, self.recorded)
        self.data_record = plain_config(config.get("data"))

    def _with_recorded_model(self, recorded: dict):
        """The config with the checkpoint's model applied, as LightningCLI does for a local file."""
        args = dict(recorded.get("model_args") or {})
        model = {"class_path": recorded["model_class"], "dict_kwargs": args} if recorded.get("model_class") else args
        if args or recorded.get("model_class"):
            self.config = self.parser.parse_object({self.subcommand: {"model": model}}, self.config)
        return self.config[self.subcommand]

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
        if self.subcommand in ("test", "predict"):
            check_loader(self.datamodule, self.subcommand)
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, ValueError, ImportError) as exc:
            # Lightning refusing the user's Trainer settings (a GPU or TPU not here, fsdp on CPU, devices 0)
            if isinstance(exc, UserError):
                raise
            raise TcxError(f"the Trainer settings cannot run here: {exc} (see --trainer.accelerator, devices, "
                           "strategy, precision; `tcx fit --help`)") from None
        self.summary = guard_trainer(trainer, data_config=self.data_record, summary=RunSummary(
            run_record(self.config[self.subcommand], self.subcommand), self.precision_note, wait_for_validate=True))
        return trainer

    def after_fit(self) -> None:
        if self.summary.pending:
            # a fit that ended without its validation terms (stopped by max_steps within an epoch,
            # or resumed after its last epoch's evaluation began): validated, so the table has them
            self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)


def run_record(config, subcommand: str) -> dict:
    """What a run is, as plain values for W&B's config and summary.json (``RunSummary`` adds the
    version, commit, precision and device): the command, the classes and their arguments, the
    Trainer's settings, the seed, the optimizer and scheduler, the checkpoint."""
    plain = plain_config(config, other=str)
    record = {"command": subcommand}
    for key in ("model", "data"):
        spec = plain.get(key) if isinstance(plain.get(key), dict) else {}
        record[f"{key}_class"] = spec.get("class_path")
        record[f"{key}_args"] = {**(spec.get("init_args") or {}), **(spec.get("dict_kwargs") or {})}
    return {**record, "trainer": plain.get("trainer") or {},
            **{k: plain.get(k) for k in ("seed_everything", "optimizer", "lr_scheduler", "ckpt_path")}}


def check_loader(datamodule, stage: str) -> None:
    """Refuse ``tcx test``/``predict`` on a datamodule without that split's loader, naming it."""
    if datamodule is not None and not is_overridden(f"{stage}_dataloader", datamodule, pl.LightningDataModule):
        raise TcxError(
            f"the datamodule {type(datamodule).__name__} has no {stage}_dataloader(): `tcx {stage}` runs on "
            f"what it yields; give the class a {stage}_dataloader() (e.g. returning the validation loader) "
            "or run `tcx validate`")


def _say(notes) -> None:
    if notes and is_first_process():
        for note in notes:
            print(f"tcx: {note}", flush=True)


def main(args=None) -> None:
    """The ``tcx`` console script. A user's error (:class:`tcx.errors.UserError`, a full disk) or a
    parse error is one paragraph and exit 2; a bug keeps its traceback, after a line naming the
    user's own file and line; ``--debug`` or ``TCX_DEBUG=1`` shows every traceback. SIGINT exits
    130, SIGTERM 143."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv or os.environ.get("TCX_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    LAST_INTERRUPT["reason"] = None
    try:
        _main(argv)
    except SIGTERMException:
        raise SystemExit(143) from None
    except SystemExit as exc:
        if LAST_INTERRUPT["reason"] and exc.code not in (0, None):
            # Lightning exits 1 after a Ctrl-C, or the signal's status after SIGTERM
            raise SystemExit(130 if LAST_INTERRUPT["reason"].startswith("SIGINT") else 143) from None
        raise
    except BrokenPipeError:
        stdout_closed()
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print("tcx: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except ParseError as exc:
        if debug:
            raise
        command = argv[0] if argv and argv[0] in SUBCOMMANDS else "fit"
        print(f"tcx: error: {exc}\n(`tcx {command} --help` shows the options; `tcx {command} --model.help CLASS` "
              "every argument of a class)", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        message = None if debug else describe_error(exc)
        if message is None:
            frame = user_code_frame(exc)
            if frame is not None:
                file, line, func = frame
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                print(f"tcx: {type(exc).__name__} in your code, {file}:{line} (in {func}): {first}\n"
                      "(the traceback follows)", file=sys.stderr, flush=True)
            raise
        print(f"tcx: error: {message}", file=sys.stderr)
        if os.environ.get("TCX_DEBUG") is None:
            print("(run with --debug or TCX_DEBUG=1 for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


def _main(argv: list[str]) -> None:
    keep_freed_memory()  # before the first step allocates: steps reuse freed memory (TCX_MALLOC=system: glibc's defaults)
    if argv and argv[0] == "traverse":
        raise SystemExit(traverse_main(argv[1:]))
    if argv and argv[0] == "compare":
        from tcx.compare import compare_main

        raise SystemExit(compare_main(argv[1:]))
    given = read_arguments(argv)  # THE pass over argv and the -c files (an unknown name: one paragraph)
    configure_wandb_mode()
    quiet_wandb_footer()
    quiet_known_warnings()
    notes = checkpoint_run.with_checkpoint_classes(given)
    if given.command in ("validate", "test", "predict") and not given.ckpt_path:
        notes = ["no --ckpt_path: the model as initialised, untrained (give --ckpt_path to evaluate a fit's)"]
    if notes and is_first_process():  # the first line: which model and data run, and from where
        print(f"tcx {given.command}: " + ", ".join(notes), flush=True)
    with_default_classes(given)
    check_given(given)
    argv = given.argv
    if given.command and ({"-h", "--help"} & set(argv)):
        from tcx.cli.help import command_help

        if class_name_problem(given):  # the help of a class that does not exist: say so
            raise TcxError(class_name_problem(given))
        print(command_help(given, DEFAULT_CONFIG), end="")
        raise SystemExit(0)
    argv = ["--help" if a == "--help-all" else a for a in argv]
    if argv in (["-h"], ["--help"]):
        # LightningCLI lists its four subcommands; tcx's own two are named after them
        try:
            _run_cli(given, argv)
        finally:
            print(MORE_COMMANDS)
    _run_cli(given, argv)


MORE_COMMANDS = """
tcx's own commands (not LightningCLI's):
  configs             list the experiment configs shipped with tcx (select one by name: tcx fit -c NAME)
  compare             one table of mean +- sd over seeds from runs' summary.json files
                      (tcx compare RUN_DIRS... [--values V ...] [--format markdown|csv])
  traverse            pictures of a trained model from its checkpoint, without training
                      (tcx traverse --ckpt_path CKPT --out DIR; tcx traverse --help for its options)"""


def _run_cli(given, argv: list[str]) -> None:
    # parse errors raise (exit_on_error False) so that main() says them in one line; no
    # abbreviations: --trainer.max_epoch is a typo, not --trainer.max_epochs
    strict = {"exit_on_error": False, "allow_abbrev": False}
    failed = True
    try:
        TcxCLI(given, model_class=CorExVAE, datamodule_class=pl.LightningDataModule, subclass_mode_model=True,
               subclass_mode_data=True, save_config_callback=RunConfig,
               save_config_kwargs={"overwrite": True, "save_to_log_dir": False}, args=argv,
               parser_kwargs={**strict, **{sub: {"default_config_files": [str(DEFAULT_CONFIG)], **strict}
                                           for sub in SUBCOMMANDS}})
        failed = False
    finally:
        finish_runs(failed)  # the command's W&B run ends with the command
