"""Information diagnostics of a representation, in nats (docs/math.md#estimators).

``InformationDiagnostics`` reads the representation through information: how much each latent
tells about the data (the rate ``E_x KL_j``, the upper bound training uses, and an estimate of
``I(Z_j;X)`` itself), how dependent the latents are (``TC(Z)``), how much the code holds in all
(``I(Z;X)``), and, where the data have ground-truth factors or labels, which latent holds which
factor (``tcx.input_information.factor_information``: from posterior samples, so a latent of rate
0 tells nothing), and each latent's rate and ``I(Z_j;X)`` over the run's validation epochs. The
numbers come from ``tcx.estimators`` and ``tcx.input_information``; this module gathers the
posteriors and draws the pictures (``information_media``, used by ``tcx traverse`` too).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from tcx import visualize as viz
from tcx.batches import split_batch as read_batch
from tcx.callbacks.encoding import Encoded, shared_encoding
from tcx.callbacks.media import MediaCallback
from tcx.callbacks.media_logging import Media, report
from tcx.callbacks.pictures import attempt
from tcx.validation import check_int
from tcx.estimators import aggregate_information_full, gaussian_total_correlation, rate_per_latent
from tcx.input_information import factor_information

__all__ = ["InformationDiagnostics", "information_media", "factor_names_of"]


def factor_names_of(datamodule, y: torch.Tensor | None) -> list[str] | None:
    """Names of the columns of ``y`` (factors ``[N, K]`` or labels ``[N]``): the datamodule's
    ``factor_names`` when it declares ``K`` of them, ``["label"]`` for a label, ``factor0 ..``
    otherwise; ``None`` without ``y``."""
    if y is None:
        return None
    k = 1 if y.dim() == 1 else int(y.shape[1])
    names = getattr(datamodule, "factor_names", None) if datamodule is not None else None
    if names is not None and len(names) == k and y.dim() == 2:
        return [str(n) for n in names]
    if y.dim() == 1:
        return ["label"]
    return [f"factor{i}" for i in range(k)]


def information_media(
    model,
    encoded: Encoded,
    factor_names: Sequence[str] | None = None,
    *,
    num_bins: int = 20,
    num_scored: int | None = None,
    seed: int = 0,
    prefix: str = "diagnostics",
    failures: list[str] | None = None,
    dataset_size: int | None = None,
    factor_points: int = 1000,
) -> tuple[list[Media], dict[str, float]]:
    """The information pictures and scalars of the posteriors ``encoded`` (``M`` points).

    Scalars (nats): ``<prefix>/mutual_info`` ``I(Z;X)``, ``<prefix>/total_correlation`` ``TC(Z)``
    and ``<prefix>/info/z{j}`` ``I(Z_j;X)`` of the aggregate posterior over the dataset, from
    ``tcx.estimators.aggregate_information_full`` with ``dataset_size=N`` (the dataset's size:
    minibatch stratified weights, so the values estimate the dataset's quantities whatever ``M``,
    with ``I(Z;X) <= log N``; see its docstring for the bias), one posterior draw per point seeded
    with ``seed``; ``num_scored`` scores a random subset. Without ``dataset_size`` (or when it is
    smaller than ``M``) the ``M`` points are taken as the whole dataset (``I(Z;X) <= log M``).
    ``<prefix>/gaussian_total_correlation``: the TC of the Gaussian fitted to the posterior means
    (``tcx.estimators.gaussian_total_correlation``).

    Pictures: ``<prefix>/information``, per latent the rate ``E_x KL_j`` (``rate_per_latent``) and
    the estimate of ``I(Z_j;X)`` as bars, anchors orange and hatched; with factors or labels ``y``,
    ``<prefix>/mi_matrix``, the heatmap of ``factor_information`` (``I(Z_j; factor)`` in nats, from
    posterior samples of the first ``factor_points`` points, never above the latent's rate; factors
    of more than 64 levels in ``num_bins`` quantile bins), each latent's rate beside its row. Table
    ``<prefix>/latent_table``: per latent its index, anchor flag, rate, ``I(Z_j;X)`` estimate and
    ``mi_<factor>_nats``, the same information about each factor.
    """
    failures = [] if failures is None else failures
    anchors = tuple(int(a) for a in getattr(model, "anchor_indices", ()))
    mean, log_var = encoded.mean, encoded.log_var
    n, d = mean.shape
    rate = rate_per_latent(mean, log_var)
    g = torch.Generator().manual_seed(seed)
    size = int(dataset_size) if dataset_size is not None and int(dataset_size) >= n else None
    agg = aggregate_information_full(mean, log_var, generator=g, num_scored=num_scored, dataset_size=size)
    info = agg["mutual_info_per_latent"]
    mi, tc = float(agg["mutual_info"]), float(agg["total_correlation"])
    scalars = {f"{prefix}/mutual_info": mi, f"{prefix}/total_correlation": tc}
    scalars.update({f"{prefix}/info/z{j}": float(info[j]) for j in range(d)})
    if d >= 2 and n > d:
        try:
            scalars[f"{prefix}/gaussian_total_correlation"] = gaussian_total_correlation(mean)
        except ValueError as exc:  # a constant or redundant code: infinite, not worth a stop
            report(f"tcx: {prefix}/gaussian_total_correlation not logged: {exc}")

    items: list[Media] = []

    def chart() -> Media:
        title = (
            f"I(Z;X) = {mi:.2f} nats (at most log N = {math.log(size or n):.2f}),  TC(Z) = {tc:.2f} nats,  "
            f"{n} points" + (f" of N = {size}" if size else "")
        )
        fig = viz.information_chart(rate, info, anchors=anchors, title=title)
        caption = (
            "per latent: the rate E_x KL(p(z_j|x) || N(0,1)) (the bound training uses) and the "
            "aggregate-posterior estimate of I(Z_j;X), in nats; anchors orange and hatched"
        )
        return Media(f"{prefix}/information", "image", viz.figure_to_array(fig), caption)

    item = attempt(f"{prefix}/information", failures, chart)
    if item is not None:
        items.append(item)

    matrix = None
    if encoded.y is not None and factor_names:
        def heatmap() -> Media:
            nonlocal matrix
            m = min(int(factor_points), n)
            matrix = factor_information(encoded.y[:m], mean[:m], log_var[:m], bins=num_bins,
                                        generator=torch.Generator().manual_seed(seed))
            fig = viz.mi_heatmap(matrix, factor_names, anchors=anchors, rates=rate,
                                 title=f"I(z_j; factor) in nats, posterior samples, {m} points")
            caption = (
                f"mutual information (nats) between each latent and each factor, from posterior samples of "
                f"{m} validation points (the posterior's noise counts: at most the latent's rate, shown beside "
                f"its row)"
            )
            return Media(f"{prefix}/mi_matrix", "image", viz.figure_to_array(fig), caption)

        item = attempt(f"{prefix}/mi_matrix", failures, heatmap)
        if item is not None:
            items.append(item)

    columns = ["latent", "anchor", "rate_nats", "info_nats"]
    if matrix is not None:
        columns += [f"mi_{name}_nats" for name in factor_names]
    rows = []
    for j in range(d):
        row = [f"z{j}", j in anchors, float(rate[j]), float(info[j])]
        if matrix is not None:
            row += [float(v) for v in matrix[j]]
        rows.append(row)
    items.append(Media(f"{prefix}/latent_table", "table", (columns, rows), "information per latent, nats"))
    return items, scalars


class InformationDiagnostics(MediaCallback):
    """Information per latent, ``TC(Z)``, ``I(Z;X)`` and the latent-by-factor information matrix.

    On the first ``num_points`` validation points (posteriors shared with the other tcx callbacks
    at the same step), at the end of every ``every_n_epochs``-th validation epoch and of fit, on
    global rank 0 (see ``information_media`` for the estimators; all in nats).

    Logged scalars: ``diagnostics/mutual_info`` (``I(Z;X)``), ``diagnostics/total_correlation``
    (``TC(Z)``), ``diagnostics/info/z{j}`` (``I(Z_j;X)``), ``diagnostics/gaussian_total_correlation``.

    Models with layers (``layer_information(x)``, :class:`tcx.models.HierarchicalVAE`): on every
    validation batch, every epoch and on every process, the model's estimate of each layer's
    ``I(X;Z^l)`` for the batch, as a sample of the training set of ``model.dataset_size`` points
    (docs/math.md#layer-information), logged as the epoch mean ``diagnostics/layer{l}/mutual_info``
    (nats, synced across processes). Without a ``dataset_size`` (from the datamodule or
    ``model.attach_data``) it is skipped with a warning, once.
    Pictures (W&B keys; files ``<name>_step<N>.<ext>`` in ``media_dir(trainer)``):

    - ``diagnostics/information`` (``information_step{N}.png``): rate and ``I(Z_j;X)`` per latent;
    - ``diagnostics/mi_matrix`` (``mi_matrix_step{N}.png``), when the validation batches carry
      factors ``[B, K]`` or labels ``[B]``: ``I(Z_j; factor)`` from posterior samples
      (``factor_information``), each latent's rate beside it; column names from the datamodule's
      ``factor_names`` (that attribute alone is enough);
    - ``diagnostics/latent_table`` (``wandb.Table``; ``latent_table_step{N}.csv``): the numbers;
    - ``diagnostics/information_history`` (``information_history_step{N}.png``): each latent's rate
      and ``I(Z_j;X)`` at every validation epoch so far (``history``, kept in checkpoints), anchors
      marked; on W&B also ``diagnostics/information_over_training``, a line chart of ``I(Z_j;X)``
      per latent (``wandb.plot.line_series``), beside the per-latent scalars it plots.

    Args:
        num_points: validation points used (the estimator's work grows as ``num_points ** 2``).
        num_scored: score only this many of them against all (``None``: all).
        num_bins: quantile bins of a factor of more than 64 levels in the factor information.
        factor_points: the points of the factor information (its work grows as their square).
        every_n_epochs: 0 for the end of fit only.
        seed: of the posterior draws.
    """

    def __init__(
        self,
        num_points: int = 2000,
        num_scored: int | None = 1000,
        num_bins: int = 20,
        every_n_epochs: int = 1,
        seed: int = 0,
        factor_points: int = 1000,
    ) -> None:
        super().__init__(every_n_epochs)
        self.num_points = check_int("num_points", num_points, 2)
        if num_scored is not None:
            check_int("num_scored", num_scored, 1)
        self.num_scored = num_scored
        self.num_bins = check_int("num_bins", num_bins, 2)
        self.factor_points = check_int("factor_points", factor_points, 2)
        self.seed = int(seed)
        #: per validation epoch: ``{"step", "epoch", "rate": [D], "info": [D]}`` (nats)
        self.history: list[dict] = []
        self._warned_no_size = False

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        estimate = getattr(pl_module, "layer_information", None)
        if trainer.sanity_checking or not callable(estimate):
            return
        if getattr(pl_module, "dataset_size", None) is None:
            if not self._warned_no_size:
                self._warned_no_size = True
                report(f"tcx: {type(pl_module).__name__} has no dataset_size, so InformationDiagnostics does not "
                        "log diagnostics/layer{l}/mutual_info; fit with a datamodule that declares `dataset_size` "
                        "or call model.attach_data(dataset_size=N) (N the number of training examples)")
            return
        x, _ = read_batch(batch)
        if not 2 <= x.shape[0] <= pl_module.dataset_size:
            return  # a batch of one point, or more points than the dataset, has no estimate
        for l, value in enumerate(estimate(x), start=1):
            pl_module.log(f"diagnostics/layer{l}/mutual_info", value, on_step=False, on_epoch=True,
                          batch_size=x.shape[0], sync_dist=True)

    def record(self, step: int, epoch: int, rate, information) -> None:
        """Add one validation epoch's rate and ``I(Z_j;X)`` per latent (nats) to ``history``
        (replacing a record of the same step)."""
        entry = {"step": int(step), "epoch": int(epoch), "rate": [float(v) for v in rate],
                 "info": [float(v) for v in information]}
        if self.history and self.history[-1]["step"] == entry["step"]:
            self.history[-1] = entry
        else:
            self.history.append(entry)

    def history_media(self, anchors=()) -> Media | None:
        """``diagnostics/information_history``: the picture of ``history`` (``None`` when empty)."""
        if not self.history:
            return None
        steps = [h["step"] for h in self.history]
        fig = viz.information_history(steps, [h["rate"] for h in self.history], [h["info"] for h in self.history],
                                      anchors=anchors, title=f"information per latent over {len(steps)} validation epochs")
        return Media("diagnostics/information_history", "image", viz.figure_to_array(fig),
                     "per latent, the rate E_x KL_j and the estimate of I(Z_j;X) (nats) at each validation epoch; "
                     "anchors thick, square markers")

    def history_chart(self):
        """A W&B line chart (``wandb.plot.line_series``) of each latent's ``I(Z_j;X)`` over ``history``."""
        import wandb

        d = len(self.history[0]["info"])
        return wandb.plot.line_series(
            xs=[h["step"] for h in self.history], ys=[[h["info"][j] for h in self.history] for j in range(d)],
            keys=[f"z{j}" for j in range(d)], title="I(Z_j;X) per latent over training (nats)", xname="step")

    def log_history_chart(self, trainer) -> None:
        """Log ``history_chart`` to every W&B logger of ``trainer`` (``diagnostics/information_over_training``)."""
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and self.history:
                try:
                    logger.log_metrics({"diagnostics/information_over_training": self.history_chart()},
                                       step=int(trainer.global_step))
                except Exception as exc:
                    report(f"tcx: W&B could not log diagnostics/information_over_training: {type(exc).__name__}: {exc}")

    def state_dict(self) -> dict:
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]

    def make_media(self, trainer, pl_module):
        encoded = shared_encoding(trainer, pl_module, self.num_points)
        if encoded is None or len(encoded) < 2:
            report("tcx: InformationDiagnostics found no validation data (give the datamodule a "
                    "val_dataloader); nothing logged")
            return [], {}
        dm = getattr(trainer, "datamodule", None)
        names = factor_names_of(dm, encoded.y)
        num_scored = None if self.num_scored is None else min(self.num_scored, len(encoded))
        items, scalars = information_media(
            pl_module, encoded, names, num_bins=self.num_bins, num_scored=num_scored, seed=self.seed,
            factor_points=self.factor_points, dataset_size=getattr(pl_module, "dataset_size", None),
        )
        d = encoded.mean.shape[1]
        self.record(trainer.global_step, trainer.current_epoch, rate_per_latent(encoded.mean, encoded.log_var),
                    [scalars[f"diagnostics/info/z{j}"] for j in range(d)])
        anchors = tuple(int(a) for a in getattr(pl_module, "anchor_indices", ()))
        item = attempt("diagnostics/information_history", [], self.history_media, anchors)
        if item is not None:
            items.append(item)
        self.log_history_chart(trainer)
        return items, scalars
