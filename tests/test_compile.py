"""The models' compile option (models/compile.py: compile_choice, compile_networks, the fallback)."""

import types

import lightning.pytorch as pl
import pytest
import torch

from tcx.models import VAE
from tcx.models.compile import COMPILE_AUTO_MIN_STEPS


def _trainer(device_type: str, steps: int):
    strategy = types.SimpleNamespace(root_device=torch.device(device_type))
    return types.SimpleNamespace(strategy=strategy, estimated_stepping_batches=steps)


def _model(**kw):
    return VAE(latent_dim=2, input_shape=(6,), network="mlp", hidden_dims=[8], input_entropy_samples=0, **kw)


@pytest.mark.parametrize("device, steps, expected", [
    ("cpu", 10**6, False),
    ("cuda", COMPILE_AUTO_MIN_STEPS - 1, False),
    ("cuda", COMPILE_AUTO_MIN_STEPS, True),
])
def test_auto_compiles_only_on_cuda_for_long_runs(device, steps, expected):
    on, why = _model().compile_choice(_trainer(device, steps))
    assert on is expected
    assert why.startswith("auto:") and device in why


@pytest.mark.parametrize("setting", [True, False])
def test_an_explicit_compile_setting_always_wins(setting):
    on, why = _model(compile=setting).compile_choice(_trainer("cpu", 1))
    assert on is setting and "asked for" in why


def test_a_bad_compile_setting_is_refused():
    with pytest.raises(ValueError, match="compile must be true, false or 'auto'"):
        _model(compile="yes")


def test_a_failing_compile_falls_back_with_one_line_and_the_same_numbers(recwarn, monkeypatch):
    model = _model()
    x = torch.rand(5, 6).round()
    torch.manual_seed(1)
    plain = model.step_terms(x).loss

    def broken(*args):
        raise RuntimeError("no C++ compiler found\nsecond line")

    model.train()
    # torch.compile is lazy: a missing C++ compiler or a dynamo error surfaces at the first call
    monkeypatch.setattr(torch, "compile", lambda module: broken)
    model.compile_networks(True)
    assert model.compiled
    torch.manual_seed(1)
    loss = model.step_terms(x).loss
    assert torch.equal(loss, plain)
    assert not model.compiled
    messages = [str(w.message) for w in recwarn if "torch.compile" in str(w.message)]
    assert len(messages) == 1 and "no C++ compiler found" in messages[0] and "second line" not in messages[0]


def test_compiled_networks_are_used_only_in_training_steps_and_share_the_weights(monkeypatch):
    model = _model()
    calls = []
    encoder = model.encoder

    def counting(x):
        calls.append(x.shape[0])
        return encoder(x)

    monkeypatch.setattr(torch, "compile", lambda module: counting if module is encoder else module)
    model.compile_networks(True)
    model.train()
    model.encode(torch.rand(3, 6))
    model.eval()
    with torch.no_grad():
        model.encode(torch.rand(4, 6))
    assert calls == [3]
    assert set(model.state_dict()) == set(_model().state_dict())


def test_a_cpu_fit_with_auto_does_not_compile(tmp_path):
    from tcx.datamodules import SyntheticCorEx

    dm = SyntheticCorEx(num_points=300, val_size=50, batch_size=50)
    model = VAE(latent_dim=2, input_shape=dm.input_shape, network="mlp", hidden_dims=[8], input_entropy_samples=0)
    trainer = pl.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert not model.compiled
