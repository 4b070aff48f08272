"""Known-answer tests of tcx.estimators (docs/math.md#estimators).

The reference model is a linear-Gaussian encoder: x ~ N(0, I_k), p(z|x) = N(W x, diag(sigma^2)), so
the population aggregate posterior is q(z) = N(0, C) with C = W W^T + diag(sigma^2), and
    I(Z;X)   = 0.5 (logdet C - logdet diag(sigma^2)),
    I(Z_j;X) = 0.5 log(C_jj / sigma_j^2),
    TC(Z)    = 0.5 (sum_j log C_jj - logdet C),
    KL(q(z_j) || N(0,1)) = 0.5 (C_jj - 1 - log C_jj),
    E_x KL(p(z_j|x) || N(0,1)) = 0.5 (C_jj - 1 - log sigma_j^2).
"""

from __future__ import annotations

import math

import pytest
import torch

from tcx.distributions import gaussian_log_density
from tcx.estimators import (
    aggregate_information,
    aggregate_information_full,
    binary_pixel_entropy,
    gaussian_total_correlation,
    log_aggregate_posterior,
    mss_log_weights,
    rate_per_latent,
)

F64 = torch.float64

# Three latents, the second strongly correlated with the first, the third mildly with the second.
W = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.3, 0.9]], dtype=F64)
SIGMA = torch.tensor([0.5, 0.4, 0.6], dtype=F64)
POPULATION = 10**9  # "dataset size" of a batch drawn from the continuous population


def closed_forms(w: torch.Tensor, sigma: torch.Tensor) -> dict:
    cov = w @ w.T + torch.diag(sigma**2)
    c = torch.diagonal(cov)
    return {
        "cov": cov,
        "mutual_info": 0.5 * (torch.logdet(cov) - torch.log(sigma**2).sum()),
        "mutual_info_per_latent": 0.5 * torch.log(c / sigma**2),
        "total_correlation": 0.5 * (torch.log(c).sum() - torch.logdet(cov)),
        "dimension_wise_kl": 0.5 * (c - 1.0 - torch.log(c)),
        "rate_per_latent": 0.5 * (c - 1.0 - torch.log(sigma**2)),
    }


def linear_gaussian(n: int, seed: int, w: torch.Tensor = W, sigma: torch.Tensor = SIGMA):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, w.shape[1], generator=g, dtype=F64)
    mean = x @ w.T
    log_var = torch.log(sigma**2).expand(n, -1).clone()
    z = mean + sigma * torch.randn(n, w.shape[0], generator=g, dtype=F64)
    return mean, log_var, z


def oracle(mean, log_var, z, w=W, sigma=SIGMA) -> dict:
    """The Monte-Carlo terms on the same codes with the exact population q(z) = N(0, C).

    Their difference from the closed forms is pure sampling noise of the codes; an estimator's
    difference from them is its error in estimating log q, which must vanish as N grows.
    """
    cov = closed_forms(w, sigma)["cov"]
    log_q = torch.distributions.MultivariateNormal(torch.zeros(len(cov), dtype=F64), cov).log_prob(z)
    log_qj = gaussian_log_density(z, torch.zeros_like(z), torch.log(torch.diagonal(cov)).expand_as(z))
    log_p = gaussian_log_density(z, mean, log_var)
    mi_terms = log_p.sum(1) - log_q
    tc_terms = log_q - log_qj.sum(1)
    n = z.shape[0]
    return {
        "mutual_info": mi_terms.mean(),
        "mutual_info_per_latent": (log_p - log_qj).mean(0),
        "total_correlation": tc_terms.mean(),
        "dimension_wise_kl": (log_qj - gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))).mean(0),
        "se_mutual_info": mi_terms.std() / math.sqrt(n),
        "se_total_correlation": tc_terms.std() / math.sqrt(n),
    }


KEYS = ("mutual_info", "mutual_info_per_latent", "total_correlation", "dimension_wise_kl")


def max_abs(a, b) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


# ---------------------------------------------------------------------------------------------
# convergence on the linear-Gaussian encoder


