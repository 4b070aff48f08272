"""Intervention agreement: does a subset of latents keep the class when the rest is redrawn?

For each held-out input ``x`` with posterior mean ``mu(x)``, two interventions on a subset ``S``
of latents (the anchors by default):

- *held*: ``z_S = mu_S(x)``, the other latents drawn from the prior ``N(0, I)``;
- *redrawn*: the reverse, ``z_S`` drawn from the prior, the other latents at ``mu(x)``.

Each ``z`` is decoded and classified; the agreement is the fraction of inputs whose class is the
class of the decoded ``mu(x)`` itself (the reconstruction), so that what the decoder loses anyway
is not charged to the subset. If ``S`` carries the class (the paper's claim for anchors, MNIST's
digit) the *held* agreement is high and the *redrawn* one low; for a subset that carries nothing
of the class the reverse. Chance is about the frequency of the most common class. This is the
quantitative form of the "anchor-held samples" pictures of ``tcx.callbacks.Samples``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from tcx.errors import TcxError

__all__ = ["intervention_agreement"]


@torch.no_grad()
def intervention_agreement(
    decode: Callable[[Tensor], Tensor],
    classify: Callable[[Tensor], Tensor],
    means: Any,
    subset: Sequence[int],
    generator: torch.Generator | None = None,
    batch_size: int = 512,
) -> dict[str, float]:
    """``{"held": a, "redrawn": b}``, each in [0, 1] (see the module docstring).

    ``decode``: latents ``[B, D]`` -> observations; ``classify``: observations -> class logits or
    probabilities ``[B, C]`` (the argmax is the class); ``means``: posterior means ``[N, D]``;
    ``subset``: the latent indices held (or redrawn); ``generator``: seeds the prior draws (one
    draw per input, the same for both interventions).
    """
    mu = torch.as_tensor(means).detach().float()
    if mu.dim() != 2 or mu.shape[0] == 0:
        raise TcxError(f"means must be [N, D] with N >= 1, got shape {tuple(mu.shape)}")
    d = mu.shape[1]
    idx = sorted({int(j) for j in subset})
    if not idx or idx[0] < 0 or idx[-1] >= d or len(idx) == d:
        raise TcxError(f"subset={list(subset)}: give a proper, non-empty subset of 0 .. {d - 1}")
    mask = torch.zeros(d, dtype=torch.bool)
    mask[idx] = True
    prior = torch.randn(mu.shape, generator=generator)
    kept_held = kept_redrawn = 0
    for m, p in zip(mu.split(batch_size), prior.split(batch_size)):
        ref = classify(decode(m)).argmax(1)
        held = torch.where(mask, m, p)
        redrawn = torch.where(mask, p, m)
        kept_held += int((classify(decode(held)).argmax(1) == ref).sum())
        kept_redrawn += int((classify(decode(redrawn)).argmax(1) == ref).sum())
    n = mu.shape[0]
    return {"held": kept_held / n, "redrawn": kept_redrawn / n}
