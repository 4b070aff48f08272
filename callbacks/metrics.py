"""The ``DisentanglementMetrics`` callback: disentanglement scores of the model during training.

Every ``every_n_epochs`` validation epochs and once at the end of fit, it encodes a fixed, seeded
sample of the datamodule's data (posterior means), scores the codes against the ground-truth
factors (or the labels) with :mod:`tcx.metrics`, and logs the scores under ``metrics/*``. Under
DDP every value equals the one-process value. What is computed depends on what the datamodule
declares: ground truth (every metric), labels without a renderer (the code-based metrics), or no
labels (the unsupervised scores only).

Details: docs/callbacks.md#callbacksmetricspy-disentanglementmetrics
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Iterable, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import DataLoader

from tcx.batches import split_batch as read_batch
from tcx.callbacks.encoding import evaluating
from tcx.callbacks.media_logging import log_scalars
from tcx.groundtruth import has_val_dataloader, is_ground_truth
from tcx.metrics import beta_vae_score, factor_vae_score
from tcx.metrics.accumulate import DCI, IRS, MIG, SAP, ModularityExplicitness, Unsupervised
from tcx.errors import TcxError
from tcx.validation import check_choice, check_int


__all__ = ["DisentanglementMetrics", "METRICS"]

#: every metric name the callback knows; the intervention scores need a renderer
METRICS = ("mig", "dci", "sap", "modularity", "irs", "unsupervised", "factor_vae", "beta_vae")
_NEED_FACTORS = ("mig", "dci", "sap", "modularity", "irs")
_INTERVENTION = ("factor_vae", "beta_vae")


class DisentanglementMetrics(pl.Callback):
    """Log disentanglement metrics of the posterior means every few epochs, at fit end and at the
    end of ``trainer.test``.

    Args:
        every_n_epochs: evaluate after every ``every_n_epochs``-th validation epoch; ``0`` for
            only at the end of fit.
        intervention_every_n_epochs: the same for the FactorVAE and BetaVAE scores, which encode
            far more images (``intervention_train + intervention_eval`` batches); ``0``, the
            default, computes them at the end of fit only.
        metrics: names from :data:`METRICS` (default: all that the data allows).
        num_samples: size of the fixed sample the code-based metrics use (disentanglement_lib
            uses 10,000 for MIG and 10,000 + 5,000 for the train/test metrics).
        seed: seed of the sample, the train/test split and the intervention scores.
        batch_size: images encoded at a time.
        dci_booster: the gradient-boosted trees of DCI: ``None`` for the default of
            :func:`tcx.metrics.dci` (tcx's fast booster), or a name it accepts (``'sklearn'``
            for scikit-learn's exact booster).
        intervention_train, intervention_eval, intervention_variance, intervention_batch: the
            FactorVAE/BetaVAE scores' training points, evaluation points, points for the
            variance estimate and batch size (the papers' 10,000 / 5,000 / 10,000 / 64 by default;
            each training point encodes a batch, so lower them for quick runs).

    Logged keys: ``metrics/mig``, ``metrics/dci_disentanglement``, ``metrics/dci_completeness``,
    ``metrics/dci_informativeness_train``, ``metrics/dci_informativeness_test``, ``metrics/sap``,
    ``metrics/modularity``, ``metrics/explicitness_train``, ``metrics/explicitness_test``,
    ``metrics/irs`` (and ``metrics/irs_*``), ``metrics/gaussian_total_correlation``,
    ``metrics/gaussian_wasserstein_correlation``, ``metrics/gaussian_wasserstein_correlation_norm``,
    ``metrics/mutual_info_score``, ``metrics/factor_vae_train_accuracy``,
    ``metrics/factor_vae_eval_accuracy``, ``metrics/factor_vae_num_active_dims``,
    ``metrics/beta_vae_train_accuracy``, ``metrics/beta_vae_eval_accuracy``, and
    ``metrics/seconds`` (the time one evaluation took). ``results`` holds the last values and
    ``skipped`` the metrics left out, each with its reason.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        intervention_every_n_epochs: int = 0,
        metrics: Sequence[str] | None = None,
        num_samples: int = 10000,
        seed: int = 0,
        batch_size: int = 512,
        dci_booster: str | None = None,
        intervention_train: int = 10000,
        intervention_eval: int = 5000,
        intervention_variance: int = 10000,
        intervention_batch: int = 64,
    ) -> None:
        super().__init__()
        for name, value in (("every_n_epochs", every_n_epochs),
                            ("intervention_every_n_epochs", intervention_every_n_epochs)):
            check_int(name, value, 0, hint="0: only at the end of fit")
        chosen = tuple(METRICS if metrics is None else metrics)
        for i, m in enumerate(chosen):
            check_choice(f"metrics[{i}]", m, tuple(METRICS))
        for name, value in (("num_samples", num_samples), ("batch_size", batch_size),
                            ("intervention_train", intervention_train), ("intervention_eval", intervention_eval),
                            ("intervention_variance", intervention_variance),
                            ("intervention_batch", intervention_batch)):
            check_int(name, value, 1)
        check_int("num_samples", num_samples, 10, hint="to split into train and test")
        self.every_n_epochs = int(every_n_epochs)
        self.intervention_every_n_epochs = int(intervention_every_n_epochs)
        self.metrics = chosen
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.dci_booster = dci_booster
        self.intervention = dict(
            num_train=int(intervention_train), num_eval=int(intervention_eval),
            num_variance_estimate=int(intervention_variance), batch_size=int(intervention_batch),
        )
        self.results: dict[str, float] = {}
        self.skipped: dict[str, str] = {}
        #: which parts (``"codes"``, ``"interventions"``) were computed at which global step
        self.evaluated: dict[int, set[str]] = {}
        #: the skip lines already printed: each is said once per run, not at every evaluation
        self._told: set[str] = set()

    # ------------------------------------------------------------------ hooks
    @staticmethod
    def _due(every: int, epoch: int) -> bool:
        return every > 0 and (epoch + 1) % every == 0

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        codes = self._due(self.every_n_epochs, trainer.current_epoch)
        interventions = self._due(self.intervention_every_n_epochs, trainer.current_epoch)
        if codes or interventions:
            self.evaluate(trainer, pl_module, codes=codes, interventions=interventions)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # `trainer.test` scores what `trainer.validate` scores: the same fixed sample, so a test
        # reports the metrics a validation of the same model reports
        self.on_validation_epoch_end(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the end of fit always has every metric; what was computed at this very step is kept
        done = self.evaluated.get(trainer.global_step, set())
        codes, interventions = "codes" not in done, "interventions" not in done
        if codes or interventions:
            self.evaluate(trainer, pl_module, codes=codes, interventions=interventions)

    # --------------------------------------------------------------- the work
    def evaluate(self, trainer: pl.Trainer, model: pl.LightningModule, codes: bool = True,
                 interventions: bool = True) -> dict[str, float]:
        """Compute the code-based metrics on the fixed sample (``codes``) and the intervention
        scores (``interventions``), log them; returns the values."""
        start = time.perf_counter()
        dm = trainer.datamodule
        self.skipped = {}
        results: dict[str, float] = {}
        if not is_ground_truth(dm) and not has_val_dataloader(dm):
            reason = (f"the datamodule {type(dm).__name__} has no val_dataloader() and cannot render "
                      "from factors: nothing to score; define val_dataloader()")
            self.skipped = {name: reason for name in self.metrics}
            self._tell(f"DisentanglementMetrics: skipped all metrics: {reason}")
            return {}
        with evaluating(model), trainer.precision_plugin.forward_context():
            if codes:
                results.update(self._code_metrics(trainer, model, dm))
            if interventions:
                results.update(self._intervention_scores(trainer, model, dm))
        by_reason: dict[str, list[str]] = {}
        for name, reason in self.skipped.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            self._tell(f"DisentanglementMetrics: skipped {', '.join(names)}: {reason}")
        results["seconds"] = time.perf_counter() - start
        self.results.update(results)
        done = self.evaluated.setdefault(trainer.global_step, set())
        done.update(k for k, on in (("codes", codes), ("interventions", interventions)) if on)
        logged = {f"metrics/{k}": v for k, v in results.items()}
        log_scalars(trainer, logged, trainer.global_step)
        return results

    def _tell(self, line: str) -> None:
        if line not in self._told:
            self._told.add(line)
            rank_zero_info(line)

    def _block(self, trainer: pl.Trainer, total: int) -> tuple[int, int]:
        """This process's contiguous block ``[lo, hi)`` of a sample of ``total`` points: rank ``r``
        of ``W`` takes the ``r``-th of ``W`` consecutive blocks, so that the gather (rank by rank)
        is the one-process sample in the same order (docs/design.md, "Conventions")."""
        rank, world = int(trainer.global_rank), max(int(trainer.world_size), 1)
        per = -(-total // world)
        return min(rank * per, total), min((rank + 1) * per, total)

    def _chunks(self, trainer: pl.Trainer, dm: Any, device: torch.device) -> Iterable[tuple[Tensor, Tensor]]:
        """This process's block of the fixed sample (``_block``), as ``(x, y)`` chunks.

        The sample has the same size on every process: ``num_samples`` rendered points, or the
        first ``min(num_samples, available)`` validation points. A process whose block is empty
        (fewer points than processes) still yields one chunk of zero rows with the data's own
        label width and dtype, so that every process's metric states gather alike under DDP."""
        if is_ground_truth(dm):
            factors = dm.sample_factors(self.num_samples, generator=torch.Generator().manual_seed(self.seed))
            # a factor with one value (dSprites' color) carries nothing to score against; like
            # disentanglement_lib, score against the factors that vary
            varying = [k for k, size in enumerate(dm.factor_sizes) if int(size) > 1]
            render = _chunk_renderer(dm, self.seed)
            lo, hi = self._block(trainer, self.num_samples)
            if lo == hi:
                f = factors[:1]
                yield render(f, 0)[:0].to(device), f[:0, varying]
            # fixed chunks of the whole sample, each rendered whole (its noise seeded by its index)
            # and cut to this process's block: every point is rendered as one process renders it
            size = self.batch_size
            for k in range(lo // size, -(-hi // size)):
                a, b = k * size, min((k + 1) * size, self.num_samples)
                x, f = render(factors[a:b], k), factors[a:b]
                keep = slice(max(lo, a) - a, min(hi, b) - a)
                yield x[keep].to(device), f[keep][:, varying]
            return
        if not has_val_dataloader(dm):
            raise TcxError("DisentanglementMetrics needs a datamodule with a val_dataloader or a renderer")
        # the sample is the first num_samples validation points, in the loader's order; every
        # process reads the loader (the datamodule's own, not the sharded one) and keeps its block
        loader = dm.val_dataloader()
        lo, hi = self._block(trainer, _loader_items(loader, self.num_samples))
        seen = 0
        for batch in loader:
            x, y = _labelled(batch)
            n = x.shape[0]
            if lo == hi:
                yield x[:0].to(device), y[:0]
                return
            a, b = max(lo - seen, 0), min(hi - seen, n)
            if a < b:
                yield x[a:b].to(device), y[a:b]
            seen += n
            if seen >= hi:
                break

    def _code_metrics(self, trainer: pl.Trainer, model: Any, dm: Any) -> dict[str, float]:
        device = model.device
        split = dict(seed=self.seed)
        accumulators = {
            "mig": MIG(),
            "dci": DCI(**split) if self.dci_booster is None else DCI(booster=self.dci_booster, **split),
            "sap": SAP(**split),
            "modularity": ModularityExplicitness(**split),
            "irs": IRS(),
            "unsupervised": Unsupervised(),
        }
        wanted = {k: v for k, v in accumulators.items() if k in self.metrics}
        num_factors = None
        for x, y in self._chunks(trainer, dm, device):
            codes = model.encode(x).mean.float().cpu()
            y = y.cpu()
            num_factors = 1 if y.ndim == 1 else y.shape[1]
            for metric in wanted.values():
                metric.update(codes, y)
        for metric in wanted.values():
            metric.to(device)  # the sync under DDP runs on the process group's device

        results: dict[str, float] = {}
        if num_factors is None:  # no process was given a point: the validation loader is empty
            self.skipped.update({name: "the validation loader yielded no data" for name in wanted})
            return results
        for name, metric in wanted.items():
            if name in _NEED_FACTORS and not num_factors:
                self.skipped[name] = "the data has no labels or factors"
                continue
            try:
                value = metric.compute()
            except ValueError as exc:  # e.g. a factor with one value in the sample
                self.skipped[name] = str(exc)
                continue
            if isinstance(value, dict):
                results.update(_named(name, value))
            else:
                results[name] = float(value)
            metric.reset()
        return results

    def _intervention_scores(self, trainer: pl.Trainer, model: Any, dm: Any) -> dict[str, float]:
        results: dict[str, float] = {}
        device = model.device
        rendering = is_ground_truth(dm)
        for name in _INTERVENTION:
            if name not in self.metrics:
                continue
            if not rendering:
                self.skipped[name] = (
                    f"the datamodule {type(dm).__name__} cannot render observations from factors "
                    "(no factor_sizes / sample_factors / render)"
                )
                continue
            if not trainer.is_global_zero:
                continue
            score_fn = factor_vae_score if name == "factor_vae" else beta_vae_score
            kwargs = dict(self.intervention)
            if name == "beta_vae":
                kwargs.pop("num_variance_estimate")

            def representation(obs: Tensor) -> Tensor:
                return model.encode(obs.to(device)).mean.float()

            scores = score_fn(dm, representation, seed=self.seed, **kwargs)
            results.update({f"{name}_{k}": float(v) for k, v in scores.items()})
        return results


def _chunk_renderer(dm: Any, seed: int):
    """``render(factors, k)`` for the ``k``-th chunk of the sample: a renderer that draws noise
    (``render(factors, generator=...)``, as ``SyntheticCorEx``) gets a generator seeded by the
    sample's seed and ``k``, so that the sample is the same on every process and at every
    evaluation (the datamodule's own generator would advance with each call); a deterministic
    one (``DSprites``) is called as it is."""
    try:
        takes_generator = "generator" in inspect.signature(dm.render).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        takes_generator = False
    if not takes_generator:
        return lambda factors, k: dm.render(factors)
    return lambda factors, k: dm.render(factors, generator=torch.Generator().manual_seed((seed + 1) * 1_000_003 + k))


def _labelled(batch: Any) -> tuple[Tensor, Tensor]:
    """``(x, y)`` of a batch with ``y`` always a tensor: ``[B, 0]`` where the data have no labels,
    integer labels as int64 (what every process gathers, whatever the loader's integer type)."""
    x, y = read_batch(batch)
    if y is None:
        return x, torch.zeros(x.shape[0], 0, dtype=torch.long)
    y = torch.as_tensor(y)
    if y.dtype == torch.bool or not (y.is_floating_point() or y.is_complex()) or (y.ndim == 2 and y.shape[1] == 0):
        y = y.long()
    return x, y


def _loader_items(loader: Any, cap: int) -> int:
    """How many points ``loader`` yields, at most ``cap``: from its sampler where it is a
    ``DataLoader`` that batches one point per index, otherwise by reading it (up to ``cap``).
    Every process computes the same number from the same loader."""
    if isinstance(loader, DataLoader) and loader.batch_size is not None:
        try:
            n = len(loader.sampler)
        except TypeError:  # an iterable dataset, or a sampler without a length
            pass
        else:
            if loader.drop_last:
                n -= n % loader.batch_size
            return min(n, cap)
    seen = 0
    for batch in loader:
        seen += read_batch(batch)[0].shape[0]
        if seen >= cap:
            break
    return min(seen, cap)


def _named(metric: str, values: dict[str, Tensor]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if metric == "dci":
            out[f"dci_{key}"] = float(value)
        elif metric == "irs" and key != "irs":
            out[key if key.startswith("irs") else f"irs_{key}"] = float(value)
        else:
            out[key] = float(value)
    return out