@pytest.fixture(scope="module")
def convergence():
    """Estimates at N = 250 and N = 4000 (nested data, common random numbers)."""
    mean, log_var, z = linear_gaussian(4000, seed=0)
    out = {}
    for n in (250, 4000):
        m, lv, zz = mean[:n], log_var[:n], z[:n]
        out[n] = {
            "oracle": oracle(m, lv, zz),
            "full": aggregate_information_full(m, lv, z=zz),
            # a batch of n points drawn from the (effectively infinite) population
            "mss": aggregate_information(m, lv, POPULATION, method="mss", z=zz),
        }
    return out


@pytest.mark.parametrize("estimator", ["full", "mss"])
def test_log_q_error_shrinks_with_n(convergence, estimator):
    # The estimator's own error (against the exact population q on the same codes) must fall as N
    # grows. Seen (seeds 0-3): about 0.03-0.07 nats at N=250, at most 0.006 at N=4000.
    for key in KEYS:
        small = max_abs(convergence[250][estimator][key], convergence[250]["oracle"][key])
        large = max_abs(convergence[4000][estimator][key], convergence[4000]["oracle"][key])
        assert large < small, (estimator, key, small, large)
        # 0.02 nats: three times the largest error seen at N=4000 over four seeds
        assert large < 0.02, (estimator, key, large)


@pytest.mark.parametrize("estimator", ["full", "mss"])
def test_estimates_match_closed_forms_at_large_n(convergence, estimator):
    truth = closed_forms(W, SIGMA)
    res, orc = convergence[4000][estimator], convergence[4000]["oracle"]
    # Tolerance: 4 standard errors of the Monte-Carlo mean over the 4000 codes (the noise even the
    # exact q would have; ~0.022 nats for I, ~0.011 for TC) plus the 0.02 of estimation error above.
    tol_mi = 4 * float(orc["se_mutual_info"]) + 0.02
    tol_tc = 4 * float(orc["se_total_correlation"]) + 0.02
    assert abs(float(res["mutual_info"]) - float(truth["mutual_info"])) < tol_mi
    assert abs(float(res["total_correlation"]) - float(truth["total_correlation"])) < tol_tc
    assert max_abs(res["mutual_info_per_latent"], truth["mutual_info_per_latent"]) < tol_mi
    assert max_abs(res["dimension_wise_kl"], truth["dimension_wise_kl"]) < 0.03
    # (Against the closed forms themselves the error at N=250 is dominated by the codes' sampling
    # noise, SE ~0.09 nats for I, which can cancel by chance; the ordering in N is therefore
    # asserted on the estimation error, in test_log_q_error_shrinks_with_n.)


def test_decomposition_is_exact_for_every_estimator():
    # E[log p(z|x) - log r(z)] = I(Z;X) + TC(Z) + sum_j KL(q(z_j)||r_j): the log q terms telescope.
    mean, log_var, z = linear_gaussian(300, seed=1)
    results = [
        aggregate_information(mean, log_var, 1000, method="mws", z=z),
        aggregate_information(mean, log_var, 1000, method="mss", z=z),
        aggregate_information_full(mean, log_var, z=z),
    ]
    for r in results:
        total = r["mutual_info"] + r["total_correlation"] + r["dimension_wise_kl"].sum()
        assert float(total) == pytest.approx(float(r["kl_to_prior_mc"]), abs=1e-9)
        assert r["mutual_info_per_latent"].shape == (3,) and r["dimension_wise_kl"].shape == (3,)
        assert r["num_scored"] == 300
    # all share the same Monte-Carlo rate
    assert float(results[0]["kl_to_prior_mc"]) == pytest.approx(float(results[2]["kl_to_prior_mc"]))


# ---------------------------------------------------------------------------------------------
# MWS: the paper's lower bound and its constant offset


