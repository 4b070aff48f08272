"""The paper's three claims as numbers: information, interpretability, sample quality.

``QualityMetrics`` measures a model on its datamodule's held-out data with the functions of
``tcx.metrics`` (one implementation each) and logs ``quality/<name>``:

- *information* of the chosen latents ``S`` (the anchors, or the ``num_top`` latents of largest rate);
- *interpretability*: probes of the label from ``S``, all or the other latents; intervention agreement;
- *samples*: Frechet distance in tcx's own classifier's features (**not** the Inception FID) and more;
- *likelihood*: the IWAE bound with ``iwae_k`` samples and the ELBO, nats per input.

As a callback it measures the validation split during fit and the test split at ``trainer.test``;
``measure(model, datamodule, split="test")`` is the same computation, for scripts.

Details: docs/callbacks.md#callbacksqualitypy-qualitymetrics
"""

from __future__ import annotations

from typing import Sequence

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from tcx.aggregate_density import AggregateDensity
from tcx.callbacks.encoding import encode_posteriors, evaluating, to_model
from tcx.callbacks.media import MediaCallback
from tcx.estimators import aggregate_information_full, rate_per_latent
from tcx.metrics.classifier import cached_classifier
from tcx.metrics.intervention_agreement import intervention_agreement
from tcx.metrics.latent_information import latent_label_information, subset_label_information
from tcx.metrics.likelihood import model_iwae
from tcx.metrics.mig import mig
from tcx.metrics.probe import knn_probe, linear_probe
from tcx.metrics.sample_quality import class_entropy, frechet_distance, mean_confidence
from tcx.validation import check_choice, check_int
from tcx.errors import TcxError

__all__ = ["QualityMetrics"]


