"""Helper of the two-process tests (tests/test_run_safety.py, tests/test_matrix.py), run as a
script: ``fit`` trains a tiny AnchorVAE on DATA with 2 CPU processes (DDP, gloo) and the metric
and diagnostics callbacks, then writes every ``metrics/*`` and ``diagnostics/*`` value and the
checkpoint; ``one`` loads that checkpoint in one process and computes the same values with the
same callbacks on the same data.

    python tests/ddp_equal_metrics.py fit OUT_DIR [DATA]
    python tests/ddp_equal_metrics.py one OUT_DIR [DATA]

DATA is a name of ``DATA`` below (default ``dsprites``): rendered ground truth (dSprites, the
synthetic CorEx data), labels without a renderer (embedded MNIST, a user's labelled datamodule)
or images only (a user's). Each validation set is smaller than the metric sample and odd-sized.
"""

import json
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

from tcx.callbacks import DisentanglementMetrics, InformationDiagnostics
from tcx.datamodules import MNIST, DSprites, SyntheticCorEx
from tcx.models import AnchorVAE, load_model

sys.path.insert(0, str(Path(__file__).resolve().parent / "user_datamodule_example"))
import my_module  # noqa: E402  (the user's own module, as `tcx fit --data my_module.X` finds it)

DATA = {
    "dsprites": lambda: DSprites(batch_size=16, epoch_size=64, val_size=96),
    "synthetic": lambda: SyntheticCorEx(num_points=400, val_size=96, batch_size=16, epoch_size=64),
    # the embedded holdout of 91 is halved: 46 validation points, fewer than the 300 of the sample
    "mnist": lambda: MNIST(source="embedded", batch_size=16, epoch_size=64, val_size=91),
    "labelled": lambda: my_module.LabelledDataModule(batch_size=16, num_points=181),
    "images": lambda: my_module.ImageDataModule(batch_size=16, num_points=181),
}


def callbacks():
    return [
        DisentanglementMetrics(every_n_epochs=1, intervention_every_n_epochs=1, num_samples=300, batch_size=64,
                               intervention_train=20, intervention_eval=10, intervention_variance=64,
                               intervention_batch=8),
        InformationDiagnostics(num_points=96, num_scored=None),
    ]


def values(trainer) -> dict:
    return {k: float(v) for k, v in trainer.callback_metrics.items()
            if k.startswith(("metrics/", "diagnostics/")) and k != "metrics/seconds"}


def main(mode: str, out: Path, data: str = "dsprites") -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    common = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                  enable_checkpointing=False, precision="32-true", default_root_dir=out, num_sanity_val_steps=0)
    dm = DATA[data]()
    if mode == "fit":
        pl.seed_everything(0)
        model = AnchorVAE(latent_dim=4, anchors=1, network="mlp", hidden_dims=[32], input_shape=dm.input_shape,
                          input_entropy_samples=0)
        trainer = pl.Trainer(max_epochs=1, devices=2, strategy="ddp", callbacks=callbacks(), **common)
        trainer.fit(model, dm)
        trainer.save_checkpoint(out / "model.ckpt")
        if trainer.is_global_zero:
            (out / "ddp.json").write_text(json.dumps(values(trainer), indent=1, sort_keys=True))
    else:
        model = load_model(out / "model.ckpt")
        trainer = pl.Trainer(devices=1, callbacks=callbacks(), **common)
        trainer.validate(model, dm, verbose=False)
        (out / "one.json").write_text(json.dumps(values(trainer), indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:4])
