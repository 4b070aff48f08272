"""The disentangling families and the hierarchical VAE: every loss term against an independent
computation on small tensors, the TC estimators on independent and correlated codes, the
hierarchical bound's bookkeeping, training from the CLI, and checkpoints.

Independent computations use ``torch.distributions`` and explicit loops, never the code under test.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from tcx.distributions import DiagonalGaussian
from tcx.estimators import aggregate_information
from tcx.hierarchical import hierarchical_bound, mixture_information
from tcx.models import (
    DIPVAE,
    VAE,
    AnnealedVAE,
    BetaTCVAE,
    FactorVAE,
    HierarchicalVAE,
    load_model,
)
from tcx.models.factor_vae import Discriminator
from tcx.schedules import linear_capacity
from tcx.tc_penalties import density_ratio_tc, dip_covariance, dip_penalty, discriminator_loss, permute_dims

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
SMALL = dict(input_shape=(16,), network="mlp", hidden_dims=[12])
pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")


def _x(n=8, seed=0, shape=(16,)):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *shape, generator=g) > 0.6).float()


def _recon(logits, x):
    """E_x sum_i log Bernoulli(x_i; sigmoid(logit_i)), independently of tcx."""
    return Bernoulli(logits=logits).log_prob(x).reshape(x.shape[0], -1).sum(1).mean()


def _kl(mean, log_var):
    """[D] E_x KL(N(mean, exp(log_var)) || N(0, 1)) by torch.distributions."""
    q = Normal(mean, torch.exp(0.5 * log_var))
    return kl_divergence(q, Normal(torch.zeros_like(mean), torch.ones_like(mean))).mean(0)


# ----------------------------------------------------------------------------- beta-TCVAE


def _brute_log_q(z, mean, log_var, n, method):
    """log q(z_i) and log q(z_ij) by explicit sums over the batch with the paper's weights."""
    m, d = mean.shape
    std = torch.exp(0.5 * log_var)
    joint, marg = torch.zeros(m, dtype=F64), torch.zeros(m, d, dtype=F64)
    for i in range(m):
        total, totals = 0.0, torch.zeros(d, dtype=F64)
        for k in range(m):
            if method == "mws":
                w = 1.0 / (n * m)
            elif k == i:
                w = 1.0 / n
            elif k == (i + 1) % m:
                w = (n - m + 1) / (n * (m - 1))
            else:
                w = 1.0 / (m - 1)
            dens = torch.exp(Normal(mean[k], std[k]).log_prob(z[i]))
            total += w * dens.prod()
            totals += w * dens
        joint[i], marg[i] = math.log(total), torch.log(totals)
    return joint, marg


@pytest.mark.parametrize("method", ["mss", "mws"])
def test_beta_tcvae_terms_match_brute_force_sums(method):
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(6, 3, generator=g, dtype=F64)
    log_var = 0.5 * torch.randn(6, 3, generator=g, dtype=F64) - 0.5
    z = mean + torch.exp(0.5 * log_var) * torch.randn(6, 3, generator=g, dtype=F64)
    n = 40
    m = BetaTCVAE(latent_dim=3, alpha=0.5, beta=6.0, gamma=2.0, estimator=method, **SMALL)
    m.attach_data(dataset_size=n)
    extra = m.extra_loss(None, DiagonalGaussian(mean, log_var), z.float(), None)

    zd = z.float().double()  # the model scores the float32 sample
    joint, marg = _brute_log_q(zd, mean.float().double(), log_var.float().double(), n, method)
    log_p = Normal(mean.float().double(), torch.exp(0.5 * log_var.float().double())).log_prob(zd)
    log_r = Normal(0.0, 1.0).log_prob(zd)
    mi = (log_p.sum(1) - joint).mean()
    tc = (joint - marg.sum(1)).mean()
    dwkl = (marg - log_r).sum(1).mean()
    assert extra["loss/mutual_info"].item() == pytest.approx(0.5 * mi.item(), abs=1e-4)
    assert extra["loss/total_correlation"].item() == pytest.approx(6.0 * tc.item(), abs=1e-4)
    assert extra["loss/dimension_wise_kl"].item() == pytest.approx(2.0 * dwkl.item(), abs=1e-4)
    # the unweighted estimates are reported, and they add up to the Monte-Carlo rate
    out = {k: v.item() for k, v in m.reported.items()}
    assert out["total_correlation"] == pytest.approx(tc.item(), abs=1e-5)
    assert out["mutual_info"] + out["total_correlation"] + out["dimension_wise_kl"] == pytest.approx(
        (log_p - log_r).sum(1).mean().item(), abs=1e-4
    )


