"""Precision/recall, density/coverage, class divergence, traversal class change, per-input IWAE:
known answers worked by hand and invariants."""

import math

import pytest
import torch

from tcx.errors import TcxError
from tcx.metrics import (class_divergence, density_coverage, knn_radii, precision_recall,
                         traversal_class_change)


def _pts(values):
    return torch.tensor(values, dtype=torch.float64)[:, None]


def test_hand_worked_one_dimensional_example():
    # real {0, 1, 3}, k = 1: radii 1, 1, 2; fake {0.5, 5, 10}: radii 4.5, 4.5, 5
    real, fake = _pts([0.0, 1.0, 3.0]), _pts([0.5, 5.0, 10.0])
    assert knn_radii(real, 1).tolist() == pytest.approx([1.0, 1.0, 2.0])
    pr = precision_recall(real, fake, k=1)
    assert pr["precision"] == pytest.approx(2 / 3)  # 0.5 in the balls of 0 and 1; 5 on the ball of 3
    assert pr["recall"] == 1.0
    dc = density_coverage(real, fake, k=1)
    assert dc["density"] == pytest.approx(1.0)  # 2 + 1 + 0 balls, / (k * 3)
    assert dc["coverage"] == 1.0


def test_identical_and_disjoint_sets():
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x, k=3) == {"precision": 1.0, "recall": 1.0}
    dc = density_coverage(x, x, k=5)
    assert dc["coverage"] == 1.0 and dc["density"] == pytest.approx(6 / 5)  # each point in k + 1 balls
    far = x + 1000.0
    assert precision_recall(x, far, k=3) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(x, far) == {"density": 0.0, "coverage": 0.0}


def test_a_collapsed_generator_is_precise_but_recalls_little():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(400, 2, generator=g)
    fake = 0.05 * torch.randn(400, 2, generator=g)  # every sample near the mode
    pr = precision_recall(real, fake, k=3)
    assert pr["precision"] > 0.9 and pr["recall"] < 0.2


def test_class_divergence_known_values():
    ref = torch.tensor([0, 1] * 50)
    assert class_divergence(ref, ref, 2, smoothing=0.0) == 0.0
    only_zero = torch.zeros(100, dtype=torch.long)
    # p_ref = (1/2, 1/2), p_gen = (100.5, 0.5) / 101
    want = 0.5 * math.log(0.5 / (100.5 / 101)) + 0.5 * math.log(0.5 / (0.5 / 101))
    assert class_divergence(only_zero, ref, 2) == pytest.approx(want)
    with pytest.raises(TcxError, match="0 .. 1"):
        class_divergence(torch.tensor([2]), ref, 2)


def test_traversal_class_change_reads_the_latent_that_carries_the_class():
    # the "class" is the sign of latent 0; latent 1 is style
    codes = torch.randn(300, 2, generator=torch.Generator().manual_seed(2))

    def classify(z):
        return torch.stack([-z[:, 0], z[:, 0]], 1)

    rates = traversal_class_change(lambda z: z, classify, codes, steps=9)
    assert rates[1] == 0.0
    # 9 symmetric quantile values: 4 negative, the median (sign of about half), 4 positive; each input
    # changes class at about half of them
    assert 0.4 < float(rates[0]) < 0.6
    assert traversal_class_change(lambda z: z, classify, codes, latents=[1]).tolist() == [0.0]
    with pytest.raises(TcxError, match="0 .. 1"):
        traversal_class_change(lambda z: z, classify, codes, latents=[2])


def test_iwae_per_input_averages_to_model_iwae():
    from tcx.metrics import iwae_per_input, model_iwae
    from tcx.models import VAE

    torch.manual_seed(0)
    model = VAE(latent_dim=3, input_shape=(1, 4, 4), network="mlp", hidden_dims=[8], likelihood="bernoulli")
    x = torch.bernoulli(torch.full((10, 1, 4, 4), 0.3), generator=torch.Generator().manual_seed(3))
    iw, el = iwae_per_input(model, x, k=16, generator=torch.Generator().manual_seed(4))
    both = model_iwae(model, x, k=16, generator=torch.Generator().manual_seed(4))
    assert iw.shape == (10,) and el.shape == (10,)
    assert float(iw.mean()) == pytest.approx(both["iwae"]) and float(el.mean()) == pytest.approx(both["elbo"])
    assert float(iw.mean()) >= float(el.mean()) - 1.0
