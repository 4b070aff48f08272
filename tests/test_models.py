"""Model families: weights per latent, the callback interface, networks, checkpoints, bad input."""

import math

import lightning.pytorch as pl
import pytest
import torch

from tcx.models import VAE, AnchorVAE, BetaVAE, load_model
from tcx.networks import build_networks


def _x(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.8).float()


def test_latent_weights_per_family():
    assert VAE(latent_dim=4).objective.beta.tolist() == [1.0] * 4
    assert BetaVAE(latent_dim=4, beta=4.0).objective.beta.tolist() == [4.0] * 4
    m = AnchorVAE(latent_dim=5, anchors=[1, 3], anchor_beta=0.1, beta=2.0)
    assert m.anchor_indices == (1, 3)
    assert m.objective.beta.tolist() == pytest.approx([2.0, 0.1, 2.0, 0.1, 2.0])
    assert AnchorVAE(latent_dim=5, anchors=3).anchor_indices == (0, 1, 2)
    assert VAE().anchor_indices == ()


def test_anchor_loss_differs_from_vae_only_by_the_anchor_rates():
    torch.manual_seed(0)
    vae = VAE(latent_dim=6)
    anchor = AnchorVAE(latent_dim=6, anchors=2, anchor_beta=0.3)
    anchor.load_state_dict(vae.state_dict())
    x = _x()
    torch.manual_seed(1)
    out_vae = vae.step_terms(x)
    t_vae, loss_vae = out_vae.terms, out_vae.loss
    torch.manual_seed(1)
    out_anc = anchor.step_terms(x)
    t_anc, loss_anc = out_anc.terms, out_anc.loss
    assert torch.allclose(t_vae.rate_per_latent, t_anc.rate_per_latent)
    expected = loss_vae - 0.7 * t_vae.rate_per_latent[:2].sum()
    assert loss_anc.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("network", ["conv", "mlp"])
def test_callback_interface_shapes(network):
    m = AnchorVAE(latent_dim=7, network=network).eval()
    x = _x(5)
    post = m.encode(x)
    assert post.mean.shape == post.log_var.shape == (5, 7)
    assert m.latent_dim == 7
    img = m.decode(post.mean)
    assert img.shape == (5, 1, 64, 64) and 0 <= img.min() and img.max() <= 1
    assert m.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 64, 64)
    assert m.reconstruct(x).shape == x.shape
    assert torch.equal(m(x), post.mean)


def test_channels_last_gives_the_same_numbers():
    torch.manual_seed(0)
    a = VAE(latent_dim=4, channels_last=False).eval()
    b = VAE(latent_dim=4, channels_last=True).eval()
    b.load_state_dict(a.state_dict())
    x = _x(4)
    assert torch.allclose(a.encode(x).mean, b.encode(x).mean, atol=1e-5)
    z = torch.randn(4, 4)
    assert torch.allclose(a.decode(z), b.decode(z), atol=1e-5)


def test_conv_network_architecture():
    enc, dec = build_networks("conv", (1, 64, 64), 10)
    convs = [m for m in enc.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert enc.head[1].out_features == 256
    assert dec(torch.zeros(2, 10)).shape == (2, 1, 64, 64)
    enc3, dec3 = build_networks("conv", (3, 32, 32), 5)
    assert enc3(torch.zeros(2, 3, 32, 32))[0].shape == (2, 5)
    assert dec3(torch.zeros(2, 5)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (1, 28, 28), "network": "conv"}, "H and W must be multiples of 16"),
        ({"input_shape": (784,), "network": "conv"}, "network='conv' needs images"),
        ({"network": "transformer"}, "network must be one of .*got 'transformer'"),
        ({"latent_dim": 0}, "latent_dim must be an integer >= 1"),
        ({"likelihood": "poisson"}, "likelihood must be one of .*got 'poisson'"),
        ({"anchors": 11}, r"anchors \(a count\) must be an integer in \[1, 10\], got 11"),
        ({"anchors": [0, 0]}, "must be distinct"),
        ({"anchors": [-1]}, r"anchors\[0\] must be an integer in \[0, 9\], got -1"),
        ({"anchors": []}, "at least one anchor"),
        ({"anchor_beta": 1.0}, r"anchor_beta must be a number in \[0.0, 1.0\), got 1.0 \(a smaller weight"),
        ({"anchor_beta": -0.1}, "anchor_beta must be .*, got -0.1"),
        ({"beta": -1.0}, "beta must be .*, got -1.0"),
        ({"lr": 0.0}, "lr must be a number in \\(0.0, inf\\)"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnchorVAE(**kwargs)


def test_data_of_the_wrong_shape_or_range_is_refused():
    m = VAE(latent_dim=3, network="mlp", input_shape=(1, 64, 64))
    with pytest.raises(ValueError, match=r"built for input_shape=\(1, 64, 64\)"):
        m.training_step((torch.zeros(2, 1, 32, 32), torch.zeros(2, 0)), 0)
    with pytest.raises(ValueError, match=r"Bernoulli likelihood needs x in \[0, 1\]"):
        m.training_step((torch.full((2, 1, 64, 64), 2.0), torch.zeros(2, 0)), 0)


class _Tiny(pl.LightningDataModule):
    input_shape = (1, 64, 64)

    def train_dataloader(self):
        x = _x(32, seed=3)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(32, 0)), batch_size=8)


