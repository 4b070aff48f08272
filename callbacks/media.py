"""The picture callbacks: latent traversals, reconstructions, samples.

``LatentTraversal``, ``Reconstructions`` and ``Samples`` share ``MediaCallback``: when they run,
where the pictures go (``tcx.callbacks.media_logging.log_media``), ``files``. The pictures are
built by ``tcx.callbacks.pictures`` from the posteriors and inputs of ``tcx.callbacks.encoding``
(whose ``SHARED_ENCODINGS`` lets every callback reuse one encoding per step).

The callbacks read the model through its documented interface only (``encode``, ``decode``,
``latent_dim``, ``anchor_indices``; docs/design.md#the-model-interface) and the datamodule through
what it declares (``sample_factors`` and ``render``, or ``val_dataloader``); they import no
datamodule class. Pictures are made on global rank 0 only, at the end of every ``every_n_epochs``-th
validation epoch and at the end of fit, under ``torch.no_grad()`` with the model in eval mode (its
mode is restored), in float32 whatever the Trainer's precision. After fit the latest picture of
each key is always also a file in ``media_dir(trainer)``, even when W&B or TensorBoard took it;
each callback's ``files`` maps its keys to those paths (``media_files(trainer)`` gathers them).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from tcx import visualize as viz
from tcx.callbacks.encoding import decode_images, evaluating, fixed_inputs, shared_encoding, validation_batches
from tcx.callbacks.media_logging import (Media, log_media, log_scalars, media_dir, report, step_suffix,
                                         write_media_files)
from tcx.callbacks.pictures import (attempt, decode_vectors, is_vector_model, reconstruction_media, rows_of,
                                   sample_media, traversal_media, vector_picture)
from tcx.validation import check_choice, check_int, check_real

__all__ = ["MediaCallback", "LatentTraversal", "Reconstructions", "Samples", "media_files"]


def media_files(trainer) -> dict[str, Path]:
    """``{key: path}`` of the latest picture files of every tcx media or diagnostics callback of
    ``trainer`` (their ``files``), for the end-of-fit summary."""
    out: dict[str, Path] = {}
    for cb in trainer.callbacks:
        if isinstance(cb, MediaCallback):
            out.update(cb.files)
    return out


class MediaCallback(Callback):
    """What the picture callbacks share: when they run, where the pictures go, ``files``.

    Subclasses implement ``make_media(trainer, pl_module) -> (items, scalars)``. Runs on global
    rank 0 at the end of every ``every_n_epochs``-th validation epoch (0: only at the end of fit;
    never during the sanity check) and at the end of fit; the pictures go through ``log_media``.
    At the end of fit the latest items are also written as files (``media_dir(trainer)``) when no
    logger wrote them there already, and ``files`` maps each key to its latest file.
    ``last_seconds`` is how long the last rendering took.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        super().__init__()
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, 0)
        #: ``{key: path}`` of the latest file written for each key.
        self.files: dict[str, Path] = {}
        self.last_seconds: float | None = None
        self._last_step: int | None = None
        self._last_items: list[Media] = []
        self._files_step: int | None = None
        self._inputs: Tensor | None = None
        self._inputs_ready = False

    def make_media(self, trainer, pl_module) -> tuple[list[Media], dict[str, float]]:  # pragma: no cover
        raise NotImplementedError

    # -- helpers for subclasses
    def _fixed_inputs(self, trainer, num: int, seed: int) -> Tensor | None:
        if not self._inputs_ready:
            dm = getattr(trainer, "datamodule", None)
            batches = None if dm is not None else validation_batches(trainer)
            try:
                self._inputs = fixed_inputs(dm, batches, num=num, seed=seed)
            except Exception as exc:
                report(f"tcx: {type(self).__name__} could not get fixed inputs from the data "
                        f"({type(exc).__name__}: {exc}); pictures use the prior only")
                self._inputs = None
            self._inputs_ready = True
        return self._inputs

    # -- hooks
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if self.every_n_epochs == 0 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self._render(trainer, pl_module, in_hook=True)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        step = int(trainer.global_step)
        if self._last_step != step:
            self._render(trainer, pl_module, in_hook=False)
        if self._files_step != step and self._last_items:
            self.files.update(write_media_files(self._last_items, media_dir(trainer), suffix=step_suffix(step)))
            self._files_step = step

    def _render(self, trainer, pl_module, in_hook: bool) -> None:
        step = int(trainer.global_step)
        start = time.perf_counter()
        try:
            with evaluating(pl_module):
                items, scalars = self.make_media(trainer, pl_module)
        except Exception as exc:  # reported; the run goes on
            report(f"tcx: {type(self).__name__} failed at step {step}: {type(exc).__name__}: {exc}")
            items, scalars = [], {}
        self.last_seconds = time.perf_counter() - start
        self._last_step, self._last_items = step, items
        if scalars:
            log_scalars(trainer, scalars, step, module=pl_module if in_hook else None)
        if items:
            written = log_media(trainer, items, step=step)
            if written:
                self.files.update(written)
                if len(written) == len(items):
                    self._files_step = step

    #: the one route for a callback's scalars (callbacks/media_logging.py), here for callbacks that
    #: import MediaCallback
    log_scalars = staticmethod(log_scalars)


