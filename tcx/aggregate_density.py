"""A density fitted to the aggregate posterior of a subset of latents, to sample from.

The aggregate posterior ``q(z_S) = E_x p(z_S|x)`` of a subset ``S`` of latents (the anchors by
default) need not be the prior ``N(0, I)``: AnchorVAE's smaller weight on the anchors' rate lets
their ``q(z_A)`` spread away from it (docs/math.md#the-encoder-inequality: the gap
``KL(q(z_j) || r_j)``), and prior draws then fall where the decoder saw no data. Drawing ``z_S``
from a density fitted to codes of the training data instead, and the other latents from the prior,
is the two-stage sampling of "ex-post density estimation" (Ghosh et al. 2020, "From variational
to deterministic autoencoders", sec. 4: a Gaussian mixture fitted on the latent codes).

``AggregateDensity.fit`` fits scikit-learn's ``GaussianMixture`` (full covariances, seeded) on
posterior *samples* ``z ~ p(z|x)`` of the chosen latents (samples, not means: the aggregate
posterior is the mixture of the posteriors, including their spread); ``sample`` draws from it in
torch with a ``torch.Generator``, so draws are reproducible. ``CorExVAE.sample(n, density=...)``
uses it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from tcx.errors import TcxError
from tcx.validation import check_int, check_same_shape, check_shape

__all__ = ["AggregateDensity"]


class AggregateDensity:
    """A Gaussian mixture over the latents ``indices`` (``weights [M]``, ``means [M, S]``,
    ``covariances [M, S, S]``, float64), fitted with :meth:`fit`."""

    def __init__(self, indices: Sequence[int], weights: Tensor, means: Tensor, covariances: Tensor):
        self.indices = tuple(int(j) for j in indices)
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.means = torch.as_tensor(means, dtype=torch.float64)
        self.covariances = torch.as_tensor(covariances, dtype=torch.float64)
        m, s = self.means.shape
        if len(self.indices) != s or self.weights.shape != (m,) or self.covariances.shape != (m, s, s):
            raise TcxError(
                f"AggregateDensity: {len(self.indices)} indices, weights {tuple(self.weights.shape)}, means "
                f"{tuple(self.means.shape)}, covariances {tuple(self.covariances.shape)} do not agree"
            )
        self._chol = torch.linalg.cholesky(self.covariances)

    @classmethod
    def fit(
        cls,
        mean: Tensor,
        log_var: Tensor,
        indices: Sequence[int],
        num_components: int = 10,
        seed: int = 0,
        reg_covar: float = 1e-4,
    ) -> "AggregateDensity":
        """Fit on one posterior sample per row of ``mean, log_var [N, D]`` (drawn with ``seed``),
        restricted to the latents ``indices``; ``num_components`` Gaussians with full covariance
        (at most ``N``)."""
        from sklearn.mixture import GaussianMixture

        mean, log_var = torch.as_tensor(mean).double().cpu(), torch.as_tensor(log_var).double().cpu()
        check_shape("mean", mean, ("N", "D"))
        check_same_shape(("mean", mean), ("log_var", log_var))
        idx = [int(j) for j in indices]
        if not idx or len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= mean.shape[1]:
            raise TcxError(f"indices={idx}: give distinct latent indices in 0 .. {mean.shape[1] - 1}")
        num_components = check_int("num_components", num_components, 1)
        g = torch.Generator().manual_seed(int(seed))
        z = (mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=g, dtype=torch.float64))[:, idx]
        gmm = GaussianMixture(
            n_components=min(int(num_components), z.shape[0]), covariance_type="full",
            reg_covar=reg_covar, random_state=int(seed) % 2**32,
        ).fit(z.numpy())
        return cls(idx, torch.from_numpy(gmm.weights_), torch.from_numpy(gmm.means_), torch.from_numpy(gmm.covariances_))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[n, len(indices)]`` float32 draws (a component by its weight, then its Gaussian)."""
        comp = torch.multinomial(self.weights, int(n), replacement=True, generator=generator)
        eps = torch.randn(int(n), self.means.shape[1], generator=generator, dtype=torch.float64)
        z = self.means[comp] + (self._chol[comp] @ eps.unsqueeze(-1)).squeeze(-1)
        return z.float()
