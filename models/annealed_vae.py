"""Annealed-capacity beta-VAE (C. P. Burgess, I. Higgins, A. Pal, L. Matthey, N. Watters,
G. Desjardins, A. Lerchner, "Understanding disentangling in beta-VAE", 2018, section 5, eq. 8).

The rate is not weighted but pulled towards a target capacity ``C`` that grows during training:

    loss = -E log q(x|z) + gamma * | sum_j E_x KL(p(z_j|x) || r_j) - C(step) |

with ``C`` rising linearly from 0 to ``capacity_max`` nats over ``capacity_steps`` optimizer
steps (:func:`tcx.schedules.linear_capacity`). The code is thereby allowed to carry more and
more information about ``X`` (the rate is the training-time upper bound on ``I(Z;X)``,
docs/math.md#the-encoder-inequality), so the factors that explain most of the data enter first.
"""

from __future__ import annotations


import torch
from torch import Tensor

from tcx.validation import check_int, check_real
from tcx.distributions import DiagonalGaussian
from tcx.models.base import CorExVAE
from tcx.objective import CorExTerms
from tcx.schedules import linear_capacity

__all__ = ["AnnealedVAE"]


class AnnealedVAE(CorExVAE):
    """Burgess et al. 2018's beta-VAE with a controlled, linearly increasing capacity.

    Args:
        gamma: the weight on ``|rate - C|`` (>= 0). Burgess et al. use 1000 with C_max = 25 nats
            on dSprites; the default here, 100, keeps the penalty of the same order as the
            summed Bernoulli reconstruction of a 64x64 dSprites image (a few hundred nats once
            trained) so that the short runs of this project stay stable; raise it to follow the
            capacity more tightly.
        capacity_max: the final capacity ``C_max`` in nats (25, as in the paper on dSprites).
        capacity_steps: optimizer steps over which ``C`` rises from 0 to ``C_max`` (100,000 in the
            paper; set it to the training budget of a short run).
        **kwargs: the arguments of :class:`tcx.models.base.CorExVAE`.

    The CorEx rate weights are 0 (``latent_weights``): the rate enters the loss only through
    ``gamma |rate - C|``. Logged besides the base's terms (nats): ``*/capacity`` (``C`` at this
    step) and ``*/loss/capacity`` (the penalty ``gamma |rate - C|`` added to the loss). The
    logged ``elbo`` is the usual ELBO (reconstruction minus the unweighted rate).
    """

    def __init__(
        self,
        gamma: float = 100.0,
        capacity_max: float = 25.0,
        capacity_steps: int = 100000,
        **kwargs,
    ) -> None:
        self.gamma = check_real("gamma", gamma, 0.0)
        self.capacity_max = check_real("capacity_max", capacity_max, 0.0)
        self.capacity_steps = check_int("capacity_steps", capacity_steps, 1)
        super().__init__(**kwargs)

    def latent_weights(self) -> float:
        return 0.0

    def capacity(self, step: int | None = None) -> float:
        """The target capacity ``C`` in nats at optimizer step ``step`` (the current one if None)."""
        step = self.global_step if step is None else step
        return linear_capacity(step, self.capacity_max, self.capacity_steps)

    def extra_loss(self, x: Tensor, posterior: DiagonalGaussian, z: Tensor, terms: CorExTerms) -> dict[str, Tensor]:
        c = self.capacity()
        self.report("capacity", torch.tensor(c))
        return {"loss/capacity": self.gamma * (terms.rate - c).abs()}
