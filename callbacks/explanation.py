"""The CorEx explanation of a model: which inputs each latent explains, in nats.

``InputExplanation`` runs ``tcx.input_information`` on the first validation points and writes
``input_information.csv`` to the run folder (the latest; columns ``input``, ``name`` when the
datamodule names its inputs, ``latent``, ``I_z0 ..``), a heatmap with the inputs grouped by their
latent (``explanation/input_information``), the per-latent table with the total correlation each
explains (``explanation/latents``, a W&B table) and, for images, one map per latent of how much it
tells about each pixel (``explanation/pixel_information``). ``explanation_media`` draws them for
scripts. Details: docs/callbacks.md#callbacksexplanationpy-inputexplanation
"""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np
import torch

from tcx import visualize as viz
from tcx.callbacks.encoding import encode_posteriors, split_batch, validation_batches
from tcx.callbacks.media import MediaCallback
from tcx.callbacks.media_logging import Media, report, run_dir
from tcx.callbacks.pictures import attempt
from tcx.input_information import Explanation, input_information
from tcx.safe_io import atomic_save, join_path
from tcx.validation import check_int

__all__ = ["InputExplanation", "explanation_media", "explanation_heatmap", "pixel_information_maps",
           "CSV_NAME"]

CSV_NAME = "input_information.csv"


def grouped_order(e: Explanation) -> list[int]:
    """Inputs ordered by the latent that explains them (``z0``'s first), the unexplained last."""
    d = e.latent_dim
    return sorted(range(e.num_inputs), key=lambda i: (d if e.assignment[i] is None else e.assignment[i], i))


def explanation_heatmap(e: Explanation, title: str | None = None):
    """A heatmap (matplotlib ``Figure``) of ``I(X_i; Z_j)``: a row per latent (its rate and
    ``I(Z_j;X)`` in the label), a column per input, inputs grouped by the latent that explains
    them (separated by lines, the group named above), unexplained inputs last. Input labels are
    drawn up to 60 inputs; above that the groups alone are labelled, so it reads at any width."""
    from matplotlib.figure import Figure

    order = grouped_order(e)
    m = e.information[order].T.numpy()  # [D, n]
    d, n = m.shape
    names = e.input_names or [str(i) for i in range(n)]
    label_inputs = n <= 60
    ylabels = [f"z{j}  rate {float(e.rate[j]):.2f}  I {float(e.latent_information[j]):.2f}" for j in range(d)]
    left = 0.3 + 0.07 * max(len(s) for s in ylabels)
    plot_w = min(max(0.22 * n, 4.0), 11.0)
    width = left + plot_w + 1.1
    bottom = 1.0 if label_inputs else 0.6
    plot_h = max(0.32 * d, 1.2)
    height = bottom + plot_h + 0.75
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes((left / width, bottom / height, plot_w / width, plot_h / height))
    vmax = max(float(m.max()) if m.size else 0.0, 1e-6)
    im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_yticks(np.arange(d), ylabels, fontsize=8)
    if label_inputs:
        ax.set_xticks(np.arange(n), [str(names[i]) for i in order], rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
    groups = [e.assignment[i] for i in order]
    start = 0
    for k in range(1, n + 1):
        if k == n or groups[k] != groups[start]:
            if k < n:
                ax.axvline(k - 0.5, color="white", linewidth=1.2)
            label = "none" if groups[start] is None else f"z{groups[start]}"
            ax.text((start + k - 1) / 2, -0.7, label, ha="center", va="bottom", fontsize=7)
            if groups[start] is not None:
                ax.add_patch(_box(start - 0.5, groups[start] - 0.5, k - start))
            start = k
    ax.set_xlabel("input, grouped by the latent that explains it")
    cax = fig.add_axes(((left + plot_w + 0.15) / width, bottom / height, 0.15 / width, plot_h / height))
    fig.colorbar(im, cax=cax, label="nats")
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, max(30, int(width * 14)))), fontsize=9, y=1 - 0.1 / height,
                     va="top")
    return fig


def _box(x0: float, y0: float, w: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y0), w, 1.0, fill=False, edgecolor="#ff5555", linewidth=1.2)