class QualityMetrics(Callback):
    """The paper's claims measured on held-out data (module docstring; every logged key in
    docs/callbacks.md#callbacksqualitypy-qualitymetrics).

    Args:
        subset: the latent indices measured (None: the model's anchors, or its ``num_top`` latents
            of largest held-out rate when it has none).
        num_top: the subset's size for models without anchors (None: 2).
        label_factor: for ground-truth data, the factor (name or column) used as the label.
        num_points: held-out inputs measured (of the validation split during fit, of the test
            split in ``trainer.test`` and by default in ``measure``).
        num_fit: training inputs whose codes fit the probes and the mixture.
        num_samples: generated images per kind (prior, fitted).
        density_components: Gaussians of the fitted mixture.
        iwae_k, iwae_points: IWAE samples per input, and inputs (<= num_points).
        classifier_epochs, classifier_train: the classifier's epochs and training images (None: all).
        cache_dir: the classifier cache folder (None: ``$TCX_CACHE`` or ``~/.cache/tcx``).
        every_n_epochs: measure every that many validation epochs. seed: seeds every draw.
    """

    def __init__(
        self,
        subset: Sequence[int] | None = None,
        num_top: int | None = None,
        label_factor: str | int | None = None,
        num_points: int = 2000,
        num_fit: int = 5000,
        num_samples: int = 2000,
        density_components: int = 10,
        iwae_k: int = 64,
        iwae_points: int = 500,
        classifier_epochs: int = 2,
        classifier_train: int | None = 60000,
        cache_dir: str | None = None,
        every_n_epochs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.subset = None if subset is None else [int(j) for j in subset]
        self.num_top = check_int("num_top", num_top, 1, allow_none=True)
        self.label_factor = label_factor
        self.num_points = check_int("num_points", num_points, 1)
        self.num_fit = check_int("num_fit", num_fit, 1)
        self.num_samples = check_int("num_samples", num_samples, 1)
        self.density_components = check_int("density_components", density_components, 1)
        self.iwae_k = check_int("iwae_k", iwae_k, 1)
        self.iwae_points = check_int("iwae_points", iwae_points, 1)
        self.classifier_epochs = check_int("classifier_epochs", classifier_epochs, 1)
        self.classifier_train = check_int("classifier_train", classifier_train, 1, allow_none=True)
        self.cache_dir = cache_dir
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, 1)
        self.seed = int(seed)
        self.last: dict[str, float] = {}
        self._classifiers: dict[int, object] = {}

    # ------------------------------------------------------------------------------ labels
    def _label_column(self, datamodule, y: Tensor) -> tuple[Tensor, int]:
        """The label ``[N]`` and its number of classes."""
        if y.dim() == 1:
            num = int(getattr(datamodule, "num_classes", 0) or int(y.max()) + 1)
            return y.long(), num
        if y.dim() != 2 or y.shape[1] == 0:
            raise TcxError(f"QualityMetrics needs labels or factors; the data have y of shape {tuple(y.shape)}")
        names = list(getattr(datamodule, "factor_names", ()) or ())
        sizes = list(getattr(datamodule, "factor_sizes", ()) or ())
        want = self.label_factor
        if want is None:
            if "shape" not in names:
                raise TcxError(
                    "QualityMetrics: the data have factors "
                    f"{names or y.shape[1]}; set label_factor to the factor to use as the class label"
                )
            want = "shape"
        col = names.index(want) if isinstance(want, str) and want in names else want
        if not isinstance(col, int) or not 0 <= col < y.shape[1]:
            raise TcxError(f"label_factor={want!r} is not one of the factors {names or list(range(y.shape[1]))}")
        num = int(sizes[col]) if sizes else int(y[:, col].max()) + 1
        return y[:, col].long(), num

    # --------------------------------------------------------------------------- pieces
    def classifier(self, datamodule):
        """The cached ``FeatureClassifier`` of this datamodule (trained on its first time)."""
        key = id(datamodule)
        if key not in self._classifiers:
            x_tr, y_tr = datamodule.split_data("train", max_items=self.classifier_train)
            x_te, y_te = datamodule.split_data("val")
            l_tr, num = self._label_column(datamodule, y_tr)
            l_te, _ = self._label_column(datamodule, y_te)
            name = f"{type(datamodule).__name__}-{getattr(datamodule, 'source', '')}"
            self._classifiers[key] = cached_classifier(
                name, x_tr, l_tr, x_te, l_te, num, seed=self.seed, epochs=self.classifier_epochs, cache_dir=self.cache_dir
            )
        return self._classifiers[key]

    @staticmethod
    def _encode(model, x: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
        parts = [encode_posteriors(model, xb) for xb in x.split(batch_size)]
        return torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])

    def _subset(self, model, rates: Tensor) -> list[int]:
        if self.subset is not None:
            return list(self.subset)
        anchors = list(getattr(model, "anchor_indices", ()) or ())
        if anchors:
            return sorted(int(a) for a in anchors)
        k = self.num_top or 2
        return sorted(torch.argsort(rates, descending=True)[:k].tolist())

    # ---------------------------------------------------------------------------- measure
    def measure(self, model, datamodule, split: str = "test") -> dict[str, float]:
        """Every measurement (docs/callbacks.md#callbacksqualitypy-qualitymetrics) for ``model`` on
        ``datamodule``'s held-out inputs from ``split`` (``"val"`` or ``"test"``)."""
        check_choice("split", split, ("val", "test"))
        with evaluating(model):
            return self._measure(model, datamodule, split)

    def _measure(self, model, datamodule, split: str) -> dict[str, float]:
        clf = self.classifier(datamodule).to(model.device)
        g = torch.Generator().manual_seed(self.seed)
        x_te, y_te = datamodule.split_data(split, max_items=self.num_points)
        x_tr, y_tr = datamodule.split_data("train", max_items=self.num_fit)
        l_te, _ = self._label_column(datamodule, y_te)
        l_tr, _ = self._label_column(datamodule, y_tr)
        m_te, v_te = self._encode(model, x_te)
        m_tr, v_tr = self._encode(model, x_tr)
        rates = rate_per_latent(m_te, v_te)
        subset = self._subset(model, rates)
        rest = [j for j in range(model.latent_dim) if j not in set(subset)]
        out: dict[str, float] = {"classifier_accuracy": float(clf.accuracy)}
        out["rate_subset"] = float(rates[subset].sum())
        out["rate_total"] = float(rates.sum())
        # I(Z_j;X) and the prior gap KL(q(z_j) || r_j) of each latent, from the aggregate posterior of
        # the measured points (rate = information + gap; the estimate of I is at most log num_points)
        agg = aggregate_information_full(m_te, v_te, generator=g)
        out["info_subset"] = float(agg["mutual_info_per_latent"][subset].sum())
        out["prior_gap_subset"] = float(agg["dimension_wise_kl"][subset].sum())
        # interpretability
        out["info_per_latent"] = ",".join(f"{float(v):.4f}" for v in agg["mutual_info_per_latent"])  # type: ignore[assignment]
        out["rate_per_latent"] = ",".join(f"{float(v):.4f}" for v in rates)  # type: ignore[assignment]
        out["probe_subset"] = float(linear_probe(m_tr, l_tr, m_te, l_te, subset)[0])
        out["probe_all"] = float(linear_probe(m_tr, l_tr, m_te, l_te)[0])
        out["knn_subset"] = float(knn_probe(m_tr, l_tr, m_te, l_te, subset)[0])
        out["knn_all"] = float(knn_probe(m_tr, l_tr, m_te, l_te)[0])
        out["mi_joint_subset"] = subset_label_information(m_tr, l_tr, m_te, l_te, subset)["lower_bound"]
        if rest:
            out["probe_rest"] = float(linear_probe(m_tr, l_tr, m_te, l_te, rest)[0])
        if y_te.dim() == 2:
            varying = [k for k in range(y_te.shape[1]) if int(y_tr[:, k].max()) > int(y_tr[:, k].min())]
            acc = linear_probe(m_tr, y_tr[:, varying], m_te, y_te[:, varying], subset)
            out["probe_subset_factors_mean"] = float(acc.mean())
            # every varying factor on its own, and MIG of the subset alone beside MIG of all latents
            names = list(getattr(datamodule, "factor_names", ()) or ()) or [f"factor{k}" for k in range(y_te.shape[1])]
            for k, a in zip(varying, acc):
                out[f"probe_subset_{names[k]}"] = float(a)
            out["mig_subset"] = mig(m_te[:, subset], y_te[:, varying])
            out["mig_all"] = mig(m_te, y_te[:, varying])
        mi = latent_label_information(m_te, v_te, l_te, generator=g)
        out["mi_means_subset"] = float(mi["means"][subset, 0].sum())
        out["mi_samples_subset"] = float(mi["samples"][subset, 0].sum())
        if rest:
            out["mi_samples_rest_max"] = float(mi["samples"][rest, 0].max())
        if rest:
            agree = intervention_agreement(
                lambda z: model.decode(z.to(model.device)), clf, m_te, subset, generator=g
            )
            out["held"], out["redrawn"] = agree["held"], agree["redrawn"]
        # samples
        f_real, _ = clf.evaluate(x_te)
        n_ref = min(len(x_te), len(x_tr))
        f_real_train, _ = clf.evaluate(x_tr[:n_ref])
        out["fd_real"] = frechet_distance(f_real[:n_ref], f_real_train)

        binary = getattr(model.hparams, "likelihood", None) == "bernoulli"
        draws = torch.Generator().manual_seed(self.seed + 2)

        def score(tag: str, images: Tensor) -> None:
            f, p = clf.evaluate(images)
            out[f"fd_{tag}"] = frechet_distance(f, f_real)
            out[f"entropy_{tag}"] = class_entropy(p)
            out[f"confidence_{tag}"] = mean_confidence(p)
            if binary:  # one binary image from each decoded mean: like for like with the data
                f, p = clf.evaluate(torch.bernoulli(images.clamp(0, 1), generator=draws))
                out[f"fd_{tag}_binary"] = frechet_distance(f, f_real)
                out[f"entropy_{tag}_binary"] = class_entropy(p)

        def generate(density=None) -> Tensor:
            gen = torch.Generator(device="cpu").manual_seed(self.seed + 1)
            chunks, left = [], self.num_samples
            while left > 0:
                n = min(500, left)
                z = torch.randn(n, model.latent_dim, generator=gen)
                if density is not None:
                    z[:, list(density.indices)] = density.sample(n, generator=gen)
                chunks.append(model.decode(z.to(model.device)).float().cpu())
                left -= n
            return torch.cat(chunks)

        score("prior", generate())
        density = AggregateDensity.fit(m_tr, v_tr, subset, self.density_components, seed=self.seed)
        score("fitted", generate(density))
        every = list(range(model.latent_dim))
        if every != list(density.indices):
            dense = AggregateDensity.fit(m_tr, v_tr, every, self.density_components, seed=self.seed)
            score("fitted_all", generate(dense))
        else:
            for key in [k for k in out if k.endswith("_fitted") or "_fitted_" in k]:
                out[key.replace("fitted", "fitted_all", 1)] = out[key]
        # the decoded posterior means of the test points, encoded once above (m_te)
        recon = torch.cat([model.decode(to_model(model, m)).float().cpu() for m in m_te.split(500)])
        score("recon", recon)
        out["recon_class_kept"] = float((clf.evaluate(recon)[1].argmax(1) == l_te).float().mean())
        # likelihood
        lik = model_iwae(model, x_te[: self.iwae_points], k=self.iwae_k, generator=g)
        out["iwae"], out["elbo"] = lik["iwae"], lik["elbo"]
        out["subset"] = ",".join(map(str, subset))  # type: ignore[assignment]
        return out

    # -------------------------------------------------------------------------- callback
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self._measure_and_log(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._measure_and_log(trainer, pl_module, "test")

    def _measure_and_log(self, trainer, pl_module, split: str) -> None:
        if trainer.global_rank != 0:
            return
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not callable(getattr(datamodule, "split_data", None)):
            raise TcxError("QualityMetrics needs a datamodule with split_data (every tcx datamodule has it)")
        self.last = self.measure(pl_module, datamodule, split)
        numbers = {f"quality/{k}": v for k, v in self.last.items() if isinstance(v, float)}
        # to every logger and to trainer.callback_metrics (the end-of-fit summary), as the picture
        # callbacks log their scalars
        MediaCallback.log_scalars(trainer, numbers, trainer.global_step)
