"""tcx.callbacks.ModelSummary: Lightning's table without the FLOPs column that counts nothing."""

from __future__ import annotations

import logging

import lightning.pytorch as pl


def _fit_and_capture(caplog, tmp_path, callbacks):
    from tcx.datamodules import SyntheticCorEx
    from tcx.models import VAE

    dm = SyntheticCorEx(num_points=96, val_size=32, batch_size=32)
    model = VAE(latent_dim=2, input_shape=dm.input_shape, network="mlp", hidden_dims=[8], likelihood="bernoulli")
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, callbacks=callbacks,
                         default_root_dir=str(tmp_path))
    with caplog.at_level(logging.INFO):
        trainer.fit(model, datamodule=dm)
    return "\n".join(r.getMessage() for r in caplog.records if "Total params" in r.getMessage())


def test_the_summary_has_no_flops_column_of_zeros(caplog, tmp_path):
    from tcx.callbacks import ModelSummary

    text = _fit_and_capture(caplog, tmp_path, [ModelSummary()])
    assert "| encoder" in text and "| decoder" in text and "Total params" in text
    assert "FLOPs" not in text and "Total Flops" not in text
    # every other column and total of Lightning's table is kept
    assert "| Params" in text and "| Mode" in text and "Modules in train mode" in text


def test_lightning_table_is_kept_when_flops_were_counted(caplog):
    from tcx.callbacks import ModelSummary

    data = [(" ", ["0"]), ("Name", ["net"]), ("Type", ["Linear"]), ("Params", ["6"]), ("Mode", ["train"]),
            ("FLOPs", ["12"])]
    with caplog.at_level(logging.INFO):
        ModelSummary.summarize(data, 6, 6, 24 / 1e6, {"train": 1, "eval": 0}, total_flops=12)
        ModelSummary.summarize(data, 6, 6, 24 / 1e6, {"train": 1, "eval": 0}, total_flops=0)
    counted, empty = [r.getMessage() for r in caplog.records if "Total params" in r.getMessage()]
    assert "FLOPs" in counted and "Total Flops" in counted
    assert "FLOPs" not in empty and "| Linear" in empty
