"""``tcx traverse``: the pictures of a trained model, from its checkpoint, without training.

    tcx traverse --ckpt_path runs/tcx/<run>/checkpoints/last.ckpt --out pictures/
                 [--num_inputs 2] [--steps 9] [--seed 0] [--num_points 2000]
                 [--quantile 0.05 | --limit 2.5] [--fps 4] [--scale 1] [--device cpu] [--trust]

The model and the datamodule are rebuilt from what the checkpoint records (read as data only);
without the datamodule the traversals start from the prior and the pictures that need data are
left out. It writes the pictures the callbacks log during training (``traversal.png``, a GIF per
latent, samples, and with data reconstructions, the information chart and table).

Exit status: 0 when every picture was written; 1 when some failed; 2 for bad input.

Details (options, files, exit status): docs/running.md#tcxclitraversepy-tcx-traverse
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from tcx.errors import TcxError
from tcx.validation import check_int, check_real

__all__ = ["traverse_main", "rebuild_datamodule"]

#: the other spellings tcx traverse accepts, and the one it documents
ALIASES = {"--ckpt": "--ckpt_path", "--num-inputs": "--num_inputs", "--num-points": "--num_points"}

PROG = "tcx traverse"


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Write latent traversals (PNG grid and a GIF per latent), samples, reconstructions "
        "and the information chart of a trained tcx model, from its checkpoint.",
    )
    p.add_argument("--ckpt_path", required=True, help="a checkpoint written by `tcx fit` (e.g. .../checkpoints/last.ckpt)")
    p.add_argument("--out", required=True, help="folder for the pictures (created if missing)")
    p.add_argument("--num_inputs", type=int, default=2, help="fixed inputs to traverse from, besides the prior (default 2)")
    p.add_argument("--steps", type=int, default=9, help="values per latent in a traversal (default 9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed inputs and the samples (default 0)")
    p.add_argument("--num_points", type=int, default=2000, help="validation points for quantiles and information (default 2000)")
    p.add_argument("--quantile", type=float, default=0.05, help="sweep q(z_j) from this quantile to 1 - it (default 0.05)")
    p.add_argument("--limit", type=float, default=None, help="sweep [-LIMIT, LIMIT] instead of quantiles")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second of the GIFs (default 4)")
    p.add_argument("--scale", type=int, default=1, help="enlarge every tile this many times (default 1)")
    p.add_argument("--device", default="cpu", help="torch device to run the model on (default cpu)")
    p.add_argument("--trust", action="store_true",
                   help="build a model family or datamodule class the checkpoint names even when it is not "
                   "one of tcx's (your own classes; the checkpoint is still read as data only)")
    return p


def _check_args(args) -> None:
    try:
        check_int("--num_inputs", args.num_inputs, 0)
        check_int("--steps", args.steps, 2)
        check_int("--num_points", args.num_points, 2)
        check_real("--quantile", args.quantile, 0, 0.5, high_open=True)
        check_real("--limit", args.limit, 0, low_open=True, allow_none=True)
        check_real("--fps", args.fps, 0, low_open=True)
        check_int("--scale", args.scale, 1)
    except TcxError as exc:
        raise _UsageError(str(exc)) from None
    from tcx.safe_io import checkpoint_exists

    if "://" in args.ckpt_path:  # an fsspec URL (file://, s3://, ...), read as the other commands read it
        try:
            found = checkpoint_exists(args.ckpt_path)
        except (ImportError, ValueError, OSError) as exc:
            raise _UsageError(f"--ckpt_path {args.ckpt_path!r} cannot be read ({type(exc).__name__}: {exc})") from None
        if not found:
            raise _UsageError(f"--ckpt_path {args.ckpt_path!r} does not exist; give the URL of a .ckpt file written "
                              "by `tcx fit`")
        return _check_out(args)
    ckpt = Path(args.ckpt_path)
    if not ckpt.exists():
        raise _UsageError(f"--ckpt_path {str(ckpt)!r} does not exist; give the path of a .ckpt file written by `tcx fit`")
    if not ckpt.is_file():
        raise _UsageError(f"--ckpt_path {str(ckpt)!r} is a directory; give the path of a .ckpt file inside it")
    _check_out(args)


def _check_out(args) -> None:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {str(out)!r} is a file; give a folder (it is created if missing)")
    try:
        torch.device(args.device)
    except (RuntimeError, TypeError) as exc:
        raise _UsageError(f"--device {args.device!r} is not a torch device ({exc}); use e.g. cpu or cuda") from None


def rebuild_datamodule(checkpoint: dict, known=(), trust: bool = False):
    """The datamodule a checkpoint was trained with, or ``(None, reason)``: the data its run
    recorded (``tcx.cli.checkpoint_run.run_of``). The class path is data from a file: it is built only when it is one
    of ``known`` (the datamodules a user could name with ``--data``; ``tcx traverse`` passes tcx's
    registered ones), or, with ``trust`` (``tcx traverse --trust``), any importable
    ``LightningDataModule`` subclass. Returns ``(datamodule, None)`` or ``(None, why not)``.
    """
    import lightning.pytorch as pl

    from tcx.cli.checkpoint_run import run_of
    from tcx.safe_io import CheckpointRefused, resolve_class, shown

    try:
        recorded = run_of(checkpoint)["data"]
    except TcxError as exc:  # not a Lightning checkpoint: no data to rebuild
        return None, str(exc)
    if not recorded:
        return None, "the checkpoint names no datamodule"
    class_path = recorded["class_path"]
    try:
        cls = resolve_class(class_path, known, pl.LightningDataModule, what="datamodule", source="the checkpoint",
                            trust=trust)
    except CheckpointRefused as exc:
        return None, str(exc)
    hparams = _init_arguments(cls, dict(recorded.get("init_args") or {}))
    try:
        dm = cls(**hparams)
        dm.setup("validate")
    except Exception as exc:
        return None, (f"its datamodule {shown(class_path)} could not be built ({type(exc).__name__}: "
                      f"{shown(str(exc), 300)})")
    return dm, None


def load_traversable(ckpt_path: str, known, trust: bool = False):
    """The model of the checkpoint at ``ckpt_path`` (a path or an fsspec URL) in eval mode, and the
    checkpoint read as data. Its family must be one of ``known`` (the model families a user could
    name, ``tcx.cli.arguments.nameable_classes("--model")``), or any :class:`CorExVAE` subclass with
    ``trust``; refused (:class:`tcx.safe_io.CheckpointRefused`) before anything is imported."""
    from tcx.errors import TcxError
    from tcx.models import CorExVAE
    from tcx.models.checkpoints import CLASS_KEY
    from tcx.safe_io import load_checkpoint, resolve_class

    checkpoint = load_checkpoint(ckpt_path, map_location="cpu")
    if "state_dict" not in checkpoint:
        raise TcxError(f"{ckpt_path!r} is not a Lightning checkpoint (no 'state_dict')")
    class_path = checkpoint.get(CLASS_KEY)
    if not class_path:
        raise TcxError(f"{ckpt_path!r} does not name its tcx model family ({CLASS_KEY!r} is missing): it was not "
                       "written by a tcx model")
    cls = resolve_class(class_path, known, CorExVAE, what="model family", source=f"checkpoint {ckpt_path!r}",
                        trust=trust)
    model = cls.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    model.eval()
    return model, checkpoint


def _init_arguments(cls, hparams: dict) -> dict:
    """The saved hyperparameters ``cls.__init__`` takes: LightningCLI's bookkeeping entries
    (``_class_path``, ``_instantiator``) dropped, and, unless it takes ``**kwargs``, only the names
    it declares."""
    import inspect

    hparams = {k: v for k, v in hparams.items() if not str(k).startswith("_")}
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return hparams
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return hparams
    return {k: v for k, v in hparams.items() if k in params}


def traverse_main(argv: list[str], datamodules=None) -> int:
    """Entry point of ``tcx traverse`` (dispatched by :func:`main`); returns the exit status.
    ``datamodules``: the datamodule classes a checkpoint may name without ``--trust`` (by default
    the one list of the ``tcx`` command, ``tcx.cli.arguments.nameable_classes``)."""
    from tcx.cli.arguments import nameable_classes

    if datamodules is None:
        datamodules = nameable_classes("--data")
    argv = [ALIASES.get(a.partition("=")[0], a.partition("=")[0]) + a.partition("=")[1] + a.partition("=")[2]
            for a in argv]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the error (2), or the help (0)
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        _check_args(args)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from tcx.callbacks.export import export_pictures
    from tcx.safe_io import shown

    try:
        model, checkpoint = load_traversable(args.ckpt_path, nameable_classes("--model"), trust=args.trust)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a checkpoint whose model cannot be rebuilt
        print(f"{PROG}: error: {args.ckpt_path!r} could not be loaded as a tcx model ({type(exc).__name__}: "
              f"{shown(str(exc), 300)})", file=sys.stderr)
        return 2
    try:
        model = model.to(args.device)
    except Exception as exc:
        print(f"{PROG}: error: cannot move the model to --device {args.device!r} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2

    datamodule, why = rebuild_datamodule(checkpoint, known=datamodules, trust=args.trust)
    if getattr(datamodule, "dataset_size", None) is not None:
        # the dataset size N the information estimates need, by the model's one route
        model.attach_data(dataset_size=datamodule.dataset_size)
    del checkpoint
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{PROG}: error: cannot create --out {str(out)!r}: {exc}", file=sys.stderr)
        return 2
    files, failures, notes = export_pictures(
        model, out, datamodule, num_inputs=args.num_inputs, steps=args.steps, seed=args.seed,
        num_points=args.num_points, quantile=args.quantile, limit=args.limit, fps=args.fps, scale=args.scale,
    )
    anchors = tuple(getattr(model, "anchor_indices", ()))
    print(f"{PROG}: {type(model).__name__}, {model.latent_dim} latents" + (f", anchors {list(anchors)}" if anchors else ""))
    if why:
        print(f"{PROG}: no data ({why}): traversals start from the prior only")
    for note in notes:
        print(f"{PROG}: {note}")
    print(f"{PROG}: wrote {len(files)} files to {out}:")
    for path in files.values():
        print(f"  {path}")
    if failures:
        print(f"{PROG}: could not make {', '.join(sorted(set(failures)))} (see the warnings above)", file=sys.stderr)
        return 1
    return 0
