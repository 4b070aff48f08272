"""Information estimators used for diagnostics, all in nats, in float64, every constant kept.

- ``rate_per_latent``: ``E_x KL(p(z_j|x) || r_j)``, the closed-form upper bound on ``I(Z_j;X)``.
- ``aggregate_information``: Monte-Carlo estimates of ``I(Z;X)``, ``I(Z_j;X)``, ``TC(Z)`` and the
  dimension-wise KL from one batch, with ``log q(z)`` by minibatch weighted (MWS) or stratified
  (MSS) sampling (Chen et al., NeurIPS 2018, section 4.1 and appendix C).
- ``aggregate_information_full``: the same, every code scored against all posteriors at hand
  (with ``dataset_size=N``, an estimate for the whole dataset; the diagnostics use this).
- ``gaussian_total_correlation``: ``TC`` of a Gaussian with the codes' sample covariance.
- ``binary_pixel_entropy``: ``H(X_i)`` of each input, the constant of the CorEx lower bound.

MWS is a lower bound on ``E log q(z)``, loose by between ``log M`` and ``log N``: it does not converge
to the true ``I`` or ``TC``. Harmless for beta-TCVAE's gradients; for nats use ``method="mss"``.

Details (notation, each estimator's bias): docs/math.md#estimators
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from tcx.batches import split_batch
from tcx.distributions import (
    DiagonalGaussian,
    bernoulli_entropy,
    gaussian_kl_standard_normal,
    gaussian_log_density,
)
from tcx.errors import TcxError
from tcx.validation import check_choice, check_int, check_same_shape, check_tensor

__all__ = [
    "rate_per_latent",
    "log_aggregate_posterior",
    "mss_log_weights",
    "aggregate_information",
    "aggregate_information_full",
    "gaussian_total_correlation",
    "binary_pixel_entropy",
]

#: Bytes the ``[D, chunk, K]`` float64 block of pairwise log-densities may take (about 256 MB).
DEFAULT_MAX_CHUNK_BYTES = 256 * 1024**2

_METHODS = ("mws", "mss")


# --------------------------------------------------------------------------------------------
# validation


def _check_tensor(name: str, value, *, ndim: int | None = None) -> Tensor:
    hint = "pass one row per data point and one column per latent, [M, D]" if ndim == 2 else None
    return check_tensor(name, value, ndim=ndim, floating=True, nonempty=True, finite=True, hint=hint)


def _check_posterior(mean, log_var) -> tuple[Tensor, Tensor]:
    mean = _check_tensor("mean", mean, ndim=2)
    log_var = _check_tensor("log_var", log_var, ndim=2)
    check_same_shape(("mean", mean), ("log_var", log_var), hint="[M, D]")
    return mean.double(), log_var.double()


def _check_dataset_size(dataset_size, batch_size: int) -> int:
    n = check_int("dataset_size", dataset_size, 1)
    return check_int(
        "dataset_size", n, batch_size,
        hint=f"the batch of {batch_size} rows of mean/log_var is a sample without replacement from the dataset",
    )


def _sample_or_check_z(z, mean: Tensor, log_var: Tensor, generator) -> Tensor:
    if z is None:
        # One reparameterized draw per row; the draw's precision does not matter because the
        # densities are then evaluated at the drawn point in float64.
        return DiagonalGaussian(mean, log_var).rsample(generator).double()
    z = _check_tensor("z", z, ndim=2)
    check_same_shape(("z", z), ("mean", mean), hint="one sample per row")
    return z.double()


def _check_bytes(max_chunk_bytes) -> int:
    return check_int("max_chunk_bytes", max_chunk_bytes, 1)


# --------------------------------------------------------------------------------------------
# the shared kernel: log of a weighted mixture of diagonal Gaussians, chunked over query rows


def _logsumexp_last_(x: Tensor) -> Tensor:
    """``logsumexp`` over the last dimension, overwriting ``x`` (saves two copies of the block).

    Falls back to the out-of-place ``torch.logsumexp`` when ``x`` needs a gradient (a beta-TCVAE
    style loss built on ``log_aggregate_posterior``), since the in-place version would break autograd.
    """
    if x.requires_grad:
        return torch.logsumexp(x, dim=-1)
    top = x.amax(-1, keepdim=True)
    # a row of -inf (zero weight everywhere) would give nan through (-inf) - (-inf)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return x.sub_(top).exp_().sum(-1).log_().add_(top.squeeze(-1))


def _log_mixture(
    z: Tensor,
    mean: Tensor,
    log_var: Tensor,
    log_weights,
    max_chunk_bytes: int,
) -> tuple[Tensor, Tensor]:
    """``log sum_k w_ik p(z_i|x_k)`` and per latent ``log sum_k w_ik p(z_ij|x_k)``.

    ``z`` is ``[Q, D]``, ``mean``/``log_var`` ``[K, D]``; ``log_weights(start, stop)`` returns the
    ``[stop - start, K]`` log weights of query rows ``start:stop`` (or a float for constant weights).
    Returns ``([Q], [Q, D])``. Memory stays bounded: the ``[D, chunk, K]`` float64 block of
    pairwise log-densities (plus one ``[chunk, K]`` sum) is kept under ``max_chunk_bytes``.
    """
    q, d = z.shape
    k = mean.shape[0]
    chunk = max(1, max_chunk_bytes // (8 * k * (d + 2)))
    joints: list[Tensor] = []  # lists, not preallocated outputs, so that autograd can flow
    marginals: list[Tensor] = []
    # latent-major layout [D, chunk, K]: every reduction runs over the contiguous last dimension
    z_t = z.T
    mean_t = mean.T.unsqueeze(1).contiguous()
    log_var_t = log_var.T.unsqueeze(1).contiguous()
    for start in range(0, q, chunk):
        stop = min(q, start + chunk)
        log_p = gaussian_log_density(z_t[:, start:stop].unsqueeze(-1), mean_t, log_var_t)  # [D, c, K]
        lw = log_weights(start, stop)
        summed = log_p.sum(0)  # [c, K]: log p(z_i|x_k), the encoder factorizes over latents
        if isinstance(lw, Tensor):
            summed = summed + lw
            log_p = log_p + lw
        joints.append(_logsumexp_last_(summed))
        marginals.append(_logsumexp_last_(log_p))
        if not isinstance(lw, Tensor):
            joints[-1] = joints[-1] + lw
            marginals[-1] = marginals[-1] + lw
        del log_p, summed
    return torch.cat(joints), torch.cat(marginals, dim=1).T


# --------------------------------------------------------------------------------------------
# rate


def rate_per_latent(mean: Tensor, log_var: Tensor) -> Tensor:
    """Per-latent rate ``E_x KL( p(z_j|x) || N(0, 1) )`` in nats, ``[D]``, averaged over the rows.

    Closed form ``0.5 * (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)`` per row (``tcx.distributions.
    gaussian_kl_standard_normal``), then the mean over the ``M`` rows. It is the upper bound on
    ``I(Z_j;X)`` that training uses; the gap is ``KL(q(z_j) || r_j)`` (docs/math.md#the-encoder-inequality,
    docs/math.md#rate). float64.
    """
    mean, log_var = _check_posterior(mean, log_var)
    return gaussian_kl_standard_normal(mean, log_var).mean(0)


# --------------------------------------------------------------------------------------------
# minibatch weighted sampling (Chen et al. 2018, section 4.1, appendix C.1)


def _prepare_batch(mean, log_var, dataset_size, z, generator):
    mean, log_var = _check_posterior(mean, log_var)
    n = _check_dataset_size(dataset_size, mean.shape[0])
    z = _sample_or_check_z(z, mean, log_var, generator)
    return mean, log_var, n, z


def _mws(mean, log_var, n, z, max_chunk_bytes):
    m = mean.shape[0]
    const = -math.log(n) - math.log(m)
    return _log_mixture(z, mean, log_var, lambda a, b: const, max_chunk_bytes)


# --------------------------------------------------------------------------------------------
# minibatch stratified sampling (Chen et al. 2018, appendix C.2)


def _mss_weight_values(batch_size: int, dataset_size: int) -> tuple[float, float, float]:
    """``(log w_self, log w_strat, log w_other)`` of the MSS estimator; see ``mss_log_weights``."""
    m, n = batch_size, dataset_size
    if m == 1:
        if n == 1:
            # the only row is the whole dataset: q(z) = p(z|x_1) exactly (no other weights used)
            return 0.0, 0.0, 0.0
        raise TcxError(
            f"minibatch stratified sampling needs a batch of at least 2 rows when dataset_size > 1 "
            f"(got 1 row, dataset_size={n}): the other rows stand in for the rest of the dataset"
        )
    log_self = -math.log(n)
    log_strat = math.log(n - m + 1) - math.log(n) - math.log(m - 1)
    log_other = -math.log(m - 1)
    return log_self, log_strat, log_other


def mss_log_weights(batch_size: int, dataset_size: int) -> Tensor:
    """The ``[M, M]`` log importance weights of minibatch stratified sampling, float64.

    Chen et al. 2018, appendix C.2: the score of ``z_i ~ p(z|x_i)`` under the aggregate posterior
    is ``q(z_i) ~= sum_m W_im p(z_i|x_m)`` with, for a batch of ``M`` rows drawn from ``N`` points,

    - ``W_ii = 1/N``: the point's own posterior, which is exactly ``1/N`` of ``q``;
    - ``W_i,(i+1 mod M) = (N - M + 1) / (N (M - 1))``: one other row stands for the last stratum,
      the ``N/(M-1) - 1`` remaining points of the stratum that holds ``x_i``;
    - ``W_im = 1/(M - 1)`` for the other ``M - 2`` rows: each stands for a stratum of ``N/(M-1)``
      points.

    Each row sums to exactly 1 (``1/N + (N-M+1)/(N(M-1)) + (M-2)/(M-1) = 1``), so with identical
    posteriors the estimate is exact, and the estimate of ``q(z_i)`` is unbiased for a batch drawn
    without replacement. In the paper's notation, whose ``M`` counts the *other* rows (``M - 1``
    here), the stratum weight reads ``(N - M) / (N M)``; it is the same number. ``M = 2``: the
    single other row gets ``(N - 1)/N``. ``M = 1`` is only allowed with ``N = 1`` (the estimate is
    then exact); ``M > N`` raises.
    """
    m = check_int("batch_size", batch_size, 1)
    n = _check_dataset_size(dataset_size, m)
    log_self, log_strat, log_other = _mss_weight_values(m, n)
    return _mss_block(0, m, m, n, log_self, log_strat, log_other, torch.device("cpu"))


def _mss_block(start, stop, m, n, log_self, log_strat, log_other, device) -> Tensor:
    rows = torch.arange(start, stop, device=device)
    w = torch.full((stop - start, m), log_other, dtype=torch.float64, device=device)
    if m > 1:
        w[torch.arange(stop - start, device=device), (rows + 1) % m] = log_strat
    w[torch.arange(stop - start, device=device), rows] = log_self
    return w


def _mss(mean, log_var, n, z, max_chunk_bytes):
    m = mean.shape[0]
    log_self, log_strat, log_other = _mss_weight_values(m, n)
    return _log_mixture(
        z,
        mean,
        log_var,
        lambda a, b: _mss_block(a, b, m, n, log_self, log_strat, log_other, z.device),
        max_chunk_bytes,
    )


def log_aggregate_posterior(
    mean: Tensor,
    log_var: Tensor,
    dataset_size: int,
    method: str = "mss",
    z: Tensor | None = None,
    generator: torch.Generator | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> tuple[Tensor, Tensor]:
    """``(log q(z_i) [M], log q(z_ij) [M, D])`` in nats: the aggregate posterior's log-density at
    one code per row, jointly and per latent, estimated from one batch.

    ``mean``, ``log_var`` ``[M, D]``: the batch's diagonal Gaussians ``p(z|x_m)``, drawn without
    replacement from ``N = dataset_size`` points; ``z`` ``[M, D]`` one sample per row (drawn with
    ``generator`` when not given). Constants kept. ``method``:

    - ``"mss"`` (the default): minibatch stratified sampling, ``logsumexp_m (log W_im + log
      p(z_i|x_m))`` with the weights of ``mss_log_weights`` (Chen et al. 2018, appendix C.2).
      Consistent: it converges to ``log q(z_i)`` as the batch grows (from below, by Jensen, at a
      fixed batch); the marginals apply the same weights per latent.
    - ``"mws"``: minibatch weighted sampling, ``logsumexp_m log p(z_i|x_m) - log(N M)`` (section
      4.1, appendix C.1), the paper's *lower bound*: the weights sum to ``1/N``, so it sits between
      ``log M`` and ``log N`` below the truth and does not converge to it (module docstring).
    """
    mean, log_var, n, z = _prepare_batch(mean, log_var, dataset_size, z, generator)
    return _log_q(mean, log_var, n, z, method, max_chunk_bytes)


def _log_q(mean, log_var, n, z, method, max_chunk_bytes) -> tuple[Tensor, Tensor]:
    """``log_aggregate_posterior`` on a batch already checked by ``_prepare_batch``."""
    key = check_choice("method", method, _METHODS, ignore_case=True)
    return (_mss if key == "mss" else _mws)(mean, log_var, n, z, _check_bytes(max_chunk_bytes))


# --------------------------------------------------------------------------------------------
# the decomposition


def _summarize(z, mean, log_var, log_q_z, log_q_zj) -> dict:
    """The four terms of Chen et al.'s decomposition, each the mean over the scored rows.

    ``E[log p(z|x) - log r(z)] = I(Z;X) + TC(Z) + sum_j KL(q(z_j) || r_j)`` holds exactly for these
    Monte-Carlo terms whatever estimator produced ``log q``: the log q terms telescope.
    """
    log_p_zj_x = gaussian_log_density(z, mean, log_var)  # [Q, D]
    zero = torch.zeros_like(z)
    # the standard normal prior r_j, in float64 (StandardNormal.log_prob works in float32)
    log_r_zj = gaussian_log_density(z, zero, zero)  # [Q, D]
    log_p_z_x = log_p_zj_x.sum(-1)
    return {
        "mutual_info": (log_p_z_x - log_q_z).mean(),
        "mutual_info_per_latent": (log_p_zj_x - log_q_zj).mean(0),
        "total_correlation": (log_q_z - log_q_zj.sum(-1)).mean(),
        "dimension_wise_kl": (log_q_zj - log_r_zj).mean(0),
        "kl_to_prior_mc": (log_p_z_x - log_r_zj.sum(-1)).mean(),
        "log_q_z": log_q_z.mean(),
        "num_scored": z.shape[0],
    }


def aggregate_information(
    mean: Tensor,
    log_var: Tensor,
    dataset_size: int,
    method: str = "mss",
    z: Tensor | None = None,
    generator: torch.Generator | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> dict:
    """Aggregate-posterior information estimates from one batch of posteriors, in nats.

    ``mean``, ``log_var`` ``[M, D]``: the encoder's diagonal Gaussians for a batch of ``M`` points
    drawn without replacement from a dataset of ``dataset_size = N >= M`` points; ``z`` ``[M, D]``
    one sample per row (drawn with ``generator`` when ``None``). ``log q(z)`` and ``log q(z_j)`` are
    estimated by ``method``: ``"mss"`` (minibatch stratified sampling, the default, consistent) or
    ``"mws"`` (minibatch weighted sampling, the paper's lower bound with a constant offset: see the
    module docstring; it does not converge to the values below). Chen et al. 2018, section 4.1
    and appendix C; docs/math.md#aggregate-posterior.

    Returns a dict of float64 tensors on ``mean``'s device (means over the ``M`` rows):

    - ``mutual_info`` (scalar): ``I(Z;X) ~= E[log p(z|x) - log q(z)]``;
    - ``mutual_info_per_latent`` ``[D]``: ``I(Z_j;X) ~= E[log p(z_j|x) - log q(z_j)]``;
    - ``total_correlation`` (scalar): ``TC(Z) ~= E[log q(z) - sum_j log q(z_j)]``;
    - ``dimension_wise_kl`` ``[D]``: ``KL(q(z_j) || r_j) ~= E[log q(z_j) - log r_j(z_j)]``, the gap
      between ``rate_per_latent`` and ``I(Z_j;X)`` (docs/math.md#the-encoder-inequality);
    - ``kl_to_prior_mc`` (scalar): ``E[log p(z|x) - log r(z)]``, the Monte-Carlo rate; it equals
      ``mutual_info + total_correlation + dimension_wise_kl.sum()`` exactly;
    - ``log_q_z`` (scalar): ``E[log q(z)]``, i.e. minus the estimated entropy of ``q(z)``;

    and ``num_scored`` (int, ``M``).
    """
    mean, log_var, n, z = _prepare_batch(mean, log_var, dataset_size, z, generator)
    log_q_z, log_q_zj = _log_q(mean, log_var, n, z, method, max_chunk_bytes)  # checked once, above
    return _summarize(z, mean, log_var, log_q_z, log_q_zj)


def _concat_posteriors(mean, log_var) -> tuple[Tensor, Tensor]:
    """Accept tensors, or ``mean`` an iterable of ``(mean, log_var)`` batches with ``log_var=None``."""
    if isinstance(mean, Tensor):
        if log_var is None:
            raise TcxError("log_var is required when mean is a tensor")
        return mean, log_var
    if log_var is not None:
        raise TcxError(
            "log_var must be None when mean is an iterable of (mean, log_var) batches, "
            f"got a {type(log_var).__name__}"
        )
    means, log_vars = [], []
    for i, batch in enumerate(mean):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TcxError(f"batch {i} of mean must be a (mean, log_var) pair, got {type(batch).__name__}")
        means.append(_check_tensor(f"mean (batch {i})", batch[0], ndim=2))
        log_vars.append(_check_tensor(f"log_var (batch {i})", batch[1], ndim=2))
    if not means:
        raise TcxError("mean is an empty iterable: pass at least one (mean, log_var) batch")
    widths = {t.shape[1] for t in means + log_vars}
    if len(widths) != 1:
        raise TcxError(f"the (mean, log_var) batches have different latent sizes {sorted(widths)}")
    return torch.cat([t.double() for t in means]), torch.cat([t.double() for t in log_vars])


def aggregate_information_full(
    mean,
    log_var: Tensor | None = None,
    z: Tensor | None = None,
    generator: torch.Generator | None = None,
    num_scored: int | None = None,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    dataset_size: int | None = None,
) -> dict:
    """Aggregate-posterior information from ``M`` posteriors, every code scored against all of
    them, in nats.

    ``mean``, ``log_var`` ``[M, D]``: the posteriors of ``M`` points (or ``mean`` an iterable of
    ``(mean, log_var)`` batches, concatenated, with ``log_var=None``); ``z``, when given, ``[M, D]``
    one draw per point (drawn with ``generator`` otherwise).

    - ``dataset_size=None``: the ``M`` points *are* the dataset. ``log q(z_i) = logsumexp_m
      log p(z_i|x_m) - log M``, the exact aggregate posterior of the empirical dataset (as in Chen
      et al. 2018's evaluation of the ELBO decomposition); ``mutual_info`` is then at most ``log M``.
    - ``dataset_size=N >= M``: the ``M`` points are a sample of a dataset of ``N`` points, and the
      estimates are of that dataset's aggregate posterior: each code is scored with the minibatch
      stratified sampling weights of ``mss_log_weights(M, N)`` (its own posterior ``1/N``, the
      others standing for the rest of the dataset; Chen et al. 2018, appendix C.2). The result does
      not depend on ``M`` but through the estimator's error: ``mutual_info`` is capped by ``log N``,
      not ``log M``. Its bias: ``log q(z)`` is then a leave-one-out kernel estimate from ``M - 1``
      points, biased low (Jensen) by an amount that grows with ``D`` and shrinks as ``M`` grows, so
      ``total_correlation`` reads slightly below the truth: for 10 independent latents with
      posterior std 0.3 (``tests/test_estimators.py``), about -0.7 nats at ``M = 500`` and -0.35 at
      ``M = 2000`` (true 0), where the ``dataset_size=None`` mixture reads +6.2 and +5.0 (its
      own-point weight ``1/M`` instead of ``1/N`` inflates ``log q(z)`` by up to ``log(N/M)``).

    ``num_scored`` scores only that many rows, chosen at random with ``generator`` (each still
    against all ``M`` posteriors): an unbiased subsample. The work is ``O(M^2 D)`` in chunks of at
    most ``max_chunk_bytes``, fine for a few thousand points.

    Returns the dict of ``aggregate_information`` (``mutual_info``, ``mutual_info_per_latent``,
    ``total_correlation``, ``dimension_wise_kl``, ``kl_to_prior_mc``, ``log_q_z``, ``num_scored``).
    """
    mean, log_var = _concat_posteriors(mean, log_var)
    mean, log_var = _check_posterior(mean, log_var)
    z = _sample_or_check_z(z, mean, log_var, generator)
    m = mean.shape[0]
    nbytes = _check_bytes(max_chunk_bytes)
    if num_scored is None:
        rows = None
    else:
        num_scored = check_int("num_scored", num_scored, 1, m, hint="the number of points")
        gen_device = generator.device if generator is not None else torch.device("cpu")
        rows = torch.randperm(m, generator=generator, device=gen_device)[: int(num_scored)].to(mean.device)
    zq = z if rows is None else z[rows]
    if dataset_size is None:
        weights = lambda a, b: -math.log(m)  # noqa: E731
    else:
        n = _check_dataset_size(dataset_size, m)
        log_self, log_strat, log_other = _mss_weight_values(m, n)
        index = torch.arange(m, device=mean.device) if rows is None else rows

        def weights(a, b):
            idx = index[a:b]
            w = torch.full((b - a, m), log_other, dtype=torch.float64, device=mean.device)
            pos = torch.arange(b - a, device=mean.device)
            if m > 1:
                w[pos, (idx + 1) % m] = log_strat
            w[pos, idx] = log_self
            return w

    log_q_z, log_q_zj = _log_mixture(zq, mean, log_var, weights, nbytes)
    if rows is None:
        return _summarize(z, mean, log_var, log_q_z, log_q_zj)
    return _summarize(zq, mean[rows], log_var[rows], log_q_z, log_q_zj)


# --------------------------------------------------------------------------------------------
# Gaussian total correlation of codes


def gaussian_total_correlation(codes) -> float:
    """Total correlation of the Gaussian fitted to ``codes`` ``[N, D]``, in nats.

    ``0.5 * (sum_j log S_jj - log det S)`` with ``S`` the codes' sample covariance (``N - 1`` in
    the denominator; docs/math.md#gaussian-total-correlation): ``TC(Z)`` when the codes are
    jointly Gaussian, and the Gaussian (second-order) part of it otherwise. Computed in float64 as
    ``-0.5 log det R`` of the correlation matrix ``R``, the same number, invariant to rescaling
    each code. ``codes`` may be a tensor or an array.

    The one implementation of this quantity in tcx: the ``gaussian_total_correlation`` of
    :func:`tcx.metrics.unsupervised` and of the diagnostics is this function. Codes with zero
    variance are left out (a constant is independent of every other code, so the TC of the rest is
    the limit; disentanglement_lib returns NaN there); with fewer than two varying codes the TC is
    0. A singular covariance of the varying codes (an exact linear dependence) gives ``inf``, which
    is the TC's true value. Needs more rows than varying codes.
    """
    if not isinstance(codes, Tensor):
        try:
            codes = torch.as_tensor(codes)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TcxError(f"codes must be a tensor or array [N, D] of numbers, got {type(codes).__name__}") from exc
    codes = _check_tensor("codes", codes, ndim=2)
    keep = codes.amax(0) != codes.amin(0)
    x = codes[:, keep].double()
    x = x - x.mean(0, keepdim=True)
    n, d = x.shape
    if d < 2:
        return 0.0
    if n <= d:
        raise TcxError(
            f"codes has {n} rows for {d} varying codes: the sample covariance needs N > D rows to be non-singular"
        )
    cov = x.T @ x / (n - 1)
    inv_std = torch.diagonal(cov).rsqrt()
    corr = cov * inv_std[:, None] * inv_std[None, :]
    chol, info = torch.linalg.cholesky_ex(corr)
    if int(info) != 0:
        return math.inf  # an exact linear dependence among the codes: infinite total correlation
    log_det = 2.0 * torch.log(torch.diagonal(chol)).sum()
    return float(-0.5 * log_det)


# --------------------------------------------------------------------------------------------
# pixel entropies


def _pixel_batches(x) -> Iterable[Tensor]:
    if isinstance(x, Tensor):
        yield x
        return
    for batch in x:
        # any batch tcx reads (tcx/batches.py): take the observations
        yield split_batch(batch)[0]


def binary_pixel_entropy(x) -> Tensor:
    """Per-input entropy ``H(X_i)`` in nats of binary inputs, from their marginal frequencies.

    ``x``: a tensor ``[N, ...]`` or an iterable of batches (tensors ``[B, ...]`` or ``(x, y)``
    tuples as a datamodule yields). Values must lie in ``[0, 1]``: binary pixels, or Bernoulli
    probabilities (grey levels), which are averaged as marginals, ``p_i = mean_n x_ni``. Returns
    ``H(X_i) = -p_i log p_i - (1-p_i) log(1-p_i)`` with shape ``[...]`` in float64
    (``tcx.distributions.bernoulli_entropy``); ``sum`` it for the constant ``sum_i H(X_i)`` of the
    CorEx lower bound (docs/math.md#pixel-entropy).
    """
    total, count, shape = None, 0, None
    for i, batch in enumerate(_pixel_batches(x)):
        name = "x" if isinstance(x, Tensor) else f"x (batch {i})"
        check_tensor(name, batch, finite=True)
        if batch.dim() < 1 or batch.shape[0] == 0:
            raise TcxError(f"{name} must be [N, ...] with N >= 1, got shape {tuple(batch.shape)}")
        b = batch.double()
        lo, hi = float(b.min()), float(b.max())
        if lo < 0.0 or hi > 1.0:
            raise TcxError(
                f"{name} has values in [{lo:.4g}, {hi:.4g}]: binary_pixel_entropy needs x in [0, 1] "
                "(binary pixels or Bernoulli probabilities); rescale the data"
            )
        if shape is None:
            shape = b.shape[1:]
            total = torch.zeros(shape, dtype=torch.float64, device=b.device)
        elif b.shape[1:] != shape:
            raise TcxError(f"{name} has per-example shape {tuple(b.shape[1:])}, earlier batches {tuple(shape)}")
        total += b.sum(0).to(total.device)
        count += b.shape[0]
    if count == 0:
        raise TcxError("x is an empty iterable: pass a tensor [N, ...] or at least one batch")
    return bernoulli_entropy(total / count)
