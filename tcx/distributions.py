"""Distributions of the CorEx/VAE objective, all log-densities in nats.

docs/math.md#notation: the encoder ``p(z|x) = prod_j p(z_j|x)`` is a diagonal Gaussian, the prior
``r(z) = prod_j r_j(z_j)`` a standard normal, and the decoder ``q(x|z) = prod_i q(x_i|z)`` factorizes
over inputs (Bernoulli or Gaussian here). Every method returns per-element terms (one per latent or
per input) so that the objective can weight them (alpha per input, beta per latent).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor
from tcx.errors import TcxError
from tcx.validation import check_choice, check_real, check_same_shape, check_shape

LOG_2PI = math.log(2.0 * math.pi)

__all__ = [
    "DiagonalGaussian",
    "StandardNormal",
    "Likelihood",
    "BernoulliLikelihood",
    "GaussianLikelihood",
    "make_likelihood",
    "gaussian_kl_standard_normal",
    "gaussian_log_density",
    "bernoulli_entropy",
]


def gaussian_log_density(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """Elementwise ``log N(z; mean, exp(log_var))`` in nats, constants kept."""
    return -0.5 * (LOG_2PI + log_var + (z - mean) ** 2 * torch.exp(-log_var))


def gaussian_kl_standard_normal(mean: Tensor, log_var: Tensor) -> Tensor:
    """Elementwise ``KL( N(mean, exp(log_var)) || N(0, 1) )`` in nats.

    Closed form ``0.5 * (mean^2 + exp(log_var) - log_var - 1)``: the rate of one latent for one
    input (docs/math.md#the-encoder-inequality: ``KL_j = KL(p(z_j|x) || r_j(z_j))``).
    """
    return 0.5 * (mean.pow(2) + torch.exp(log_var) - log_var - 1.0)


def bernoulli_entropy(p: Tensor) -> Tensor:
    """Elementwise entropy ``-p log p - (1-p) log(1-p)`` of a Bernoulli(p), in nats (0 log 0 = 0).

    The one implementation of this quantity in tcx. At ``p`` = a pixel's frequency of 1 it is the
    plug-in marginal entropy ``H(X_i)`` of a binary pixel; at ``p`` = the mean grey level it is the
    cross-entropy of the best constant Bernoulli decoder (one that ignores ``z``), so that
    ``H(X_i) + E log q(x_i|z)`` stays the information the decoder draws from ``z``. Integer input
    is computed in float64; floating input keeps its dtype.
    """
    if not torch.is_floating_point(p):
        p = p.double()
    return -(torch.xlogy(p, p) + torch.xlogy(1.0 - p, 1.0 - p))


class DiagonalGaussian:
    """The factorized Gaussian posterior ``p(z|x) = prod_j N(z_j; mean_j(x), exp(log_var_j(x)))``.

    ``mean`` and ``log_var`` are ``[B, D]``. Computation is done in float32 even when the network
    ran under bf16 autocast, so that rates and log-densities keep their precision.
    """

    def __init__(self, mean: Tensor, log_var: Tensor) -> None:
        check_same_shape(("DiagonalGaussian's mean", mean), ("log_var", log_var))
        self.mean = mean.float()
        self.log_var = log_var.float()

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.log_var)

    @property
    def variance(self) -> Tensor:
        return torch.exp(self.log_var)

    def rsample(self, generator: torch.Generator | None = None) -> Tensor:
        """A reparameterized sample ``mean + std * eps``, differentiable in mean and log_var."""
        eps = torch.randn(
            self.mean.shape, dtype=self.mean.dtype, device=self.mean.device, generator=generator
        )
        return self.mean + self.std * eps

    def log_prob(self, z: Tensor) -> Tensor:
        """Per-latent ``log p(z_j|x)`` in nats, ``[B, D]``."""
        return gaussian_log_density(z, self.mean, self.log_var)

    def kl_standard_normal(self) -> Tensor:
        """Per-input, per-latent ``KL(p(z_j|x) || N(0,1))`` in nats, ``[B, D]``."""
        return gaussian_kl_standard_normal(self.mean, self.log_var)

    def __getitem__(self, index) -> "DiagonalGaussian":
        return DiagonalGaussian(self.mean[index], self.log_var[index])


class StandardNormal:
    """The factorized prior ``r(z) = prod_j N(z_j; 0, 1)`` over ``latent_dim`` latents."""

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = int(latent_dim)  # checked where it enters: the model (models/base.py)

    def sample(self, n: int, device=None, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    def log_prob(self, z: Tensor) -> Tensor:
        """Per-latent ``log r_j(z_j)`` in nats, ``[B, D]``."""
        return -0.5 * (LOG_2PI + z.float() ** 2)

    def kl(self, posterior: DiagonalGaussian) -> Tensor:
        """Per-input, per-latent ``KL(p(z_j|x) || r_j)`` in nats, ``[B, D]`` (closed form)."""
        check_shape(
            "StandardNormal.kl's posterior mean", posterior.mean, (..., self.latent_dim),
            hint="one entry per latent of the prior",
        )
        return posterior.kl_standard_normal()


class Likelihood:
    """A decoder distribution ``q(x|z) = prod_i q(x_i|z)`` parameterized by the decoder's output.

    ``log_prob(params, x)`` returns the per-input log-likelihood in nats with the same shape as
    ``x``; ``mean(params)`` the decoder's expected ``x`` (for pictures and reconstructions).
    """

    name = "likelihood"

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def check_data(self, x: Tensor) -> None:
        """Raise a clear error when ``x`` is not data this likelihood can score (every
        likelihood: a floating-point tensor)."""
        if not torch.is_floating_point(x):
            hi = float(x.max()) if x.numel() else 0.0
            hint = " (bytes 0..255: x.float() / 255)" if hi > 1 else " (x.float())"
            raise TcxError(
                f"the data's x has dtype {str(x.dtype).replace('torch.', '')}; tcx's models take float "
                f"inputs: convert them in the datamodule{hint}, with values in [0, 1] for images"
            )


class BernoulliLikelihood(Likelihood):
    """``q(x_i|z) = Bernoulli(sigmoid(logit_i))``; ``x`` must lie in [0, 1].

    For ``x`` strictly between 0 and 1 (grey levels) this is the continuous relaxation used
    throughout the VAE literature (cross-entropy), which is not a normalized density.
    """

    name = "bernoulli"

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(params.float(), x.float(), reduction="none")

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params.float())

    def check_data(self, x: Tensor) -> None:
        super().check_data(x)
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            fix = ("divide by 255 in the datamodule (x / 255)" if lo >= 0.0 and 1.0 < hi <= 255.0
                   else "rescale the data to [0, 1], or choose likelihood='gaussian' for real-valued data")
            raise TcxError(
                f"The Bernoulli likelihood needs x in [0, 1], got values in [{lo:.4g}, {hi:.4g}]: {fix}"
            )


class GaussianLikelihood(Likelihood):
    """``q(x_i|z) = N(x_i; mu_i(z), sigma^2)`` with a fixed ``sigma`` (``scale``), constants kept."""

    name = "gaussian"

    def __init__(self, scale: float = 0.1) -> None:
        self.scale = check_real("likelihood_scale", scale, 0, low_open=True)
        self._log_var = 2.0 * math.log(self.scale)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        mu = params.float()
        return -0.5 * (LOG_2PI + self._log_var + (x.float() - mu) ** 2 / self.scale**2)

    def mean(self, params: Tensor) -> Tensor:
        return params.float()

    #: a spread of x beyond which a Gaussian of scale ~0.1 is surely not what was meant
    WIDE_RANGE = 20.0

    def check_data(self, x: Tensor) -> None:
        super().check_data(x)
        lo, hi = float(x.min()), float(x.max())
        if hi - lo > self.WIDE_RANGE:
            warnings.warn(
                f"tcx: the Gaussian likelihood (scale {self.scale:g}) sees x in [{lo:.4g}, {hi:.4g}] in the first "
                f"batch: the reconstruction term will be of order -(range/scale)^2 per input; for images in "
                "0..255 divide by 255 in the datamodule, or raise likelihood_scale to the data's spread",
                stacklevel=2,
            )


def make_likelihood(name: str, scale: float = 0.1) -> Likelihood:
    """The likelihood called ``name``: ``'bernoulli'`` or ``'gaussian'`` (with ``scale``)."""
    key = check_choice("likelihood", name, ("bernoulli", "gaussian"), ignore_case=True)
    return BernoulliLikelihood() if key == "bernoulli" else GaussianLikelihood(scale)
