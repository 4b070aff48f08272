"""Disentanglement metrics as functions on tensors (see each module for its paper).

Every metric is a pure function of codes ``[N, D]`` (float) and factors ``[N, K]`` (integer; a
``[N]`` class label is a factor with K = 1), torch tensors or numpy arrays, returning a float or a
dict of floats; the intervention scores sample from a ground-truth source instead. Definitions
follow disentanglement_lib (Locatello et al. 2019) so that values are comparable with the
literature; every deviation is documented where it is made. :mod:`tcx.metrics.accumulate` holds
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
    if name in _ACCUMULATORS:
        from . import accumulate

        return getattr(accumulate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