def pixel_information_maps(e: Explanation, input_shape: Sequence[int], latents: Sequence[int] | None = None):
    """One map per latent (matplotlib ``Figure``) of ``I(X_i; Z_j)`` over the pixels of an image of
    ``input_shape`` ``(C, H, W)`` (the mean over channels), on one colour scale, each titled with the
    latent, its rate and ``I(Z_j;X)``; ``latents`` orders them (default: by ``I(Z_j;X)``)."""
    from matplotlib.figure import Figure

    c, hgt, wid = (int(s) for s in input_shape)
    maps = e.information.T.reshape(e.latent_dim, c, hgt, wid).mean(1).numpy()
    order = list(latents) if latents is not None else viz.information_order(e.latent_information)
    cols = min(len(order), 5)
    rows = -(-len(order) // cols)
    tile = 1.8
    width = cols * tile + 1.3
    fig = Figure(figsize=(width, rows * (tile + 0.35) + 0.5), dpi=100)
    vmax = max(float(maps.max()) if maps.size else 0.0, 1e-6)
    im = None
    for k, j in enumerate(order):
        ax = fig.add_subplot(rows, cols, k + 1)
        im = ax.imshow(maps[j], cmap="magma", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"z{j}  rate {float(e.rate[j]):.2f}\nI(Z;X) {float(e.latent_information[j]):.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.subplots_adjust(left=0.02, right=1 - 1.2 / width, top=0.88, bottom=0.04, wspace=0.1, hspace=0.45)
    if im is not None:
        cax = fig.add_axes((1 - 1.05 / width, 0.1, 0.15 / width, 0.75))
        fig.colorbar(im, cax=cax, label="nats")
    fig.suptitle("I(pixel; z_j), nats", fontsize=9)
    return fig


def explanation_media(e: Explanation, input_shape: Sequence[int] | None = None, failures: list[str] | None = None,
                      prefix: str = "explanation") -> list[Media]:
    """The pictures and tables of an explanation (see the module docstring)."""
    failures = [] if failures is None else failures
    items: list[Media] = []
    explained = sum(a is not None for a in e.assignment)
    title = (f"I(X_i; Z_j) from {e.num_points} points: {explained} of {e.num_inputs} inputs explained "
             f"(at least max(0.01, 0.1 H(X_i)) nats)")

    def heatmap() -> Media:
        fig = explanation_heatmap(e, title=title)
        return Media(f"{prefix}/input_information", "image", viz.figure_to_array(fig),
                     "mutual information (nats) of each input with each latent, from posterior samples; "
                     "inputs grouped by the latent that explains them")

    item = attempt(f"{prefix}/input_information", failures, heatmap)
    if item is not None:
        items.append(item)
    if input_shape is not None and len(input_shape) == 3:
        def pixels() -> Media:
            fig = pixel_information_maps(e, input_shape)
            return Media(f"{prefix}/pixel_information", "image", viz.figure_to_array(fig),
                         "per latent, how much it tells about each pixel (nats)")

        item = attempt(f"{prefix}/pixel_information", failures, pixels)
        if item is not None:
            items.append(item)
    items.append(Media(f"{prefix}/input_information_table", "table", e.table(), "I(X_i; Z_j) per input, nats"))
    items.append(Media(f"{prefix}/latents", "table", e.latent_table(),
                       "per latent: rate, I(Z_j;X), inputs explained, total correlation explained (nats)"))
    return items


def input_names_of(datamodule, n: int) -> list[str] | None:
    """The datamodule's ``input_names`` when it declares ``n`` of them."""
    names = getattr(datamodule, "input_names", None) if datamodule is not None else None
    if names is not None and len(names) == n:
        return [str(s) for s in names]
    return None


class InputExplanation(MediaCallback):
    """Which inputs each latent explains (``tcx.input_information``; module docstring).

    On the first ``num_points`` validation points (``image_points`` for image data, whose many
    pixels make each point dearer), at the end of every ``every_n_epochs``-th validation epoch (0,
    the default: only at the end of fit), on global rank 0. Writes ``<run>/input_information.csv``
    (replaced each time) and logs the pictures and tables; ``last`` keeps the latest
    ``Explanation``. Scalars: ``explanation/explained_inputs`` and ``explanation/tc_explained``
    (the sum over latents, nats).

    Args:
        num_points, image_points: validation points used (the work grows as their square).
        num_samples: posterior draws per point. seed: of the draws.
        min_fraction, min_nats: an input is explained by a latent that tells at least
            ``max(min_nats, min_fraction * H(X_i))`` nats about it.
    """

    def __init__(self, num_points: int = 2000, image_points: int = 500, num_samples: int = 1,
                 min_fraction: float = 0.1, min_nats: float = 0.01, every_n_epochs: int = 0, seed: int = 0) -> None:
        super().__init__(every_n_epochs)
        self.num_points = check_int("num_points", num_points, 2)
        self.image_points = check_int("image_points", image_points, 2)
        self.num_samples = check_int("num_samples", num_samples, 1)
        self.min_fraction, self.min_nats = float(min_fraction), float(min_nats)
        self.seed = int(seed)
        self.last: Explanation | None = None
        self.csv_path = None

    def validation_inputs(self, trainer, pl_module) -> torch.Tensor | None:
        shape = tuple(getattr(pl_module, "input_shape", ()))
        limit = self.image_points if len(shape) == 3 else self.num_points
        batches = validation_batches(trainer)
        if batches is None:
            return None
        xs, have = [], 0
        for batch in batches:
            x, _ = split_batch(batch)
            xs.append(x[: limit - have].float().cpu())
            have += xs[-1].shape[0]
            if have >= limit:
                break
        return torch.cat(xs) if xs else None

    def make_media(self, trainer, pl_module):
        x = self.validation_inputs(trainer, pl_module)
        if x is None or len(x) < 2:
            report("tcx: InputExplanation found no validation data (give the datamodule a val_dataloader); "
                   "nothing written")
            return [], {}
        means, log_vars = zip(*(encode_posteriors(pl_module, chunk) for chunk in x.split(512)))
        names = input_names_of(getattr(trainer, "datamodule", None), x[0].numel())
        e = input_information(x, torch.cat(means), torch.cat(log_vars), num_samples=self.num_samples,
                              min_fraction=self.min_fraction, min_nats=self.min_nats, input_names=names,
                              generator=torch.Generator().manual_seed(self.seed))
        self.last = e
        text = e.csv_text().encode()
        try:
            self.csv_path = atomic_save(lambda f: f.write(text), join_path(run_dir(trainer), CSV_NAME),
                                        advice="free space in the run's folder or log elsewhere")
        except Exception as exc:
            report(f"tcx: InputExplanation could not write {CSV_NAME}: {type(exc).__name__}: {exc}")
        items = explanation_media(e, tuple(getattr(pl_module, "input_shape", ())) or None)
        scalars = {"explanation/explained_inputs": float(sum(a is not None for a in e.assignment)),
                   "explanation/tc_explained": float(e.tc_explained.sum())}
        return items, scalars