def _fit(model, tmp_path, steps=4, **trainer_kwargs):
    trainer = pl.Trainer(
        max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, **trainer_kwargs,
    )
    trainer.fit(model, datamodule=_Tiny())
    return trainer


def test_non_finite_loss_stops_training_before_the_update(tmp_path):
    torch.manual_seed(0)
    m = VAE(latent_dim=3, network="mlp", hidden_dims=[16])
    with torch.no_grad():
        m.encoder.net[-1].bias.fill_(float("nan"))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(FloatingPointError, match="the loss is nan at global step 0"):
        _fit(m, tmp_path)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]) or torch.isnan(v).any(), k


def test_training_lowers_the_loss_and_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    m = AnchorVAE(latent_dim=4, network="mlp", hidden_dims=[64], anchors=[2], lr=3e-3)
    x = _x(32, seed=3)
    with torch.no_grad():
        torch.manual_seed(5)
        before = m.step_terms(x).loss.item()
    trainer = _fit(m, tmp_path, steps=40)
    with torch.no_grad():
        torch.manual_seed(5)
        after = m.step_terms(x).loss.item()
    assert after < before - 100, (before, after)

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_model(path)
    assert type(loaded) is AnchorVAE and loaded.anchor_indices == (2,)
    m.eval()
    assert torch.equal(loaded.encode(x).mean, m.encode(x).mean)


def test_load_model_explains_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="truncated or not a PyTorch checkpoint"):
        load_model(bad)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="does not name its tcx model family"):
        load_model(foreign)


def test_corex_bound_uses_the_datamodule_pixel_entropy(tmp_path):
    class WithEntropy(_Tiny):
        def pixel_entropy(self, num_samples=0, seed=0):
            return torch.full((1, 64, 64), math.log(2))

    torch.manual_seed(0)
    m = VAE(latent_dim=3, network="mlp", hidden_dims=[16])
    trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, log_every_n_steps=1)
    trainer.fit(m, datamodule=WithEntropy())
    metrics = trainer.callback_metrics
    assert metrics["train/corex_bound"].item() == pytest.approx(
        4096 * math.log(2) + metrics["train/elbo"].item(), rel=1e-5
    )


def test_attach_data_is_the_route_for_plain_dataloaders(tmp_path, caplog):
    """What the model learns from its data besides input_shape goes through attach_data: with
    plain dataloaders the CorEx bound is reported once it is attached, and a fit without it says
    so in one line, once."""
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_x(16, seed=3), torch.zeros(16, 0)), batch_size=8)

    def fit(model):
        trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                             default_root_dir=tmp_path, log_every_n_steps=1)
        trainer.fit(model, train_dataloaders=loader)
        return trainer

    torch.manual_seed(0)
    m = VAE(latent_dim=3, network="mlp", hidden_dims=[16])
    with caplog.at_level("INFO"):
        metrics = fit(m).callback_metrics
        fit(m)
    notices = [r.getMessage() for r in caplog.records if "CorEx bound" in r.getMessage()]
    assert len(notices) == 1 and "attach_data(input_entropy=" in notices[0] and "\n" not in notices[0], notices
    assert "train/corex_bound" not in metrics

    m.attach_data(input_entropy=torch.full((1, 64, 64), math.log(2)), dataset_size=16)
    assert m.input_entropy.shape == (1, 64, 64) and m.dataset_size == 16
    metrics = fit(m).callback_metrics
    assert metrics["train/corex_bound"].item() == pytest.approx(4096 * math.log(2) + metrics["train/elbo"].item(), abs=2e-3)


def test_attach_data_checks_its_arguments():
    m = VAE(latent_dim=3, network="mlp", hidden_dims=[16])
    with pytest.raises(ValueError, match=r"input_entropy has 3 entries \(shape \(3,\)\), the model's input has 4096"):
        m.attach_data(input_entropy=torch.ones(3))
    with pytest.raises(ValueError, match="input_entropy holds 1 NaN or inf entries"):
        m.attach_data(input_entropy=torch.full((4096,), float("nan")).index_fill(0, torch.arange(1, 4096), 0.5))
    with pytest.raises(ValueError, match=r"dataset_size \(the number of training examples\) must be an integer >= 1, got 0"):
        m.attach_data(dataset_size=0)
    with pytest.raises(ValueError, match="must be an integer >= 1, got True"):
        m.dataset_size = True
    assert m.input_entropy is None and m.dataset_size is None
    m.attach_data(input_entropy=torch.zeros(4096))  # one entry per input, any shape: kept as [*input_shape]
    assert m.input_entropy.shape == (1, 64, 64)


def test_a_datamodule_with_a_bad_declaration_is_named(tmp_path):
    def fit(datamodule):
        trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                             default_root_dir=tmp_path)
        trainer.fit(VAE(latent_dim=3, network="mlp", hidden_dims=[16]), datamodule=datamodule)

    class BadEntropy(_Tiny):
        def pixel_entropy(self, num_samples=0, seed=0):
            return torch.ones(10)

    with pytest.raises(ValueError, match=r"BadEntropy.pixel_entropy\(num_samples=20000\): input_entropy has 10 entries"):
        fit(BadEntropy())

    class BadSize(_Tiny):
        dataset_size = -1

    with pytest.raises(ValueError, match="the dataset_size declared by BadSize: .* must be an integer >= 1, got -1"):
        fit(BadSize())
