"""tcx from Python: train with a plain Lightning Trainer, load the checkpoint, encode, score.

    python examples/python_api.py [--out DIR]

A small AnchorVAE on procedural dSprites (about a minute on 2 CPU cores), ending with the table
and ``summary.json`` of every ``tcx`` run; then ``tcx.models.load_model`` and
``tcx.datamodules.load_datamodule`` on its checkpoint, the posterior means of the validation
split, and two disentanglement metrics of them. CI runs this script (``make examples``).
"""

import argparse
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import torch

import tcx.metrics
from tcx.callbacks import guard_trainer
from tcx.datamodules import DSprites, load_datamodule
from tcx.models import AnchorVAE, load_model


def main(out: Path) -> dict:
    pl.seed_everything(0)
    data = DSprites(batch_size=128, epoch_size=4096, val_size=1000)
    model = AnchorVAE(latent_dim=6, anchors=2, anchor_beta=0.2)
    trainer = pl.Trainer(max_epochs=1, logger=False, default_root_dir=out, enable_progress_bar=False,
                         enable_model_summary=False, precision="32-true")
    # as `tcx fit` does: RNG states in the checkpoint, every save written whole and read back, and
    # at the end the summary table and summary.json (which `tcx compare` reads)
    summary = guard_trainer(trainer)
    trainer.fit(model, datamodule=data)  # fitting with the datamodule also gives the model H(X_i) and N
    assert Path(summary.path).is_file(), f"{summary.path} was not written"
    ckpt = out / "anchorvae.ckpt"
    trainer.save_checkpoint(ckpt, weights_only=False)  # with the optimizer state, to resume from

    # any tcx checkpoint, any family: read as data (weights_only), rebuilt, in eval mode; and the
    # data it was trained on, rebuilt from what the checkpoint records
    model = load_model(ckpt)
    data = load_datamodule(ckpt)
    x, factors = data.split_data("val")
    with torch.no_grad():
        codes = model.encode(x).mean

    # dSprites' colour factor is constant: score against the factors that vary
    varying = [k for k, size in enumerate(data.factor_sizes) if size > 1]
    y = factors[:, varying]
    half = len(x) // 2  # SAP fits its classifiers on one half and scores on the other
    scores = {
        "mig": float(tcx.metrics.mig(codes, y)),
        "sap": float(tcx.metrics.sap(codes[:half], y[:half], codes[half:], y[half:])),
    }
    print(f"{type(model).__name__}: {model.latent_dim} latents, anchors {list(model.anchor_indices)}; "
          f"codes {tuple(codes.shape)} of {len(x)} validation images")
    for name, value in scores.items():
        print(f"  {name} = {value:.4f}")
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the checkpoint (default: a temporary one)")
    args = parser.parse_args()
    if args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
