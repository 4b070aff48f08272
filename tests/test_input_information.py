"""Known answers of tcx.input_information (docs/math.md#input-information).

The data: binary factors f, each seen through 4 copies flipped with probability e = 0.1, and pure
noise columns. Exact answers derived below: for a latent equal to f, I(X_i; f) = log 2 - h(e); for
a latent equal to the count n of ones among a group's copies, I(X_i; n) = log 2 - E_n h(n / 4)
(given n, each copy is 1 with probability n / 4 by symmetry); a latent of zero rate explains 0.
"""

from __future__ import annotations

import csv
import io
import math

import pytest
import torch

from tcx.input_information import discretize_inputs, explain, input_information

pytestmark = pytest.mark.usefixtures("one_thread")

E = 0.1
SMALL = 2 * math.log(0.05)  # log-variance of a posterior of std 0.05: well separated integer codes


def h(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -p * math.log(p) - (1 - p) * math.log(1 - p)


def count_answer(copies: int = 4, e: float = E) -> tuple[float, float]:
    """``(I(X_i; n), H(n))``: ``p(n) = (B(n; r, 1-e) + B(n; r, e)) / 2`` over the uniform factor."""
    p = [0.5 * math.comb(copies, n) * ((1 - e) ** n * e ** (copies - n) + e ** n * (1 - e) ** (copies - n))
         for n in range(copies + 1)]
    info = math.log(2) - sum(pn * h(n / copies) for n, pn in enumerate(p))
    return info, -sum(pn * math.log(pn) for pn in p)


def groups_data(n: int = 2000, groups: int = 2, noise_columns: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randint(0, 2, (n, groups), generator=g)
    flips = (torch.rand(n, groups, 4, generator=g) < E).long()
    copies = (f[:, :, None] ^ flips).reshape(n, groups * 4)
    x = torch.cat([copies, torch.randint(0, 2, (n, noise_columns), generator=g)], 1).float()
    return x, f, copies.reshape(n, groups, 4).sum(-1)


def test_the_known_answers_derived_here():
    info, h_count = count_answer()
    assert info == pytest.approx(0.493, abs=5e-4)
    assert math.log(2) - h(E) == pytest.approx(0.368, abs=5e-4)
    assert h_count > info  # a count latent carries more than it tells about any one copy


def test_count_latents_and_a_zero_rate_latent():
    x, _, counts = groups_data()
    n = len(x)
    mean = torch.cat([counts.double(), torch.zeros(n, 1, dtype=torch.float64)], 1)
    log_var = torch.cat([torch.full((n, 2), SMALL), torch.zeros(n, 1)], 1)
    e = input_information(x, mean, log_var, generator=torch.Generator().manual_seed(1),
                          input_names=[f"c{i}" for i in range(10)])
    answer, h_count = count_answer()
    own = e.information[:4, 0].tolist() + e.information[4:8, 1].tolist()
    assert sum(own) / 8 == pytest.approx(answer, abs=0.015)
    assert all(abs(v - answer) < 0.04 for v in own)
    # no estimate exceeds the latent's own I(Z_j; X), here H(n) of the count
    assert e.latent_information[:2].tolist() == pytest.approx([h_count] * 2, abs=0.04)
    assert bool((e.information <= e.latent_information[None, :] + 1e-12).all())
    # the other group and the noise columns: about nothing
    assert float(e.information[4:, 0].max()) < 0.01 and float(e.information[:4, 1].max()) < 0.01
    # a latent of zero rate (every posterior the prior) explains nothing, exactly
    assert float(e.rate[2]) == 0.0 and float(e.information[:, 2].abs().max()) == 0.0
    assert e.assignment == [0] * 4 + [1] * 4 + [None, None]
    # the total correlation each latent explains: sum_i I(X_i; Z_j) - I(Z_j; X)
    assert float(e.tc_explained[0]) == pytest.approx(float(e.information[:, 0].sum() - e.latent_information[0]))
    assert float(e.tc_explained[0]) == pytest.approx(4 * answer - h_count, abs=0.1)
    rows = list(csv.reader(io.StringIO(e.csv_text())))
    assert rows[0] == ["input", "name", "latent", "I_z0", "I_z1", "I_z2"]
    assert rows[1][:3] == ["0", "c0", "z0"] and rows[9][:3] == ["8", "c8", ""]
    assert float(rows[3][3]) == pytest.approx(float(e.information[2, 0]), abs=1e-6)
    assert float(rows[3][5]) == 0.0


def test_codes_equal_to_the_factor():
    x, f, _ = groups_data(seed=3)
    e = input_information(x, f.double(), torch.full(f.shape, SMALL), generator=torch.Generator().manual_seed(0))
    own = e.information[:4, 0].tolist() + e.information[4:8, 1].tolist()
    assert sum(own) / 8 == pytest.approx(math.log(2) - h(E), abs=0.015)
    # the factor is a binary variable: it cannot carry more than log 2, nor tell more than that
    assert float(e.latent_information.max()) <= math.log(2) + 0.02
    assert bool((e.information <= e.latent_information[None, :] + 1e-12).all())


def test_clipped_to_the_rate():
    """A latent whose rate is below what the mixture estimate says is credited its rate at most."""
    x, f, _ = groups_data(n=400)
    mean = f[:, :1].double() * 0.2  # well inside the prior: the rate is small
    log_var = torch.full((400, 1), 2 * math.log(0.01))
    e = input_information(x, mean, log_var)
    assert float(e.information.max()) <= float(e.rate[0]) + 1e-12
    assert float(e.information.max()) <= float(e.latent_information[0]) + 1e-12


def test_discretize_inputs():
    x = torch.tensor([[0.0, 1.5], [1.0, 2.5], [1.0, 3.5], [0.0, 4.5]]).repeat(3, 1)
    x[:, 1] += torch.arange(12) * 0.01  # 12 distinct values: binned
    codes, levels = discretize_inputs(x, max_values=4, bins=2)
    assert levels == [2, 2]
    assert codes[:, 0].tolist() == [0, 1, 1, 0] * 3
    assert sorted(codes[:, 1].tolist()) == [0] * 6 + [1] * 6  # the median cut: half in each bin


def test_explain_encodes_with_the_model():
    class Posterior:
        def __init__(self, mean, log_var):
            self.mean, self.log_var = mean, log_var

    class CountEncoder(torch.nn.Module):
        """Latent j: the count of ones among group j's 4 copies; a third latent at the prior."""

        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def encode(self, x):
            counts = x[:, :8].reshape(-1, 2, 4).sum(-1) * self.scale
            mean = torch.cat([counts, torch.zeros(len(x), 1)], 1)
            log_var = torch.cat([torch.full((len(x), 2), SMALL), torch.zeros(len(x), 1)], 1)
            return Posterior(mean, log_var)

    x, _, _ = groups_data(n=800, seed=5)
    model = CountEncoder().train()
    e = explain(model, x, batch_size=300)
    assert model.training
    assert e.assignment == [0] * 4 + [1] * 4 + [None, None]
    assert e.num_points == 800 and e.information.shape == (10, 3)


# --------------------------------------------------------------------------------------------
# the acceptance of issue 29: a trained VAE on SyntheticCorEx assigns the copies to the true groups


def adjusted_rand_index(a: list, b: list) -> float:
    """Hubert and Arabie's adjusted Rand index of two labelings, from the contingency table."""
    pairs = lambda n: n * (n - 1) / 2  # noqa: E731
    table: dict = {}
    for u, v in zip(a, b):
        table[(u, v)] = table.get((u, v), 0) + 1
    rows: dict = {}
    cols: dict = {}
    for (u, v), n in table.items():
        rows[u] = rows.get(u, 0) + n
        cols[v] = cols.get(v, 0) + n
    index = sum(pairs(n) for n in table.values())
    row_sum, col_sum = sum(pairs(n) for n in rows.values()), sum(pairs(n) for n in cols.values())
    expected = row_sum * col_sum / pairs(len(a))
    return (index - expected) / (0.5 * (row_sum + col_sum) - expected)


def test_adjusted_rand_index_known_values():
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0  # the same partition, renamed
    # pairs together in both: 3; in each: 3 and 1 + 6 = 7 of 15; expected 3 * 7 / 15 = 1.4, max 5
    assert adjusted_rand_index([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1]) == pytest.approx(1.6 / 3.6)


def check_groups(assignment: list, groups, noise_columns) -> float:
    copies = [i for g in groups for i in g]
    truth = {i: k for k, g in enumerate(groups) for i in g}
    assert all(assignment[i] is None for i in noise_columns), assignment
    assert all(assignment[i] is not None for i in copies), assignment
    return adjusted_rand_index([truth[i] for i in copies], [assignment[i] for i in copies])


def test_a_trained_vae_explains_the_synthetic_groups(tmp_path):
    import lightning.pytorch as pl

    from tcx.callbacks import InputExplanation
    from tcx.datamodules import SyntheticCorEx
    from tcx.models import VAE

    pl.seed_everything(0)
    dm = SyntheticCorEx(num_points=20000, val_size=1000, num_noise_dims=4, shuffle_columns=False,
                        batch_size=256, num_workers=0, seed=0)
    model = VAE(latent_dim=5, input_shape=dm.input_shape, network="mlp", hidden_dims=[64, 64], lr=0.004)
    callback = InputExplanation(num_points=500)
    trainer = pl.Trainer(max_steps=900, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, callbacks=[callback], default_root_dir=tmp_path,
                         num_sanity_val_steps=0, check_val_every_n_epoch=1000)
    trainer.fit(model, dm)
    e = callback.last
    assert check_groups(e.assignment, dm.groups, dm.noise_columns) >= 0.9
    rows = list(csv.reader((tmp_path / "input_information.csv").open()))
    assert [r[1] for r in rows[1:]] == ["" if a is None else f"z{a}" for a in e.assignment]


@pytest.mark.slow
def test_the_shipped_vae_synthetic_config_explains_the_groups(tmp_path, monkeypatch):
    """Issue 29's "done when": `tcx fit -c vae_synthetic` writes input_information.csv with the 20
    copies on 5 latents matching the true groups (ARI >= 0.9) and the noise columns on none."""
    from tcx.cli import main
    from tcx.datamodules import SyntheticCorEx

    monkeypatch.chdir(tmp_path)
    main(["fit", "-c", "vae_synthetic", "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)])
    rows = list(csv.DictReader((tmp_path / "input_information.csv").open()))
    assignment = [int(r["latent"][1:]) if r["latent"] else None for r in rows]
    dm = SyntheticCorEx(num_factors=5, copies_per_factor=4, num_noise_dims=4, shuffle_columns=False)
    assert check_groups(assignment, dm.groups, dm.noise_columns) >= 0.9
    assert len({a for a in assignment if a is not None}) == 5


def test_pictures_of_an_explanation():
    from tcx.callbacks.explanation import explanation_media, grouped_order

    x, _, counts = groups_data(n=300)
    mean = torch.cat([counts.double(), torch.zeros(300, 1, dtype=torch.float64)], 1)
    log_var = torch.cat([torch.full((300, 2), SMALL), torch.zeros(300, 1)], 1)
    e = input_information(x, mean, log_var, generator=torch.Generator().manual_seed(0))
    assert grouped_order(e) == list(range(10))  # z0's inputs, z1's, then the unexplained
    image = input_information(x[:, :9].reshape(300, 1, 3, 3), mean, log_var)
    items = {m.key: m for m in explanation_media(image, (1, 3, 3))}
    assert set(items) == {"explanation/input_information", "explanation/pixel_information",
                          "explanation/input_information_table", "explanation/latents"}
    assert items["explanation/pixel_information"].data.ndim == 3
    columns, rows = items["explanation/latents"].data
    assert columns[3] == "num_inputs" and [r[3] for r in rows] == [4, 4, 0]
