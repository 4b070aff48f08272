"""The hierarchical CorEx bound: the ELBO of a Markov hierarchical VAE, layer by layer, in nats.

Layers ``Z^0 = X, Z^1, ..., Z^L``: a bottom-up Markov encoder ``p(z^l|z^{l-1})`` (diagonal Gaussian)
and a top-down generative chain ``q(z^{l-1}|z^l)`` (the data likelihood at the bottom) with the prior
``r(z^L)`` on top. The per-layer CorEx objectives sum to at least ``sum_i H(X_i) + ELBO``.

- :func:`hierarchical_bound`: the ELBO's pieces, one sample of the chain per input: per layer its
  informativeness ``E log q(z^{l-1}|z^l)`` (the reconstruction for ``l = 1``), per layer and unit
  its rate (Monte Carlo below the top, closed form at the top); ``ELBO = reconstruction - sum of
  the rates`` exactly. ``L = 1`` is :class:`tcx.objective.CorExObjective` with all weights 1.
- :func:`mixture_information`: ``I(X;Z^l)`` of a layer whose posterior given ``x`` is a mixture
  (``l >= 2``), so that ``I(X;Z^L) <= ... <= I(X;Z^1)`` can be watched layer by layer.

Details (the bound, the rates, their gaps): docs/math.md#hierarchical-corex
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from tcx.validation import check_int, check_length, check_same_shape, check_shape
from tcx.distributions import DiagonalGaussian, Likelihood, StandardNormal, gaussian_log_density
from tcx.estimators import mss_log_weights
from tcx.objective import CorExTerms, as_weight_vector

__all__ = ["HierarchicalTerms", "hierarchical_bound", "mixture_information"]


@dataclass
class HierarchicalTerms(CorExTerms):
    """The terms of the hierarchical bound for one batch, in nats (layers numbered from 1, bottom).

    The :class:`CorExTerms` fields keep their meaning for the whole model: ``reconstruction``
    (``E log q(x|z^1)``), ``rate`` (all layers' rates), ``weighted_rate``, ``elbo``
    (``reconstruction - rate``), ``loss`` (``weighted_rate - reconstruction``), ``corex_bound``
    (``sum_i H(X_i) + elbo``, a lower bound on ``sum_l L_l``). ``rate_per_latent`` holds the
    per-unit rates of one chosen layer (``layer``; the top by default), the latents the model
    shows to callbacks, so ``rate`` is its sum only when ``L = 1``. Per layer:

    - ``layer_informativeness[l-1]``: ``E log q(z^{l-1}|z^l)`` (``l = 1``: the reconstruction);
    - ``layer_rate_per_latent[l-1]``: ``[D_l]``, ``rate_{l,j}``; ``layer_rate[l-1]`` its sum.
    """

    layer_informativeness: list[Tensor] = field(default_factory=list)
    layer_rate_per_latent: list[Tensor] = field(default_factory=list)
    layer_rate: list[Tensor] = field(default_factory=list)
    layer: int = 0

    @property
    def num_layers(self) -> int:
        return len(self.layer_rate)

    def scalars(self) -> dict[str, Tensor]:
        """The base scalars, plus ``layer{l}/informativeness``, ``layer{l}/rate`` and
        ``layer{l}/rate/z{j}`` for every layer ``l`` (from 1) and unit ``j`` (from 0)."""
        out = super().scalars()
        for i in range(self.num_layers):
            l = i + 1
            out[f"layer{l}/informativeness"] = self.layer_informativeness[i]
            out[f"layer{l}/rate"] = self.layer_rate[i]
            for j, r in enumerate(self.layer_rate_per_latent[i]):
                out[f"layer{l}/rate/z{j}"] = r
        return out


def _check_layers(posteriors, samples, conditionals) -> int:
    num = check_int("the number of layers (len(posteriors))", len(posteriors), 1)
    check_length("samples", samples, num, "layers", hint="one sample z^l per layer")
    check_length(
        "conditionals", conditionals, num - 1, "layers above the first",
        hint=f"the top-down q(z^l|z^(l+1)) for l = 1..{num - 1}",
    )
    for i, (post, z) in enumerate(zip(posteriors, samples)):
        check_same_shape((f"layer {i + 1}'s sample", z), ("its posterior", post.mean))
    for i, cond in enumerate(conditionals):
        check_same_shape((f"q(z^{i + 1}|z^{i + 2})", cond.mean), (f"layer {i + 1}'s sample", samples[i]))
    return num


def hierarchical_bound(
    x: Tensor,
    params: Tensor,
    likelihood: Likelihood,
    posteriors: Sequence[DiagonalGaussian],
    samples: Sequence[Tensor],
    conditionals: Sequence[DiagonalGaussian],
    prior: StandardNormal,
    weights: Sequence[Tensor | float] | None = None,
    input_entropy: Tensor | float | None = None,
    layer: int | None = None,
) -> HierarchicalTerms:
    """The hierarchical bound's terms (module docstring; docs/math.md#hierarchical-corex), in nats.

    Args:
        x: the batch ``[B, ...]``; ``params``: the likelihood's parameters from ``z^1``.
        likelihood: ``q(x|z^1)``.
        posteriors: ``p(z^l|z^{l-1})`` for ``l = 1..L`` (bottom first), each ``[B, D_l]``.
        samples: the sample ``z^l`` drawn from each, ``[B, D_l]``.
        conditionals: ``q(z^l|z^{l+1})`` for ``l = 1..L-1``, each over ``[B, D_l]``, evaluated at
            the sampled ``z^{l+1}``.
        prior: ``r(z^L)`` on the top layer.
        weights: per layer, the weight on each unit's rate (a number or ``[D_l]``; all 1 by
            default, which gives the ELBO; non-negative). Numbers and lists are checked here
            (``as_weight_vector``); a ``[D_l]`` tensor is taken as already checked, as
            ``HierarchicalVAE`` does once at construction.
        input_entropy: ``H(X_i)`` per input or its sum, for ``corex_bound``.
        layer: the layer (from 1) whose per-unit rates fill ``rate_per_latent``; the top if None.
    """
    num = _check_layers(posteriors, samples, conditionals)
    if layer is None:
        layer = num
    layer = check_int("layer", layer, 1, num, hint="layers are numbered from 1, bottom first")
    batch = x.shape[0]
    check_same_shape(("decoder output", params), ("x", x))

    reconstruction = likelihood.log_prob(params, x).reshape(batch, -1).sum(dim=1).mean()
    informativeness = [reconstruction]
    rates: list[Tensor] = []
    for i in range(num - 1):
        log_q = conditionals[i].log_prob(samples[i])  # [B, D_l], log q(z^l_j|z^{l+1})
        log_p = posteriors[i].log_prob(samples[i])  # [B, D_l], log p(z^l_j|z^{l-1})
        rates.append((log_p - log_q).mean(dim=0))
        informativeness.append(log_q.sum(dim=1).mean())
    rates.append(prior.kl(posteriors[-1]).mean(dim=0))

    if weights is None:
        weights = [1.0] * num
    check_length("weights", weights, num, "layers", hint="give one per layer")
    layer_rate = [r.sum() for r in rates]
    rate = torch.stack(layer_rate).sum()
    weighted = []
    for i, (w, r) in enumerate(zip(weights, rates)):
        if isinstance(w, Tensor) and w.shape == r.shape:
            # a [D_l] tensor is taken as checked by whoever built it (HierarchicalVAE does, once,
            # at construction): no host sync on every step
            w = w.to(device=r.device, dtype=r.dtype)
        else:
            w = as_weight_vector(w, r.numel(), f"weights for layer {i + 1}").to(device=r.device, dtype=r.dtype)
        weighted.append((r * w).sum())
    weighted_rate = torch.stack(weighted).sum()
    h = None
    if input_entropy is not None:
        h = torch.as_tensor(input_entropy, dtype=torch.float32, device=rate.device).sum()
    return HierarchicalTerms.assemble(
        reconstruction=reconstruction,
        informativeness=reconstruction,
        rate_per_latent=rates[int(layer) - 1],
        rate=rate,
        weighted_rate=weighted_rate,
        input_entropy_sum=h,
        layer_informativeness=informativeness,
        layer_rate_per_latent=rates,
        layer_rate=layer_rate,
        layer=int(layer),
    )


def mixture_information(z: Tensor, mean: Tensor, log_var: Tensor, dataset_size: int) -> Tensor:
    """Estimate of ``I(X;Z)`` in nats when each ``p(z|x_m)`` is an equal-weight mixture of ``K``
    diagonal Gaussians, from one batch of ``M`` points of a dataset of ``N = dataset_size``.

    ``z`` ``[M, D]``: one code per point, drawn from its mixture; ``mean``, ``log_var``
    ``[M, K, D]``: the mixture components (for layer ``l >= 2`` of a hierarchical encoder, the
    Gaussians ``p(z^l|z^{l-1}_k)`` of ``K`` samples ``z^{l-1}_k`` of the chain below, the one that
    produced ``z`` among them). Returns ``mean_i [log p(z_i|x_i) - log q(z_i)]`` with

        log p(z_i|x_i) = logsumexp_k log N(z_i; mean_ik, var_ik) - log K
        log q(z_i)     = logsumexp_{m,k} (log W_im - log K + log N(z_i; mean_mk, var_mk))

    and ``W`` the minibatch stratified sampling weights of Chen et al. 2018, appendix C.2
    (:func:`tcx.estimators.mss_log_weights`, every constant kept). With ``K = 1`` this is
    ``tcx.estimators.aggregate_information(..., method="mss")["mutual_info"]``. As ``K`` and the
    batch grow it converges to ``I(X;Z)``; at small ``K`` the own component of each code makes
    ``log p(z_i|x_i)`` too large on average, so the estimate errs high (at ``K = 1`` it estimates
    ``I(Z^{l-1};Z^l)``, which bounds ``I(X;Z^l)`` from above by the data processing inequality).
    Computed in float64, without gradients.
    """
    m, k, d = check_shape("mean", mean, ("M", "K", "D"))
    check_same_shape(("mean", mean), ("log_var", log_var))
    check_shape("z", z, (m, d), hint="one code per row of mean: [M, D]")
    check_int("dataset_size (at least the batch size)", dataset_size, m)
    with torch.no_grad():
        zd, mu, lv = z.double(), mean.double(), log_var.double()
        log_w = mss_log_weights(m, int(dataset_size)).to(zd.device)  # [M, M]
        # [M(query), M(rows), K]: log N(z_i; component (m, k))
        log_n = gaussian_log_density(zd[:, None, None, :], mu[None], lv[None]).sum(-1)
        log_own = torch.logsumexp(torch.diagonal(log_n, dim1=0, dim2=1).T, dim=-1) - math.log(k)
        log_q = torch.logsumexp((log_n + log_w[:, :, None]).reshape(m, -1), dim=-1) - math.log(k)
        return (log_own - log_q).mean()
