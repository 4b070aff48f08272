"""``tcx traverse``: the pictures of a trained model, from its checkpoint, without training.

    tcx traverse --ckpt_path runs/tcx/<run>/checkpoints/last.ckpt --out pictures/ [--trust] ...

The model and the datamodule are rebuilt from what the checkpoint records (read as data only);
without the datamodule the traversals start from the prior and the pictures that need data are
left out. Exit status: 0 when every picture was written; 1 when some failed; 2 for bad input.
Details: docs/running.md#tcxclitraversepy-tcx-traverse
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from tcx.errors import TcxError
from tcx.validation import check_int, check_real

#: the other spellings tcx traverse accepts, and the one it documents
ALIASES = {"--ckpt": "--ckpt_path", "--num-inputs": "--num_inputs", "--num-points": "--num_points"}
PROG = "tcx traverse"


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
    """Refuse (:class:`TcxError`) a value out of range, a missing checkpoint, a file as ``--out``."""
    from tcx.safe_io import check_checkpoint_path

    check_int("--num_inputs", args.num_inputs, 0)
    check_int("--steps", args.steps, 2)
    check_int("--num_points", args.num_points, 2)
    check_real("--quantile", args.quantile, 0, 0.5, high_open=True)
    check_real("--limit", args.limit, 0, low_open=True, allow_none=True)
    check_real("--fps", args.fps, 0, low_open=True)
    check_int("--scale", args.scale, 1)
    check_checkpoint_path(args.ckpt_path, "--ckpt_path")  # a path or an fsspec URL, read as every command reads it
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise TcxError(f"--out {args.out!r} is a file; give a folder (it is created if missing)")
    try:
        torch.device(args.device)
    except (RuntimeError, TypeError) as exc:
        raise TcxError(f"--device {args.device!r} is not a torch device ({exc}); use e.g. cpu or cuda") from None


def traverse_main(argv: list[str]) -> int:
    """Entry point of ``tcx traverse``; returns the exit status."""
    from tcx.callbacks.export import export_pictures
    from tcx.callbacks.run_guard import check_writable
    from tcx.datamodules import load_datamodule
    from tcx.models import load_model
    from tcx.safe_io import load_checkpoint, shown

    argv = [ALIASES.get(flag, flag) + sep + value for flag, sep, value in (a.partition("=") for a in argv)]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the error (2), or the help (0)
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        _check_args(args)
        try:
            checkpoint = load_checkpoint(args.ckpt_path, map_location="cpu")  # read as data, once
            model = load_model(args.ckpt_path, trust=args.trust, checkpoint=checkpoint)  # family checked first
        except (FileNotFoundError, ValueError, OSError):
            raise
        except Exception as exc:  # a checkpoint whose model cannot be rebuilt
            raise TcxError(f"{args.ckpt_path!r} could not be loaded as a tcx model ({type(exc).__name__}: "
                           f"{shown(str(exc), 300)})") from None
        try:
            model = model.to(args.device)
        except Exception as exc:
            raise TcxError(f"cannot move the model to --device {args.device!r} ({type(exc).__name__}: {exc})") from None
        out = Path(args.out)
        datamodule, why = None, None
        try:
            datamodule = load_datamodule(args.ckpt_path, trust=args.trust, checkpoint=checkpoint)
        except TcxError as exc:  # refused, or none recorded: the pictures that need no data
            why = str(exc)
        del checkpoint
        check_writable(out, "--out")  # created, and a file can be written there
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if getattr(datamodule, "dataset_size", None) is not None:
        model.attach_data(dataset_size=datamodule.dataset_size)  # the N of the information estimates
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
