"""The DisentanglementMetrics callback: the values it logs are the functions' on the same codes."""

import lightning.pytorch as pl
import pytest
import torch

from tcx.callbacks.metrics import DisentanglementMetrics
from tcx.datamodules import DSprites
from tcx.metrics import factor_vae_score, mig, unsupervised
from tcx.models import AnchorVAE

SMALL_INTERVENTION = dict(intervention_train=40, intervention_eval=20, intervention_variance=500,
                          intervention_batch=16)


def _trainer(tmp_path, callback, steps=2):
    return pl.Trainer(
        max_epochs=1, limit_train_batches=steps, limit_val_batches=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        callbacks=[callback], num_sanity_val_steps=0,
    )


def _model():
    torch.manual_seed(0)
    return AnchorVAE(latent_dim=4, network="mlp", hidden_dims=[32], input_entropy_samples=0)


def test_ground_truth_data_gets_every_metric_and_the_values_match_the_functions(tmp_path):
    dm = DSprites(batch_size=32, epoch_size=64, val_size=64)
    cb = DisentanglementMetrics(num_samples=600, batch_size=200, **SMALL_INTERVENTION)
    model = _model()
    trainer = _trainer(tmp_path, cb)
    trainer.fit(model, datamodule=dm)

    # the code metrics after the validation epoch, the intervention scores at fit end
    assert cb.evaluated == {2: {"codes", "interventions"}} and trainer.global_step == 2
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness_test", "sap",
                "modularity", "explicitness_test", "irs", "gaussian_total_correlation",
                "factor_vae_eval_accuracy", "beta_vae_eval_accuracy"):
        assert key in cb.results, key
        assert f"metrics/{key}" in trainer.callback_metrics
    assert cb.skipped == {}
    for key in ("mig", "dci_disentanglement", "sap", "modularity", "factor_vae_eval_accuracy"):
        assert 0.0 <= cb.results[key] <= 1.0

    # the same seeded sample, encoded by hand, scored by the functions
    factors = dm.sample_factors(600, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        codes = model.encode(dm.render(factors)).mean
        assert cb.results["mig"] == pytest.approx(mig(codes, factors[:, 1:]), abs=1e-9)
        expected = unsupervised(codes)["gaussian_total_correlation"]
        assert cb.results["gaussian_total_correlation"] == pytest.approx(expected, rel=1e-6)
        fv = factor_vae_score(dm, lambda x: model.encode(x).mean, seed=0, num_train=40, num_eval=20,
                              num_variance_estimate=500, batch_size=16)
    assert cb.results["factor_vae_eval_accuracy"] == pytest.approx(fv["eval_accuracy"])


class _Labelled(pl.LightningDataModule):
    """Labelled data without a renderer (like MNIST): two classes of 64x64 images."""

    input_shape = (1, 64, 64)
    num_classes = 2

    def _data(self):
        g = torch.Generator().manual_seed(0)
        y = torch.arange(256) % 2
        x = (torch.rand(256, 1, 64, 64, generator=g) < (0.2 + 0.6 * y.view(-1, 1, 1, 1))).float()
        return torch.utils.data.TensorDataset(x, y)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self._data(), batch_size=32)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self._data(), batch_size=64)


def test_labelled_data_skips_the_intervention_scores_with_a_reason(tmp_path):
    cb = DisentanglementMetrics(every_n_epochs=0, num_samples=256, **SMALL_INTERVENTION)
    trainer = _trainer(tmp_path, cb)
    trainer.fit(_model(), datamodule=_Labelled())
    assert {"mig", "dci_disentanglement", "sap", "modularity", "irs"} <= set(cb.results)
    assert "factor_vae_eval_accuracy" not in cb.results
    assert "cannot render observations from factors" in cb.skipped["factor_vae"]
    assert "cannot render" in cb.skipped["beta_vae"]
    # the label is a 1-factor ground truth: an image's mean brightness separates the classes,
    # so the codes are informative about it
    assert cb.results["dci_informativeness_test"] > 0.9


class _ImagesOnly(_Labelled):
    """The same images without their labels."""

    def _data(self):
        return torch.utils.data.TensorDataset(super()._data().tensors[0])


def test_a_skipped_metric_is_said_once_per_run_with_its_reason(tmp_path, caplog):
    """Three validation epochs of unlabelled data: the factor metrics are skipped every time, and
    the line that says so is printed once, naming them together."""
    cb = DisentanglementMetrics(every_n_epochs=1, num_samples=64, metrics=["mig", "dci", "unsupervised"])
    trainer = pl.Trainer(max_epochs=3, limit_train_batches=1, limit_val_batches=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[cb], num_sanity_val_steps=0, enable_checkpointing=False)
    with caplog.at_level("INFO"):
        trainer.fit(_model(), datamodule=_ImagesOnly())
    lines = [r.getMessage() for r in caplog.records if "DisentanglementMetrics: skipped" in r.getMessage()]
    assert lines == ["DisentanglementMetrics: skipped mig, dci: the data has no labels or factors"]
    assert "gaussian_total_correlation" in cb.results and len(cb.evaluated) == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"metrics\[1\] must be one of 'mig', .*got 'nope'"):
        DisentanglementMetrics(metrics=["mig", "nope"])
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 0"):
        DisentanglementMetrics(every_n_epochs=-1)
    with pytest.raises(ValueError, match="intervention_batch must be an integer >= 1"):
        DisentanglementMetrics(intervention_batch=0)


