"""AnchorVAE: anchor latents with a smaller weight on their information (Gao et al. 2019, sec. 5).

docs/math.md#anchorvae: a chosen set ``A`` of anchor latents gets
``beta_j = anchor_beta`` with ``0 <= anchor_beta < 1``, the others ``beta``. Equivalently the
objective gains an information-maximization bonus ``gamma * sum_{j in A} I(Z_j;X)`` with
``anchor_beta = beta - gamma``, which pushes the anchors to carry more information about ``X``
than the other latents.
"""

from __future__ import annotations

import torch

from tcx.models.anchors import check_anchor_weights, resolve_anchors
from tcx.models.base import CorExVAE

__all__ = ["AnchorVAE", "resolve_anchors"]


class AnchorVAE(CorExVAE):
    """The AnchorVAE of Gao et al. 2019: anchors get the weight ``anchor_beta`` on their rate.

    Args:
        latent_dim: number of latents ``D``.
        anchors: a count ``k`` (the first ``k`` latents are anchors) or a list of latent indices.
        anchor_beta: the weight ``beta_A`` on each anchor's information term, in [0, 1).
        beta: the weight on every other latent's information term (>= 0; 1 as in the paper).
        **kwargs: the arguments of :class:`tcx.models.base.CorExVAE`.

    Logged besides the base's terms: the rate of every latent (``*/rate/z{j}``) and the summed
    rates of the anchors (``*/rate_anchors``) and the others (``*/rate_others``), in nats.
    """

    ARCHITECTURE = ("anchors",)

    def __init__(
        self,
        latent_dim: int = 10,
        anchors: int | list[int] = 2,
        anchor_beta: float = 0.2,
        beta: float = 1.0,
        **kwargs,
    ) -> None:
        check_anchor_weights(anchor_beta, beta)
        self._anchors = resolve_anchors(anchors, int(latent_dim))
        self.anchor_beta = float(anchor_beta)
        self.beta = float(beta)
        super().__init__(latent_dim=latent_dim, **kwargs)

    @property
    def anchor_indices(self) -> tuple[int, ...]:
        return self._anchors

    def latent_weights(self) -> torch.Tensor:
        weights = torch.full((self.latent_dim,), self.beta)
        weights[list(self._anchors)] = self.anchor_beta
        return weights
