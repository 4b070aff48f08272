"""The factor heatmap counts the posterior's noise (issue 29 item 4): a latent whose posterior
means follow a factor but whose rate is near 0 tells (about) nothing of it, in the numbers of
``diagnostics/mi_matrix`` and in ``latent_table.csv``, and the rate stands beside each row."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tcx import visualize as viz
from tcx.callbacks.diagnostics import information_media
from tcx.callbacks.encoding import Encoded
from tcx.input_information import factor_information
from tcx.metrics.mutual_info import mutual_info_matrix

pytestmark = pytest.mark.usefixtures("one_thread")


class _Model:
    anchor_indices = (0,)


def posteriors(n: int = 600, seed: int = 0):
    """posX (32 levels) and shape (3): z0 = posX / 8 with std 0.05 (informative), z1 = 0.01 (posX - 16)
    with std 1 (means that follow posX, rate ~0.005), z2 = N(0, 1) exactly (rate 0)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.stack([torch.randint(0, 32, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)], 1)
    pos = y[:, 0].double()
    mean = torch.stack([pos / 8 - 2, 0.01 * (pos - 16), torch.zeros(n, dtype=torch.float64)], 1)
    log_var = torch.stack([torch.full((n,), 2 * math.log(0.05)), torch.zeros(n), torch.zeros(n)], 1).double()
    return y, mean.float(), log_var.float()


def test_a_latent_of_no_rate_tells_nothing_of_the_factors_in_the_heatmap_and_the_table():
    y, mean, log_var = posteriors()
    items, _ = information_media(_Model(), Encoded(mean, log_var, y), ["posX", "shape"], seed=0)
    by_key = {item.key: item for item in items}
    assert "diagnostics/mi_matrix" in by_key
    columns, rows = by_key["diagnostics/latent_table"].data
    assert columns == ["latent", "anchor", "rate_nats", "info_nats", "mi_posX_nats", "mi_shape_nats"]
    table = {row[0]: dict(zip(columns, row)) for row in rows}
    # z0 carries posX (log 32 = 3.47 nats at most), nothing of shape
    assert table["z0"]["mi_posX_nats"] > 2.0 and table["z0"]["mi_shape_nats"] < 0.05
    # z1: the binned posterior means read over a nat about posX; its rate is ~0.005 nats
    means_only = mutual_info_matrix(mean, y, num_bins=20)
    assert float(means_only[1, 0]) > 1.0 and table["z1"]["rate_nats"] < 0.01
    assert table["z1"]["mi_posX_nats"] <= table["z1"]["rate_nats"] + 1e-9
    # z2: rate 0, information 0 about every factor
    assert table["z2"]["rate_nats"] == pytest.approx(0.0, abs=1e-6)
    assert table["z2"]["mi_posX_nats"] == pytest.approx(0.0, abs=1e-6)
    assert table["z2"]["mi_shape_nats"] == pytest.approx(0.0, abs=1e-6)


def test_factor_information_of_labels_and_its_known_answer():
    # a code equal to a binary factor seen through noise of flip rate 0.1: I = log 2 - h(0.1)
    g = torch.Generator().manual_seed(1)
    n = 1000
    f = torch.randint(0, 2, (n,), generator=g)
    flipped = torch.where(torch.rand(n, generator=g) < 0.1, 1 - f, f)
    mean = (3.0 * flipped.double())[:, None]
    log_var = torch.full((n, 1), 2 * math.log(0.05), dtype=torch.float64)
    m = factor_information(f, mean, log_var, generator=torch.Generator().manual_seed(0))  # labels [N]
    h = -0.1 * math.log(0.1) - 0.9 * math.log(0.9)
    assert m.shape == (1, 1) and float(m[0, 0]) == pytest.approx(math.log(2) - h, abs=0.03)


def test_the_heatmap_shows_the_rates_and_its_title_fits():
    y, mean, log_var = posteriors(200)
    m = factor_information(y, mean, log_var)
    rates = torch.tensor([2.5, 0.02, 0.0])
    title = "I(z_j; factor) in nats, posterior samples, 200 points, and a long tail of words to wrap"
    fig = viz.mi_heatmap(m, ["posX", "shape"], anchors=(0,), rates=rates, title=title)
    viz.figure_to_array(fig)  # draws it
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["z0  rate 2.50", "z1  rate 0.02", "z2  rate 0.00"]
    assert np.allclose(np.asarray(ax.images[0].get_array()), m.numpy())
    renderer = fig.canvas.get_renderer()
    box = fig.texts[0].get_window_extent(renderer)  # the suptitle, wrapped
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and "\n" in fig.texts[0].get_text()
