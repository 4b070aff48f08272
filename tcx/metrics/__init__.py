"""Disentanglement metrics as functions on tensors (see each module for its paper).

Every metric is a pure function of codes ``[N, D]`` (float) and factors ``[N, K]`` (integer; a
``[N]`` class label is a factor with K = 1), torch tensors or numpy arrays, returning a float or a
dict of floats; the intervention scores sample from a ground-truth source instead. Definitions
follow disentanglement_lib (Locatello et al. 2019) so that values are comparable with the
literature; every deviation is documented where it is made. The sample-quality, probe,
intervention-agreement and likelihood measures (``sample_quality``, ``probe``,
``latent_information``, ``intervention_agreement``, ``likelihood``, with ``classifier``) take
codes, features or a model's ``decode`` instead. :mod:`tcx.metrics.accumulate` holds
the torchmetrics classes that gather batches (and processes) and call these functions; they are
imported on first use (``tcx.metrics.MIG``), so the functions do not pay torchmetrics' import.
"""

from typing import Any

from .dci import dci, dci_from_importance, gbt_importance_matrix
from .intervention import beta_vae_score, factor_vae_score
from .irs import irs
from .mig import mig
from .modularity import modularity_explicitness, modularity_from_mi
from .mutual_info import discrete_entropy, histogram_discretize, mutual_info_matrix
from .sap import sap, sap_score_matrix
from .sample_quality import class_entropy, frechet_distance, frechet_distance_gaussians, mean_confidence
from .probe import knn_probe, linear_probe
from .latent_information import latent_label_information, subset_label_information
from .intervention_agreement import intervention_agreement
from .likelihood import iwae_bound, iwae_per_input, log_importance_weights, model_iwae
from .manifold import class_divergence, density_coverage, knn_radii, precision_recall
from .traversal_change import traversal_class_change
from .unsupervised import (
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    unsupervised,
)

__all__ = [
    "mutual_info_matrix",
    "discrete_entropy",
    "histogram_discretize",
    "mig",
    "dci",
    "dci_from_importance",
    "gbt_importance_matrix",
    "sap",
    "sap_score_matrix",
    "modularity_explicitness",
    "modularity_from_mi",
    "irs",
    "unsupervised",
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "factor_vae_score",
    "beta_vae_score",
    "frechet_distance",
    "frechet_distance_gaussians",
    "class_entropy",
    "mean_confidence",
    "knn_probe",
    "linear_probe",
    "subset_label_information",
    "latent_label_information",
    "intervention_agreement",
    "iwae_bound",
    "log_importance_weights",
    "model_iwae",
    "iwae_per_input",
    "knn_radii",
    "precision_recall",
    "density_coverage",
    "class_divergence",
    "traversal_class_change",
    "FrechetFeatureDistance",
    "ClassDiversity",
    "DisentanglementMetric",
    "MIG",
    "DCI",
    "SAP",
    "ModularityExplicitness",
    "IRS",
    "Unsupervised",
]

_ACCUMULATORS = {"DisentanglementMetric", "MIG", "DCI", "SAP", "ModularityExplicitness", "IRS",
                 "Unsupervised"}


def __getattr__(name: str) -> Any:
    if name in ("FrechetFeatureDistance", "ClassDiversity"):
        from . import accumulate_quality

        return getattr(accumulate_quality, name)
    if name in _ACCUMULATORS:
        from . import accumulate

        return getattr(accumulate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
