"""``tcx traverse``: the pictures of a trained model, from its checkpoint, without training.

    tcx traverse --ckpt runs/tcx/<run>/checkpoints/last.ckpt --out pictures/
                 [--num-inputs 2] [--steps 9] [--seed 0] [--num-points 2000]
                 [--quantile 0.05 | --limit 2.5] [--fps 4] [--scale 1] [--device cpu] [--trust]

The model is rebuilt by ``tcx.models.load_model`` (any family). The datamodule is rebuilt from the
checkpoint (``checkpoint["tcx_datamodule_class"]`` and ``checkpoint["datamodule_hyper_parameters"]``;
the checkpoint is read with ``weights_only=True`` and its class paths are accepted only among tcx's
model families and datamodules, or any subclass of theirs with ``--trust``)
for the fixed inputs and the validation posteriors; without it (or if it cannot be built) the
traversals start from the prior alone and sweep the prior's quantiles, and the pictures that need
data are left out (the command says so).

Files written to ``--out`` (the same pictures the callbacks log during training; see
``tcx.callbacks.media`` and ``tcx.callbacks.diagnostics``):

- ``traversal.png`` and ``traversal_z{j}.gif`` (one per latent): ``LatentTraversal``;
- ``samples.png``, and for models with anchors ``anchor_samples_held.png``, ``others_held.png``:
  ``Samples``;
- with data: ``reconstructions.png`` (``Reconstructions``), ``information.png``,
  ``latent_table.csv`` and, for data with factors or labels, ``mi_matrix.png``
  (``InformationDiagnostics``).

Exit status: 0 when every picture was written; 1 when some failed (each is reported); 2 for bad
input (a missing or unreadable checkpoint, an output path that is a file, a bad option), with a
one-line message and no traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

__all__ = ["main", "export_pictures", "rebuild_datamodule"]

PROG = "tcx traverse"


class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Write latent traversals (PNG grid and a GIF per latent), samples, reconstructions "
        "and the information chart of a trained tcx model, from its checkpoint.",
    )
    p.add_argument("--ckpt", required=True, help="a checkpoint written by `tcx fit` (e.g. .../checkpoints/last.ckpt)")
    p.add_argument("--out", required=True, help="folder for the pictures (created if missing)")
    p.add_argument("--num-inputs", type=int, default=2, help="fixed inputs to traverse from, besides the prior (default 2)")
    p.add_argument("--steps", type=int, default=9, help="values per latent in a traversal (default 9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed inputs and the samples (default 0)")
    p.add_argument("--num-points", type=int, default=2000, help="validation points for quantiles and information (default 2000)")
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
    checks = [
        (args.num_inputs >= 0, f"--num-inputs must be >= 0, got {args.num_inputs}"),
        (args.steps >= 2, f"--steps must be >= 2, got {args.steps}"),
        (args.num_points >= 2, f"--num-points must be >= 2, got {args.num_points}"),
        (0.0 <= args.quantile < 0.5, f"--quantile must be in [0, 0.5), got {args.quantile}"),
        (args.limit is None or args.limit > 0, f"--limit must be > 0, got {args.limit}"),
        (args.fps > 0, f"--fps must be > 0, got {args.fps}"),
        (args.scale >= 1, f"--scale must be >= 1, got {args.scale}"),
    ]
    for ok, message in checks:
        if not ok:
            raise _UsageError(message)
    ckpt = Path(args.ckpt)
    if not ckpt.exists():
        raise _UsageError(f"--ckpt {str(ckpt)!r} does not exist; give the path of a .ckpt file written by `tcx fit`")
    if not ckpt.is_file():
        raise _UsageError(f"--ckpt {str(ckpt)!r} is a directory; give the path of a .ckpt file inside it")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {str(out)!r} is a file; give a folder (it is created if missing)")
    try:
        torch.device(args.device)
    except (RuntimeError, TypeError) as exc:
        raise _UsageError(f"--device {args.device!r} is not a torch device ({exc}); use e.g. cpu or cuda") from None


def rebuild_datamodule(checkpoint: dict, known=(), trust: bool = False):
    """The datamodule a checkpoint was trained with, or ``(None, reason)``.

    Built from ``checkpoint["tcx_datamodule_class"]`` (written by ``CorExVAE.on_save_checkpoint``)
    with ``checkpoint["datamodule_hyper_parameters"]`` (Lightning's copy of its ``__init__``
    arguments) when present. The class path is data from a file: it is built only when it is one
    of ``known`` (the datamodules a user could name with ``--data``; ``tcx traverse`` passes tcx's
    registered ones), or, with ``trust`` (``tcx traverse --trust``), any importable
    ``LightningDataModule`` subclass. Returns ``(datamodule, None)`` or ``(None, why not)``.
    """
    import lightning.pytorch as pl

    from tcx.models.base import DATAMODULE_CLASS_KEY
    from tcx.safe_io import CheckpointRefused, resolve_class

    class_path = checkpoint.get(DATAMODULE_CLASS_KEY)
    if not class_path:
        return None, "the checkpoint names no datamodule"
    try:
        cls = resolve_class(class_path, known, pl.LightningDataModule, what="datamodule", source="the checkpoint",
                            trust=trust)
    except CheckpointRefused as exc:
        return None, str(exc)
    hparams = _init_arguments(cls, dict(checkpoint.get("datamodule_hyper_parameters") or {}))
    try:
        dm = cls(**hparams)
        dm.setup("validate")
    except Exception as exc:
        return None, f"its datamodule {class_path} could not be built ({type(exc).__name__}: {exc})"
    return dm, None


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


def export_pictures(
    model,
    out,
    datamodule=None,
    *,
    num_inputs: int = 2,
    steps: int = 9,
    seed: int = 0,
    num_points: int = 2000,
    quantile: float = 0.05,
    limit: float | None = None,
    fps: float = 4.0,
    scale: int = 1,
) -> tuple[dict[str, Path], list[str], list[str]]:
    """Write the pictures of ``model`` to the folder ``out``; returns ``(files, failures, notes)``:
    ``{key: path}`` written, the keys that failed, and why pictures were left out."""
    from tcx.callbacks.diagnostics import _dataset_size, factor_names_of, information_media
    from tcx.callbacks.media import (
        encode_dataset,
        evaluating,
        fixed_inputs,
        reconstruction_media,
        sample_media,
        traversal_media,
        write_media_files,
    )

    failures: list[str] = []
    notes: list[str] = []
    items = []
    with evaluating(model):
        inputs, encoded = None, None
        if datamodule is not None:
            try:
                inputs = fixed_inputs(datamodule, None, num=max(num_inputs, 8), seed=seed)
            except Exception as exc:
                notes.append(f"no fixed inputs ({type(exc).__name__}: {exc})")
            try:
                encoded = encode_dataset(model, datamodule.val_dataloader(), num_points)
            except Exception as exc:
                notes.append(f"no validation posteriors ({type(exc).__name__}: {exc})")
        trav_inputs = inputs[:num_inputs] if inputs is not None and num_inputs else None
        items += traversal_media(
            model, trav_inputs, encoded, steps=steps, quantile=quantile, limit=limit, fps=fps,
            scale=scale, seed=seed, failures=failures,
        )
        items += sample_media(
            model, inputs[:4] if inputs is not None else None, encoded, seed=seed, scale=scale, failures=failures,
        )
        if inputs is not None:
            items += reconstruction_media(model, inputs[:8], scale=scale, failures=failures)
        else:
            notes.append("reconstructions.png left out: no inputs")
        if encoded is not None and len(encoded) >= 2:
            try:
                media, _ = information_media(
                    model, encoded, factor_names_of(datamodule, encoded.y), seed=seed,
                    num_scored=min(1000, len(encoded)), failures=failures,
                    dataset_size=_dataset_size(datamodule),
                )
                items += media
            except Exception as exc:
                failures.append("diagnostics/information")
                warnings.warn(f"tcx: could not compute the information diagnostics: {type(exc).__name__}: {exc}", RuntimeWarning)
        else:
            notes.append("information.png left out: no validation data")
    files = write_media_files(items, out)
    failures += [item.key for item in items if item.key not in files]
    return files, failures, notes


def main(argv: list[str], datamodules=None) -> int:
    """Entry point of ``tcx traverse`` (dispatched by ``tcx.cli.main``, which passes the
    datamodule classes a user can name, ``datamodules``); returns the exit status."""
    if datamodules is None:
        # called directly rather than through tcx.cli: the same registered datamodules
        import lightning.pytorch as pl

        import tcx.datamodules as registered

        datamodules = [c for c in (getattr(registered, n) for n in getattr(registered, "__all__", ()))
                       if isinstance(c, type) and issubclass(c, pl.LightningDataModule)]
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the error (2), or the help (0)
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        _check_args(args)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from tcx.models import load_model
    from tcx.safe_io import load_checkpoint

    try:
        model = load_model(args.ckpt, map_location="cpu", trust=args.trust)
        checkpoint = load_checkpoint(args.ckpt, map_location="cpu")
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a checkpoint whose model cannot be rebuilt
        print(f"{PROG}: error: {args.ckpt!r} could not be loaded as a tcx model ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    try:
        model = model.to(args.device)
    except Exception as exc:
        print(f"{PROG}: error: cannot move the model to --device {args.device!r} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2

    datamodule, why = rebuild_datamodule(checkpoint, known=datamodules, trust=args.trust)
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
