"""``export_pictures``: every picture of a trained model written to a folder (``tcx traverse``).

It needs both the picture builders (``pictures``) and the information chart (``diagnostics``), so
it sits above both; neither of them imports it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from tcx.callbacks.diagnostics import factor_names_of, information_media
from tcx.callbacks.encoding import encode_dataset, evaluating, fixed_inputs
from tcx.callbacks.media_logging import write_media_files
from tcx.callbacks.pictures import reconstruction_media, sample_media, traversal_media

__all__ = ["export_pictures"]


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
                    dataset_size=getattr(model, "dataset_size", None),
                )
                items += media
            except Exception as exc:
                failures.append("diagnostics/information")
                warnings.warn(f"tcx: could not compute the information diagnostics: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
        else:
            notes.append("information.png left out: no validation data")
    files = write_media_files(items, out)
    failures += [item.key for item in items if item.key not in files]
    return files, failures, notes
