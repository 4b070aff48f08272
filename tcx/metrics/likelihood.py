"""The importance-weighted bound (IWAE) on the log-likelihood of held-out data, in nats.

Burda, Grosse and Salakhutdinov 2016 ("Importance weighted autoencoders", eq. 8):

    L_k(x) = E_{z_1..z_k ~ p(z|x)} [ log (1/k) sum_i w_i ],   w_i = q(x|z_i) r(z_i) / p(z_i|x)

(tcx's names: encoder ``p(z|x)``, decoder ``q(x|z)``, prior ``r(z)``; docs/math.md#notation). ``L_1`` is the
ELBO, ``L_k <= L_{k+1} <= log q(x)`` (Burda et al., theorem 1), and ``L_k -> log q(x)`` as
``k -> infinity`` when the weights are bounded. The one-draw estimate of ``L_k`` returned here is
unbiased for ``L_k``; its spread shrinks with the number of inputs. With grey-level data and the
Bernoulli likelihood, ``q(x|z)`` is the usual unnormalised relaxation (``tcx.distributions.
BernoulliLikelihood``), so the bound is of that score, not of a normalised density.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor
from tcx.errors import TcxError
from tcx.validation import check_int

__all__ = ["iwae_bound", "iwae_per_input", "log_importance_weights", "model_iwae"]


def iwae_bound(log_weights: Tensor) -> Tensor:
    """``log (1/k) sum_i exp(log_weights[i])`` per column: ``[k, N] -> [N]`` nats (float64)."""
    lw = torch.as_tensor(log_weights).double()
    if lw.dim() != 2 or lw.shape[0] < 1:
        raise TcxError(f"log_weights must be [k, N] with k >= 1, got shape {tuple(lw.shape)}")
    return torch.logsumexp(lw, dim=0) - math.log(lw.shape[0])


@torch.no_grad()
def log_importance_weights(
    x: Tensor,
    mean: Tensor,
    log_var: Tensor,
    decode_params: Callable[[Tensor], Tensor],
    likelihood,
    k: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``[k, N]`` log-weights ``log q(x|z) + log r(z) - log p(z|x)`` (nats, float64) of ``k``
    draws ``z ~ N(mean, exp(log_var))`` per input; ``r`` is the standard normal prior, ``likelihood``
    a ``tcx.distributions.Likelihood`` scoring ``decode_params(z)`` against ``x``."""
    from tcx.distributions import DiagonalGaussian, StandardNormal

    k = check_int("k", k, 1)
    n, d = mean.shape
    posterior = DiagonalGaussian(mean, log_var)
    eps = torch.randn((k, n, d), generator=generator, dtype=torch.float32).to(mean.device)
    z = (posterior.mean + posterior.std * eps).reshape(k * n, d)
    params = decode_params(z)
    xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
    log_lik = likelihood.log_prob(params, xs).reshape(k * n, -1).double().sum(1)
    log_prior = StandardNormal(d).log_prob(z).double().sum(1)
    log_post = DiagonalGaussian(posterior.mean.repeat(k, 1), posterior.log_var.repeat(k, 1)).log_prob(z).double().sum(1)
    return (log_lik + log_prior - log_post).reshape(k, n)


@torch.no_grad()
def iwae_per_input(model, x: Tensor, k: int = 64, batch_size: int = 64,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``(L_k, L_1)``, each ``[N]`` float64 nats, per input of ``x`` for a tcx model (``encode``,
    ``decode_params``, ``likelihood``; standard normal prior). ``L_1`` is computed from the first of
    the ``k`` draws, so both come from the same samples."""
    iw, el = [], []
    for xb in x.split(batch_size):
        xb = xb.to(model.device)
        post = model.encode(xb)
        lw = log_importance_weights(xb, post.mean, post.log_var, model.decode_params, model.likelihood, k, generator)
        iw.append(iwae_bound(lw).cpu())
        el.append(lw[0].cpu())
    return torch.cat(iw), torch.cat(el)


def model_iwae(model, x: Tensor, k: int = 64, batch_size: int = 64, generator: torch.Generator | None = None) -> dict[str, float]:
    """``{"iwae": mean L_k, "elbo": mean L_1}`` in nats per input over ``x`` (``iwae_per_input``)."""
    iw, el = iwae_per_input(model, x, k, batch_size, generator)
    return {"iwae": float(iw.mean()), "elbo": float(el.mean())}