def test_mws_matches_hand_written_formula():
    g = torch.Generator().manual_seed(2)
    mean = torch.randn(5, 2, generator=g, dtype=F64)
    log_var = 0.3 * torch.randn(5, 2, generator=g, dtype=F64)
    z = torch.randn(5, 2, generator=g, dtype=F64)
    n_data = 40

    def pdf(i, m, j):  # N(z_ij; mean_mj, exp(log_var_mj)), written out with the math module
        var = math.exp(float(log_var[m, j]))
        return math.exp(-0.5 * float(z[i, j] - mean[m, j]) ** 2 / var) / math.sqrt(2 * math.pi * var)

    joint = [math.log(sum(pdf(i, m, 0) * pdf(i, m, 1) for m in range(5)) / (n_data * 5)) for i in range(5)]
    marg = [[math.log(sum(pdf(i, m, j) for m in range(5)) / (n_data * 5)) for j in range(2)] for i in range(5)]
    got_joint, got_marg = log_aggregate_posterior(mean, log_var, n_data, method="mws", z=z)
    assert torch.allclose(got_joint, torch.tensor(joint, dtype=F64), atol=1e-12)
    assert torch.allclose(got_marg, torch.tensor(marg, dtype=F64), atol=1e-12)


def test_mws_offset_is_exactly_log_n_per_term_when_the_batch_is_the_dataset():
    # With the whole dataset as the batch (M = N) MWS divides by N*N instead of N: every log q is
    # log N too low, so I gains log N, I_j gains log N, TC gains (D-1) log N. It does not converge.
    mean, log_var, z = linear_gaussian(400, seed=3)
    full = aggregate_information_full(mean, log_var, z=z)
    mws = aggregate_information(mean, log_var, 400, method="mws", z=z)
    log_n = math.log(400)
    assert float(mws["mutual_info"]) == pytest.approx(float(full["mutual_info"]) + log_n, abs=1e-9)
    tc_full = float(full["total_correlation"])
    assert float(mws["total_correlation"]) == pytest.approx(tc_full + 2 * log_n, abs=1e-9)
    assert max_abs(mws["mutual_info_per_latent"], full["mutual_info_per_latent"] + log_n) < 1e-9
    assert max_abs(mws["dimension_wise_kl"], full["dimension_wise_kl"] - log_n) < 1e-9


def test_identical_posteriors_mss_is_exact_mws_is_offset():
    # Every point has the same posterior, so q(z) = p(z|x): I = TC = 0 and KL(q(z_j)||r) is known.
    m, d, n = 16, 3, 1000
    mean = torch.full((m, d), 0.7, dtype=F64)
    log_var = torch.full((m, d), math.log(0.5), dtype=F64)
    g = torch.Generator().manual_seed(4)
    mss = aggregate_information(mean, log_var, n, method="mss", generator=g)
    assert float(mss["mutual_info"]) == pytest.approx(0.0, abs=1e-10)
    assert float(mss["total_correlation"]) == pytest.approx(0.0, abs=1e-10)
    assert max_abs(mss["mutual_info_per_latent"], torch.zeros(d)) < 1e-10
    mws = aggregate_information(mean, log_var, n, method="mws", generator=g)
    assert float(mws["mutual_info"]) == pytest.approx(math.log(n), abs=1e-10)
    assert float(mws["total_correlation"]) == pytest.approx((d - 1) * math.log(n), abs=1e-10)


# ---------------------------------------------------------------------------------------------
# MSS weights


@pytest.mark.parametrize("m,n", [(2, 2), (2, 10), (3, 7), (8, 8), (64, 60000)])
def test_mss_weights_rows_sum_to_one(m, n):
    w = mss_log_weights(m, n).exp()
    assert w.shape == (m, m)
    assert torch.allclose(w.sum(1), torch.ones(m, dtype=F64), atol=1e-12)
    assert torch.allclose(torch.diagonal(w), torch.full((m,), 1.0 / n, dtype=F64))


def test_mss_weights_layout():
    m, n = 5, 100
    w = mss_log_weights(m, n).exp()
    strat = (n - m + 1) / (n * (m - 1))
    for i in range(m):
        for k in range(m):
            expected = 1.0 / n if k == i else strat if k == (i + 1) % m else 1.0 / (m - 1)
            assert float(w[i, k]) == pytest.approx(expected, rel=1e-12)
    # M = 2: the single other row stands for the other N - 1 points
    w2 = mss_log_weights(2, 10).exp()
    assert torch.allclose(w2, torch.tensor([[0.1, 0.9], [0.9, 0.1]], dtype=F64))


