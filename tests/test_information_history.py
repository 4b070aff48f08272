"""Information over training (issue 29 item 5): InformationDiagnostics keeps each latent's rate
and I(Z_j;X) per validation epoch, draws them as lines per latent (anchors marked) and gives W&B
one line chart of them."""

from __future__ import annotations

import numpy as np

from tcx import visualize as viz
from tcx.callbacks import InformationDiagnostics

RATES = [[0.5, 0.1, 0.0], [1.0, 0.2, 0.0], [1.5, 0.1, 0.0]]
INFOS = [[0.4, 0.1, 0.0], [0.9, 0.15, 0.0], [1.3, 0.05, 0.0]]


def filled() -> InformationDiagnostics:
    cb = InformationDiagnostics()
    for epoch, (r, i) in enumerate(zip(RATES, INFOS)):
        cb.record(10 * (epoch + 1), epoch, r, i)
    return cb


def test_the_history_picture_draws_each_latent_over_the_epochs_anchors_marked():
    cb = filled()
    cb.record(30, 2, RATES[2], INFOS[2])  # the end of fit at the last validation step: no second point
    assert [h["step"] for h in cb.history] == [10, 20, 30]
    fig = viz.information_history([10, 20, 30], RATES, INFOS, anchors=(0,))
    rate_ax, info_ax = fig.axes[:2]
    for ax, values in ((rate_ax, RATES), (info_ax, INFOS)):
        assert len(ax.lines) == 3
        for j, line in enumerate(ax.lines):
            assert np.allclose(line.get_xdata(), [10, 20, 30]) and np.allclose(line.get_ydata(), np.array(values)[:, j])
    assert rate_ax.lines[0].get_linewidth() > rate_ax.lines[1].get_linewidth()
    assert [t.get_text() for t in info_ax.get_legend().get_texts()] == ["z0 anchor", "z1", "z2"]
    item = cb.history_media(anchors=(0,))
    assert item.key == "diagnostics/information_history" and item.data.ndim == 3 and item.data.shape[1] >= 900


def test_the_wandb_chart_holds_every_latent_at_every_step_and_the_history_survives_a_checkpoint():
    cb = filled()
    chart = cb.history_chart()
    assert chart.table.columns == ["step", "lineKey", "lineVal"]
    rows = {(s, k): v for s, k, v in chart.table.data}
    assert len(rows) == 9 and rows[(20, "z1")] == 0.15 and rows[(30, "z0")] == 1.3
    again = InformationDiagnostics()
    again.load_state_dict(cb.state_dict())
    assert again.history == cb.history and again.history is not cb.history
