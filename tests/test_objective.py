"""The weighted CorEx bound against independent computations (docs/math.md#weighted-bounds)."""

import math

import pytest
import torch

from tcx.distributions import (
    BernoulliLikelihood,
    DiagonalGaussian,
    GaussianLikelihood,
    StandardNormal,
    bernoulli_entropy,
    make_likelihood,
)
from tcx.objective import CorExObjective

B, D, SHAPE = 7, 5, (1, 4, 3)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(B, D, generator=g)
    log_var = torch.randn(B, D, generator=g) * 0.5
    x = (torch.rand(B, *SHAPE, generator=g) > 0.5).float()
    logits = torch.randn(B, *SHAPE, generator=g) * 2
    return DiagonalGaussian(mean, log_var), x, logits


def _hand_kl(mean, log_var):
    # KL(N(m, s^2) || N(0, 1)) = 0.5 * (m^2 + s^2 - log s^2 - 1), written out per element
    var = log_var.exp()
    return 0.5 * (mean**2 + var - log_var - 1)


def _hand_bernoulli(x, logits):
    p = 1 / (1 + torch.exp(-logits.double()))
    return x.double() * torch.log(p) + (1 - x.double()) * torch.log(1 - p)


def test_all_weights_one_is_the_elbo():
    post, x, logits = _batch()
    terms = CorExObjective(D, SHAPE)(post, StandardNormal(D), BernoulliLikelihood(), x, logits)
    recon = _hand_bernoulli(x, logits).reshape(B, -1).sum(1).mean()
    kl = _hand_kl(post.mean.double(), post.log_var.double())
    elbo = recon - kl.sum(1).mean()
    assert terms.reconstruction.item() == pytest.approx(recon.item(), rel=1e-6)
    assert torch.allclose(terms.rate_per_latent.double(), kl.mean(0), rtol=1e-6, atol=1e-7)
    assert terms.elbo.item() == pytest.approx(elbo.item(), rel=1e-6)
    assert terms.loss.item() == pytest.approx(-elbo.item(), rel=1e-6)
    assert terms.informativeness.item() == terms.reconstruction.item()
    assert terms.weighted_rate.item() == pytest.approx(terms.rate.item(), rel=1e-7)
    assert terms.corex_bound is None


def test_beta_scales_only_the_rates():
    post, x, logits = _batch(1)
    base = CorExObjective(D, SHAPE)(post, StandardNormal(D), BernoulliLikelihood(), x, logits)
    beta = CorExObjective(D, SHAPE, beta=3.0)(post, StandardNormal(D), BernoulliLikelihood(), x, logits)
    assert torch.equal(beta.rate_per_latent, base.rate_per_latent)
    assert beta.informativeness.item() == base.informativeness.item()
    assert beta.elbo.item() == base.elbo.item()
    assert beta.weighted_rate.item() == pytest.approx(3 * base.rate.item(), rel=1e-6)
    assert beta.loss.item() == pytest.approx(-base.informativeness.item() + 3 * base.rate.item(), rel=1e-6)


def test_anchor_weights_change_only_the_anchors_rates():
    post, x, logits = _batch(2)
    anchors = [0, 3]
    weights = torch.ones(D)
    weights[anchors] = 0.25
    base = CorExObjective(D, SHAPE)(post, StandardNormal(D), BernoulliLikelihood(), x, logits)
    anch = CorExObjective(D, SHAPE, beta=weights)(post, StandardNormal(D), BernoulliLikelihood(), x, logits)
    r = base.rate_per_latent
    expected_change = sum((0.25 - 1.0) * r[j].item() for j in anchors)
    assert anch.loss.item() - base.loss.item() == pytest.approx(expected_change, rel=1e-5)
    # the decoder output is fixed here, so the posterior's gradient comes from the rates alone:
    # each latent's gradient is scaled by its weight
    grads = []
    for w in (None, weights):
        mean = post.mean.clone().requires_grad_(True)
        p = DiagonalGaussian(mean, post.log_var)
        CorExObjective(D, SHAPE, beta=w)(p, StandardNormal(D), BernoulliLikelihood(), x, logits).loss.backward()
        grads.append(mean.grad)
    assert torch.allclose(grads[1], grads[0] * weights, rtol=1e-6, atol=1e-8)