def test_mss_matches_weighted_sum_by_hand():
    g = torch.Generator().manual_seed(5)
    mean = torch.randn(6, 2, generator=g, dtype=F64)
    log_var = 0.2 * torch.randn(6, 2, generator=g, dtype=F64)
    z = torch.randn(6, 2, generator=g, dtype=F64)
    lw = mss_log_weights(6, 50)
    lp = gaussian_log_density(z[:, None, :], mean[None], log_var[None])  # [i, m, j]
    joint = torch.log((lw.exp() * lp.sum(-1).exp()).sum(1))
    marg = torch.log((lw.exp()[..., None] * lp.exp()).sum(1))
    got_joint, got_marg = log_aggregate_posterior(mean, log_var, 50, z=z)  # mss, the default
    assert torch.allclose(got_joint, joint, atol=1e-12)
    assert torch.allclose(got_marg, marg, atol=1e-12)


def test_mss_single_row():
    mean, log_var = torch.zeros(1, 2, dtype=F64), torch.zeros(1, 2, dtype=F64)
    z = torch.tensor([[0.3, -1.0]], dtype=F64)
    # N = 1: the row is the whole dataset, q(z) = p(z|x)
    r = aggregate_information(mean, log_var, 1, method="mss", z=z)
    assert float(r["mutual_info"]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 2 rows"):
        aggregate_information(mean, log_var, 5, method="mss", z=z)


def test_chunking_does_not_change_the_result():
    mean, log_var, z = linear_gaussian(97, seed=6)
    for method in ("mss", "mws"):
        a = aggregate_information(mean, log_var, 500, method=method, z=z)
        b = aggregate_information(mean, log_var, 500, method=method, z=z, max_chunk_bytes=1)
        for key in KEYS:
            assert max_abs(a[key], b[key]) < 1e-12
    a = aggregate_information_full(mean, log_var, z=z)
    b = aggregate_information_full(mean, log_var, z=z, max_chunk_bytes=10_000)
    for key in KEYS:
        assert max_abs(a[key], b[key]) < 1e-12


# ---------------------------------------------------------------------------------------------
# the full estimator's conveniences


def test_full_accepts_batches_and_subsamples():
    mean, log_var, z = linear_gaussian(120, seed=7)
    whole = aggregate_information_full(mean, log_var, z=z)
    batches = [(mean[i : i + 50], log_var[i : i + 50]) for i in range(0, 120, 50)]
    chunked = aggregate_information_full(batches, z=z)
    for key in KEYS:
        assert max_abs(whole[key], chunked[key]) < 1e-12
    g = torch.Generator().manual_seed(0)
    sub = aggregate_information_full(mean, log_var, z=z, num_scored=30, generator=g)
    assert sub["num_scored"] == 30
    # the subsample is a subset of rows of the same per-row terms: the decomposition still holds
    total = sub["mutual_info"] + sub["total_correlation"] + sub["dimension_wise_kl"].sum()
    assert float(total) == pytest.approx(float(sub["kl_to_prior_mc"]), abs=1e-9)
    with pytest.raises(ValueError, match="num_scored"):
        aggregate_information_full(mean, log_var, num_scored=121)


def test_sampling_with_generator_is_reproducible():
    mean, log_var, _ = linear_gaussian(64, seed=8)
    a = aggregate_information(mean, log_var, 640, generator=torch.Generator().manual_seed(3))
    b = aggregate_information(mean, log_var, 640, generator=torch.Generator().manual_seed(3))
    assert float(a["total_correlation"]) == float(b["total_correlation"])


# ---------------------------------------------------------------------------------------------
# total correlation: independent versus duplicated latents


def test_tc_near_zero_for_independent_latents():
    w = torch.diag(torch.tensor([1.0, 0.7, 1.3], dtype=F64))
    sigma = torch.tensor([0.5, 0.3, 0.6], dtype=F64)
    mean, log_var, z = linear_gaussian(1000, seed=9, w=w, sigma=sigma)
    assert float(closed_forms(w, sigma)["total_correlation"]) == pytest.approx(0.0, abs=1e-12)
    # per code, log q(z) - sum_j log q(z_j) is exactly 0 for the population q, so what is left is
    # the estimators' density error (~0.01 nats here)
    for r in (
        aggregate_information_full(mean, log_var, z=z),
        aggregate_information(mean, log_var, POPULATION, method="mss", z=z),
    ):
        assert abs(float(r["total_correlation"])) < 0.05
    assert abs(gaussian_total_correlation(mean)) < 0.02


def test_tc_large_for_a_duplicated_latent():
    # z_2 copies z_1 with tiny noise: TC = 0.5 log((1+s^2)^2 / (2 s^2 + s^4)) = 4.26 nats at s=0.01
    s = 0.01
    w = torch.tensor([[1.0], [1.0]], dtype=F64)
    sigma = torch.tensor([s, s], dtype=F64)
    truth = float(closed_forms(w, sigma)["total_correlation"])
    assert truth == pytest.approx(0.5 * math.log((1 + s**2) ** 2 / (2 * s**2 + s**4)))
    mean, log_var, z = linear_gaussian(1000, seed=10, w=w, sigma=sigma)
    full = aggregate_information_full(mean, log_var, z=z)
    assert float(full["total_correlation"]) == pytest.approx(truth, abs=0.2)
    mss = aggregate_information(mean, log_var, POPULATION, method="mss", z=z)
    # leave-one-out density of a nearly one-dimensional joint from 1000 points: seen +0.05 to +0.19
    assert float(mss["total_correlation"]) == pytest.approx(truth, abs=0.3)
    assert gaussian_total_correlation(z) == pytest.approx(truth, abs=0.2)


# ---------------------------------------------------------------------------------------------
# rate


def test_rate_per_latent_closed_form():
    mean = torch.tensor([[0.0, 1.0, 0.0], [2.0, -1.0, 0.5]], dtype=F64)
    log_var = torch.tensor([[0.0, 0.0, math.log(2.0)], [0.0, math.log(0.5), 0.0]], dtype=F64)
    by_hand = torch.tensor(
        [
            (0.0 + 0.5 * 4.0) / 2,  # KL(N(0,1)||N(0,1)) = 0, KL(N(2,1)||N(0,1)) = 2
            (0.5 + 0.5 * (1.0 + 0.5 - math.log(0.5) - 1.0)) / 2,
            (0.5 * (2.0 - math.log(2.0) - 1.0) + 0.5 * 0.25) / 2,
        ],
        dtype=F64,
    )
    assert torch.allclose(rate_per_latent(mean, log_var), by_hand, atol=1e-12)


def test_rate_matches_its_decomposition_in_the_linear_gaussian_model():
    # E_x KL(p(z_j|x)||r_j) = I(Z_j;X) + KL(q(z_j)||r_j) = 0.5 (C_jj - 1 - log sigma_j^2)
    mean, log_var, z = linear_gaussian(4000, seed=11)
    truth = closed_forms(W, SIGMA)
    rate = rate_per_latent(mean, log_var)
    # the only noise is the sample mean of mu_j^2 over 4000 rows: SE = sqrt(2/4000) C_jj/2 < 0.02
    assert max_abs(rate, truth["rate_per_latent"]) < 0.06
    # the same identity on the empirical dataset, with the Monte-Carlo terms of the full estimator
    # (one code per row: given x, log p(z_j|x) - log r(z_j) scatters around KL_j(x) with std about
    # 0.75 nats, so over 1000 rows SE ~ 0.024 and 4 SE < 0.1)
    full = aggregate_information_full(mean[:1000], log_var[:1000], z=z[:1000])
    mc_rate = full["mutual_info_per_latent"] + full["dimension_wise_kl"]
    assert max_abs(mc_rate, rate_per_latent(mean[:1000], log_var[:1000])) < 0.1


# ---------------------------------------------------------------------------------------------
# Gaussian total correlation of codes


def _exact_covariance_sample(cov: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n rows whose sample covariance is exactly ``cov`` (whitened noise, then colored)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(cov), generator=g, dtype=F64)
    x = x - x.mean(0)
    emp = x.T @ x / (n - 1)
    x = x @ torch.linalg.inv(torch.linalg.cholesky(emp)).T
    return x @ torch.linalg.cholesky(cov).T + 3.0


def test_gaussian_tc_exact_on_known_covariance():
    cov = closed_forms(W, SIGMA)["cov"]
    codes = _exact_covariance_sample(cov, 50, seed=12)
    assert gaussian_total_correlation(codes) == pytest.approx(float(closed_forms(W, SIGMA)["total_correlation"]), abs=1e-10)


def test_gaussian_tc_from_samples_and_invariance():
    cov = closed_forms(W, SIGMA)["cov"]
    g = torch.Generator().manual_seed(13)
    codes = torch.randn(100_000, 3, generator=g, dtype=F64) @ torch.linalg.cholesky(cov).T
    truth = float(closed_forms(W, SIGMA)["total_correlation"])
    # the log-det of a sample correlation matrix has SE ~ sqrt(2 * pairs / N) ~ 0.008 here
    assert gaussian_total_correlation(codes) == pytest.approx(truth, abs=0.03)
    scaled = codes * torch.tensor([1e-3, -7.0, 250.0], dtype=F64) + torch.tensor([5.0, -2.0, 1e3], dtype=F64)
    assert gaussian_total_correlation(scaled) == pytest.approx(gaussian_total_correlation(codes), abs=1e-9)
    assert gaussian_total_correlation(codes.float()) == pytest.approx(gaussian_total_correlation(codes), abs=1e-4)


def test_gaussian_tc_edge_cases_and_bad_input():
    g = torch.Generator().manual_seed(14)
    assert gaussian_total_correlation(torch.randn(10, 1, generator=g)) == 0.0  # one code: nothing to correlate
    with pytest.raises(ValueError, match="N > D"):
        gaussian_total_correlation(torch.randn(3, 3, generator=g))
    codes = torch.randn(20, 3, generator=g, dtype=F64)
    # a constant code is independent of the rest: left out, the TC is the other codes'
    with_constant = torch.cat([codes[:, :1], torch.full((20, 1), 0.1, dtype=F64), codes[:, 1:]], 1)
    assert gaussian_total_correlation(with_constant) == pytest.approx(gaussian_total_correlation(codes), abs=1e-12)
    # an exact linear dependence: the TC is infinite
    assert gaussian_total_correlation(torch.cat([codes, codes[:, :1] * 2 - codes[:, 1:2]], 1)) == math.inf
    # arrays are accepted, with the same value
    assert gaussian_total_correlation(codes.numpy()) == gaussian_total_correlation(codes)
    bad = codes.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="codes"):
        gaussian_total_correlation(bad)


