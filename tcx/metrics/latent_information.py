"""Discrete mutual information between each latent and the labels, on posterior means and on
posterior samples.

``mutual_info_matrix`` (disentanglement_lib's histogram estimate, ``tcx.metrics.mutual_info``)
applied to posterior *means* ``mu_j(x)`` measures ``I(mu_j(X); Y)``, which can be large for a
latent that carries almost no information: a collapsed latent with rate 0.02 nats whose mean moves
by a tiny amount with the digit still has a mean histogram that separates the digits, while its
posterior samples ``z_j ~ p(z_j|x)`` (unit variance) do not. By the data processing inequality
``I(Z_j; Y) <= I(Z_j; X)``, so the MI on *samples*, which estimates ``I(Z_j; Y)`` of the model's
actual code, is the one bounded by the latent's rate. Both are returned, so that a table can show
them side by side. Each is the plug-in estimate with ``num_bins`` equal-width bins, biased upwards
by about ``(num_bins - 1)(C - 1) / (2N)`` nats for a label with ``C`` values.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .mutual_info import mutual_info_matrix
from tcx.errors import TcxError

__all__ = ["latent_label_information"]


def latent_label_information(
    mean: Any,
    log_var: Any,
    labels: Any,
    num_bins: int = 20,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """``{"means": [D, K], "samples": [D, K]}``: the discrete MI in nats between each latent and
    each label column, on the posterior means ``mean [N, D]`` and on one posterior sample per row
    ``mean + exp(log_var / 2) * eps`` (``eps`` drawn with ``generator``). ``labels``: ``[N]`` or
    ``[N, K]`` integers."""
    mean = torch.as_tensor(mean).detach().double().cpu()
    log_var = torch.as_tensor(log_var).detach().double().cpu()
    if mean.shape != log_var.shape or mean.dim() != 2:
        raise TcxError(f"mean and log_var must both be [N, D], got {tuple(mean.shape)} and {tuple(log_var.shape)}")
    eps = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
    z = mean + torch.exp(0.5 * log_var) * eps
    return {
        "means": mutual_info_matrix(mean, labels, num_bins),
        "samples": mutual_info_matrix(z, labels, num_bins),
    }
