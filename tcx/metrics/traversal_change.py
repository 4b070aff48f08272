"""How often traversing one latent changes the class a classifier reads from the decoded image.

For each latent ``j`` and each input's posterior mean ``mu(x)``, ``z_j`` is set to each of the
traversal values (by default the quantiles of ``z_j`` over the given codes) with the other latents
kept, the code decoded and classified. The rate is the share of (input, value) pairs whose class
differs from the class of the decoded ``mu(x)`` itself (the reconstruction): a latent that carries
the class (the paper's claim for anchors, MNIST's digit) changes it often, a latent of style
rarely. It is the number behind a traversal picture.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from tcx.errors import TcxError
from tcx.validation import check_int, check_real

__all__ = ["traversal_class_change"]


@torch.no_grad()
def traversal_class_change(
    decode: Callable[[Tensor], Tensor],
    classify: Callable[[Tensor], Tensor],
    means: Any,
    latents: Sequence[int] | None = None,
    steps: int = 9,
    quantile: float = 0.02,
    batch_size: int = 512,
) -> Tensor:
    """The class-change rate ``[len(latents)]`` in [0, 1] of each latent (module docstring).

    ``decode``: latents ``[B, D]`` -> observations; ``classify``: observations -> class logits or
    probabilities ``[B, C]``; ``means``: posterior means ``[N, D]``; ``latents``: the latents
    traversed (None: all); ``steps`` values from the ``quantile`` to the ``1 - quantile`` quantile.
    """
    mu = torch.as_tensor(means).detach().float().cpu()
    if mu.dim() != 2 or mu.shape[0] == 0:
        raise TcxError(f"means must be [N, D] with N >= 1, got shape {tuple(mu.shape)}")
    check_int("steps", steps, 2)
    check_real("quantile", quantile, 0, 0.5, high_open=True)
    d = mu.shape[1]
    chosen = list(range(d)) if latents is None else [int(j) for j in latents]
    if not chosen or min(chosen) < 0 or max(chosen) >= d:
        raise TcxError(f"latents={list(latents or [])}: give latent indices in 0 .. {d - 1}")
    probs = torch.linspace(quantile, 1 - quantile, steps, dtype=torch.float64)
    values = torch.quantile(mu.double(), probs, dim=0).T.float()  # [D, steps]
    ref = torch.cat([classify(decode(m)).argmax(1).cpu() for m in mu.split(batch_size)])
    rates = []
    for j in chosen:
        changed = 0
        for m, r in zip(mu.split(max(1, batch_size // steps)), ref.split(max(1, batch_size // steps))):
            z = m.repeat_interleave(steps, 0)
            z[:, j] = values[j].repeat(m.shape[0])
            cls = classify(decode(z)).argmax(1).cpu().view(m.shape[0], steps)
            changed += int((cls != r[:, None]).sum())
        rates.append(changed / (mu.shape[0] * steps))
    return torch.tensor(rates, dtype=torch.float64)