class LatentTraversal(MediaCallback):
    """Latent traversals: vary one latent at a time and decode (Higgins et al. 2017).

    Bases: the posterior means of ``num_inputs`` fixed inputs (``fixed_inputs``: a seeded factor
    sample rendered by the datamodule, or the first validation inputs) and the prior's mean
    ``z = 0``. Latent ``j`` sweeps ``steps`` values over the ``quantile .. 1 - quantile`` quantiles of
    the aggregate posterior ``q(z_j)``, estimated from ``num_points`` validation points (or over
    ``[-limit, limit]`` when ``limit`` is set). See ``traversal_media`` for the layout: rows are
    latents, anchors first (orange), then by decreasing rate ``E_x KL_j`` in nats.

    Logged (W&B keys; file names ``<name>_step<global_step>.<ext>`` in ``media_dir(trainer)``):

    - ``media/traversal`` (image; ``traversal_step{N}.png``): the grid;
    - ``media/traversal_z{j}`` (animated GIF, ``wandb.Video``; ``traversal_z{j}_step{N}.gif``): one
      per latent ``j``, all bases side by side, the values forward then back at ``fps``.

    Args:
        num_inputs: fixed inputs (besides the prior) to traverse from.
        steps: values per latent (>= 2). quantile: in [0, 0.5). limit: a fixed symmetric range.
        num_points: validation points for the quantiles and the rates (shared with the other
            callbacks at the same step).
        every_n_epochs: render every n-th validation epoch (0: only at the end of fit).
        fps: frames per second of the GIFs. scale: tile enlargement. seed: of the fixed inputs and
            the posterior draws.
    """

    def __init__(
        self,
        num_inputs: int = 2,
        steps: int = 9,
        quantile: float = 0.05,
        limit: float | None = None,
        num_points: int = 2000,
        every_n_epochs: int = 1,
        fps: float = 4.0,
        scale: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs)
        self.num_inputs = check_int("num_inputs", num_inputs, 0)
        self.steps = check_int("steps", steps, 2)
        self.quantile = check_real("quantile", quantile, 0, 0.5, high_open=True)
        self.limit = check_real("limit", limit, 0, low_open=True, allow_none=True)
        self.num_points = check_int("num_points", num_points, 2)
        self.fps = check_real("fps", fps, 0, low_open=True)
        self.scale = check_int("scale", scale, 1)
        self.seed = int(seed)

    def make_media(self, trainer, pl_module):
        inputs = self._fixed_inputs(trainer, self.num_inputs, self.seed)
        encoded = shared_encoding(trainer, pl_module, self.num_points)
        items = traversal_media(
            pl_module, inputs, encoded, steps=self.steps, quantile=self.quantile, limit=self.limit,
            fps=self.fps, scale=self.scale, seed=self.seed,
        )
        return items, {}


class Reconstructions(MediaCallback):
    """Inputs beside their reconstructions (decoded at the posterior mean).

    The ``num_images`` fixed inputs (``fixed_inputs``), in rows of ``per_row``, each row of inputs
    above its row of reconstructions. Logged: ``media/reconstructions`` (image;
    ``reconstructions_step{N}.png`` in ``media_dir(trainer)``).
    """

    def __init__(self, num_images: int = 8, per_row: int = 8, every_n_epochs: int = 1, scale: int = 1, seed: int = 0) -> None:
        super().__init__(every_n_epochs)
        self.num_images = check_int("num_images", num_images, 1)
        self.per_row = check_int("per_row", per_row, 1)
        self.scale = check_int("scale", scale, 1)
        self.seed = int(seed)

    def make_media(self, trainer, pl_module):
        inputs = self._fixed_inputs(trainer, self.num_images, self.seed)
        if inputs is None:
            return [], {}
        return reconstruction_media(pl_module, inputs, per_row=self.per_row, scale=self.scale), {}


