"""PosteriorWriter: what ``tcx predict`` writes, through Lightning's BasePredictionWriter.

At the end of a predict epoch it gathers the batches ``predict_step`` returned (``mean``,
``log_var`` of the posterior, and ``y``, the labels or factors, where the data have them) and
writes them as one NumPy ``.npz`` file (``numpy.load(path)["mean"]``; torch:
``torch.from_numpy(numpy.load(path)["mean"])``), atomically (to a local folder or the fsspec URL of
the run's root, ``tcx.safe_io.atomic_save``), and prints its path and shapes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from tcx.callbacks.media_logging import run_dir
from tcx.callbacks.run_guard import check_writable
from tcx.safe_io import atomic_save, join_path

__all__ = ["PosteriorWriter"]


class PosteriorWriter(BasePredictionWriter):
    """Write the posterior of every predicted input to ``<run directory>/predictions.npz``.

    Args:
        output_dir: the folder (default: the run's folder, beside its ``media/``); under DDP each
            process writes ``predictions_rank{r}.npz`` with the dataset positions of its rows in
            ``index``.
        filename: the file's name without the rank suffix.
    """

    def __init__(self, output_dir: str | None = None, filename: str = "predictions.npz") -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir
        self.filename = filename
        self.written: Path | str | None = None

    def _folder(self, trainer) -> Path | str:
        # the run's folder, beside its media/, unless given (a local folder or an fsspec URL)
        return self.output_dir if self.output_dir is not None else run_dir(trainer)

    def setup(self, trainer, pl_module, stage) -> None:
        if getattr(stage, "value", stage) == "predict":  # refused before the predictions, not after
            check_writable(self._folder(trainer), "PosteriorWriter's output folder (output_dir)")

    def _path(self, trainer) -> Path | str:
        folder = self._folder(trainer)
        name = self.filename
        if trainer.world_size > 1:
            stem = name[:-4] if name.endswith(".npz") else name
            name = f"{stem}_rank{trainer.global_rank}.npz"
        return join_path(folder, name)

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        if not batches:
            rank_zero_info("tcx: predict produced no batches; nothing written")
            return
        arrays: dict[str, np.ndarray] = {}
        for key in batches[0]:
            arrays[key] = torch.cat([b[key].detach().float().cpu() if b[key].is_floating_point() else b[key].cpu()
                                     for b in batches]).numpy()
        indices = batch_indices[0] if batch_indices and isinstance(batch_indices[0], list) else batch_indices
        if trainer.world_size > 1 and indices:
            arrays["index"] = np.concatenate([np.asarray(i, dtype=np.int64) for i in indices])
        path = atomic_save(lambda f: np.savez(f, **arrays), self._path(trainer),
                           advice="set PosteriorWriter output_dir to a disk with room")
        self.written = path
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
        print(f"tcx: predictions written to {path} ({shapes}); read them with numpy.load", flush=True)
