"""The weighted CorEx bound: one objective for VAE, beta-VAE and AnchorVAE.

docs/math.md#weighted-bounds:

    L_{alpha,beta} = sum_i alpha_i I(X_i;Z) - sum_j beta_j I(Z_j;X)
                  >= sum_i alpha_i H(X_i) + E[ sum_i alpha_i log q(x_i|z) ] - sum_j beta_j E_x KL_j

with ``KL_j = KL(p(z_j|x) || r_j(z_j))``. With all weights 1 the right-hand side is
``sum_i H(X_i) + ELBO``, the bound on the CorEx objective ``L`` (docs/math.md#the-elbo).
Training minimizes ``loss = -(informativeness - weighted_rate)``;
the constant ``sum_i alpha_i H(X_i)`` does not change the gradients and is only reported.

Everything is in nats, averaged over the batch (an estimate of the expectation over ``x``), with
one reparameterized sample of ``z`` per input.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch
from torch import Tensor, nn

from tcx.distributions import DiagonalGaussian, Likelihood, StandardNormal
from tcx.errors import TcxError
from tcx.validation import check_same_shape, check_shape

__all__ = ["CorExTerms", "CorExObjective", "as_weight_vector"]


@dataclass
class CorExTerms:
    """The named terms of the weighted CorEx bound for one batch, in nats.

    - ``reconstruction``: ``E sum_i log q(x_i|z)``, the unweighted informativeness term.
    - ``informativeness``: ``E sum_i alpha_i log q(x_i|z)`` (equals ``reconstruction`` when all
      ``alpha_i = 1``); ``sum_i alpha_i H(X_i)`` plus this bounds ``sum_i alpha_i I(X_i;Z)`` below.
    - ``rate_per_latent``: ``[D]``, ``E_x KL(p(z_j|x) || r_j)``, each an upper bound on ``I(Z_j;X)``.
    - ``rate``: ``sum_j rate_per_latent[j]``; ``weighted_rate``: ``sum_j beta_j rate_per_latent[j]``.
    - ``elbo``: ``reconstruction - rate``, the evidence lower bound (per input ``x``).
    - ``loss``: ``weighted_rate - informativeness``, what training minimizes.
    - ``corex_bound``: ``sum_i H(X_i) + elbo``, the lower bound on the CorEx objective ``L``
      (``None`` unless the data's marginal entropies ``H(X_i)`` were given).
    - ``weighted_corex_bound``: ``sum_i alpha_i H(X_i) + informativeness - weighted_rate``, the
      lower bound on ``L_{alpha,beta}`` (``None`` likewise).
    """

    reconstruction: Tensor
    informativeness: Tensor
    rate_per_latent: Tensor
    rate: Tensor
    weighted_rate: Tensor
    elbo: Tensor
    loss: Tensor
    corex_bound: Tensor | None = None
    weighted_corex_bound: Tensor | None = None

    @classmethod
    def assemble(
        cls,
        *,
        reconstruction: Tensor,
        informativeness: Tensor,
        rate_per_latent: Tensor,
        rate: Tensor,
        weighted_rate: Tensor,
        input_entropy_sum: Tensor | None = None,
        weighted_input_entropy: Tensor | None = None,
        **extra,
    ):
        """The terms from their parts: ``elbo = reconstruction - rate``, ``loss = weighted_rate -
        informativeness``, and, when the summed (and alpha-weighted) input entropies are given,
        ``corex_bound = sum_i H(X_i) + elbo`` and ``weighted_corex_bound = sum_i alpha_i H(X_i) +
        informativeness - weighted_rate``. The one place these identities are computed (the
        hierarchical bound builds its terms here too); ``extra`` are a subclass's own fields."""
        elbo = reconstruction - rate
        corex_bound = weighted_corex_bound = None
        if input_entropy_sum is not None:
            corex_bound = input_entropy_sum + elbo
            h_weighted = input_entropy_sum if weighted_input_entropy is None else weighted_input_entropy
            weighted_corex_bound = h_weighted + informativeness - weighted_rate
        return cls(
            reconstruction=reconstruction,
            informativeness=informativeness,
            rate_per_latent=rate_per_latent,
            rate=rate,
            weighted_rate=weighted_rate,
            elbo=elbo,
            loss=weighted_rate - informativeness,
            corex_bound=corex_bound,
            weighted_corex_bound=weighted_corex_bound,
            **extra,
        )

    def scalars(self) -> dict[str, Tensor]:
        """The scalar terms by name (``rate_per_latent`` and absent bounds left out)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor) and value.ndim == 0:
                out[f.name] = value
        return out


def as_weight_vector(value, size: int, name: str) -> Tensor:
    """Validate a weight (a number, or one per element) and return it as a float ``[size]`` vector.

    The bound (docs/math.md#weighted-bounds) holds only for non-negative weights, so negative, non-finite or
    mis-shaped weights are refused here, at the boundary.
    """
    w = torch.as_tensor(value, dtype=torch.float32).detach().clone()
    if w.ndim == 0:
        w = w.expand(size).clone()
    elif w.ndim != 1 or w.numel() != size:
        raise TcxError(
            f"{name} must be a number or a vector of length {size}, got shape {tuple(w.shape)}"
        )
    if not torch.isfinite(w).all():
        raise TcxError(f"{name} must be finite, got {w.tolist()}")
    if (w < 0).any():
        bad = [i for i, v in enumerate(w.tolist()) if v < 0]
        raise TcxError(
            f"{name} must be non-negative (the CorEx bound needs weights >= 0); "
            f"entries {bad} are negative: {[w[i].item() for i in bad]}"
        )
    return w


class CorExObjective(nn.Module):
    """The weighted CorEx lower bound (docs/math.md#weighted-bounds) as a reusable module.

    Args:
        latent_dim: number of latents ``D``.
        input_shape: shape of one input ``x`` (e.g. ``(1, 64, 64)``); the per-input weights
            ``alpha`` have this many elements.
        alpha: weight per input ``x_i`` (a number or a tensor of ``input_shape``); default 1.
        beta: weight per latent (a number or a length-``D`` sequence); default 1.

    ``forward(posterior, prior, likelihood, x, params, input_entropy=None)`` returns
    :class:`CorExTerms`. ``params`` is the decoder output for one sample ``z ~ p(z|x)``;
    ``input_entropy`` is ``H(X_i)`` per input (same shape as one ``x``) or its sum, in nats.
    """

    def __init__(
        self,
        latent_dim: int,
        input_shape: Sequence[int],
        alpha: float | Tensor | None = None,
        beta: float | Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)  # checked where it enters: the model (models/base.py)
        self.input_shape = tuple(int(s) for s in input_shape)
        num_inputs = 1
        for s in self.input_shape:
            num_inputs *= s
        self.num_inputs = num_inputs

        if alpha is None:
            alpha_vec = torch.ones(num_inputs)
        else:
            a = torch.as_tensor(alpha, dtype=torch.float32)
            if a.ndim > 0 and tuple(a.shape) == self.input_shape:
                a = a.reshape(-1)
            alpha_vec = as_weight_vector(a, num_inputs, f"alpha (one per input of shape {self.input_shape})")
        beta_vec = as_weight_vector(1.0 if beta is None else beta, self.latent_dim, "beta (one per latent)")
        self.register_buffer("alpha", alpha_vec, persistent=False)
        self.register_buffer("beta", beta_vec, persistent=False)
        self._alpha_is_one = bool((alpha_vec == 1).all())

    def forward(
        self,
        posterior: DiagonalGaussian,
        prior: StandardNormal,
        likelihood: Likelihood,
        x: Tensor,
        params: Tensor,
        input_entropy: Tensor | float | None = None,
    ) -> CorExTerms:
        batch = check_shape("x", x, ("batch", *self.input_shape), hint="the objective's input_shape")[0]
        check_shape("posterior mean", posterior.mean, (batch, self.latent_dim), hint="[batch, latent_dim]")
        check_same_shape(("decoder output", params), ("x", x))

        log_lik = likelihood.log_prob(params, x).reshape(batch, -1)  # [B, n] nats per input
        reconstruction = log_lik.sum(dim=1).mean()
        if self._alpha_is_one:
            informativeness = reconstruction
        else:
            informativeness = (log_lik * self.alpha).sum(dim=1).mean()

        rate_per_latent = prior.kl(posterior).mean(dim=0)  # [D]
        rate = rate_per_latent.sum()
        weighted_rate = (rate_per_latent * self.beta).sum()
        h_sum = h_weighted = None
        if input_entropy is not None:
            h = torch.as_tensor(input_entropy, dtype=torch.float32, device=rate.device)
            if h.ndim == 0:
                if not self._alpha_is_one:
                    raise TcxError(
                        "input_entropy must be given per input (not summed) when alpha is not uniform"
                    )
                h_sum = h_weighted = h
            else:
                if h.numel() != self.num_inputs:
                    raise TcxError(
                        f"input_entropy has {h.numel()} entries; expected one per input "
                        f"({self.num_inputs}, shape {self.input_shape}) or a single sum"
                    )
                h = h.reshape(-1)
                h_sum = h.sum()
                h_weighted = h_sum if self._alpha_is_one else (h * self.alpha).sum()

        return CorExTerms.assemble(
            reconstruction=reconstruction,
            informativeness=informativeness,
            rate_per_latent=rate_per_latent,
            rate=rate,
            weighted_rate=weighted_rate,
            input_entropy_sum=h_sum,
            weighted_input_entropy=h_weighted,
        )