class Samples(MediaCallback):
    """Decoded prior samples and, for models with anchors, what the anchors control.

    See ``sample_media``. Logged (W&B keys; files ``<name>_step<N>.png`` in ``media_dir(trainer)``):

    - ``media/samples``: ``num_samples`` decoded prior draws (the same draws at every call);
    - ``media/anchor_samples_held`` (models with anchors): rows hold the anchors at the code of a
      fixed input (shown first), columns resample the other latents (from the aggregate posterior
      of ``num_points`` validation points by default, ``resample="prior"`` for the prior);
    - ``media/others_held``: the non-anchor latents held, the anchors resampled;
    - ``media/samples_fitted`` (``fitted_density=True``, models with anchors): ``num_samples``
      draws whose anchors come from a Gaussian mixture of ``density_components`` fitted to their
      aggregate posterior on ``num_points`` validation points (``tcx.aggregate_density``), the
      other latents from the prior (the same prior draws as ``media/samples``).
    """

    def __init__(
        self,
        num_samples: int = 16,
        num_held: int = 4,
        num_resampled: int = 8,
        resample: str = "posterior",
        num_points: int = 2000,
        per_row: int = 8,
        every_n_epochs: int = 1,
        scale: int = 1,
        seed: int = 0,
        fitted_density: bool = False,
        density_components: int = 10,
    ) -> None:
        super().__init__(every_n_epochs)
        self.fitted_density = bool(fitted_density)
        self.density_components = check_int("density_components", density_components, 1)
        self.num_samples = check_int("num_samples", num_samples, 1)
        self.num_held = check_int("num_held", num_held, 0)
        self.num_resampled = check_int("num_resampled", num_resampled, 1)
        self.resample = check_choice("resample", resample, ("posterior", "prior"))
        self.num_points = check_int("num_points", num_points, 1)
        self.per_row = check_int("per_row", per_row, 1)
        self.scale = check_int("scale", scale, 1)
        self.seed = int(seed)

    def make_media(self, trainer, pl_module):
        inputs = self._fixed_inputs(trainer, self.num_held, self.seed) if self.num_held else None
        anchored = bool(getattr(pl_module, "anchor_indices", ()))
        encoded = None
        if anchored and self.num_held and self.resample == "posterior":
            encoded = shared_encoding(trainer, pl_module, self.num_points)
        items = sample_media(
            pl_module, inputs, encoded, num_samples=self.num_samples, num_held=self.num_held,
            num_resampled=self.num_resampled, resample=self.resample, per_row=self.per_row,
            seed=self.seed, scale=self.scale,
        )
        if anchored and self.fitted_density:
            item = attempt("media/samples_fitted", [], self.fitted_samples, trainer, pl_module)
            if item is not None:
                items.append(item)
        return items, {}

    def fitted_samples(self, trainer, pl_module) -> Media | None:
        """The ``media/samples_fitted`` grid: the anchors drawn from a Gaussian mixture fitted to
        their posterior samples on the shared encoding (``density_components`` components), the
        other latents from the prior; ``None`` without anchors or data."""
        from tcx.aggregate_density import AggregateDensity

        encoded = shared_encoding(trainer, pl_module, self.num_points)
        if encoded is None:
            return None
        anchors = sorted(int(a) for a in pl_module.anchor_indices)
        density = AggregateDensity.fit(encoded.mean, encoded.log_var, anchors, self.density_components, seed=self.seed)
        g = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.num_samples, int(pl_module.latent_dim), generator=g)
        z[:, anchors] = density.sample(self.num_samples, generator=g)
        if is_vector_model(pl_module):
            picture = vector_picture([("anchors from the fitted mixture, the rest from the prior",
                                       decode_vectors(pl_module, z), [f"sample {i}" for i in range(len(z))])])
        else:
            images = decode_images(pl_module, z)
            picture = viz.image_grid(rows_of(images, min(self.per_row, self.num_samples)), scale=self.scale)
        return Media("media/samples_fitted", "image", picture,
                     f"anchors from a {self.density_components}-component mixture fitted to their aggregate posterior, "
                     f"the rest z ~ N(0, I), seed {self.seed}")
