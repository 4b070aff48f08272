"""AnchorVAE: anchor latents with a smaller weight on their information (Gao et al. 2019, sec. 5).

docs/math.md#anchorvae: a chosen set ``A`` of anchor latents gets
``beta_j = anchor_beta`` with ``0 <= anchor_beta < 1``, the others ``beta``. Equivalently the
objective gains an information-maximization bonus ``gamma * sum_{j in A} I(Z_j;X)`` with
``anchor_beta = beta - gamma``, which pushes the anchors to carry more information about ``X``
than the other latents.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from tcx.models.base import CorExVAE
from tcx.errors import TcxError

__all__ = ["AnchorVAE", "resolve_anchors"]


def resolve_anchors(anchors: int | Sequence[int], latent_dim: int) -> tuple[int, ...]:
    """The sorted anchor indices for ``anchors``: a count ``k`` (the first ``k`` latents) or a list
    of distinct indices in ``[0, latent_dim)``. Anything else is refused with a clear message."""
    if latent_dim < 1:
        raise TcxError(f"latent_dim must be >= 1, got {latent_dim}")
    if isinstance(anchors, bool):
        raise TcxError(f"anchors must be a count or a list of latent indices, got {anchors!r}")
    if isinstance(anchors, int):
        if not 1 <= anchors <= latent_dim:
            raise TcxError(
                f"anchors={anchors}: the number of anchors must be between 1 and latent_dim="
                f"{latent_dim} (use VAE or BetaVAE for a model without anchors)"
            )
        return tuple(range(anchors))
    try:
        indices = [int(i) for i in anchors]
    except (TypeError, ValueError):
        raise TcxError(f"anchors must be a count or a list of latent indices, got {anchors!r}") from None
    if not indices:
        raise TcxError("anchors=[]: give at least one anchor index (or use VAE / BetaVAE)")
    bad = [i for i in indices if not 0 <= i < latent_dim]
    if bad:
        raise TcxError(
            f"anchors={indices}: indices {bad} are out of range; latents are numbered 0 .. {latent_dim - 1}"
        )
    if len(set(indices)) != len(indices):
        raise TcxError(f"anchors={indices}: indices must be distinct")
    return tuple(sorted(indices))


def check_anchor_weights(anchor_beta, beta) -> None:
    """Refuse weights that do not anchor: ``anchor_beta`` must lie in ``[0, 1)`` and below ``beta``
    (docs/math.md#anchorvae: a smaller weight on the anchors' information than on the others', a
    bonus, not a penalty). Shared by every family with anchors."""
    if not (isinstance(anchor_beta, (int, float)) and 0.0 <= anchor_beta < 1.0):
        raise TcxError(
            f"anchor_beta={anchor_beta!r} is not allowed: it must be in [0, 1) "
            "(a smaller weight than the VAE's 1 on the anchors' information)"
        )
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise TcxError(f"beta={beta!r} is not allowed: it must be a finite number >= 0")
    if not anchor_beta < beta:
        raise TcxError(
            f"anchor_beta={anchor_beta!r} >= beta={beta!r} is not allowed: the anchors would get a "
            "larger weight on their information than the other latents, a penalty instead of the "
            "bonus anchoring means; choose anchor_beta < beta (e.g. anchor_beta 0.2 with beta 1)"
        )


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