# ---------------------------------------------------------------------------------------------
# pixel entropies


def test_binary_pixel_entropy_known_field():
    n = 400
    x = torch.zeros(n, 1, 2, 3)
    g = torch.Generator().manual_seed(15)
    x[:, 0, 0, 0] = (torch.randperm(n, generator=g) < n // 2).float()  # exactly half on: log 2
    x[:, 0, 0, 1] = 1.0  # constant on: 0
    # x[:, 0, 0, 2] stays 0: constant off, 0
    x[:, 0, 1, 0] = (torch.randperm(n, generator=g) < n // 4).float()  # a quarter on
    x[:, 0, 1, 1] = 0.5  # a probability of 0.5 everywhere: marginal 0.5
    x[:, 0, 1, 2] = (torch.rand(n, generator=g) < 0.5).float()  # Bernoulli(0.5) draws
    h = binary_pixel_entropy(x)
    assert h.shape == (1, 2, 3) and h.dtype == F64
    assert float(h[0, 0, 0]) == pytest.approx(math.log(2), abs=1e-12)
    assert float(h[0, 0, 1]) == 0.0 and float(h[0, 0, 2]) == 0.0
    assert float(h[0, 1, 0]) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), abs=1e-12)
    assert float(h[0, 1, 1]) == pytest.approx(math.log(2), abs=1e-12)
    # frequency within 3 SE (0.075) of 0.5 keeps H within 0.012 nats of log 2
    assert float(h[0, 1, 2]) == pytest.approx(math.log(2), abs=0.012)
    # the same from batches, as (x, y) tuples the way a datamodule yields them
    batches = [(x[i : i + 64], torch.zeros(len(x[i : i + 64]), 0)) for i in range(0, n, 64)]
    assert torch.allclose(binary_pixel_entropy(batches), h, atol=1e-12)
    assert torch.allclose(binary_pixel_entropy(iter([x[:100], x[100:]])), h, atol=1e-12)


