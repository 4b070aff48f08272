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
    tcx traverse --ckpt PATH --out DIR       # traversals, samples, information chart of a checkpoint

Every subcommand starts from the packaged default configuration (``tcx/default_config.yaml``);
``-c`` files and flags override it. The model's ``input_shape`` is taken from the datamodule's
``input_shape``. W&B runs offline unless the user has set it up (an API key in the environment or
in ``~/.netrc``, or ``WANDB_MODE`` set), so a run never fails for want of a W&B server.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI

import tcx.callbacks  # noqa: F401  (registers callback classes for short names in configs)
import tcx.datamodules  # noqa: F401  (registers datamodule classes for `--data NAME`)
import tcx.models  # noqa: F401  (registers model classes for `--model NAME`)
from tcx import runtime
from tcx.callbacks import media_files
from tcx.experiments import describe_experiments, resolve_config_args
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
        raise ValueError(
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
    """LightningCLI with tcx's wiring: the model's ``input_shape`` comes from the datamodule, and
    ``fit`` ends with a summary of the objective's terms and where the run's files are."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data", "model.init_args.input_shape", compute_fn=_input_shape_of, apply_on="instantiate")

    def _prepare_subcommand_parser(self, klass, subcommand, **kwargs):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        # a file is data, never code: --ckpt_path loads with torch.load(weights_only=True)
        try:
            parser.set_defaults({"weights_only": True})
        except Exception:  # a Lightning whose Trainer methods take no weights_only
            pass
        return parser

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        runtime.prepare_trainer(trainer)
        return trainer

    def before_fit(self) -> None:
        self._fit_started = time.perf_counter()
        runtime.check_loggers_writable(self.trainer)
        runtime.resume_wandb_run(self.trainer, self.config_init.get(self.subcommand, {}).get("ckpt_path"))
        _TERMINATION.in_fit = True

    def after_fit(self) -> None:
        _TERMINATION.in_fit = False
        if not self.trainer.is_global_zero:
            return
        print(fit_summary(self.trainer, self.model, time.perf_counter() - getattr(self, "_fit_started", time.perf_counter())))


def fit_summary(trainer: pl.Trainer, model: CorExVAE, seconds: float) -> str:
    """The end-of-fit table: ELBO, reconstruction, rates (anchors against the others) in nats,
    from the last validation epoch (training values if there was none), and the run's files."""
    metrics = {k: v for k, v in trainer.callback_metrics.items()}
    stage = "val" if any(k.startswith("val/") for k in metrics) else "train"

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
    rows.append(("epochs / steps", f"{trainer.current_epoch} / {trainer.global_step}"))
    rows.append(("wall time", f"{seconds:.1f} s"))

    ckpt = trainer.checkpoint_callback
    if ckpt is not None:
        path = ckpt.last_model_path or ckpt.best_model_path
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
    title = f"tcx fit summary: {type(model).__name__} ({stage} set)"
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
    for i, arg in enumerate(argv):
        flag, sep, value = arg.partition("=")
        if flag not in choices:
            continue
        if not sep:
            if i + 1 >= len(argv):
                continue
            value = argv[i + 1]
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
    given = set()
    for i, arg in enumerate(argv[1:], start=1):
        flag, sep, value = arg.partition("=")
        if flag in DEFAULT_CLASSES:
            given.add(flag)
        elif flag in ("-c", "--config"):
            path = value if sep else (argv[i + 1] if i + 1 < len(argv) else "")
            keys = _config_keys(path, argv[0]) if path else set()
            given |= {f"--{k}" for k in keys if f"--{k}" in DEFAULT_CLASSES}
    missing = [f"{flag}={cls}" for flag, cls in DEFAULT_CLASSES.items() if flag not in given]
    return [argv[0], *missing, *argv[1:]]


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
    # LightningCLI's notice that args= and sys.argv both exist: tcx passes its own argv on purpose
    warnings.filterwarnings("ignore", message=r".*LightningCLI's args parameter is intended.*")
    try:
        _main(argv)
    except runtime.SIGTERMException:
        raise SystemExit(143) from None
    except SystemExit:
        raise
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
        # pictures from a checkpoint, without training (tcx.callbacks.export)
        from tcx.callbacks.export import main as traverse_main

        raise SystemExit(traverse_main(argv[1:], datamodules=_registered(tcx.datamodules, pl.LightningDataModule)))
    if argv and argv[0] == "configs":
        print(describe_experiments())
        raise SystemExit(0)
    try:
        argv = resolve_config_args(argv)
    except FileNotFoundError as err:
        print(f"tcx: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_wandb_mode()
    runtime.settle_wandb_mode()
    # Lightning's own deprecation notice about torch's pytree API: nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    check_class_names(argv)
    runtime.check_argument_order(argv)
    runtime.check_config_files(argv)
    argv = with_default_classes(argv)
    TcxCLI(
        model_class=CorExVAE,
        datamodule_class=pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_kwargs={sub: {"default_config_files": [str(DEFAULT_CONFIG)]} for sub in SUBCOMMANDS},
        save_config_kwargs={"overwrite": True},
        args=argv,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