def test_beta_tcvae_loss_is_reconstruction_plus_weighted_decomposition():
    torch.manual_seed(0)
    m = BetaTCVAE(latent_dim=3, alpha=1.0, beta=6.0, gamma=1.0, **SMALL)
    m.attach_data(dataset_size=100)
    x = _x(8)
    torch.manual_seed(3)
    out = m.step_terms(x)
    post = m.encode(x)
    z = out.z.detach().double()
    joint, marg = _brute_log_q(z, post.mean.detach().double(), post.log_var.detach().double(), 100, "mss")
    log_p = Normal(post.mean.double(), post.std.double()).log_prob(z).detach()
    log_r = Normal(0.0, 1.0).log_prob(z)
    penalty = (log_p.sum(1) - joint).mean() + 6.0 * (joint - marg.sum(1)).mean() + (marg - log_r).sum(1).mean()
    expected = -_recon(m.decoder(out.z), x) + penalty.float()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.terms.weighted_rate.item() == 0.0  # the rate enters only through the decomposition
    # the logged ELBO is still the closed-form one
    assert out.terms.elbo.item() == pytest.approx((_recon(m.decoder(out.z), x) - _kl(post.mean, post.log_var).sum()).item(), rel=1e-5)


def test_beta_tcvae_refuses_bad_arguments_and_a_missing_dataset_size(tmp_path):
    with pytest.raises(ValueError, match="estimator must be one of 'mss', 'mws', got 'full'"):
        BetaTCVAE(estimator="full")
    with pytest.raises(ValueError, match=r"beta must be a number in \[0.0, inf\), got -1"):
        BetaTCVAE(beta=-1)
    m = BetaTCVAE(latent_dim=2, **SMALL)
    with pytest.raises(RuntimeError, match="dataset_size is not set"):
        m.step_terms(_x(4))
    with pytest.raises(ValueError, match=r"does not declare it: give the datamodule an attribute or property `dataset_size`.*"
                                         r"model.attach_data\(dataset_size=N\)"):
        _fit(BetaTCVAE(latent_dim=2, **SMALL), tmp_path, _Vectors())
    m = BetaTCVAE(latent_dim=2, **SMALL)
    _fit(m, tmp_path, _Vectors(dataset_size=1000), steps=1)
    assert m.dataset_size == 1000


def test_beta_tcvae_with_plain_dataloaders_needs_attach_data_at_setup(tmp_path):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_x(16, seed=3), torch.zeros(16, 0)), batch_size=8)

    def fit(model):
        pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, default_root_dir=tmp_path).fit(model, train_dataloaders=loader)

    m = BetaTCVAE(latent_dim=2, **SMALL)
    with pytest.raises(ValueError, match=r"there is no datamodule to declare it.*model.attach_data\(dataset_size=N\)"):
        fit(m)
    assert m.global_step == 0  # failed at setup, before any step
    m.attach_data(dataset_size=1000)
    fit(m)
    assert m.global_step == 1 and m.dataset_size == 1000


# ---------------------------------------------------------------------- TC estimators