def test_alpha_weights_the_inputs():
    post, x, logits = _batch(3)
    alpha = torch.rand(SHAPE, generator=torch.Generator().manual_seed(4))
    terms = CorExObjective(D, SHAPE, alpha=alpha)(post, StandardNormal(D), BernoulliLikelihood(), x, logits)
    expected = (_hand_bernoulli(x, logits) * alpha.double()).reshape(B, -1).sum(1).mean()
    assert terms.informativeness.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms.reconstruction.item() == pytest.approx(
        _hand_bernoulli(x, logits).reshape(B, -1).sum(1).mean().item(), rel=1e-6
    )


def test_corex_bound_adds_the_input_entropies():
    post, x, logits = _batch(5)
    h = bernoulli_entropy(torch.full(SHAPE, 0.3))
    terms = CorExObjective(D, SHAPE)(post, StandardNormal(D), BernoulliLikelihood(), x, logits, input_entropy=h)
    assert terms.corex_bound.item() == pytest.approx(h.sum().item() + terms.elbo.item(), rel=1e-6)
    assert terms.weighted_corex_bound.item() == pytest.approx(terms.corex_bound.item(), rel=1e-6)
    n = math.prod(SHAPE)
    assert h.sum().item() == pytest.approx(n * -(0.3 * math.log(0.3) + 0.7 * math.log(0.7)), rel=1e-6)
    with pytest.raises(ValueError, match="input_entropy has 3 entries"):
        CorExObjective(D, SHAPE)(post, StandardNormal(D), BernoulliLikelihood(), x, logits, input_entropy=torch.ones(3))


def test_gaussian_likelihood_written_out():
    post, x, _ = _batch(6)
    mu = torch.rand(B, *SHAPE)
    scale = 0.2
    terms = CorExObjective(D, SHAPE)(post, StandardNormal(D), GaussianLikelihood(scale), x, mu)
    ll = -0.5 * math.log(2 * math.pi * scale**2) - (x.double() - mu.double()) ** 2 / (2 * scale**2)
    assert terms.reconstruction.item() == pytest.approx(ll.reshape(B, -1).sum(1).mean().item(), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -1.0}, "non-negative"),
        ({"beta": [1.0, 1.0, -0.5, 1.0, 1.0]}, r"entries \[2\] are negative"),
        ({"beta": [1.0, 1.0]}, "vector of length 5"),
        ({"beta": float("nan")}, "finite"),
        ({"alpha": -0.1}, "non-negative"),
        ({"alpha": torch.ones(3, 3)}, "alpha"),
    ],
)
def test_bad_weights_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CorExObjective(D, SHAPE, **kwargs)


def test_shape_mismatches_are_refused():
    post, x, logits = _batch(7)
    obj = CorExObjective(D, SHAPE)
    with pytest.raises(ValueError, match="decoder output"):
        obj(post, StandardNormal(D), BernoulliLikelihood(), x, logits[:, :, :2])
    with pytest.raises(ValueError, match=rf"posterior mean must be \[7, {D + 1}\], got shape \(7, {D}\)"):
        CorExObjective(D + 1, SHAPE)(post, StandardNormal(D + 1), BernoulliLikelihood(), x, logits)
    with pytest.raises(ValueError, match=r"x must be \[batch, .*got shape \(7, 3\)"):
        obj(post, StandardNormal(D), BernoulliLikelihood(), x.reshape(7, -1)[:, :3], logits)


def test_likelihood_names_and_data_checks():
    assert isinstance(make_likelihood("Bernoulli"), BernoulliLikelihood)
    assert make_likelihood("gaussian", 0.5).scale == 0.5
    with pytest.raises(ValueError, match="must be one of .*got 'laplace'"):
        make_likelihood("laplace")
    with pytest.raises(ValueError, match=r"x in \[0, 1\]"):
        BernoulliLikelihood().check_data(torch.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match="likelihood_scale must be a number in \\(0.0, inf\\)"):
        GaussianLikelihood(0.0)


def test_rate_is_zero_at_the_prior_and_positive_elsewhere():
    zero = DiagonalGaussian(torch.zeros(3, D), torch.zeros(3, D))
    assert torch.allclose(StandardNormal(D).kl(zero), torch.zeros(3, D))
    post, _, _ = _batch(8)
    assert (StandardNormal(D).kl(post) > 0).all()


def test_posterior_sample_and_log_prob():
    post = DiagonalGaussian(torch.full((20000, 2), 1.5), torch.full((20000, 2), math.log(0.25)))
    z = post.rsample(torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(1.5, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, abs=0.01)
    lp = post.log_prob(torch.full((1, 2), 1.5))[0, 0].item()
    assert lp == pytest.approx(-0.5 * math.log(2 * math.pi * 0.25), rel=1e-6)
