"""InformationDiagnostics' I(Z;X) and TC(Z) estimate the dataset's aggregate posterior,
not the mixture of however many points the callback happened to encode."""

import math

import pytest
import torch

from tcx.callbacks.diagnostics import information_media
from tcx.callbacks.encoding import Encoded
from tcx.estimators import aggregate_information, aggregate_information_full

N_DATA = 737_280  # dSprites' size


def _independent(m: int, d: int = 10, std: float = 0.3, seed: int = 0):
    """``m`` posteriors of ``d`` independent latents: means N(0, 1), posterior std ``std``; the
    aggregate posterior is N(0, 1 + std^2) per latent, independent (TC = 0), and I(Z;X) =
    d/2 log((1 + std^2) / std^2)."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(m, d, generator=g, dtype=torch.float64)
    log_var = torch.full((m, d), 2 * math.log(std), dtype=torch.float64)
    return mean, log_var


class _Model:
    anchor_indices = ()


@pytest.mark.parametrize("m", [200, 500, 2000])
def test_independent_latents_give_tc_near_zero_whatever_the_number_of_points(m):
    mean, log_var = _independent(m)
    _, scalars = information_media(_Model(), Encoded(mean.float(), log_var.float(), None), None,
                                   num_scored=min(m, 1000), dataset_size=N_DATA)
    tc, mi = scalars["diagnostics/total_correlation"], scalars["diagnostics/mutual_info"]
    true_mi = 10 * 0.5 * math.log((1 + 0.09) / 0.09)  # 12.47 nats
    assert abs(tc) < 1.0, tc  # the mixture of the m points read +5 to +7 here
    assert abs(mi - true_mi) < 1.0 and mi > math.log(m), mi  # no longer capped at log m


def test_the_estimate_does_not_drift_with_the_number_of_points():
    values = []
    for m in (500, 2000):
        mean, log_var = _independent(m)
        out = aggregate_information_full(mean, log_var, dataset_size=N_DATA, generator=torch.Generator().manual_seed(1))
        values.append(float(out["total_correlation"]))
    assert abs(values[0] - values[1]) < 0.5, values
    # the points-as-dataset mixture, for contrast, is biased by several nats and drifts
    old = [float(aggregate_information_full(*_independent(m), generator=torch.Generator().manual_seed(1))
                 ["total_correlation"]) for m in (500, 2000)]
    assert min(old) > 4.0 and old[0] - old[1] > 0.8, old


def test_full_with_dataset_size_is_the_mss_estimator_on_all_points():
    mean, log_var = _independent(300, d=4)
    z = mean + 0.3 * torch.randn(mean.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    a = aggregate_information_full(mean, log_var, z=z, dataset_size=10_000)
    b = aggregate_information(mean, log_var, dataset_size=10_000, method="mss", z=z)
    for key in ("mutual_info", "total_correlation", "mutual_info_per_latent", "dimension_wise_kl"):
        assert torch.allclose(a[key], b[key], rtol=1e-12, atol=1e-12), key
    # a scored subset gives the same per-row values as scoring all rows
    sub = aggregate_information_full(mean, log_var, z=z, dataset_size=10_000, num_scored=300,
                                     generator=torch.Generator().manual_seed(0))
    assert torch.allclose(sub["total_correlation"], a["total_correlation"], atol=1e-10)
    with pytest.raises(ValueError, match="dataset_size must be an integer >= 300, got 100"):
        aggregate_information_full(mean, log_var, dataset_size=100)