def _rank(rank, world=2):
    from types import SimpleNamespace

    return SimpleNamespace(global_rank=rank, world_size=world)


def _label_loader(n, dtype=torch.long, batch_size=16):
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.rand(n, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(n).to(dtype) % 3
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


class _Loaders:
    """A datamodule with only a val_dataloader (labels, no renderer)."""

    def __init__(self, make):
        self.val_dataloader = make


@pytest.mark.parametrize("n", [45, 1, 300])
def test_under_ddp_the_rank_blocks_cover_the_available_points_once_in_order(n):
    """The sample is min(num_samples, available): 45 validation points against a sample of 100
    split 23 + 22 (not 45 + 0, the MNIST-under-DDP crash); a rank whose block is empty still
    yields zero rows with the labels' dtype and width; int32 labels come out int64."""
    cb = DisentanglementMetrics(num_samples=100, batch_size=16)
    dm = _Loaders(lambda: _label_loader(n, torch.int32))
    blocks = [list(cb._chunks(_rank(r), dm, torch.device("cpu"))) for r in range(2)]
    one = list(cb._chunks(_rank(0, 1), dm, torch.device("cpu")))
    for chunks in blocks:
        assert chunks and all(y.dtype == torch.long and y.ndim == 1 and len(x) == len(y) for x, y in chunks)
    sizes = [sum(len(y) for _, y in chunks) for chunks in blocks]
    total = min(n, 100)
    assert sizes == [-(-total // 2), total // 2]
    gathered = torch.cat([x for chunks in blocks for x, _ in chunks])
    assert torch.equal(gathered, torch.cat([x for x, _ in one]))
    assert torch.equal(gathered, _label_loader(n).dataset.tensors[0][:total])


def test_the_sample_size_of_a_loader_without_a_length_is_counted_by_reading_it():
    from tcx.callbacks.metrics import _loader_items

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([(torch.zeros(2), 0)] * 37)

    assert _loader_items(torch.utils.data.DataLoader(Stream(), batch_size=8), 100) == 37
    assert _loader_items(torch.utils.data.DataLoader(Stream(), batch_size=8), 20) == 20
    dropping = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(37, 2)), batch_size=8,
                                           drop_last=True)
    assert _loader_items(dropping, 100) == 32 == sum(b[0].shape[0] for b in dropping)


def test_a_metric_state_keeps_integer_factors_as_int64_and_an_empty_process_is_named():
    from tcx.errors import TcxError
    from tcx.metrics import MIG

    m = MIG()
    m.update(torch.rand(4, 2), torch.tensor([0, 1, 0, 1], dtype=torch.int32))
    m.update(torch.rand(3, 2), torch.tensor([[1], [0], [1]], dtype=torch.uint8))
    assert all(f.dtype == torch.long for f in m.factors)
    floats = MIG()
    floats.update(torch.rand(2, 2), torch.tensor([0.5, 1.5]))
    assert floats.factors[0].dtype == torch.float32  # float factors are kept as given, never truncated
    with pytest.raises(TcxError, match="every process must update at least once"):
        MIG()._sync_dist()


def test_a_noisy_renderer_gives_the_same_sample_on_every_rank_and_at_every_evaluation():
    """SyntheticCorEx renders with fresh channel noise: the sample is rendered in fixed chunks
    with seeded noise, so two processes' blocks are one process's sample (it once drew the noise
    from the datamodule's own generator, so DDP's metrics differed from one process's)."""
    from tcx.datamodules import SyntheticCorEx

    dm = SyntheticCorEx(num_points=200, val_size=40, noise=0.3)
    cb = DisentanglementMetrics(num_samples=50, batch_size=16)
    one = torch.cat([x for x, _ in cb._chunks(_rank(0, 1), dm, torch.device("cpu"))])
    again = torch.cat([x for x, _ in cb._chunks(_rank(0, 1), dm, torch.device("cpu"))])
    ranks = [list(cb._chunks(_rank(r), dm, torch.device("cpu"))) for r in range(2)]
    assert one.shape == (50, dm.input_shape[0]) and torch.equal(one, again)
    assert torch.equal(torch.cat([x for chunks in ranks for x, _ in chunks]), one)
    assert [sum(len(x) for x, _ in chunks) for chunks in ranks] == [25, 25]
    factors = dm.sample_factors(50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat([f for chunks in ranks for _, f in chunks]), factors)
    # the noise is there: the same factors rendered twice by the datamodule differ
    assert not torch.equal(dm.render(factors), dm.render(factors))
