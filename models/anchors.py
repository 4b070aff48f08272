"""Anchors, for every family that has them (AnchorVAE, HierarchicalVAE): which latents are the
anchors, and the weights that make them anchors (docs/math.md#anchorvae)."""

from __future__ import annotations

from typing import Sequence

from tcx.errors import TcxError
from tcx.validation import check_int, check_real

__all__ = ["resolve_anchors", "check_anchor_weights"]


def resolve_anchors(anchors: int | Sequence[int], latent_dim: int) -> tuple[int, ...]:
    """The sorted anchor indices for ``anchors``: a count ``k`` (the first ``k`` latents) or a list
    of distinct indices in ``[0, latent_dim)``. Anything else is refused with a clear message."""
    # anchored families resolve their anchors before the base model checks latent_dim
    latent_dim = check_int("latent_dim", latent_dim, 1)
    if isinstance(anchors, bool):
        raise TcxError(f"anchors must be a count or a list of latent indices, got {anchors!r}")
    if isinstance(anchors, int):
        count = check_int(
            "anchors (a count)", anchors, 1, latent_dim,
            hint="at most latent_dim; use VAE or BetaVAE for a model without anchors",
        )
        return tuple(range(count))
    try:
        indices = [int(i) for i in anchors]
    except (TypeError, ValueError):
        raise TcxError(f"anchors must be a count or a list of latent indices, got {anchors!r}") from None
    if not indices:
        raise TcxError("anchors=[]: give at least one anchor index (or use VAE / BetaVAE)")
    for k, i in enumerate(indices):
        check_int(f"anchors[{k}]", i, 0, latent_dim - 1, hint="latents are numbered from 0")
    if len(set(indices)) != len(indices):
        raise TcxError(f"anchors={indices}: indices must be distinct")
    return tuple(sorted(indices))


def check_anchor_weights(anchor_beta, beta) -> None:
    """Refuse weights that do not anchor: ``anchor_beta`` must lie in ``[0, 1)`` and below ``beta``
    (docs/math.md#anchorvae: a smaller weight on the anchors' information than on the others', a
    bonus, not a penalty). Shared by every family with anchors."""
    check_real("anchor_beta", anchor_beta, 0, 1, high_open=True,
               hint="a smaller weight than the VAE's 1 on the anchors' information")
    check_real("beta", beta, 0)
    if not anchor_beta < beta:
        raise TcxError(
            f"anchor_beta={anchor_beta!r} >= beta={beta!r} is not allowed: the anchors would get a "
            "larger weight on their information than the other latents, a penalty instead of the "
            "bonus anchoring means; choose anchor_beta < beta (e.g. anchor_beta 0.2 with beta 1)"
        )