def test_binary_pixel_entropy_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary_pixel_entropy(torch.tensor([[0.0, 1.2]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary_pixel_entropy(torch.tensor([[-0.1, 1.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        binary_pixel_entropy(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="per-example shape"):
        binary_pixel_entropy([torch.zeros(2, 3), torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="empty"):
        binary_pixel_entropy([])


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_input_names_the_argument():
    mean = torch.zeros(8, 3)
    log_var = torch.zeros(8, 3)
    with pytest.raises(ValueError, match="log_var"):
        aggregate_information(mean, torch.zeros(8, 2), 100)
    with pytest.raises(ValueError, match="mean"):
        aggregate_information(torch.zeros(8), log_var, 100)
    with pytest.raises(ValueError, match="z"):
        aggregate_information(mean, log_var, 100, z=torch.zeros(8, 4))
    with pytest.raises(ValueError, match=r"dataset_size must be an integer >= 8, got 4 \(the batch of 8 rows"):
        aggregate_information(mean, log_var, 4)
    with pytest.raises(ValueError, match=r"dataset_size must be an integer >= 8, got 4 \(the batch of 8 rows"):
        log_aggregate_posterior(mean, log_var, 4, method="mws")
    with pytest.raises(ValueError, match="dataset_size must be an integer >= 1"):
        aggregate_information(mean, log_var, 0)
    with pytest.raises(ValueError, match="dataset_size must be an integer >= 1"):
        log_aggregate_posterior(mean, log_var, -5)
    with pytest.raises(ValueError, match="dataset_size must be an integer"):
        aggregate_information(mean, log_var, 100.5)
    with pytest.raises(ValueError, match="method"):
        aggregate_information(mean, log_var, 100, method="exact")
    with pytest.raises(ValueError, match="dataset_size"):
        mss_log_weights(9, 8)
    for name in ("mean", "log_var", "z"):
        args = {"mean": mean.clone(), "log_var": log_var.clone(), "z": torch.zeros(8, 3)}
        args[name][2, 1] = float("nan")
        with pytest.raises(ValueError, match=rf"^{name} contains 1 non-finite"):
            aggregate_information(args["mean"], args["log_var"], 100, z=args["z"])
    bad = log_var.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="log_var"):
        aggregate_information_full(mean, bad)
    with pytest.raises(ValueError, match="log_var"):
        rate_per_latent(mean, torch.zeros(7, 3))
    with pytest.raises(ValueError, match="log_var must be None"):
        aggregate_information_full([(mean, log_var)], log_var)


def test_gradients_flow_through_the_batch_estimators():
    # a beta-TCVAE loss differentiates log q(z); the in-place fast path must not be taken then
    g = torch.Generator().manual_seed(16)
    mean = torch.randn(7, 3, generator=g, dtype=F64, requires_grad=True)
    log_var = (0.3 * torch.randn(7, 3, generator=g, dtype=F64)).requires_grad_()
    z = torch.randn(7, 3, generator=g, dtype=F64)
    r = aggregate_information(mean, log_var, 70, method="mss", z=z, max_chunk_bytes=1)
    r["total_correlation"].backward()
    lw = mss_log_weights(7, 70)

    def by_hand(mu, lv):
        lp = gaussian_log_density(z[:, None, :], mu[None], lv[None])
        joint = torch.logsumexp(lp.sum(-1) + lw, 1)
        marg = torch.logsumexp(lp + lw[..., None], 1)
        return (joint - marg.sum(-1)).mean()

    gm, glv = torch.autograd.grad(by_hand(mean, log_var), (mean, log_var))
    assert torch.allclose(mean.grad, gm, atol=1e-12) and torch.allclose(log_var.grad, glv, atol=1e-12)