def _codes(n, rho, seed, sigma=0.3, d=2):
    """Posteriors N(mu_n, sigma^2 I) whose means have correlation rho between latents 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    cov = torch.eye(d, dtype=F64)
    cov[0, 1] = cov[1, 0] = rho
    mean = torch.randn(n, d, generator=g, dtype=F64) @ torch.linalg.cholesky(cov).T
    log_var = torch.full((n, d), 2 * math.log(sigma), dtype=F64)
    z = mean + sigma * torch.randn(n, d, generator=g, dtype=F64)
    c = cov + sigma**2 * torch.eye(d, dtype=F64)
    true_tc = 0.5 * (torch.log(torch.diagonal(c)).sum() - torch.logdet(c))
    return mean, log_var, z, true_tc.item()


def test_beta_tcvae_tc_estimate_is_near_zero_for_independent_codes_and_positive_for_correlated():
    mean, log_var, z, true_tc = _codes(1500, 0.0, seed=0)
    assert true_tc == 0.0
    tc_ind = aggregate_information(mean, log_var, 10**6, "mss", z=z)["total_correlation"].item()
    mean, log_var, z, true_tc = _codes(1500, 0.85, seed=1)
    tc_cor = aggregate_information(mean, log_var, 10**6, "mss", z=z)["total_correlation"].item()
    assert abs(tc_ind) < 0.04, tc_ind
    assert true_tc > 0.4 and tc_cor == pytest.approx(true_tc, abs=0.07), (tc_cor, true_tc)
    # the model's own loss term sees the same thing on a batch
    m = BetaTCVAE(latent_dim=2, **SMALL)
    m.attach_data(dataset_size=10**6)
    m.extra_loss(None, DiagonalGaussian(mean.float(), log_var.float()), z.float(), None)
    assert m.reported["total_correlation"].item() == pytest.approx(tc_cor, abs=1e-3)


@pytest.mark.usefixtures("one_thread")  # a small MLP: one thread is fastest, and immune to busy cores
def test_factor_vae_discriminator_estimates_tc_near_zero_for_independent_codes_and_positive_for_correlated():
    def trained_estimate(rho, seed):
        torch.manual_seed(seed)
        disc = Discriminator(2, (64, 64))
        opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
        chol = torch.linalg.cholesky(torch.tensor([[1.0, rho], [rho, 1.0]]))
        for _ in range(300):
            z = torch.randn(512, 2) @ chol.T
            loss = discriminator_loss(disc(z[:256]), disc(permute_dims(z[256:])))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return density_ratio_tc(disc(torch.randn(4096, 2) @ chol.T)).item()

    true_tc = -0.5 * math.log(1 - 0.9**2)  # 0.830 nats
    assert abs(trained_estimate(0.0, 0)) < 0.1
    assert trained_estimate(0.9, 0) == pytest.approx(true_tc, abs=0.25)


def test_dip_off_diagonal_penalty_is_near_zero_for_independent_codes_and_positive_for_correlated():
    mean, log_var, _, _ = _codes(4000, 0.0, seed=2)
    off_ind = dip_penalty(dip_covariance(mean, log_var, "i"), 1.0, 0.0)[1].item()
    mean, log_var, _, _ = _codes(4000, 0.85, seed=3)
    off_cor = dip_penalty(dip_covariance(mean, log_var, "i"), 1.0, 0.0)[1].item()
    assert off_ind < 0.01 and off_cor == pytest.approx(2 * 0.85**2, abs=0.1)


# ------------------------------------------------------------------------ FactorVAE


def test_permute_dims_shuffles_each_latent_separately():
    z = torch.arange(40.0).reshape(10, 4)
    p = permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(4):
        assert sorted(p[:, j].tolist()) == z[:, j].tolist()
    assert not torch.equal(p, z)
    # rows are mixed: some row combines entries of different original rows
    assert any(len({int(v) // 4 for v in row}) > 1 for row in p)


def test_factor_vae_loss_terms_match_an_independent_computation():
    torch.manual_seed(0)
    m = FactorVAE(latent_dim=3, gamma=7.0, discriminator_hidden_dims=[16, 16], **SMALL)
    x = _x(8)
    torch.manual_seed(4)
    out = m.step_terms(x)
    post = m.encode(x)
    probs = torch.softmax(m.discriminator(out.z), dim=1)
    tc = torch.log(probs[:, 0] / (1 - probs[:, 0])).mean()
    expected = -(_recon(m.decoder(out.z), x) - _kl(post.mean, post.log_var).sum()) + 7.0 * tc
    assert out.reported["total_correlation"].item() == pytest.approx(tc.item(), abs=1e-5)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)

    lj, lp = torch.randn(5, 2), torch.randn(7, 2)
    bce = -0.5 * (torch.log_softmax(lj, 1)[:, 0].mean() + torch.log_softmax(lp, 1)[:, 1].mean())
    assert discriminator_loss(lj, lp).item() == pytest.approx(bce.item(), rel=1e-6)


def test_factor_vae_trains_both_optimizers_and_keeps_the_non_finite_guard(tmp_path):
    torch.manual_seed(0)
    m = FactorVAE(latent_dim=3, discriminator_hidden_dims=[16], **SMALL)
    enc0 = m.encoder.net[1].weight.clone()
    disc0 = m.discriminator.net[0].weight.clone()
    trainer = _fit(m, tmp_path, _Vectors(), steps=4)
    assert trainer.global_step == 4  # Lightning counts both optimizers' steps: 2 batches
    assert not torch.equal(enc0, m.encoder.net[1].weight)
    assert not torch.equal(disc0, m.discriminator.net[0].weight)
    assert "train/discriminator_loss" in trainer.callback_metrics
    assert "train/total_correlation" in trainer.callback_metrics

    m = FactorVAE(latent_dim=3, discriminator_hidden_dims=[16], **SMALL)
    with torch.no_grad():
        m.encoder.net[-1].bias.fill_(float("nan"))
    disc0 = m.discriminator.net[0].weight.clone()
    with pytest.raises(FloatingPointError, match="the loss is nan at global step 0"):
        _fit(m, tmp_path, _Vectors(), steps=2)
    assert torch.equal(disc0, m.discriminator.net[0].weight)


# -------------------------------------------------------------------------- DIP-VAE


def test_dip_covariances_and_penalty_match_numpy_and_loops():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(9, 4, generator=g, dtype=F64)
    log_var = torch.randn(9, 4, generator=g, dtype=F64)
    cov_i = np.cov(mean.numpy().T, bias=True)
    cov_ii = cov_i + np.diag(np.exp(log_var.numpy()).mean(0))
    assert np.allclose(dip_covariance(mean, log_var, "i").numpy(), cov_i)
    assert np.allclose(dip_covariance(mean, log_var, "ii").numpy(), cov_ii)
    c = torch.as_tensor(cov_ii)
    off = sum(c[i, j] ** 2 for i in range(4) for j in range(4) if i != j)
    diag = sum((c[i, i] - 1) ** 2 for i in range(4))
    penalty, off_t, diag_t = dip_penalty(c, 3.0, 5.0)
    assert off_t.item() == pytest.approx(off.item()) and diag_t.item() == pytest.approx(diag.item())
    assert penalty.item() == pytest.approx(3.0 * off.item() + 5.0 * diag.item())


@pytest.mark.parametrize("dip_type, lambda_d", [("i", 100.0), ("ii", 10.0)])
def test_dip_vae_defaults_and_loss(dip_type, lambda_d):
    torch.manual_seed(0)
    m = DIPVAE(latent_dim=3, dip_type=dip_type, lambda_od=10.0, **SMALL)
    assert m.lambda_d == lambda_d  # Kumar et al.: lambda_d = 10 lambda_od (I), lambda_od (II)
    x = _x(8)
    torch.manual_seed(5)
    out = m.step_terms(x)
    post = m.encode(x)
    mu = post.mean.detach().double().numpy()
    cov = np.cov(mu.T, bias=True)
    if dip_type == "ii":
        cov = cov + np.diag(np.exp(post.log_var.detach().double().numpy()).mean(0))
    off = (cov**2).sum() - (np.diag(cov) ** 2).sum()
    diag = ((np.diag(cov) - 1) ** 2).sum()
    expected = -(_recon(m.decoder(out.z), x) - _kl(post.mean, post.log_var).sum()).item() + 10.0 * off + lambda_d * diag
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.reported["dip_off_diagonal"].item() == pytest.approx(off, rel=1e-4, abs=1e-7)
    with pytest.raises(ValueError, match="dip_type must be one of .*got 'iii'"):
        DIPVAE(dip_type="iii")


# ------------------------------------------------------------------------ AnnealedVAE


def test_annealed_vae_capacity_schedule_and_loss(monkeypatch):
    assert [linear_capacity(s, 25.0, 100) for s in (0, 50, 100, 500)] == [0.0, 12.5, 25.0, 25.0]
    torch.manual_seed(0)
    m = AnnealedVAE(latent_dim=3, gamma=100.0, capacity_max=25.0, capacity_steps=100, **SMALL)
    x = _x(8)
    for step in (0, 40):
        monkeypatch.setattr(AnnealedVAE, "global_step", property(lambda self, s=step: s))
        torch.manual_seed(6)
        out = m.step_terms(x)
        post = m.encode(x)
        kl = _kl(post.mean, post.log_var).sum()
        c = 25.0 * step / 100
        expected = -_recon(m.decoder(out.z), x) + 100.0 * (kl - c).abs()
        assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
        assert out.reported["capacity"].item() == pytest.approx(c)
    with pytest.raises(ValueError, match="capacity_steps must be an integer >= 1, got 0"):
        AnnealedVAE(capacity_steps=0)


# --------------------------------------------------------------------- HierarchicalVAE


def test_hierarchical_with_one_layer_is_exactly_the_vae():
    torch.manual_seed(0)
    vae = VAE(latent_dim=6)
    hier = HierarchicalVAE(layer_sizes=[6])
    hier.load_state_dict(vae.state_dict())  # the same parameter names: encoder.*, decoder.*
    x = (torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.8).float()
    torch.manual_seed(2)
    out_vae = vae.step_terms(x)
    t_vae, loss_vae = out_vae.terms, out_vae.loss
    torch.manual_seed(2)
    out_hier = hier.step_terms(x)
    t_hier, loss_hier = out_hier.terms, out_hier.loss
    assert loss_hier.item() == pytest.approx(loss_vae.item(), rel=1e-6, abs=0)
    assert t_hier.elbo.item() == pytest.approx(t_vae.elbo.item(), rel=1e-6)
    assert torch.allclose(t_hier.rate_per_latent, t_vae.rate_per_latent, rtol=1e-6, atol=0)
    assert torch.equal(hier.encode(x).mean, vae.encode(x).mean)


def test_hierarchical_terms_add_up_to_an_independently_computed_elbo():
    torch.manual_seed(0)
    m = HierarchicalVAE(layer_sizes=[4, 3, 2], layer_hidden_dims=[8], anchors=[[1], [], 1], anchor_beta=0.25, beta=2.0, **SMALL)
    x = _x(7)
    torch.manual_seed(7)
    out = m.step_terms(x)
    t = out.terms

    # replay the chain with the same noise, through torch.distributions
    torch.manual_seed(7)
    eps = [torch.randn(7, d) for d in (4, 3, 2)]
    p, zs = [], []
    h = x
    for level, e in enumerate(eps):
        mean, log_var = m.encoder(h) if level == 0 else m.up[level - 1](h)
        p.append(Normal(mean, torch.exp(0.5 * log_var)))
        h = mean + torch.exp(0.5 * log_var) * e
        zs.append(h)
    q = [Normal(mu, torch.exp(0.5 * lv)) for mu, lv in (m.down[0](zs[1]), m.down[1](zs[2]))]
    recon = _recon(m.decoder(zs[0]), x)
    inf2 = q[0].log_prob(zs[0]).sum(1).mean()
    inf3 = q[1].log_prob(zs[1]).sum(1).mean()
    rate1 = (p[0].log_prob(zs[0]) - q[0].log_prob(zs[0])).mean(0)
    rate2 = (p[1].log_prob(zs[1]) - q[1].log_prob(zs[1])).mean(0)
    rate3 = kl_divergence(p[2], Normal(0.0, 1.0)).mean(0)
    # docs/math.md: E[log q(x|z1) + log q(z1|z2) + log q(z2|z3) + log r(z3) - sum_l log p(z^l|z^(l-1))],
    # with E[log r(z3) - log p(z3|z2)] in closed form (-KL) as for the flat VAE
    elbo = recon + inf2 + inf3 - p[0].log_prob(zs[0]).sum(1).mean() - p[1].log_prob(zs[1]).sum(1).mean() - rate3.sum()

    assert t.elbo.item() == pytest.approx(elbo.item(), rel=1e-5)
    assert t.reconstruction.item() == pytest.approx(recon.item(), rel=1e-5)
    assert [v.item() for v in t.layer_informativeness] == pytest.approx([recon.item(), inf2.item(), inf3.item()], rel=1e-5)
    for got, want in zip(t.layer_rate_per_latent, (rate1, rate2, rate3)):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    # bookkeeping: the layers' rates add up to the rate, and reconstruction - rate is the ELBO
    assert t.rate.item() == pytest.approx(sum(r.sum().item() for r in t.layer_rate_per_latent), rel=1e-6)
    assert (t.reconstruction - t.rate).item() == pytest.approx(t.elbo.item(), rel=1e-6)
    # weights: beta = 2 everywhere, 0.25 on the anchors (layer 1 unit 1, layer 3 unit 0)
    w = [torch.tensor([2.0, 0.25, 2.0, 2.0]), torch.full((3,), 2.0), torch.tensor([0.25, 2.0])]
    weighted = sum((wl * r).sum() for wl, r in zip(w, (rate1, rate2, rate3)))
    assert out.loss.item() == pytest.approx((weighted - recon).item(), rel=1e-5)
    # the callbacks see the top layer's units by default
    assert torch.allclose(t.rate_per_latent, rate3, rtol=1e-5)
    scalars = t.scalars()
    assert {"layer1/informativeness", "layer2/rate", "layer3/rate/z1", "elbo", "rate"} <= set(scalars)


def test_hierarchical_bound_refuses_mismatched_layers():
    post = DiagonalGaussian(torch.zeros(2, 3), torch.zeros(2, 3))
    from tcx.distributions import BernoulliLikelihood, StandardNormal

    x = torch.zeros(2, 4)
    with pytest.raises(ValueError, match="conditionals has 0 entries for 1 layers above the first"):
        hierarchical_bound(x, x, BernoulliLikelihood(), [post, post], [post.mean, post.mean], [], StandardNormal(3))
    with pytest.raises(ValueError, match=r"layer must be an integer in \[1, 1\], got 3"):
        hierarchical_bound(x, x, BernoulliLikelihood(), [post], [post.mean], [], StandardNormal(3), layer=3)
    # the layer weights go through the objective's one validation (tcx.objective.as_weight_vector)
    with pytest.raises(ValueError, match="weights for layer 1 must be non-negative"):
        hierarchical_bound(x, x, BernoulliLikelihood(), [post], [post.mean], [], StandardNormal(3), weights=[-1.0])
    with pytest.raises(ValueError, match="weights for layer 1 must be a number or a vector of length 3"):
        hierarchical_bound(x, x, BernoulliLikelihood(), [post], [post.mean], [], StandardNormal(3), weights=[[1.0, 2.0]])
    with pytest.raises(ValueError, match="weights for layer 1 must be finite"):
        hierarchical_bound(x, x, BernoulliLikelihood(), [post], [post.mean], [], StandardNormal(3), weights=[float("nan")])


def test_mixture_information_matches_mss_and_a_brute_force_sum():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(5, 1, 2, generator=g, dtype=F64)
    log_var = 0.3 * torch.randn(5, 1, 2, generator=g, dtype=F64)
    z = mean[:, 0] + torch.randn(5, 2, generator=g, dtype=F64)
    reference = aggregate_information(mean[:, 0], log_var[:, 0], 30, "mss", z=z)["mutual_info"]
    assert mixture_information(z, mean, log_var, 30).item() == pytest.approx(reference.item(), rel=1e-10)

    mean = torch.randn(4, 3, 2, generator=g, dtype=F64)
    log_var = 0.3 * torch.randn(4, 3, 2, generator=g, dtype=F64)
    z = torch.randn(4, 2, generator=g, dtype=F64)
    n, m, k = 20, 4, 3

    def dens(i, row):
        return sum(torch.exp(Normal(mean[row, c], torch.exp(0.5 * log_var[row, c])).log_prob(z[i]).sum()) for c in range(k)) / k

    total = 0.0
    for i in range(m):
        q = 0.0
        for row in range(m):
            w = 1 / n if row == i else (n - m + 1) / (n * (m - 1)) if row == (i + 1) % m else 1 / (m - 1)
            q += w * dens(i, row)
        total += math.log(dens(i, i)) - math.log(q)
    assert mixture_information(z, mean, log_var, n).item() == pytest.approx(total / m, rel=1e-9)


def test_mixture_information_refuses_mismatched_shapes():
    mean, log_var, z = torch.zeros(4, 2, 3), torch.zeros(4, 2, 3), torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"mean must be \[M, K, D\], got shape \(4, 3\)"):
        mixture_information(z, mean[:, 0], log_var, 10)
    with pytest.raises(ValueError, match=r"mean \(4, 2, 3\) and log_var \(4, 2, 2\) must have the same shape"):
        mixture_information(z, mean, log_var[..., :2], 10)
    with pytest.raises(ValueError, match=r"z must be \[4, 3\], got shape \(3, 3\)"):
        mixture_information(z[:3], mean, log_var, 10)
    with pytest.raises(ValueError, match=r"dataset_size .* must be an integer >= 4, got 3"):
        mixture_information(z, mean, log_var, 3)


def test_hierarchical_layer_interface():
    torch.manual_seed(0)
    m = HierarchicalVAE(layer_sizes=[5, 3], layer_hidden_dims=[8], anchors=[[0, 2], [1]], **SMALL).eval()
    x = _x(4)
    assert m.latent_dim == 3 and m.anchor_indices == (1,) and m.encode(x).mean.shape == (4, 3)
    assert m.encode(x, layer=1).mean.shape == (4, 5)
    assert m.decode(torch.zeros(2, 3)).shape == (2, 16)
    assert m.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 16)
    # encode(x) of layer 2 is p(z^2|z^1) at the mean of p(z^1|x)
    mean2, _ = m.up[0](m.encode(x, layer=1).mean)
    assert torch.allclose(m.encode(x).mean, mean2)
    m.encode_layer = 1
    assert m.latent_dim == 5 and m.anchor_indices == (0, 2) and m.encode(x).mean.shape == (4, 5)
    assert m.decode(torch.zeros(2, 5)).shape == (2, 16)
    with pytest.raises(ValueError, match=r"layer .* must be an integer in \[1, 2\], got 3"):
        m.encode(x, layer=3)
    with pytest.raises(ValueError, match="takes layer_sizes"):
        HierarchicalVAE(latent_dim=4)
    with pytest.raises(ValueError, match="anchors has 1 entries for 2 layers"):
        HierarchicalVAE(layer_sizes=[4, 2], anchors=[[0]])
    with pytest.raises(ValueError, match=r"layer_sizes\[1\] must be an integer >= 1, got 0"):
        HierarchicalVAE(layer_sizes=[4, 0])
    with pytest.raises(ValueError, match=r"len\(layer_sizes\)\) must be an integer >= 1, got 0"):
        HierarchicalVAE(layer_sizes=[])
    with pytest.raises(ValueError, match=r"z must be \[batch, 5\], got shape \(2, 4\) \(layer 1 has 5 units\)"):
        m.decode(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"encode's x must be \[batch, 16\], got shape \(4, 15\)"):
        m.encode(torch.zeros(4, 15))
    # the per-layer information estimate is a diagnostic outside the loss: layer_information
    # computes it when the dataset size is known, the step no longer reports it
    with pytest.raises(ValueError, match=r"attach_data\(dataset_size=N\)"):
        m.layer_information(_x(16))
    m.attach_data(dataset_size=1000)
    info = m.layer_information(_x(16))
    assert len(info) == 2 and all(v.item() >= -0.05 for v in info)
    assert not any(k.endswith("mutual_info") for k in m.step_terms(_x(16)).reported)
    with pytest.raises(ValueError, match=r"batch size must be an integer in \[2, 1000\], got 1"):
        m.layer_information(_x(1))


def test_information_diagnostics_logs_the_layer_information_of_a_hierarchical_model(tmp_path):
    from tcx.callbacks import InformationDiagnostics

    def loader(seed):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_x(32, seed=seed), torch.zeros(32, 0)), batch_size=16)

    def fit(model):
        trainer = pl.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                             enable_checkpointing=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
                             callbacks=[InformationDiagnostics(num_points=32, num_scored=None)])
        trainer.fit(model, train_dataloaders=loader(3), val_dataloaders=loader(4))
        return trainer.callback_metrics

    torch.manual_seed(0)
    m = HierarchicalVAE(layer_sizes=[5, 3], layer_hidden_dims=[8], **SMALL)
    with pytest.warns(RuntimeWarning, match=r"HierarchicalVAE has no dataset_size.*attach_data\(dataset_size=N\)"):
        metrics = fit(m)
    assert not any(k.startswith("diagnostics/layer") for k in metrics)
    m.attach_data(dataset_size=1000)
    metrics = fit(m)
    info = [metrics[f"diagnostics/layer{l}/mutual_info"].item() for l in (1, 2)]
    # the epoch mean of two noisy batch estimates (16 points each) of a barely trained model
    assert all(math.isfinite(v) and v > -0.5 for v in info), info


# ------------------------------------------------------------- CLI: training, checkpoints


class _Vectors(pl.LightningDataModule):
    """32 random binary 16-vectors, optionally declaring a dataset size."""

    input_shape = (16,)

    def __init__(self, dataset_size=None):
        super().__init__()
        if dataset_size is not None:
            self.dataset_size = dataset_size

    def train_dataloader(self):
        x = _x(32, seed=3)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(32, 0)), batch_size=8)


def _fit(model, tmp_path, datamodule, steps=2):
    trainer = pl.Trainer(
        max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=tmp_path, log_every_n_steps=1, limit_val_batches=0,
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer


# the fast suite trains the two families whose step differs in kind (FactorVAE's two optimizers,
# the hierarchical VAE's layers); the others share the base step with another penalty, which the
# unit tests above check, and train in the slow suite (the matrix fits every shipped config too)
_SLOW = pytest.mark.slow
FAMILIES = [
    pytest.param("hierarchicalvae_dsprites.yaml", HierarchicalVAE, id="hierarchicalvae"),
    pytest.param("betatcvae_dsprites.yaml", BetaTCVAE, marks=_SLOW, id="betatcvae"),
    pytest.param("factorvae_dsprites.yaml", FactorVAE, id="factorvae"),
    pytest.param("dipvae1_dsprites.yaml", DIPVAE, marks=_SLOW, id="dipvae1"),
    pytest.param("dipvae2_dsprites.yaml", DIPVAE, marks=_SLOW, id="dipvae2"),
    pytest.param("annealedvae_dsprites.yaml", AnnealedVAE, marks=_SLOW, id="annealedvae"),
]


DIAGNOSTICS = '[{"class_path": "tcx.callbacks.InformationDiagnostics", "init_args": {"num_points": 64, "num_scored": null}}]'


@pytest.mark.parametrize("config, cls", FAMILIES)
def test_family_trains_from_the_cli_and_its_checkpoint_loads_back(config, cls, tmp_path, monkeypatch, capsys):
    from tcx.cli import TcxCLI, main

    captured = {}
    after_fit = TcxCLI.after_fit

    def capture(self):
        captured["model"], captured["trainer"] = self.model, self.trainer
        after_fit(self)

    monkeypatch.setattr(TcxCLI, "after_fit", capture)
    monkeypatch.chdir(tmp_path)
    main([
        "fit", "-c", str(ROOT / "configs" / config),
        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.log_every_n_steps", "1",
        # the hierarchical VAE's per-layer information is a diagnostic: InformationDiagnostics logs it
        "--trainer.callbacks", DIAGNOSTICS if cls is HierarchicalVAE else "[]",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(tmp_path),
        "--data.batch_size", "32", "--data.epoch_size", "320", "--data.val_size", "64",
        "--model.input_entropy_samples", "500",
    ])
    assert f"tcx fit summary: {cls.__name__}" in capsys.readouterr().out
    model, trainer = captured["model"], captured["trainer"]
    assert type(model) is cls

    rows = list(csv.DictReader(open(Path(trainer.logger.log_dir) / "metrics.csv")))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) == 10, losses
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 100, losses
    val = {k for r in rows for k, v in r.items() if v and k.startswith("val/")}
    assert {"val/elbo", "val/reconstruction", "val/rate", "val/rate/z0", "val/loss"} <= val
    if cls is HierarchicalVAE:
        assert {"val/layer2/informativeness"} <= val and not any(k.endswith("mutual_info") for k in val)
        info = {k: float(v) for r in rows for k, v in r.items() if v and k.startswith("diagnostics/layer")}
        assert set(info) == {"diagnostics/layer1/mutual_info", "diagnostics/layer2/mutual_info"}, info
        assert all(v >= -0.05 for v in info.values()), info
    if cls is BetaTCVAE:
        assert {"val/total_correlation", "val/loss/total_correlation"} <= val
        assert model.dataset_size == 737280 - 2 * 64  # 64 validation and 64 test images held out

    loaded = load_model(trainer.checkpoint_callback.best_model_path)
    assert type(loaded) is cls and loaded.latent_dim == model.latent_dim
    x = (torch.rand(6, 1, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.encode(x).mean, model.encode(x).mean)
        assert torch.equal(loaded.encode(x).log_var, model.encode(x).log_var)


def test_hierarchical_anchors_follow_the_anchor_rule():
    # the same rule as AnchorVAE's (models.anchor_vae.check_anchor_weights): a bonus, never a penalty
    with pytest.raises(ValueError, match=r"anchor_beta=0.5 >= beta=0.4 is not allowed"):
        HierarchicalVAE(layer_sizes=[4, 2], layer_hidden_dims=[8], anchors=[[1], []], anchor_beta=0.5, beta=0.4, **SMALL)
    # without anchors the weight on them is moot
    m = HierarchicalVAE(layer_sizes=[4, 2], layer_hidden_dims=[8], anchor_beta=0.5, beta=0.4, **SMALL)
    assert m.anchor_indices == ()
